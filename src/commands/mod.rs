//! One module per subcommand; each writes its results to the given writer.

mod classify;
mod common;
mod cross_validate;
mod dataset;
mod diff;
mod eval;
mod probe;
mod report;
mod segment;
mod serve;
mod train;

use std::io::Write;

use crate::cli::{Command, DatasetCommand};

/// Run a parsed command.
pub fn run(command: Command, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        Command::Segment(args) => segment::run(&args, out),
        Command::Dataset(DatasetCommand::Build(args)) => dataset::build(&args, out),
        Command::Dataset(DatasetCommand::Stats(args)) => dataset::stats(&args, out),
        Command::Dataset(DatasetCommand::Annotate(args)) => dataset::annotate(&args, out),
        Command::Train(args) => train::run(&args, out),
        Command::Classify(args) => classify::run(&args, out),
        Command::Eval(args) => eval::run(&args, out),
        Command::Diff(args) => diff::run(&args, out),
        Command::Report(args) => report::run(&args, out),
        Command::Serve(args) => serve::run(&args, out),
    }
}
