//! `awsnet eval`: read each case's prediction and reference, check they describe the same grid,
//! and compute every metric for every target.

use std::path::Path;

use ndarray::{Array3, ArrayView3};
use rayon::prelude::*;

use super::metrics::{compare_masks, MaskMetrics};
use crate::data::inspect::affine;
use crate::data::labels::{codes_from_values, Target};
use crate::data::matching::{pair_cases, CasePair};
use crate::data::nifti_read::{into_volume3, read_nifti, same_spacing, spacing3};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// Relative tolerance on affine entries before prediction and reference count as placed
/// differently.
const AFFINE_TOLERANCE_MM: f64 = 1e-3;

/// The targets `awsnet eval` reports unless told otherwise.
pub const DEFAULT_TARGETS: [Target; 4] = [Target::Scar, Target::ScarEdema, Target::Myo, Target::Lv];

/// Every metric of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseEvaluation {
    pub case: String,
    pub prediction_file: String,
    pub reference_file: String,
    /// The reference's voxel spacing, mm, `[x, y, z]`.
    pub spacing: [f64; 3],
    /// One entry per evaluated target, in the order asked for.
    pub targets: Vec<(Target, MaskMetrics)>,
}

/// Evaluate every case of `pred_dir` against `gt_dir`. Cases run in parallel; the result is in
/// case-id order and does not depend on the number of threads. On any bad case nothing is
/// returned: the first problem in case order is the error.
pub fn evaluate_dirs(
    pred_dir: &Path,
    gt_dir: &Path,
    targets: &[Target],
    progress: &dyn Progress,
) -> Result<Vec<CaseEvaluation>> {
    if targets.is_empty() {
        return Err(Error::invalid("--targets", "no target given"));
    }
    if let Some(t) = targets
        .iter()
        .enumerate()
        .find_map(|(i, t)| targets[..i].contains(t).then_some(t))
    {
        return Err(Error::invalid("--targets", format!("{t} is listed twice")));
    }
    let pairs = pair_cases(pred_dir, gt_dir)?;
    evaluate_cases(&pairs, targets, progress)
}

/// Evaluate each pair of prediction and reference: what `awsnet eval` and a grid's evaluate
/// task both run. Cases run in parallel; the result is in the pairs' order and does not depend
/// on the number of threads. On any bad case nothing is returned: the first problem in that
/// order is the error.
pub fn evaluate_cases(
    pairs: &[CasePair],
    targets: &[Target],
    progress: &dyn Progress,
) -> Result<Vec<CaseEvaluation>> {
    progress.set_total(pairs.len() as u64);
    let results: Vec<Result<CaseEvaluation>> = pairs
        .par_iter()
        .map(|pair| {
            let result = evaluate_pair(pair, targets);
            progress.advance(1);
            result
        })
        .collect();
    results.into_iter().collect()
}

/// Evaluate one case.
pub fn evaluate_pair(pair: &CasePair, targets: &[Target]) -> Result<CaseEvaluation> {
    let pred = LabelVolume::read(&pair.case, "prediction", &pair.prediction)?;
    let gt = LabelVolume::read(&pair.case, "reference", &pair.reference)?;
    check_same_grid(&pair.case, &pred, &gt)?;
    let targets = targets
        .iter()
        .map(|&t| {
            (
                t,
                evaluate_target(pred.codes.view(), gt.codes.view(), t, gt.spacing),
            )
        })
        .collect();
    Ok(CaseEvaluation {
        case: pair.case.clone(),
        prediction_file: pair.prediction.display().to_string(),
        reference_file: pair.reference.display().to_string(),
        spacing: gt.spacing,
        targets,
    })
}

/// Metrics of one target of a case, from two MyoPS-coded volumes of the same shape.
///
/// A volume of one slice is a 2-D image and is measured as one: in 3-D every voxel of a single
/// slice touches the array's edge along z, so the whole mask would count as surface and the
/// distances would run between regions instead of contours.
pub fn evaluate_target(
    pred: ArrayView3<'_, u16>,
    gt: ArrayView3<'_, u16>,
    target: Target,
    spacing: [f64; 3],
) -> MaskMetrics {
    let p = pred.mapv(|c| target.contains(c)).into_dyn();
    let g = gt.mapv(|c| target.contains(c)).into_dyn();
    if pred.dim().2 == 1 {
        let flat = |m: &ndarray::ArrayD<bool>| m.index_axis(ndarray::Axis(2), 0).to_owned();
        return compare_masks(flat(&p).view(), flat(&g).view(), &spacing[..2]);
    }
    compare_masks(p.view(), g.view(), &spacing)
}

