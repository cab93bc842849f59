//! CASN, the cascaded anatomical segmentation network (§3.1): two U-Nets of the same
//! architecture on the early fusion of C0, DE and T2 (three channels). The coarse one segments
//! the LV region on the centre-cropped slice; the fine one re-segments it on the ROI cut around
//! the coarse mask. Both are plain U-Nets (no PAM, one head) with two classes.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::backend::Backend;

use super::unet::{UNet, UNetConfig};

/// C0, DE and T2.
pub const INPUT_CHANNELS: usize = 3;
/// Background and LV region.
pub const CLASSES: usize = 2;

#[derive(Config, Debug, PartialEq)]
pub struct CasnConfig {
    #[config(default = 32)]
    pub base_filters: usize,
}

impl CasnConfig {
    /// The configuration both stages share.
    pub fn stage(&self) -> UNetConfig {
        UNetConfig::new(INPUT_CHANNELS, CLASSES).with_base_filters(self.base_filters)
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> Casn<B> {
        Casn {
            coarse: self.stage().init(device),
            fine: self.stage().init(device),
        }
    }
}

#[derive(Module, Debug)]
pub struct Casn<B: Backend> {
    /// On the centre-cropped slice.
    pub coarse: UNet<B>,
    /// On the ROI around the coarse mask.
    pub fine: UNet<B>,
}
