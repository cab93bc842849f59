//! Pairing predicted label volumes with their references by case id.
//!
//! A file's case id is its name without `.nii` or `.nii.gz`, and without one trailing `_gd`,
//! `_pred` or `_seg` (any letter case): `myops_training_101_gd.nii.gz`,
//! `myops_training_101_pred.nii.gz` and `myops_training_101.nii` are all case
//! `myops_training_101`. Only the directory's own files are read (no subdirectories); hidden
//! files are ignored, and so are MyoPS sequence images (`_C0`, `_DE`, `_LGE`, `_T2`), so a flat
//! MyoPS case folder can serve as the reference directory as it is.
//!
//! Every prediction must have a reference and every reference a prediction: a missing
//! prediction would silently raise the mean, so unmatched files are an error that lists them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A prediction and its reference for one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasePair {
    pub case: String,
    pub prediction: PathBuf,
    pub reference: PathBuf,
}

/// Suffixes that mark a label volume and are not part of the case id.
const LABEL_SUFFIXES: [&str; 3] = ["_gd", "_pred", "_seg"];
/// Suffixes of MyoPS image sequences, which are never label volumes.
const SEQUENCE_SUFFIXES: [&str; 4] = ["_c0", "_de", "_lge", "_t2"];

/// The case id of a label volume's file name, or `None` for a file that is not one.
pub fn case_id(file_name: &str) -> Option<&str> {
    let lower = file_name.to_ascii_lowercase();
    let ext = [".nii.gz", ".nii"]
        .into_iter()
        .find(|e| lower.ends_with(e))?;
    let stem = &file_name[..file_name.len() - ext.len()];
    let stem_lower = &lower[..stem.len()];
    if file_name.starts_with('.') || SEQUENCE_SUFFIXES.iter().any(|s| stem_lower.ends_with(s)) {
        return None;
    }
    let id = LABEL_SUFFIXES
        .iter()
        .find(|s| stem_lower.ends_with(*s))
        .map_or(stem, |s| &stem[..stem.len() - s.len()]);
    (!id.is_empty()).then_some(id)
}

/// The label volumes directly in `dir`, by case id. Two files with one id are an error.
pub fn label_files(dir: &Path, role: &str) -> Result<BTreeMap<String, PathBuf>> {
    let dataset = |problem: String| Error::Dataset {
        path: dir.to_path_buf(),
        problem,
    };
    let meta = fs::metadata(dir).map_err(|e| Error::read(dir, e))?;
    if !meta.is_dir() {
        return Err(dataset(format!("the {role} directory is not a directory")));
    }
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::read(dir, e))? {
        let entry = entry.map_err(|e| Error::read(dir, e))?;
        let path = entry.path();
        if path.is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    for name in &names {
        let Some(id) = case_id(name) else { continue };
        if let Some(first) = files.insert(id.to_string(), dir.join(name)) {
            return Err(dataset(format!(
                "two {role} files for case {id}: {} and {name}; keep one",
                first.file_name().unwrap_or_default().to_string_lossy()
            )));
        }
    }
    if files.is_empty() {
        return Err(dataset(format!(
            "no {role} label volumes (*.nii or *.nii.gz) found"
        )));
    }
    Ok(files)
}

/// Pair the label volumes of `pred_dir` and `gt_dir`, sorted by case id.
pub fn pair_cases(pred_dir: &Path, gt_dir: &Path) -> Result<Vec<CasePair>> {
    let mut preds = label_files(pred_dir, "prediction")?;
    let refs = label_files(gt_dir, "reference")?;
    let missing_pred: Vec<&str> = refs
        .keys()
        .filter(|id| !preds.contains_key(*id))
        .map(String::as_str)
        .collect();
    let missing_ref: Vec<&str> = preds
        .keys()
        .filter(|id| !refs.contains_key(*id))
        .map(String::as_str)
        .collect();
    if !missing_pred.is_empty() || !missing_ref.is_empty() {
        let mut problems = Vec::new();
        if !missing_ref.is_empty() {
            problems.push(format!(
                "{} prediction(s) without a reference in {}: {}",
                missing_ref.len(),
                gt_dir.display(),
                missing_ref.join(", ")
            ));
        }
        if !missing_pred.is_empty() {
            problems.push(format!(
                "{} reference(s) without a prediction: {}",
                missing_pred.len(),
                missing_pred.join(", ")
            ));
        }
        return Err(Error::Dataset {
            path: pred_dir.to_path_buf(),
            problem: format!(
                "{} (case ids are file names without .nii[.gz] and a trailing _gd, _pred or _seg)",
                problems.join("; ")
            ),
        });
    }
    Ok(refs
        .into_iter()
        .map(|(case, reference)| {
            let prediction = preds.remove(&case).expect("every reference was matched");
            CasePair {
                case,
                prediction,
                reference,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_ids_follow_the_documented_rule() {
        let table = [
            ("myops_training_101_gd.nii.gz", Some("myops_training_101")),
            ("myops_training_101_pred.nii.gz", Some("myops_training_101")),
            ("myops_test_201_seg.nii.gz", Some("myops_test_201")),
            ("myops_training_101.nii", Some("myops_training_101")),
            ("case7_GD.NII.GZ", Some("case7")),
            // Only one suffix is removed.
            ("a_pred_gd.nii.gz", Some("a_pred")),
            ("myops_training_101_C0.nii.gz", None),
            ("myops_training_101_DE.nii.gz", None),
            ("myops_training_101_T2.nii", None),
            ("notes.txt", None),
            (".awsnet-tmp-1-0.nii.gz", None),
            ("_gd.nii.gz", None),
        ];
        for (name, expect) in table {
            assert_eq!(case_id(name), expect, "{name}");
        }
    }
}
