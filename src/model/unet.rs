//! The U-Net of AWSnet: four pooling levels, filters `base × [1, 2, 4, 8, 16]`, optional PAM gates
//! on the skips and optional deep-supervision heads. With both off it is the paper's baseline
//! ("Base"); ASAN switches both on (see [`super::asan`]); the ablations (PAM, PAM+DS, …) are
//! this one code path with other flags.
//!
//! Deep supervision (§3.2): 1×1 heads on the decoder outputs at 1/8, 1/4, 1/2 and full
//! resolution, each up-sampled bilinearly to the input size (the paper says only bilinear;
//! corners are aligned here). The prediction is the full-resolution head.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::backend::Backend;
use burn::tensor::module::{interpolate, max_pool2d};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::Tensor;

use super::blocks::{DoubleConv, UpConv};
use super::cat_op::cat_channels;
use super::conv_op::conv1x1;
use super::gate_op::gate_product;
use super::pam::{Pam, PamWidth};

/// Pooling levels of the network: inputs must be multiples of 2⁴ = 16 pixels.
pub const LEVELS: usize = 4;

#[derive(Config, Debug, PartialEq)]
pub struct UNetConfig {
    pub in_channels: usize,
    /// Classes, background included.
    pub out_channels: usize,
    /// Filters of the first level; level k has `base_filters · 2ᵏ`.
    #[config(default = 32)]
    pub base_filters: usize,
    /// PAM gates on every skip connection.
    #[config(default = false)]
    pub pam: bool,
    /// The gates' inner width as the released code has it (`model::pam`): at least the base
    /// filters, BN after both projections. Off: half the skip's channels, as Eq. 10 reads.
    #[config(default = false)]
    pub pam_released: bool,
    /// Four supervision heads instead of one.
    #[config(default = false)]
    pub deep_supervision: bool,
}

/// Reads every float parameter, which makes burn draw a lazily initialised one.
struct DrawParams;

impl<B: Backend> burn::module::ModuleVisitor<B> for DrawParams {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

/// burn draws initial weights from one process-wide random stream, and parameters draw lazily,
/// on first use: two models built at once in one process would interleave their draws.
static SEEDED_INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Exclusive use of burn's process-wide random stream until the guard drops. Seeded builds take
/// it; so must any other code that seeds the stream and draws from it (tests do, and they run
/// on parallel threads), or a seeded build running meanwhile would draw other weights.
pub(crate) fn random_stream() -> std::sync::MutexGuard<'static, ()> {
    SEEDED_INIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl UNetConfig {
    /// A network whose initial weights depend on `seed` alone: the stream is seeded and every
    /// parameter drawn while no other seeded build runs in this process.
    pub fn init_seeded<B: Backend>(&self, seed: u64, device: &B::Device) -> UNet<B> {
        let _stream = random_stream();
        B::seed(device, seed);
        let model = self.init(device);
        // Reading every parameter draws the lazy ones now, in place (a clone would draw its own
        // copies and leave these for later).
        model.visit(&mut DrawParams);
        model
    }

    /// A network drawn from burn's current random stream; see [`Self::init_seeded`].
    pub fn init<B: Backend>(&self, device: &B::Device) -> UNet<B> {
        let filters: Vec<usize> = (0..=LEVELS).map(|k| self.base_filters << k).collect();
        let encoder = (0..=LEVELS)
            .map(|k| {
                let input = if k == 0 {
                    self.in_channels
                } else {
                    filters[k - 1]
                };
                DoubleConv::new(input, filters[k], device)
            })
            .collect();
        // Decoder stages run from the deepest level up: stage i rebuilds level LEVELS − 1 − i.
        let levels: Vec<usize> = (0..LEVELS).rev().collect();
        let ups = levels
            .iter()
            .map(|&k| UpConv::new(filters[k + 1], filters[k], device))
            .collect();
        let gates = if self.pam {
            levels
                .iter()
                .map(|&k| {
                    let width = if self.pam_released {
                        PamWidth::Released {
                            base: self.base_filters,
                        }
                    } else {
                        PamWidth::Half
                    };
                    Pam::new(filters[k], filters[k], width, device)
                })
                .collect()
        } else {
            Vec::new()
        };
        let decoder = levels
            .iter()
            .map(|&k| DoubleConv::new(2 * filters[k], filters[k], device))
            .collect();
        let head =
            |k: usize| Conv2dConfig::new([filters[k], self.out_channels], [1, 1]).init(device);
        let heads = if self.deep_supervision {
            levels.iter().map(|&k| head(k)).collect()
        } else {
            vec![head(0)]
        };
        UNet {
            encoder,
            ups,
            gates,
            decoder,
            heads,
        }
    }
}

#[derive(Module, Debug)]
pub struct UNet<B: Backend> {
    encoder: Vec<DoubleConv<B>>,
    ups: Vec<UpConv<B>>,
    /// One per decoder stage, or none without PAM.
    gates: Vec<Pam<B>>,
    decoder: Vec<DoubleConv<B>>,
    /// Deep supervision: at 1/8, 1/4, 1/2 and full resolution; otherwise the full one only.
    heads: Vec<Conv2d<B>>,
}

impl<B: Backend> UNet<B> {
    /// Logits of every head, coarse to fine, each `[batch, classes, h, w]` at the input size.
    /// The last is the prediction. `x` is `[batch, channels, h, w]` with h and w multiples of 16.
    pub fn forward(&self, x: Tensor<B, 4>) -> Vec<Tensor<B, 4>> {
        self.run(x, None)
    }

