//! Which device runs the networks: the CPU (burn's `flex` backend, always built) or a CUDA GPU
//! (burn's CUDA backend, built with `--features cuda`).
//!
//! burn's CUDA backend loads the driver library lazily and, on a machine without one, panics in a
//! device thread at the first tensor operation — a panic the caller cannot catch. Choosing CUDA
//! therefore first checks that the driver library loads, and turns a missing one into a plain
//! error.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A device named on the command line: `cpu`, `cuda` or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| format!("unknown device {other:?}; use cpu, cuda or cuda:N")),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Check that CUDA can be used from this binary on this machine.
pub fn check_cuda() -> Result<()> {
    #[cfg(feature = "cuda")]
    {
        // SAFETY: loading the CUDA driver library runs its initialisers, which is what burn's
        // backend would do on first use anyway; the handle is dropped at once.
        unsafe { libloading::Library::new("libcuda.so.1") }
            .map(drop)
            .map_err(|e| Error::invalid("--device", format!("no CUDA device available: {e}")))
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(Error::invalid(
            "--device",
            "no CUDA device available: this awsnet was built without CUDA support \
             (rebuild with `cargo build --release --features cuda`)",
        ))
    }
}
