//! Ensemble majority vote (`awsnet vote`): several label volumes of one case become one.
//!
//! Each input directory holds one label volume per case; case ids follow `awsnet eval`'s rule
//! ([`crate::eval::matching`]), and every input must hold the same cases. Per case, all volumes
//! must share one grid (shape, and voxel spacing within a relative 0.1 %) and hold integer labels
//! (any codes, not only MyoPS's, within int16, the type the result is written in).
//!
//! Per voxel the result is the label most inputs predict. **Tie-break:** among the labels tied
//! for the most votes, the one predicted by the earliest input (in `--inputs` order) wins, so the
//! result never depends on label values and a best-first input order acts as a priority.
//!
//! The result takes the geometry (header, affine, spacing) of the first input's file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ndarray::Array3;
use nifti::NiftiHeader;

use crate::atomic::StagedDir;
use crate::data::matching::label_files;
use crate::data::nifti_read::{into_volume3, read_nifti, same_spacing, spacing3};
use crate::data::nifti_write::{write_f32, write_i16};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// One case's label volumes, one per input, in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseInputs {
    pub case: String,
    pub files: Vec<PathBuf>,
}

/// A voted case: its labels, how many members agree with them, and the header of the first
/// input's file, for writing.
#[derive(Debug, Clone)]
pub struct VotedCase {
    pub labels: Array3<i16>,
    /// Per voxel, the fraction of inputs whose label is the voted one: where to look first.
    pub agreement: Array3<f32>,
    pub header: NiftiHeader,
}

/// How the inputs' labels are combined per voxel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoteRule {
    /// MyoPS codes, region by region ([`nested_voxel`]): pathology a majority sees survives
    /// even when the members disagree on scar versus edema.
    #[default]
    Nested,
    /// The most frequent label ([`vote_voxel`]), for any label set.
    Plurality,
}

impl std::str::FromStr for VoteRule {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "nested" => Ok(VoteRule::Nested),
            "plurality" => Ok(VoteRule::Plurality),
            other => Err(format!(
                "unknown vote rule {other:?}; use nested or plurality"
            )),
        }
    }
}

/// The MyoPS regions, each inside the one before: LV region (blood pool and myocardium with its
/// pathology), myocardium, scar + edema, scar.
const LV_REGION: [i16; 4] = [200, 500, 1220, 2221];
const MYOCARDIUM: [i16; 3] = [200, 1220, 2221];
const PATHOLOGY: [i16; 2] = [1220, 2221];
const SCAR: [i16; 1] = [2221];
const RV: [i16; 1] = [600];
/// Every code the nested vote knows.
const MYOPS_CODES: [i16; 6] = [0, 200, 500, 600, 1220, 2221];

/// The MyoPS label of one voxel, voted region by region: the voxel is in a region when more
/// than half of the inputs put it there (exactly half: when the first input does), and the
/// regions nest, so it takes the innermost region it is in. Outside the LV region it is RV
/// blood on the same rule, else background.
///
/// Inputs 200, 2221, 1220 give 1220: all three see myocardium, two of three see pathology, one
/// sees scar. A plurality over the codes would give 200 and drop the pathology.
pub fn nested_voxel(labels: &[i16]) -> i16 {
    let in_region = |region: &[i16]| {
        let n = labels.iter().filter(|l| region.contains(l)).count();
        2 * n > labels.len() || (2 * n == labels.len() && region.contains(&labels[0]))
    };
    if !in_region(&LV_REGION) {
        return if in_region(&RV) { 600 } else { 0 };
    }
    if !in_region(&MYOCARDIUM) {
        500
    } else if !in_region(&PATHOLOGY) {
        200
    } else if !in_region(&SCAR) {
        1220
    } else {
        2221
    }
}

/// The label most of `labels` agree on; ties go to the earliest of the tied labels in `labels`.
///
/// Walking the inputs in order and replacing the winner only on a strictly larger count is what
/// makes the earliest input win a tie. Quadratic in the number of inputs, which stays small.
pub fn vote_voxel(labels: &[i16]) -> i16 {
    let mut winner = (labels[0], 0);
    for &label in labels {
        let count = labels.iter().filter(|&&l| l == label).count();
        if count > winner.1 {
            winner = (label, count);
        }
    }
    winner.0
}

