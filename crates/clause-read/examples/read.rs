//! Print a document as the segmenter will read it, each block after its
//! location, or with `--text` the text alone (to pipe into `clause segment`):
//! `cargo run -p clause-read --example read -- [--text] draft.docx` (or a
//! PDF, an HTML page, Markdown).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let text_only = args.iter().any(|a| a == "--text");
    let Some(path) = args.iter().find(|a| *a != "--text") else {
        eprintln!("usage: read [--text] FILE.docx|FILE.pdf|FILE.html|FILE.md");
        return ExitCode::FAILURE;
    };
    let document = match clause_read::read(Path::new(path)) {
        Ok(document) => document,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) ends the output quietly.
    let _ = if text_only { out.write_all(document.text.as_bytes()) } else { print_located(&mut out, &document) };
    ExitCode::SUCCESS
}

fn print_located(out: &mut impl Write, document: &clause_read::Document) -> std::io::Result<()> {
    let mut offset = 0;
    for line in document.text.split_inclusive('\n') {
        if !line.trim().is_empty() {
            let location = document.location_at(offset).map(ToString::to_string).unwrap_or_default();
            write!(out, "{location:>12}  {line}")?;
        }
        offset += line.len();
    }
    Ok(())
}
