//! End-to-end tests of the `clause` binary, in the style of ripgrep's: one
//! test binary, a small harness in `util`, one module per area.

mod util;

mod bad_input;
mod bad_input_cli;
mod cross_validation;
mod dataset;
mod previous_release;
mod review;
mod segment;
mod serve;
mod train;