/// Vote every voxel of same-shaped volumes, given in input order.
pub fn vote_volumes(volumes: &[Array3<i16>], rule: VoteRule) -> Array3<i16> {
    let vote = match rule {
        VoteRule::Nested => nested_voxel,
        VoteRule::Plurality => vote_voxel,
    };
    let mut votes = Vec::with_capacity(volumes.len());
    Array3::from_shape_fn(volumes[0].dim(), |ix| {
        votes.clear();
        votes.extend(volumes.iter().map(|v| v[ix]));
        vote(&votes)
    })
}

/// Per voxel, the fraction of `volumes` whose label is `voted`'s.
pub fn agreement(volumes: &[Array3<i16>], voted: &Array3<i16>) -> Array3<f32> {
    let n = volumes.len() as f32;
    Array3::from_shape_fn(voted.dim(), |ix| {
        volumes.iter().filter(|v| v[ix] == voted[ix]).count() as f32 / n
    })
}

/// Pair the label volumes of every input directory by case id, sorted by case id.
///
/// Fewer than two inputs, or an input lacking a case another one has, is an error; the latter
/// lists, per directory, the cases it lacks (a case voted on by fewer inputs would silently
/// change what the ensemble means).
pub fn match_inputs(inputs: &[PathBuf]) -> Result<Vec<CaseInputs>> {
    if inputs.len() < 2 {
        return Err(Error::invalid(
            "--inputs",
            format!("a vote needs at least 2 directories, got {}", inputs.len()),
        ));
    }
    let per_input = inputs
        .iter()
        .map(|dir| label_files(dir, "input"))
        .collect::<Result<Vec<_>>>()?;
    let all_cases: BTreeSet<&String> = per_input.iter().flat_map(|f| f.keys()).collect();
    let gaps: Vec<String> = inputs
        .iter()
        .zip(&per_input)
        .filter_map(|(dir, files)| {
            let lacking: Vec<&str> = all_cases
                .iter()
                .filter(|c| !files.contains_key(**c))
                .map(|c| c.as_str())
                .collect();
            (!lacking.is_empty()).then(|| format!("{} lacks {}", dir.display(), lacking.join(", ")))
        })
        .collect();
    if !gaps.is_empty() {
        return Err(Error::invalid(
            "--inputs",
            format!(
                "every input must hold the same cases: {} (case ids are file names without \
                 .nii[.gz] and a trailing _gd, _pred or _seg)",
                gaps.join("; ")
            ),
        ));
    }
    Ok(all_cases
        .into_iter()
        .map(|case| CaseInputs {
            case: case.clone(),
            files: per_input.iter().map(|f| f[case].clone()).collect(),
        })
        .collect())
}

/// Refuse an output directory that is also an input: the votes would replace or sit beside that
/// input's volumes, and a later vote would find two files for one case.
pub fn check_out_is_not_an_input(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    let Ok(out_real) = out.canonicalize() else {
        // It does not exist yet, so it is no input.
        return Ok(());
    };
    match inputs
        .iter()
        .find(|dir| dir.canonicalize().is_ok_and(|d| d == out_real))
    {
        Some(dir) => Err(Error::invalid(
            "--out",
            format!(
                "{} is also an input; write the votes to another directory",
                dir.display()
            ),
        )),
        None => Ok(()),
    }
}

/// Read and vote one case. Reading or grid errors name the file (and the case); the nested rule
/// refuses a label that is not a MyoPS code, naming the file.
pub fn vote_case(inputs: &CaseInputs, rule: VoteRule) -> Result<VotedCase> {
    let volumes = inputs
        .files
        .iter()
        .map(|file| LabelVolume::read(file))
        .collect::<Result<Vec<_>>>()?;
    let (first, rest) = volumes
        .split_first()
        .ok_or_else(|| Error::Internal(format!("case {} has no input", inputs.case)))?;
    for other in rest {
        check_same_grid(&inputs.case, first, other)?;
    }
    if rule == VoteRule::Nested {
        for v in &volumes {
            if let Some(code) = v.codes.iter().find(|c| !MYOPS_CODES.contains(c)) {
                return Err(Error::input(
                    v.path,
                    format!(
                        "holds label {code}, not a MyoPS code (0, 200, 500, 600, 1220, 2221): \
                         the nested vote needs MyoPS labels; vote other label sets with the \
                         plurality rule"
                    ),
                ));
            }
        }
    }
    let header = first.header.clone();
    let codes: Vec<Array3<i16>> = volumes.into_iter().map(|v| v.codes).collect();
    let labels = vote_volumes(&codes, rule);
    Ok(VotedCase {
        agreement: agreement(&codes, &labels),
        labels,
        header,
    })
}

