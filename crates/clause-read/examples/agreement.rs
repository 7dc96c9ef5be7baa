//! How far a document segments like the Markdown it was made from (the
//! measure the fixture tests apply): `cargo run -p clause-read --example
//! agreement -- draft.pdf draft.md`. scripts/make-document-fixtures
//! --measure-treaties runs it on PDF renders of shared treaty texts.

use std::path::Path;
use std::process::ExitCode;

#[path = "../tests/agreement/mod.rs"]
mod agreement;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [document, markdown] = args.as_slice() else {
        eprintln!("usage: agreement DOCUMENT MARKDOWN");
        return ExitCode::FAILURE;
    };
    let result = agreement::agreement(Path::new(document), Path::new(markdown));
    println!(
        "{document}: {} provisions in the Markdown, {} in the document; same id {:.1} %, same text {:.1} %",
        result.provisions,
        result.found,
        100.0 * result.same_id,
        100.0 * result.same_text
    );
    ExitCode::SUCCESS
}
