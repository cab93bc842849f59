//! The networks of AWSnet as burn `Module`s, generic over the backend so one code path serves the
//! CPU and CUDA: U-Net building blocks, the pixel-wise attention module (PAM), the U-Net with
//! optional PAM gates and deep-supervision heads (the ASAN backbone), and the two-stage CASN.
//!
//! Nothing here reads files or knows about training; configs derive burn's `Config` so they can
//! be saved as JSON beside every checkpoint.

pub mod asan;
pub mod blocks;
pub mod casn;
pub mod cat_op;
pub mod conv_op;
pub mod fast_ops;
pub mod flex_bridge;
pub mod gate_op;
pub mod norm_op;
pub mod pam;
pub mod unet;