/// One input's label volume of a case, as integers.
struct LabelVolume<'a> {
    path: &'a Path,
    header: NiftiHeader,
    codes: Array3<i16>,
}

impl<'a> LabelVolume<'a> {
    fn read(path: &'a Path) -> Result<Self> {
        let volume = read_nifti(path)?;
        let shape = volume.data.shape().to_vec();
        let values = into_volume3(volume.data).ok_or_else(|| {
            Error::input(
                path,
                format!("has shape {shape:?}; a label volume must be 3-D [x, y, slices]"),
            )
        })?;
        Ok(LabelVolume {
            path,
            header: volume.header,
            codes: integer_labels(&values).map_err(|problem| Error::input(path, problem))?,
        })
    }
}

/// The voxels as int16 labels, or what is wrong with the first one that is not.
fn integer_labels(values: &Array3<f64>) -> std::result::Result<Array3<i16>, String> {
    let bad = values
        .indexed_iter()
        .find(|(_, &v)| v.fract() != 0.0 || !(i16::MIN as f64..=i16::MAX as f64).contains(&v));
    if let Some(((x, y, z), &v)) = bad {
        let why = if v.is_finite() && v.fract() == 0.0 {
            "outside int16 (-32768 to 32767), the type votes are written in"
        } else {
            "not an integer label"
        };
        return Err(format!("voxel [{x}, {y}, {z}] holds {v}: {why}"));
    }
    Ok(values.mapv(|v| v as i16))
}

/// Votes are only meaningful voxel to voxel on one grid: the same shape and, within the
/// tolerance `awsnet eval` uses, the same spacing as the first input.
fn check_same_grid(case: &str, first: &LabelVolume<'_>, other: &LabelVolume<'_>) -> Result<()> {
    let describe = |v: &LabelVolume<'_>| v.path.display().to_string();
    if first.codes.shape() != other.codes.shape() {
        return Err(Error::case(
            case,
            format!(
                "shapes differ: {} is {:?}, {} is {:?}",
                describe(first),
                first.codes.shape(),
                describe(other),
                other.codes.shape()
            ),
        ));
    }
    let (a, b) = (spacing3(&first.header), spacing3(&other.header));
    if !same_spacing(a, b) {
        return Err(Error::case(
            case,
            format!(
                "voxel spacing differs: {} has {a:?} mm, {} has {b:?} mm",
                describe(first),
                describe(other)
            ),
        ));
    }
    Ok(())
}

