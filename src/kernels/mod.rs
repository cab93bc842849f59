//! CPU kernels for the operations burn's CPU backend runs slowly in training, written on plain
//! slices so they can be tested against their definitions without any backend. The routed ops
//! (`model::{conv_op, norm_op, gate_op, cat_op}`, `train::fused_loss`) send burn tensors here
//! when the backend is the CPU one.

pub mod batch_norm;
pub mod conv3x3;
#[cfg(target_arch = "x86_64")]
pub(crate) mod conv3x3_direct;
pub mod gate;
pub mod hybrid_loss;
pub mod matmul;
pub mod pointwise;
pub mod reduce;
