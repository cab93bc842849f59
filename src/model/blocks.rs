//! The U-Net's building blocks, as in the released AWSnet code: a double convolution block and a
//! nearest-neighbour up-sampling convolution.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::backend::Backend;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::Tensor;

use super::conv_op::conv3x3_same;
use super::norm_op::batch_norm_act;

/// A 3×3 convolution with "same" padding followed by batch normalisation.
#[derive(Module, Debug)]
pub struct ConvBn<B: Backend> {
    conv: Conv2d<B>,
    norm: BatchNorm<B>,
}

impl<B: Backend> ConvBn<B> {
    pub fn new(in_channels: usize, out_channels: usize, device: &B::Device) -> Self {
        ConvBn {
            // No bias: the batch normalisation that follows subtracts any per-channel constant,
            // so a bias would change nothing but cost a gradient.
            conv: Conv2dConfig::new([in_channels, out_channels], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .with_bias(false)
                .init(device),
            norm: BatchNormConfig::new(out_channels).init(device),
        }
    }

    /// Conv → BN → ReLU.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        batch_norm_act(&self.norm, conv3x3_same(x, self.conv.weight.val()), true)
    }
}

/// (Conv3×3 → BN → ReLU) × 2.
#[derive(Module, Debug)]
pub struct DoubleConv<B: Backend> {
    first: ConvBn<B>,
    second: ConvBn<B>,
}

impl<B: Backend> DoubleConv<B> {
    pub fn new(in_channels: usize, out_channels: usize, device: &B::Device) -> Self {
        DoubleConv {
            first: ConvBn::new(in_channels, out_channels, device),
            second: ConvBn::new(out_channels, out_channels, device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.second.forward(self.first.forward(x))
    }
}

/// Nearest-neighbour up-sampling ×2 → Conv3×3 → BN → ReLU.
#[derive(Module, Debug)]
pub struct UpConv<B: Backend> {
    conv: ConvBn<B>,
}

impl<B: Backend> UpConv<B> {
    pub fn new(in_channels: usize, out_channels: usize, device: &B::Device) -> Self {
        UpConv {
            conv: ConvBn::new(in_channels, out_channels, device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, _, h, w] = x.dims();
        let up = interpolate(
            x,
            [2 * h, 2 * w],
            InterpolateOptions::new(InterpolateMode::Nearest),
        );
        self.conv.forward(up)
    }
}
