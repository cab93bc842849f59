//! MyoPS case discovery and validation.
//!
//! A case is three aligned sequences (bSSFP `C0`, LGE `DE`, `T2`) and, for training cases, a label
//! volume (`gd`). Accepted layouts, found by walking the directory (hidden entries skipped, at most
//! three levels deep):
//! - MyoPS 2020 official: `train25/myops_training_101_C0.nii.gz` …, labels in
//!   `train25_myops_gd/myops_training_101_gd.nii.gz`, test images in `test20/`;
//! - flat: `<prefix>_<id>_{C0,DE,T2,gd}.nii[.gz]` in one directory (what `awsnet phantom` writes);
//! - MyoPS++: `CaseXXXX/CaseXXXX_{C0,LGE,T2,gd}.nii.gz`.
//!
//! Files are grouped by their name without the sequence suffix; that stem is the case id
//! (`myops_training_101`, `Case0001`), the same id `awsnet eval` matches predictions by.
//! Suffixes are matched case-insensitively; `LGE` is a synonym of `DE`.
//!
//! Loading a case validates it: every sequence present, all volumes 3-D with one shape, voxel
//! spacing equal within [`SPACING_TOLERANCE`], finite intensities, and label values among the MyoPS
//! codes. Each failure names the case and the file.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use ndarray::{Array3, ArrayD, Ix3};
use nifti::NiftiHeader;
use serde::Serialize;

use crate::data::labels::Label;
use crate::data::nifti_read::{read_nifti, NiftiVolume};
use crate::error::{Error, Result};

/// Relative tolerance when comparing the voxel spacing of a case's volumes: headers written by
/// different tools round spacing differently in the last float digits.
pub const SPACING_TOLERANCE: f64 = 1e-3;
const MAX_DEPTH: usize = 3;

/// The image sequences, in the channel order used everywhere in awsnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Sequence {
    /// bSSFP cine: bright blood, dark myocardium.
    C0,
    /// Late gadolinium enhancement: bright scar.
    DE,
    /// T2-weighted: bright edema.
    T2,
}

impl Sequence {
    pub const ALL: [Sequence; 3] = [Sequence::C0, Sequence::DE, Sequence::T2];

    pub fn name(self) -> &'static str {
        match self {
            Sequence::C0 => "C0",
            Sequence::DE => "DE",
            Sequence::T2 => "T2",
        }
    }
}

/// The files of one case as found on disk.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CaseFiles {
    pub id: String,
    pub c0: Option<PathBuf>,
    pub de: Option<PathBuf>,
    pub t2: Option<PathBuf>,
    pub gd: Option<PathBuf>,
}

impl CaseFiles {
    pub fn image(&self, seq: Sequence) -> Option<&Path> {
        match seq {
            Sequence::C0 => self.c0.as_deref(),
            Sequence::DE => self.de.as_deref(),
            Sequence::T2 => self.t2.as_deref(),
        }
    }
}

/// A loaded, validated case. Volumes are indexed `[x, y, z]` as stored; z runs over slices.
#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    pub files: CaseFiles,
    /// C0, DE, T2 in that order.
    pub images: [Array3<f32>; 3],
    pub labels: Option<Array3<u16>>,
    pub spacing: [f64; 3],
    /// Header of the DE volume: predictions are written with it so they overlay the inputs.
    pub header: NiftiHeader,
}

impl Case {
    pub fn image(&self, seq: Sequence) -> &Array3<f32> {
        &self.images[seq as usize]
    }

    pub fn shape(&self) -> [usize; 3] {
        let s = self.images[0].shape();
        [s[0], s[1], s[2]]
    }
}

/// Which suffix a file name carries, if it is a MyoPS volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Image(Sequence),
    Labels,
}

