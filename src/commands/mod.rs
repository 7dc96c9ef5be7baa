//! One module per subcommand; each writes its results to the given writer.

mod dataset;
mod segment;
mod train;

use std::io::Write;

use crate::cli::{Command, DatasetCommand};

/// Run a parsed command.
pub fn run(command: Command, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        Command::Segment(args) => segment::run(&args, out),
        Command::Dataset(DatasetCommand::Build(args)) => dataset::build(&args, out),
        Command::Dataset(DatasetCommand::Stats(args)) => dataset::stats(&args, out),
        Command::Train(args) => train::run(&args, out),
    }
}
