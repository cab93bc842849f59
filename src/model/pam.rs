//! The pixel-wise attention module (PAM, §3.2, Eq. 10–11).
//!
//! On every skip connection, a per-pixel scalar gate is computed from the encoder map d and the
//! up-sampled decoder map u at the same resolution:
//! `α = σ(BN(ψ(ReLU(W_d·d + W_u·u + b₁))) + b₂)`, with W_d, W_u and ψ 1×1 convolutions (ψ to one
//! channel), and the skip is replaced by `α ⊙ d`. Unlike the original attention U-Net, the
//! encoder path is not down-sampled first: both maps already share the resolution. The
//! intermediate width is half the skip's channels, as in the released code.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::conv_op::conv1x1;
use super::gate_op::gate_product;
use super::norm_op::batch_norm_act;

#[derive(Module, Debug)]
pub struct Pam<B: Backend> {
    /// W_d: no bias (b₁ lives in W_u).
    pub(super) skip_proj: Conv2d<B>,
    /// W_u with bias b₁.
    pub(super) up_proj: Conv2d<B>,
    /// ψ with bias b₂.
    pub(super) psi: Conv2d<B>,
    norm: BatchNorm<B>,
}

impl<B: Backend> Pam<B> {
    /// A gate for a skip of `skip_channels` and a decoder map of `up_channels`.
    pub fn new(skip_channels: usize, up_channels: usize, device: &B::Device) -> Self {
        let inner = (skip_channels / 2).max(1);
        Pam {
            skip_proj: Conv2dConfig::new([skip_channels, inner], [1, 1])
                .with_bias(false)
                .init(device),
            up_proj: Conv2dConfig::new([up_channels, inner], [1, 1]).init(device),
            psi: Conv2dConfig::new([inner, 1], [1, 1]).init(device),
            norm: BatchNormConfig::new(1).init(device),
        }
    }

    /// The gate α, `[batch, 1, h, w]`, each value in (0, 1).
    pub fn gate(&self, skip: Tensor<B, 4>, up: Tensor<B, 4>) -> Tensor<B, 4> {
        let joint = relu(conv1x1(&self.skip_proj, skip) + conv1x1(&self.up_proj, up));
        sigmoid(batch_norm_act(&self.norm, conv1x1(&self.psi, joint), false))
    }

    /// The attended skip α ⊙ d.
    pub fn forward(&self, skip: Tensor<B, 4>, up: Tensor<B, 4>) -> Tensor<B, 4> {
        let alpha = self.gate(skip.clone(), up);
        gate_product(skip, alpha)
    }
}
