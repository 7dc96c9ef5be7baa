//! `clause`: find the risky provisions in legal drafts.

mod cli;
mod commands;
mod input;
mod output;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Before any other thread exists: it sets an environment variable.
    let chosen_candle_threads = clause_infer::runtime::keep_candle_ops_on_calling_threads();
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose, cli.quiet);
    if let Some(threads) = chosen_candle_threads {
        tracing::debug!(threads, "CANDLE_NUM_THREADS is set: candle's element-wise pool is left as chosen");
    }
    for (param, value) in clause_infer::runtime::keep_freed_memory() {
        tracing::debug!(param, value, "mallopt refused a setting");
    }
    quiet_about_caught_parquet_panics();
    let mut stdout = std::io::stdout().lock();
    let result = commands::run(cli.command, &mut stdout).and_then(|()| Ok(stdout.flush()?));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let mut message = format!("error: {err}");
            for cause in err.chain().skip(1) {
                message.push_str(&format!("\n  caused by: {cause}"));
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// polars-parquet panics on some corrupt files; clause-data catches the
/// panic and reports the file as corrupt (`CorruptParquet`), so its message
/// need not be printed as well. Any other panic is printed as usual.
fn quiet_about_caught_parquet_panics() {
    let print = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !clause_data::table::is_parquet_reader_panic(info) {
            print(info);
        }
    }));
}

/// A reader piping into `head` closes stdout early; that is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn init_tracing(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLAUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only on a terminal: a log file or a test reading stderr wants
    // plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    // Timestamps help a reader of progress logs (-v), not of a warning.
    if verbose == 0 {
        builder.without_time().init();
    } else {
        builder.init();
    }
}
