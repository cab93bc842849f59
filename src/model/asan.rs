//! ASAN, the auto-weighted supervision attention network (§3.2): the U-Net of [`super::unet`]
//! with PAM on every skip and four deep-supervision heads, on the masked ROI's DE and T2 (two
//! channels). Two independent ASANs run: ASAN-S (background, myocardium, scar) and ASAN-P
//! (background, myocardium, scar+edema).

use super::unet::UNetConfig;

/// Input channels: DE and T2 (bSSFP is dropped at this stage).
pub const INPUT_CHANNELS: usize = 2;
/// Classes of either ASAN: background, myocardium, and scar (S) or scar+edema (P).
pub const CLASSES: usize = 3;

/// The paper's ASAN, or an ablation of it when `pam` or `deep_supervision` is off.
pub fn asan_config(base_filters: usize, pam: bool, deep_supervision: bool) -> UNetConfig {
    UNetConfig::new(INPUT_CHANNELS, CLASSES)
        .with_base_filters(base_filters)
        .with_pam(pam)
        .with_deep_supervision(deep_supervision)
}
