//! CASN, the cascaded anatomical segmentation network (§3.1): two U-Nets of the same
//! architecture on the early fusion of C0, DE and T2 (three channels). The coarse one segments
//! the LV region on the centre-cropped slice; the fine one re-segments it on the ROI cut around
//! the coarse mask. Both are plain U-Nets (no PAM, one head) with two classes.
//!
//! The two stages are trained separately (`net: casn_coarse` and `casn_fine` in a train config,
//! see `train::samples::Network`) and chained by `infer::pipeline`, so each is a
//! [`UNet`](super::unet::UNet) built from [`stage_config`].

use super::unet::UNetConfig;

/// C0, DE and T2.
pub const INPUT_CHANNELS: usize = 3;
/// Background and LV region.
pub const CLASSES: usize = 2;

/// Either stage's network, with `base_filters` filters at the first level.
pub fn stage_config(base_filters: usize) -> UNetConfig {
    UNetConfig::new(INPUT_CHANNELS, CLASSES).with_base_filters(base_filters)
}
