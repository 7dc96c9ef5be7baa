//! One module per subcommand; each writes its results to the given writer.

mod classify;
mod dataset;
mod diff;
mod eval;
mod report;
mod segment;
mod serve;
mod train;

use std::io::Write;

use anyhow::bail;
use candle_core::Device;

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

/// `cpu`, `cuda`, `cuda:N`; a GPU that cannot be opened falls back to the
/// CPU with a message, since a long run on the CPU beats no run.
pub fn device(spec: &str) -> anyhow::Result<Device> {
    let ordinal = match spec {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => n,
            _ => bail!("--device {other:?}: expected cpu, cuda or cuda:N"),
        },
    };
    match Device::new_cuda(ordinal) {
        Ok(device) => Ok(device),
        Err(err) => {
            eprintln!("warning: cannot use cuda:{ordinal} ({err}); running on the CPU");
            Ok(Device::Cpu)
        }
    }
}
