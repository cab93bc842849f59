//! awsnet: train, evaluate and compare AWSnet myocardial pathology segmentation models (scar and
//! edema from multi-sequence cardiac MRI), and run whole experiment grids locally or on Slurm.
//!
//! The library holds all logic; the `awsnet` binary only parses arguments, calls in here, and maps
//! errors to exit codes.

pub mod atomic;
pub mod backend;
pub mod das;
pub mod data;
pub mod engine;
pub mod error;
pub mod eval;
pub mod grid;
pub mod infer;
pub mod kernels;
pub mod memory;
pub mod model;
pub mod progress;
pub mod report;
pub mod seed;
pub mod stop;
pub mod train;

pub use error::{Error, Result};
