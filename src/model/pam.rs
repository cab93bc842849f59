//! The pixel-wise attention module (PAM, §3.2, Eq. 10–11).
//!
//! On every skip connection, a per-pixel scalar gate is computed from the encoder map d and the
//! up-sampled decoder map u at the same resolution:
//! `α = σ(BN(ψ(ReLU(W_d·d + W_u·u + b₁))) + b₂)`, with W_d, W_u and ψ 1×1 convolutions (ψ to one
//! channel), and the skip is replaced by `α ⊙ d`. Unlike the original attention U-Net, the
//! encoder path is not down-sampled first: both maps already share the resolution.
//!
//! Eq. 11 as printed multiplies the gate into u, the decoder map (`û = α · u`), but the text
//! around it (and Fig. 2) has the gate prune the skip connection's responses before the
//! concatenation, as in the attention U-Net PAM derives from; the gate multiplies d here.
//!
//! Eq. 10 leaves the inner width of W_d and W_u open. By default it is half the skip's
//! channels (128/64/32/16 at base 32, deepest to finest). The authors' released code uses
//! 128/64/32/32 — half the skip's channels but at least the base filters — and normalises both
//! projections (BN after W_d and after W_u); [`PamWidth::Released`] builds that.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::conv_op::conv1x1;
use super::gate_op::gate_product;
use super::norm_op::batch_norm_act;

/// How wide a gate's projections are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PamWidth {
    /// Half the skip's channels; no normalisation of the projections (Eq. 10 as written).
    Half,
    /// As released: half the skip's channels but at least `base`, BN after each projection.
    Released { base: usize },
}

#[derive(Module, Debug)]
pub struct Pam<B: Backend> {
    /// W_d: no bias (b₁ lives in W_u).
    pub(super) skip_proj: Conv2d<B>,
    /// W_u with bias b₁.
    pub(super) up_proj: Conv2d<B>,
    /// ψ with bias b₂.
    pub(super) psi: Conv2d<B>,
    norm: BatchNorm<B>,
    /// BN after W_d and after W_u ([`PamWidth::Released`] only).
    projection_norms: Option<(BatchNorm<B>, BatchNorm<B>)>,
}

impl<B: Backend> Pam<B> {
    /// A gate for a skip of `skip_channels` and a decoder map of `up_channels`.
    pub fn new(
        skip_channels: usize,
        up_channels: usize,
        width: PamWidth,
        device: &B::Device,
    ) -> Self {
        let half = (skip_channels / 2).max(1);
        let inner = match width {
            PamWidth::Half => half,
            PamWidth::Released { base } => half.max(base),
        };
        Pam {
            skip_proj: Conv2dConfig::new([skip_channels, inner], [1, 1])
                .with_bias(false)
                .init(device),
            up_proj: Conv2dConfig::new([up_channels, inner], [1, 1]).init(device),
            psi: Conv2dConfig::new([inner, 1], [1, 1]).init(device),
            norm: BatchNormConfig::new(1).init(device),
            projection_norms: matches!(width, PamWidth::Released { .. }).then(|| {
                (
                    BatchNormConfig::new(inner).init(device),
                    BatchNormConfig::new(inner).init(device),
                )
            }),
        }
    }

    /// The gate α (Eq. 10), `[batch, 1, h, w]`, each value in (0, 1).
    pub fn gate(&self, skip: Tensor<B, 4>, up: Tensor<B, 4>) -> Tensor<B, 4> {
        let d = conv1x1(&self.skip_proj, skip);
        let u = conv1x1(&self.up_proj, up);
        let joint = match &self.projection_norms {
            Some((dn, un)) => relu(batch_norm_act(dn, d, false) + batch_norm_act(un, u, false)),
            None => relu(d + u),
        };
        sigmoid(batch_norm_act(&self.norm, conv1x1(&self.psi, joint), false))
    }

    /// The attended skip α ⊙ d (Eq. 11).
    pub fn forward(&self, skip: Tensor<B, 4>, up: Tensor<B, 4>) -> Tensor<B, 4> {
        let alpha = self.gate(skip.clone(), up);
        gate_product(skip, alpha)
    }
}