/// Split `myops_training_101_C0.nii.gz` into (`myops_training_101`, C0).
fn parse_file_name(name: &str) -> Option<(&str, Role)> {
    let stem = name
        .strip_suffix(".nii.gz")
        .or_else(|| name.strip_suffix(".nii"))?;
    let (case, suffix) = stem.rsplit_once('_')?;
    let role = match suffix.to_ascii_lowercase().as_str() {
        "c0" => Role::Image(Sequence::C0),
        "de" | "lge" => Role::Image(Sequence::DE),
        "t2" => Role::Image(Sequence::T2),
        "gd" => Role::Labels,
        _ => return None,
    };
    (!case.is_empty()).then_some((case, role))
}

/// Find every case under `dir`, sorted by id. Fails when the directory cannot be read, holds no
/// MyoPS-named files, or names one case's sequence twice.
pub fn discover(dir: &Path) -> Result<Vec<CaseFiles>> {
    let meta = fs::metadata(dir).map_err(|e| Error::read(dir, e))?;
    if !meta.is_dir() {
        return Err(Error::Dataset {
            path: dir.to_path_buf(),
            problem: "not a directory".into(),
        });
    }
    let mut files = Vec::new();
    collect_files(dir, 0, &mut files)?;
    files.sort();

    let mut cases: BTreeMap<String, CaseFiles> = BTreeMap::new();
    for path in files {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let Some((id, role)) = parse_file_name(&name) else {
            continue;
        };
        let case = cases.entry(id.to_string()).or_insert_with(|| CaseFiles {
            id: id.to_string(),
            ..CaseFiles::default()
        });
        let slot = match role {
            Role::Image(Sequence::C0) => &mut case.c0,
            Role::Image(Sequence::DE) => &mut case.de,
            Role::Image(Sequence::T2) => &mut case.t2,
            Role::Labels => &mut case.gd,
        };
        if let Some(first) = slot {
            return Err(Error::case(
                id,
                format!(
                    "two files for one volume: {} and {}",
                    first.display(),
                    path.display()
                ),
            ));
        }
        *slot = Some(path);
    }
    if cases.is_empty() {
        return Err(Error::Dataset {
            path: dir.to_path_buf(),
            problem:
                "no MyoPS cases found (expected files named <case>_{C0,DE|LGE,T2,gd}.nii[.gz])"
                    .into(),
        });
    }
    Ok(cases.into_values().collect())
}

