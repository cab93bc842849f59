//! The binary's command handlers beyond the data commands: each turns parsed arguments into
//! library calls and prints or writes the result. No metric or statistic is computed here.

pub mod diagnose;
pub mod eval;
pub mod output;
pub mod predict;
pub mod report;
pub mod run;
pub mod slurm;
pub mod stats;
pub mod table;
pub mod task;
pub mod train;
pub mod vote;

use std::path::{Path, PathBuf};

/// A results file given as `NAME=FILE` or `FILE`; an existing file whose name holds `=` is taken
/// as a file.
pub fn split_named(arg: &str) -> (Option<&str>, PathBuf) {
    match arg.split_once('=') {
        Some((name, file)) if !name.is_empty() && !Path::new(arg).exists() => {
            (Some(name), PathBuf::from(file))
        }
        _ => (None, PathBuf::from(arg)),
    }
}
