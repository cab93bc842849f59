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
//! - ASSD = the mean of both lists joined, so a larger surface weighs more. MedPy 0.5.2 computes
//!   it this way; some older MedPy releases averaged the two directed means, which is why both
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
            // Mean first, in surface order; the percentile sorts the list.
            let assd = mean(&joined);
            MaskMetrics {
                dice: 2.0 * inter / sum,
                jaccard: inter / (sum - inter),
                hd: Some(hd),
                hd95: Some(percentile(&mut joined, 95.0)),
                assd: Some(assd),
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

/// Whether a lower value of the named metric (`scar_dice`, `scar_edema_hd95`, …) is better:
/// distances, unlike overlaps.
pub fn lower_is_better(metric: &str) -> bool {
    ["hd", "hd95", "assd", "asd"]
        .iter()
        .any(|d| metric.ends_with(&format!("_{d}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array2, Array3, ArrayD, Axis};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-12)
    }

    /// A 3×3 square and the same square one column to the right, spacing 2 mm (rows) × 3 mm
    /// (columns). Intersection 6 of 9 + 9 voxels: Dice 2/3, Jaccard 1/2. Each surface is the
    /// 8-voxel ring; from the first ring to the second, three corner-side voxels are 3 mm away
    /// (one column), the middle voxel of the far side 2 mm (one row, to a corner of the other
    /// ring), four voxels 0: sum 11 each way. HD 3, HD95 3, ASSD 22/16 (values checked with
    /// MedPy 0.5.2).
    #[test]
    fn hand_computed_square_pair() {
        let mut p = Array2::from_elem((6, 6), false);
        p.slice_mut(s![1..4, 1..4]).fill(true);
        let mut g = Array2::from_elem((6, 6), false);
        g.slice_mut(s![1..4, 2..5]).fill(true);
        let m = compare_masks(p.view().into_dyn(), g.view().into_dyn(), &[2.0, 3.0]);
        assert!((m.dice - 2.0 / 3.0).abs() < 1e-15 && (m.jaccard - 0.5).abs() < 1e-15);
        assert!(close(m.hd, 3.0) && close(m.hd95, 3.0), "{m:?}");
        assert!(close(m.assd, 22.0 / 16.0), "{m:?}");
        assert!(close(m.asd_pred_to_gt, 11.0 / 8.0) && close(m.asd_gt_to_pred, 11.0 / 8.0));
        assert_eq!(
            (m.pred_voxels, m.gt_voxels, m.intersection_voxels),
            (9, 9, 6)
        );
    }

    /// Single voxels two slices apart with 14 mm slices: no overlap, every distance 28 mm.
    #[test]
    fn hand_computed_3d_single_voxels() {
        let mut p = Array3::from_elem((3, 3, 3), false);
        let mut g = p.clone();
        p[[1, 1, 0]] = true;
        g[[1, 1, 2]] = true;
        let m = compare_masks(p.view().into_dyn(), g.view().into_dyn(), &[1.0, 1.0, 14.0]);
        assert_eq!((m.dice, m.jaccard), (0.0, 0.0));
        for d in [m.hd, m.hd95, m.assd, m.asd_pred_to_gt, m.asd_gt_to_pred] {
            assert!(close(d, 28.0), "{m:?}");
        }
    }

    #[test]
    fn empty_mask_policy() {
        let empty = ArrayD::from_elem(vec![4, 4, 2], false);
        let mut one = empty.clone();
        one[[1, 1, 1]] = true;

        let both = compare_masks(empty.view(), empty.view(), &[1.0; 3]);
        assert_eq!((both.dice, both.jaccard), (1.0, 1.0));
        assert_eq!(
            (both.hd, both.hd95, both.assd),
            (Some(0.0), Some(0.0), Some(0.0))
        );
        assert!(both.pred_empty && both.gt_empty && !both.one_empty());

        for (p, g) in [(&empty, &one), (&one, &empty)] {
            let m = compare_masks(p.view(), g.view(), &[1.0; 3]);
            assert_eq!((m.dice, m.jaccard), (0.0, 0.0));
            assert_eq!((m.hd, m.hd95, m.assd), (None, None, None));
            assert_eq!((m.asd_pred_to_gt, m.asd_gt_to_pred), (None, None));
            assert!(m.one_empty());
        }
    }

    #[test]
    fn percentile_interpolates_linearly_to_numpys_last_bit() {
        // Expected values are `repr(np.percentile(v, 95))`, NumPy 2.
        assert_eq!(
            percentile(&mut [4.0, 1.0, 3.0, 2.0], 95.0),
            3.8499999999999996
        );
        assert_eq!(
            percentile(&mut [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 95.0),
            6.699999999999999
        );
        assert_eq!(
            percentile(&mut [0.3, 1.7, 2.2, 9.1, 4.4], 95.0),
            8.159999999999998
        );
        assert_eq!(percentile(&mut [7.0], 95.0), 7.0);
        assert_eq!(percentile(&mut [1.0, 2.0, 3.0], 50.0), 2.0);
    }

    fn blob(shape: [usize; 3], margin: usize, rng: &mut ChaCha8Rng) -> Array3<bool> {
        Array3::from_shape_fn(shape, |(x, y, z)| {
            let inside = [x, y, z]
                .iter()
                .zip(shape)
                .all(|(&i, n)| i >= margin && i + margin < n);
            inside && rng.random_bool(0.35)
        })
    }

    #[test]
    fn properties_on_random_masks() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let spacing = [0.8, 1.3, 10.0];
        for _ in 0..40 {
            let a = blob([14, 12, 8], 3, &mut rng);
            let b = blob([14, 12, 8], 3, &mut rng);
            let ab = compare_masks(a.view().into_dyn(), b.view().into_dyn(), &spacing);
            let ba = compare_masks(b.view().into_dyn(), a.view().into_dyn(), &spacing);
            assert_eq!(ab.dice, ba.dice);
            assert_eq!(ab.hd, ba.hd);
            assert!((0.0..=1.0).contains(&ab.dice) && (0.0..=1.0).contains(&ab.jaccard));
            let (hd, hd95, assd) = (ab.hd.unwrap(), ab.hd95.unwrap(), ab.assd.unwrap());
            assert!(
                hd >= hd95 && hd95 >= 0.0 && assd >= 0.0 && hd >= assd,
                "{ab:?}"
            );
            let self_m = compare_masks(a.view().into_dyn(), a.view().into_dyn(), &spacing);
            assert_eq!((self_m.dice, self_m.hd), (1.0, Some(0.0)));

            // Translating a mask by k voxels along an axis moves its extreme surface voxel k
            // voxels past every surface voxel of the original: HD = k × spacing.
            for (axis, k) in [(0usize, 1usize), (0, 3), (1, 2), (2, 1), (2, 3)] {
                let mut moved = Array3::from_elem(a.raw_dim(), false);
                let n = a.len_of(Axis(axis));
                moved
                    .slice_axis_mut(Axis(axis), (k..n).into())
                    .assign(&a.slice_axis(Axis(axis), (0..n - k).into()));
                let m = compare_masks(a.view().into_dyn(), moved.view().into_dyn(), &spacing);
                let want = k as f64 * spacing[axis];
                assert!(
                    close(m.hd, want),
                    "axis {axis}, k {k}: {:?} vs {want}",
                    m.hd
                );
            }
        }
    }
}
