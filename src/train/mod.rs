//! Training: what a run is (`config`, `run_dir`: burn-free), losses, one epoch over a dataset,
//! validation, checkpoints, and the epoch-sized `steps` that `awsnet train` loops over and grid
//! tasks call one at a time. Nothing here schedules jobs.

pub mod batches;
pub mod checkpoint;
pub mod config;
pub mod deploy;
pub mod diagnose;
pub mod epoch;
pub mod export;
pub mod fused_loss;
pub mod health;
pub mod learned_alpha;
pub mod loss;
#[cfg(test)]
mod protocol_tests;
pub mod run;
pub mod run_dir;
pub mod samples;
pub mod steps;