/// A label volume as MyoPS codes in standard layout, with where it came from.
struct LabelVolume<'a> {
    role: &'static str,
    path: &'a Path,
    codes: Array3<u16>,
    spacing: [f64; 3],
    /// Voxel-to-world matrix: where the voxels lie in the scanner.
    affine: [[f64; 4]; 4],
}

impl<'a> LabelVolume<'a> {
    fn read(case: &str, role: &'static str, path: &'a Path) -> Result<Self> {
        let problem = |p: String| Error::case(case, format!("{role} ({}) {p}", path.display()));
        let volume = read_nifti(path).map_err(|e| Error::case(case, format!("{role}: {e}")))?;
        let spacing = spacing3(&volume.header);
        let (_, affine) = affine(&volume.header);
        let shape = volume.data.shape().to_vec();
        let values = into_volume3(volume.data).ok_or_else(|| {
            problem(format!(
                "has shape {shape:?}; a label map must be a 3-D volume [x, y, slices]"
            ))
        })?;
        let codes = codes_from_values(&values).map_err(problem)?;
        Ok(LabelVolume {
            role,
            path,
            codes: codes.as_standard_layout().into_owned(),
            spacing,
            affine,
        })
    }

    fn describe(&self) -> String {
        format!("{} {}", self.role, self.path.display())
    }
}

fn check_same_grid(case: &str, pred: &LabelVolume<'_>, gt: &LabelVolume<'_>) -> Result<()> {
    if pred.codes.shape() != gt.codes.shape() {
        return Err(Error::case(
            case,
            format!(
                "shapes differ: {} is {:?}, {} is {:?}; predictions must be on the reference's grid",
                pred.describe(),
                pred.codes.shape(),
                gt.describe(),
                gt.codes.shape()
            ),
        ));
    }
    // The same tolerance `awsnet cases` applies between a case's sequences.
    if !same_spacing(pred.spacing, gt.spacing) {
        return Err(Error::case(
            case,
            format!(
                "voxel spacing differs: {} has {:?} mm, {} has {:?} mm",
                pred.describe(),
                pred.spacing,
                gt.describe(),
                gt.spacing
            ),
        ));
    }
    // Voxel-wise metrics are right whenever the grids match; a different placement in the
    // scanner usually means a prediction saved with a flipped or stripped header, which is worth
    // a look but not a refusal (several tools write sloppy headers).
    let moved = pred
        .affine
        .iter()
        .flatten()
        .zip(gt.affine.iter().flatten())
        .any(|(a, b)| (a - b).abs() > AFFINE_TOLERANCE_MM * a.abs().max(b.abs()).max(1.0));
    if moved {
        tracing::warn!(
            "case {case}: {} and {} place their voxels differently in space (affines differ); \
             metrics compare voxel to voxel",
            pred.describe(),
            gt.describe()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::s;

    /// A single slice is measured as a 2-D image: contours, not whole regions, are the surface.
    #[test]
    fn single_slice_volumes_are_measured_in_2d() {
        let mut pred = Array3::<u16>::zeros((7, 7, 1));
        pred.slice_mut(s![1..6, 1..6, ..]).fill(2221);
        let mut gt = Array3::<u16>::zeros((7, 7, 1));
        gt.slice_mut(s![2..5, 2..5, ..]).fill(2221);
        let spacing = [0.5, 0.5, 8.0];
        let got = evaluate_target(pred.view(), gt.view(), Target::Scar, spacing);

        let flat = |v: &Array3<u16>| v.slice(s![.., .., 0]).mapv(|c| c == 2221).into_dyn();
        let in_2d = compare_masks(flat(&pred).view(), flat(&gt).view(), &spacing[..2]);
        assert_eq!(got, in_2d);
        let as_3d = compare_masks(
            pred.mapv(|c| c == 2221).into_dyn().view(),
            gt.mapv(|c| c == 2221).into_dyn().view(),
            &spacing,
        );
        // In 3-D the inner square lies inside the outer one, so its whole area sits at distance 0.
        assert!(
            as_3d.assd.unwrap() < in_2d.assd.unwrap(),
            "{as_3d:?} vs {in_2d:?}"
        );
        // The inner ring is one pixel from the outer ring along rows and columns.
        assert!(
            (in_2d.asd_gt_to_pred.unwrap() - 0.5).abs() < 1e-12,
            "{in_2d:?}"
        );
    }
}