/// Vote every case of `inputs` into `out` as `<case>_pred.nii.gz` and, with `agreement`, each
/// voxel's agreement as `<case>_agreement.nii.gz` there: what `awsnet vote` and a grid's
/// ensemble evaluation both run. Both directories appear whole or not at all (`StagedDir`);
/// returns how many cases were voted.
pub fn vote_dirs(
    inputs: &[PathBuf],
    rule: VoteRule,
    out: &Path,
    agreement: Option<&Path>,
    progress: &dyn Progress,
) -> Result<usize> {
    let cases = match_inputs(inputs)?;
    check_out_is_not_an_input(out, inputs)?;
    progress.set_total(cases.len() as u64);
    // Dropped uncommitted on any error, which removes everything staged so far.
    let mut staged = StagedDir::new(out)?;
    let mut agreed = agreement.map(StagedDir::new).transpose()?;
    for case in &cases {
        let voted = vote_case(case, rule)?;
        let name = |what: &str| format!("{}_{what}.nii.gz", case.case);
        write_i16(&staged.file(&name("pred")), &voted.labels, &voted.header)?;
        if let Some(dir) = agreed.as_mut() {
            write_f32(
                &dir.file(&name("agreement")),
                &voted.agreement,
                &voted.header,
            )?;
        }
        progress.advance(1);
    }
    staged.commit()?;
    if let Some(dir) = agreed {
        dir.commit()?;
    }
    Ok(cases.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::nifti_write::write_i16;
    use ndarray::array;

    #[test]
    fn the_majority_wins_and_ties_go_to_the_earliest_input() {
        // (situation, labels in input order, expected)
        let table: [(&str, &[i16], i16); 12] = [
            ("unanimous", &[4, 4, 4], 4),
            ("2 inputs disagree: the first wins", &[3, 7], 3),
            ("2 inputs disagree, swapped", &[7, 3], 7),
            ("3 inputs, the last two agree", &[1, 2, 2], 2),
            ("3 inputs, the first and last agree", &[5, 0, 5], 5),
            (
                "4 inputs 2-2: the first input's label wins",
                &[1, 2, 2, 1],
                1,
            ),
            (
                "4 inputs 2-2, the first input's label has the larger value",
                &[9, 4, 4, 9],
                9,
            ),
            (
                "4 inputs 3-1: the majority beats the first input",
                &[0, 6, 6, 6],
                6,
            ),
            ("3-way tie: the first wins", &[6, 4, 2], 6),
            (
                "3-way tie, first input has the smallest value",
                &[2, 4, 6],
                2,
            ),
            // Tied labels 2 and 3; the first input is outside the tie, input 2 is the earliest
            // inside it.
            (
                "2-2-1, the first input in neither pair",
                &[1, 2, 3, 3, 2],
                2,
            ),
            ("negative and large codes", &[-1, 2221, -1], -1),
        ];
        for (situation, labels, expected) in table {
            assert_eq!(vote_voxel(labels), expected, "{situation}: {labels:?}");
        }
    }

    #[test]
    fn volumes_are_voted_voxel_by_voxel() {
        let a = array![[[1i16, 1], [0, 5]]];
        let b = array![[[2i16, 1], [3, 6]]];
        let c = array![[[2i16, 0], [4, 7]]];
        let voted = vote_volumes(&[a.clone(), b.clone(), c.clone()], VoteRule::Plurality);
        assert_eq!(voted, array![[[2i16, 1], [0, 5]]]);
        let agree = agreement(&[a, b, c], &voted);
        assert_eq!(
            agree,
            array![[[2.0f32 / 3.0, 2.0 / 3.0], [1.0 / 3.0, 1.0 / 3.0]]]
        );
    }

    /// Region by region, with the first input deciding exact halves.
    #[test]
    fn nested_vote_keeps_pathology_a_majority_sees() {
        let table: [(&str, &[i16], i16); 9] = [
            (
                "two of three see pathology, one scar",
                &[200, 2221, 1220],
                1220,
            ),
            ("two of three see scar", &[2221, 200, 2221], 2221),
            (
                "plurality of normal myocardium, majority pathology, scar a minority",
                &[200, 1220, 2221, 200, 2221],
                1220,
            ),
            ("blood against myocardium", &[500, 500, 200], 500),
            ("LV region by two of three", &[0, 200, 500], 500),
            ("outside the LV, RV by majority", &[600, 600, 200], 600),
            ("outside the LV, no RV majority", &[600, 0, 200], 0),
            ("an exact half follows the first input", &[1220, 200], 1220),
            (
                "an exact half follows the first input, other way",
                &[200, 1220],
                200,
            ),
        ];
        for (situation, labels, expected) in table {
            assert_eq!(nested_voxel(labels), expected, "{situation}: {labels:?}");
        }
    }

    #[test]
    fn only_integer_labels_within_int16_are_read() {
        // (value, expected problem or None)
        let table = [
            (0.0, None),
            (-3.0, None),
            (32767.0, None),
            (1.5, Some("holds 1.5: not an integer label")),
            (f64::NAN, Some("holds NaN: not an integer label")),
            (f64::INFINITY, Some("holds inf: not an integer label")),
            (40000.0, Some("holds 40000: outside int16")),
        ];
        for (value, problem) in table {
            let mut values = Array3::<f64>::zeros((2, 2, 1));
            values[[1, 0, 0]] = value;
            match (integer_labels(&values), problem) {
                (Ok(codes), None) => assert_eq!(codes[[1, 0, 0]] as f64, value),
                (Err(e), Some(p)) => {
                    assert!(
                        e.contains(p) && e.contains("voxel [1, 0, 0]"),
                        "{value}: {e}"
                    )
                }
                (got, _) => panic!("{value}: {got:?}"),
            }
        }
    }

    fn header(shape: (usize, usize, usize), spacing: f32) -> NiftiHeader {
        NiftiHeader {
            dim: [
                3,
                shape.0 as u16,
                shape.1 as u16,
                shape.2 as u16,
                1,
                1,
                1,
                1,
            ],
            pixdim: [1.0, spacing, spacing, 10.0, 1.0, 1.0, 1.0, 1.0],
            ..NiftiHeader::default()
        }
    }

    /// Write `labels` as `dir/name`, creating `dir`.
    fn write(dir: &Path, name: &str, labels: &Array3<i16>, spacing: f32) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(name);
        write_i16(&path, labels, &header(labels.dim(), spacing)).unwrap();
        path
    }

    #[test]
    fn inputs_are_matched_by_case_id_across_suffixes() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        let v = Array3::<i16>::zeros((2, 2, 1));
        let a1 = write(&a, "c1_pred.nii.gz", &v, 1.0);
        let a2 = write(&a, "c2.nii", &v, 1.0);
        let b1 = write(&b, "c1_seg.nii.gz", &v, 1.0);
        let b2 = write(&b, "c2_gd.nii.gz", &v, 1.0);
        let cases = match_inputs(&[a, b]).unwrap();
        let expected = [
            CaseInputs {
                case: "c1".into(),
                files: vec![a1, b1],
            },
            CaseInputs {
                case: "c2".into(),
                files: vec![a2, b2],
            },
        ];
        assert_eq!(cases, expected);
    }

    #[test]
    fn every_input_must_hold_the_same_cases() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = ["a", "b", "c"].map(|d| tmp.path().join(d)).into();
        let v = Array3::<i16>::zeros((2, 2, 1));
        for (dir, cases) in dirs.iter().zip([&["c1", "c2"][..], &["c1"], &["c2", "c3"]]) {
            for case in cases {
                write(dir, &format!("{case}.nii.gz"), &v, 1.0);
            }
        }
        let err = match_inputs(&dirs).unwrap_err().to_string();
        let (a, b, c) = (&dirs[0], &dirs[1], &dirs[2]);
        for part in [
            format!("{} lacks c3", a.display()),
            format!("{} lacks c2, c3", b.display()),
            format!("{} lacks c1", c.display()),
        ] {
            assert!(err.contains(&part), "missing {part:?} in {err}");
        }
        let err = match_inputs(&dirs[..1]).unwrap_err().to_string();
        assert!(err.contains("at least 2 directories, got 1"), "{err}");
    }

    #[test]
    fn a_case_votes_on_one_grid_only() {
        let tmp = tempfile::tempdir().unwrap();
        let small = Array3::<i16>::zeros((2, 2, 1));
        let large = Array3::<i16>::zeros((3, 2, 1));
        let first = write(&tmp.path().join("a"), "c.nii.gz", &small, 1.0);
        let other_shape = write(&tmp.path().join("b"), "c.nii.gz", &large, 1.0);
        let other_spacing = write(&tmp.path().join("c"), "c.nii.gz", &small, 1.5);
        for (other, problem) in [
            (other_shape, "shapes differ"),
            (other_spacing, "voxel spacing differs"),
        ] {
            let inputs = CaseInputs {
                case: "c".into(),
                files: vec![first.clone(), other.clone()],
            };
            let err = vote_case(&inputs, VoteRule::Plurality)
                .unwrap_err()
                .to_string();
            for part in [
                "case c",
                problem,
                &first.display().to_string(),
                &other.display().to_string(),
            ] {
                assert!(err.contains(part), "missing {part:?} in {err}");
            }
        }
    }

    #[test]
    fn the_output_directory_must_not_be_an_input() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        let inputs = [a.clone(), b];
        assert!(check_out_is_not_an_input(&tmp.path().join("out"), &inputs).is_ok());
        let err = check_out_is_not_an_input(&a.join("."), &inputs).unwrap_err();
        assert!(err.to_string().contains("is also an input"), "{err}");
    }
}
