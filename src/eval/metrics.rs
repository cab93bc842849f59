//! Overlap and surface-distance metrics between a predicted and a reference binary mask.
//!
//! Definitions (MedPy's `medpy.metric.binary`, the reference most segmentation papers use):
//!
//! - Dice = 2|P∩G| / (|P| + |G|), Jaccard = |P∩G| / |P∪G|, over voxels.
//! - Surfaces and distances as in [`super::surface`]: surface = mask XOR its face-connected
//!   erosion (outside the array is background); exact Euclidean distances between voxel centres
//!   in millimetres.
//! - The directed distances P→G are, for every surface voxel of P, the distance to the nearest
//!   surface voxel of G; G→P likewise.
//! - HD = the larger of the two directed maxima.
//! - HD95 = the 95th percentile, linearly interpolated (NumPy's default), of both directed lists
//!   joined.
//! - ASSD = the mean of both lists joined, so a larger surface weighs more. MedPy ≥ 0.5 computes
//!   it this way; older MedPy releases averaged the two directed means, which is why both
//!   directed means (`asd_pred_to_gt`, `asd_gt_to_pred`) are reported as well.
//!
//! Empty masks, which MedPy refuses:
//! - both empty: Dice 1, Jaccard 1, every distance 0 — the prediction is right;
//! - exactly one empty: Dice 0, Jaccard 0, every distance `None` (JSON `null`) — no finite
//!   distance exists, and any stand-in (the image diagonal, 373 mm, …) would dominate a mean.
//!
//! The flags `pred_empty` and `gt_empty` record either case so summaries can say what they
//! left out.

use ndarray::ArrayViewD;
use serde::{Deserialize, Serialize};

use super::surface::directed_surface_distances;

/// Every metric of one prediction against its reference for one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaskMetrics {
    pub dice: f64,
    pub jaccard: f64,
    /// Hausdorff distance, mm.
    pub hd: Option<f64>,
    /// 95th-percentile Hausdorff distance, mm.
    pub hd95: Option<f64>,
    /// Average symmetric surface distance, mm.
    pub assd: Option<f64>,
    /// Mean distance from the prediction's surface to the reference's, mm.
    pub asd_pred_to_gt: Option<f64>,
    /// Mean distance from the reference's surface to the prediction's, mm.
    pub asd_gt_to_pred: Option<f64>,
    pub pred_voxels: u64,
    pub gt_voxels: u64,
    pub intersection_voxels: u64,
    pub pred_empty: bool,
    pub gt_empty: bool,
}

impl MaskMetrics {
    /// The metrics a summary aggregates, by name, in table order.
    pub const NAMES: [&'static str; 7] = [
        "dice",
        "jaccard",
        "hd",
        "hd95",
        "assd",
        "asd_pred_to_gt",
        "asd_gt_to_pred",
    ];

    /// A metric by its name in [`Self::NAMES`]; `None` for an unknown name, `Some(None)` for a
    /// distance that does not exist for this pair.
    pub fn get(&self, name: &str) -> Option<Option<f64>> {
        Some(match name {
            "dice" => Some(self.dice),
            "jaccard" => Some(self.jaccard),
            "hd" => self.hd,
            "hd95" => self.hd95,
            "assd" => self.assd,
            "asd_pred_to_gt" => self.asd_pred_to_gt,
            "asd_gt_to_pred" => self.asd_gt_to_pred,
            _ => return None,
        })
    }

    /// Whether the distances are undefined because exactly one mask is empty.
    pub fn one_empty(&self) -> bool {
        self.pred_empty != self.gt_empty
    }
}

/// Compare `pred` with `gt` (same shape) on a grid with `spacing` (mm per axis).
pub fn compare_masks(
    pred: ArrayViewD<'_, bool>,
    gt: ArrayViewD<'_, bool>,
    spacing: &[f64],
) -> MaskMetrics {
    assert_eq!(pred.shape(), gt.shape(), "masks must share a shape");
    let (mut pred_voxels, mut gt_voxels, mut intersection_voxels) = (0u64, 0u64, 0u64);
    ndarray::Zip::from(&pred).and(&gt).for_each(|&p, &g| {
        pred_voxels += u64::from(p);
        gt_voxels += u64::from(g);
        intersection_voxels += u64::from(p && g);
    });
    let (pred_empty, gt_empty) = (pred_voxels == 0, gt_voxels == 0);
    let base = MaskMetrics {
        dice: 0.0,
        jaccard: 0.0,
        hd: None,
        hd95: None,
        assd: None,
        asd_pred_to_gt: None,
        asd_gt_to_pred: None,
        pred_voxels,
        gt_voxels,
        intersection_voxels,
        pred_empty,
        gt_empty,
    };
    match (pred_empty, gt_empty) {
        (true, true) => MaskMetrics {
            dice: 1.0,
            jaccard: 1.0,
            hd: Some(0.0),
            hd95: Some(0.0),
            assd: Some(0.0),
            asd_pred_to_gt: Some(0.0),
            asd_gt_to_pred: Some(0.0),
            ..base
        },
        (true, false) | (false, true) => base,
        (false, false) => {
            let sum = (pred_voxels + gt_voxels) as f64;
            let inter = intersection_voxels as f64;
            let (to_gt, to_pred) = directed_surface_distances(pred, gt, spacing);
            let hd = max(&to_gt).max(max(&to_pred));
            let mut joined = [to_gt.as_slice(), to_pred.as_slice()].concat();
            MaskMetrics {
                dice: 2.0 * inter / sum,
                jaccard: inter / (sum - inter),
                hd: Some(hd),
                hd95: Some(percentile(&mut joined, 95.0)),
                assd: Some(mean(&joined)),
                asd_pred_to_gt: Some(mean(&to_gt)),
                asd_gt_to_pred: Some(mean(&to_pred)),
                ..base
            }
        }
    }
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// The `q`-th percentile with linear interpolation between order statistics (NumPy's default
/// `method="linear"`). Reorders `values`; 0 for an empty list.
pub fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable_by(f64::total_cmp);
    let pos = q / 100.0 * (values.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b, t) = (values[lo], values[hi], pos - lo as f64);
    // NumPy interpolates from the nearer end, which decides the last bit of the result.
    if t >= 0.5 {
        b - (b - a) * (1.0 - t)
    } else {
        a + (b - a) * t
    }
}
