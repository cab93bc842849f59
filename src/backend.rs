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

/// Check that CUDA can be used from this binary on this machine, with a device `index`.
pub fn check_cuda(index: usize) -> Result<()> {
    #[cfg(feature = "cuda")]
    {
        let unavailable =
            |why: String| Error::invalid("--device", format!("no CUDA device available: {why}"));
        // SAFETY: loading the CUDA driver library and calling cuInit / cuDeviceGetCount with
        // their documented signatures is what burn's backend does on first use; the handle
        // lives until the calls return.
        unsafe {
            let lib =
                libloading::Library::new("libcuda.so.1").map_err(|e| unavailable(e.to_string()))?;
            let init: libloading::Symbol<unsafe extern "C" fn(u32) -> i32> =
                lib.get(b"cuInit\0")
                    .map_err(|e| unavailable(e.to_string()))?;
            let status = init(0);
            if status != 0 {
                return Err(unavailable(format!(
                    "cuInit failed with CUDA error {status}"
                )));
            }
            let count_fn: libloading::Symbol<unsafe extern "C" fn(*mut i32) -> i32> = lib
                .get(b"cuDeviceGetCount\0")
                .map_err(|e| unavailable(e.to_string()))?;
            let mut count = 0i32;
            let status = count_fn(&mut count);
            if status != 0 {
                return Err(unavailable(format!(
                    "cuDeviceGetCount failed with CUDA error {status}"
                )));
            }
            if index >= count.max(0) as usize {
                return Err(unavailable(format!(
                    "cuda:{index} requested, but this machine has {count} CUDA device(s)"
                )));
            }
        }
        Ok(())
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = index;
        Err(Error::invalid(
            "--device",
            "no CUDA device available: this awsnet was built without CUDA support \
             (rebuild with `cargo build --release --features cuda`)",
        ))
    }
}
