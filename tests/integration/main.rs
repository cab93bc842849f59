//! The integration tests, as one binary: every test binary links the whole burn stack, so one
//! binary instead of eleven saves most of the test build on a 2-core machine.
//!
//! Each module tests one command (or one promise, like `architecture`) from the outside, by
//! running the `awsnet` binary or calling the library's public API.

mod architecture;
mod cases_cli;
mod common;
mod das_cli;
mod eval_cli;
mod grid_cli;
mod nifti_inputs;
mod phantom_cli;
mod predict_cli;
mod report_cli;
mod slurm_cli;
mod stats_cli;
mod train_cli;
mod train_overfit;
mod vote_cli;