fn collect_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::read(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::read(dir, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| Error::read(&path, e))?;
        // Follow symlinks: datasets are often linked into place.
        let is_dir = kind.is_dir() || (kind.is_symlink() && path.is_dir());
        if is_dir {
            if depth < MAX_DEPTH {
                collect_files(&path, depth + 1, out)?;
            }
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Read and validate every volume of a case.
pub fn load_case(files: &CaseFiles) -> Result<Case> {
    let id = files.id.as_str();
    let missing: Vec<&str> = Sequence::ALL
        .into_iter()
        .filter(|s| files.image(*s).is_none())
        .map(Sequence::name)
        .collect();
    if !missing.is_empty() {
        let seen = [&files.c0, &files.de, &files.t2, &files.gd]
            .into_iter()
            .flatten()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::case(
            id,
            format!(
                "missing sequence {} (expected {id}_<SEQ>.nii.gz beside {seen})",
                missing.join(", ")
            ),
        ));
    }

    // A file-level problem (truncated, not NIfTI, …) is reported as this case's problem.
    let read = |path: &Path| read_nifti(path).map_err(|e| Error::case(id, e.to_string()));
    let mut volumes = Vec::with_capacity(4);
    for seq in Sequence::ALL {
        let path = files.image(seq).expect("checked above");
        volumes.push((seq.name(), read(path)?));
    }
    if let Some(gd) = &files.gd {
        volumes.push(("gd", read(gd)?));
    }

    let mut arrays = Vec::with_capacity(volumes.len());
    for (name, vol) in &volumes {
        arrays.push(as_3d(id, name, vol)?);
    }
    check_same_geometry(id, &volumes, &arrays)?;

    let mut images = Vec::with_capacity(3);
    for ((name, vol), array) in volumes.iter().zip(&arrays).take(3) {
        check_finite(id, name, &vol.path, array)?;
        images.push(array.mapv(|v| v as f32));
    }
    let labels = match volumes.get(3) {
        Some((_, vol)) => Some(label_codes(id, &vol.path, &arrays[3])?),
        None => None,
    };

    let de = &volumes[Sequence::DE as usize].1;
    let [c0, de_img, t2]: [Array3<f32>; 3] = images
        .try_into()
        .map_err(|_| Error::Internal("three image volumes expected".into()))?;
    Ok(Case {
        id: id.to_string(),
        files: files.clone(),
        images: [c0, de_img, t2],
        labels,
        spacing: de.spacing3(),
        header: de.header.clone(),
    })
}

/// View a volume as `[x, y, z]`: 2-D becomes one slice; trailing dimensions of size 1 are dropped.
fn as_3d(case: &str, name: &str, vol: &NiftiVolume) -> Result<Array3<f64>> {
    let shape = vol.data.shape();
    let extra_ok = shape.iter().skip(3).all(|&d| d == 1);
    if shape.len() < 2 || !extra_ok {
        return Err(Error::case(
            case,
            format!(
                "{name} ({}) has shape {shape:?}; a sequence must be a 3-D volume [x, y, slices]",
                vol.path.display()
            ),
        ));
    }
    let (x, y) = (shape[0], shape[1]);
    let z = shape.get(2).copied().unwrap_or(1);
    let data: ArrayD<f64> = vol.data.clone();
    let reshaped = data
        .into_shape_with_order(((x, y, z), ndarray::Order::ColumnMajor))
        .map_err(|e| Error::Internal(format!("reshape {shape:?}: {e}")))?;
    reshaped
        .into_dimensionality::<Ix3>()
        .map_err(|e| Error::Internal(e.to_string()))
}

fn check_same_geometry(
    case: &str,
    volumes: &[(&str, NiftiVolume)],
    arrays: &[Array3<f64>],
) -> Result<()> {
    let (ref_name, ref_vol) = &volumes[0];
    let ref_shape = arrays[0].shape();
    let ref_spacing = ref_vol.spacing3();
    for ((name, vol), array) in volumes.iter().zip(arrays).skip(1) {
        if array.shape() != ref_shape {
            return Err(Error::case(
                case,
                format!(
                    "sequences differ in shape: {ref_name} {ref_shape:?} ({}) vs {name} {:?} ({})",
                    ref_vol.path.display(),
                    array.shape(),
                    vol.path.display()
                ),
            ));
        }
        let spacing = vol.spacing3();
        let differs = ref_spacing
            .iter()
            .zip(spacing)
            .any(|(&a, b)| (a - b).abs() > SPACING_TOLERANCE * a.abs().max(b.abs()));
        if differs {
            return Err(Error::case(
                case,
                format!(
                    "voxel spacing differs: {ref_name} {ref_spacing:?} mm ({}) vs {name} {spacing:?} mm ({})",
                    ref_vol.path.display(),
                    vol.path.display()
                ),
            ));
        }
    }
    Ok(())
}

fn check_finite(case: &str, name: &str, path: &Path, data: &Array3<f64>) -> Result<()> {
    let mut bad = data.indexed_iter().filter(|(_, v)| !v.is_finite());
    if let Some(((x, y, z), v)) = bad.next() {
        let count = 1 + bad.count();
        return Err(Error::case(
            case,
            format!(
                "{name} ({}) has {count} non-finite voxel(s), the first {v} at [{x}, {y}, {z}]",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// Convert a label volume to MyoPS codes, refusing anything that is not one.
fn label_codes(case: &str, path: &Path, data: &Array3<f64>) -> Result<Array3<u16>> {
    let mut unknown: BTreeMap<String, usize> = BTreeMap::new();
    let codes = data.mapv(|v| {
        let code = (v.fract() == 0.0 && (0.0..=u16::MAX as f64).contains(&v))
            .then_some(v as u16)
            .filter(|&c| Label::from_code(c).is_some());
        match code {
            Some(c) => c,
            None => {
                *unknown.entry(v.to_string()).or_default() += 1;
                0
            }
        }
    });
    if !unknown.is_empty() {
        let list = unknown
            .iter()
            .map(|(v, n)| format!("{v} ({n} voxels)"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::case(
            case,
            format!(
                "gd ({}) holds unknown label values {list}; MyoPS codes are 0, 200, 500, 600, 1220, 2221",
                path.display()
            ),
        ));
    }
    Ok(codes)
}

/// One line of `awsnet cases`: what a valid case holds.
#[derive(Debug, Clone, Serialize)]
pub struct CaseSummary {
    pub id: String,
    /// `[x, y, slices]`.
    pub shape: [usize; 3],
    /// Voxel spacing in mm, `[x, y, z]`.
    pub spacing: [f64; 3],
    pub slices: usize,
    pub has_labels: bool,
    /// Names of the label codes present, in code order; empty without labels.
    pub labels_present: Vec<&'static str>,
    /// Voxel count per present label.
    pub label_voxels: BTreeMap<&'static str, usize>,
    pub files: CaseFiles,
}

impl CaseSummary {
    pub fn of(case: &Case) -> Self {
        let mut label_voxels = BTreeMap::new();
        let mut present = Vec::new();
        if let Some(labels) = &case.labels {
            for label in Label::ALL {
                let n = labels.iter().filter(|&&c| c == label.code()).count();
                if n > 0 {
                    present.push(label.name());
                    label_voxels.insert(label.name(), n);
                }
            }
        }
        let shape = case.shape();
        CaseSummary {
            id: case.id.clone(),
            shape,
            spacing: case.spacing,
            slices: shape[2],
            has_labels: case.labels.is_some(),
            labels_present: present,
            label_voxels,
            files: case.files.clone(),
        }
    }
}

/// The outcome of checking one discovered case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    pub id: String,
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<CaseSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Discover and validate every case under `dir`; the per-case outcome is in the reports, so one
/// bad case does not hide the others.
pub fn survey(dir: &Path) -> Result<Vec<CaseReport>> {
    let found = discover(dir)?;
    Ok(found
        .iter()
        .map(|files| match load_case(files) {
            Ok(case) => CaseReport {
                id: case.id.clone(),
                valid: true,
                summary: Some(CaseSummary::of(&case)),
                error: None,
            },
            Err(e) => CaseReport {
                id: files.id.clone(),
                valid: false,
                summary: None,
                error: Some(e.to_string()),
            },
        })
        .collect())
}

/// Load every case under `dir`, failing on the first invalid one.
pub fn load_all(dir: &Path) -> Result<Vec<Case>> {
    discover(dir)?.iter().map(load_case).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_map_to_case_and_role() {
        let table = [
            (
                "myops_training_101_C0.nii.gz",
                Some(("myops_training_101", Role::Image(Sequence::C0))),
            ),
            (
                "myops_training_101_DE.nii.gz",
                Some(("myops_training_101", Role::Image(Sequence::DE))),
            ),
            (
                "myops_test_201_T2.nii",
                Some(("myops_test_201", Role::Image(Sequence::T2))),
            ),
            (
                "myops_training_101_gd.nii.gz",
                Some(("myops_training_101", Role::Labels)),
            ),
            (
                "Case0001_LGE.nii.gz",
                Some(("Case0001", Role::Image(Sequence::DE))),
            ),
            (
                "Case0001_c0.nii.gz",
                Some(("Case0001", Role::Image(Sequence::C0))),
            ),
            ("myops_training_101_pred.nii.gz", None),
            ("README.md", None),
            ("_C0.nii.gz", None),
            ("C0.nii.gz", None),
        ];
        for (name, expect) in table {
            assert_eq!(parse_file_name(name), expect, "{name}");
        }
    }
}