    /// [`Self::forward`]'s heads and the PAM gates α it applied, `[batch, 1, h_l, w_l]`,
    /// deepest first (none without PAM): what a diagnosis looks at.
    pub fn forward_with_gates(&self, x: Tensor<B, 4>) -> (Vec<Tensor<B, 4>>, Vec<Tensor<B, 4>>) {
        let mut gates = Vec::with_capacity(self.gates.len());
        let heads = self.run(x, Some(&mut gates));
        (heads, gates)
    }

    fn run(&self, x: Tensor<B, 4>, mut gates: Option<&mut Vec<Tensor<B, 4>>>) -> Vec<Tensor<B, 4>> {
        let [_, _, h, w] = x.dims();
        debug_assert!(
            h % 16 == 0 && w % 16 == 0,
            "input {h}×{w} is not a multiple of 16"
        );
        let mut skips = Vec::with_capacity(LEVELS);
        let mut x = x;
        for (k, block) in self.encoder.iter().enumerate() {
            x = block.forward(x);
            if k < LEVELS {
                skips.push(x.clone());
                x = max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], false);
            }
        }
        let mut stage_outputs = Vec::with_capacity(LEVELS);
        for (i, (up, block)) in self.ups.iter().zip(&self.decoder).enumerate() {
            let u = up.forward(x);
            let skip = skips.pop().expect("one skip per level");
            let skip = match (self.gates.get(i), gates.as_deref_mut()) {
                (Some(gate), Some(kept)) => {
                    let alpha = gate.gate(skip.clone(), u.clone());
                    kept.push(alpha.clone());
                    gate_product(skip, alpha)
                }
                (Some(gate), None) => gate.forward(skip, u.clone()),
                (None, _) => skip,
            };
            x = block.forward(cat_channels(skip, u));
            stage_outputs.push(x.clone());
        }
        let first_head = LEVELS - self.heads.len();
        self.heads
            .iter()
            .zip(&stage_outputs[first_head..])
            .map(|(head, features)| {
                let logits = conv1x1(head, features.clone());
                if logits.dims()[2] == h && logits.dims()[3] == w {
                    logits
                } else {
                    interpolate(
                        logits,
                        [h, w],
                        InterpolateOptions::new(InterpolateMode::Bilinear),
                    )
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    type B = Autodiff<Flex>;

    #[test]
    fn pam_widths_half_or_as_released() {
        let device = Default::default();
        let inner = |released: bool| {
            let net: UNet<B> = UNetConfig::new(2, 3)
                .with_pam(true)
                .with_pam_released(released)
                .init(&device);
            net.gates
                .iter()
                .map(|g| (g.psi.weight.dims()[1], g.num_params()))
                .collect::<Vec<_>>()
        };
        let (half, released) = (inner(false), inner(true));
        let widths = |w: &[(usize, usize)]| w.iter().map(|(i, _)| *i).collect::<Vec<_>>();
        assert_eq!(
            widths(&half),
            [128, 64, 32, 16],
            "base 32, deepest to finest"
        );
        assert_eq!(widths(&released), [128, 64, 32, 32]);
        // Equal widths: the released gate adds a BatchNorm after each projection (γ, β and
        // the two running statistics, per channel).
        assert_eq!(released[0].1, half[0].1 + 2 * 4 * 128);
    }

    /// A fixed input: tests in one process must not draw from burn's shared random stream
    /// while others build seeded models.
    fn input(batch: usize, channels: usize, size: usize) -> Tensor<B, 4> {
        let n = batch * channels * size * size;
        let values: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        Tensor::from_data(
            burn::tensor::TensorData::new(values, [batch, channels, size, size]),
            &Default::default(),
        )
    }

    #[test]
    fn heads_come_out_at_full_size_for_every_variant() {
        let device = Default::default();
        let table = [
            // (pam, deep supervision, heads)
            (false, false, 1),
            (true, false, 1),
            (false, true, 4),
            (true, true, 4),
        ];
        for (pam, ds, heads) in table {
            let net: UNet<B> = UNetConfig::new(2, 3)
                .with_base_filters(4)
                .with_pam(pam)
                .with_deep_supervision(ds)
                .init_seeded(1, &device);
            assert_eq!(net.gates.len(), if pam { LEVELS } else { 0 });
            let out = net.forward(input(2, 2, 32));
            assert_eq!(out.len(), heads, "pam {pam}, ds {ds}");
            for logits in out {
                assert_eq!(logits.dims(), [2, 3, 32, 32]);
            }
        }
    }

    #[test]
    fn pam_gates_receive_gradients() {
        let device = Default::default();
        let net: UNet<B> = UNetConfig::new(2, 3)
            .with_base_filters(4)
            .with_pam(true)
            .with_deep_supervision(true)
            .init_seeded(2, &device);
        let loss = net
            .forward(input(2, 2, 32))
            .into_iter()
            .map(|t| t.powf_scalar(2.0).mean())
            .reduce(|a, b| a + b)
            .unwrap();
        let grads = loss.backward();
        for (i, gate) in net.gates.iter().enumerate() {
            for (name, grad) in [
                ("psi", gate.psi.weight.grad(&grads)),
                ("up_proj", gate.up_proj.weight.grad(&grads)),
                ("skip_proj", gate.skip_proj.weight.grad(&grads)),
            ] {
                let grad = grad.unwrap_or_else(|| panic!("gate {i} {name}: no gradient"));
                let norm: f32 = grad.abs().sum().into_scalar();
                assert!(
                    norm > 0.0 && norm.is_finite(),
                    "gate {i} {name}: |grad| = {norm}"
                );
            }
        }
    }
}
