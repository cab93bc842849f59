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
//! (`myops_training_101`, `Case0001`); predictions written for a case carry the same id.
//! Suffixes and extensions match in any letter case; `LGE` is a synonym of `DE`.
//!
//! Loading a case validates it: every sequence present, all volumes 3-D with one shape, voxel
//! spacing equal within [`SPACING_TOLERANCE`](crate::data::nifti_read::SPACING_TOLERANCE),
//! finite intensities, and label values among the MyoPS codes. Each failure names the case and
//! the file.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use ndarray::Array3;
use nifti::NiftiHeader;
use serde::Serialize;

use crate::data::labels::{codes_from_values, Label};
use crate::data::nifti_read::{into_volume3, read_nifti, same_spacing, spacing3, NiftiVolume};
use crate::error::{Error, Result};

const MAX_DEPTH: usize = 3;

/// The image sequences, in the channel order used everywhere in awsnet.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
pub enum Sequence {
    /// bSSFP cine: bright blood, dark myocardium.
    C0,
    /// Late gadolinium enhancement: bright scar.
    #[serde(alias = "LGE")]
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
    /// Further files claiming a volume already found (`x_C0.nii` beside `x_C0.nii.gz`): the case
    /// is ambiguous and will not load.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub duplicates: Vec<[PathBuf; 2]>,
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

/// Split `myops_training_101_C0.nii.gz` into (`myops_training_101`, C0). The extension and the
/// sequence suffix match in any letter case.
fn parse_file_name(name: &str) -> Option<(&str, Role)> {
    let lower = name.to_ascii_lowercase();
    let ext = [".nii.gz", ".nii"]
        .into_iter()
        .find(|e| lower.ends_with(e))?;
    let stem = &name[..name.len() - ext.len()];
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

/// Find every case under `dir`, sorted by id. Fails when the directory cannot be read or holds no
/// MyoPS-named files; a case naming one volume twice is found, and fails when loaded.
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
        match slot {
            Some(first) => {
                let first = first.clone();
                case.duplicates.push([first, path]);
            }
            None => *slot = Some(path),
        }
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
    if let Some([first, second]) = files.duplicates.first() {
        return Err(Error::case(
            id,
            format!(
                "two files for one volume: {} and {}; keep one",
                first.display(),
                second.display()
            ),
        ));
    }
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

    let mut volumes = Vec::with_capacity(4);
    for seq in Sequence::ALL {
        let path = files.image(seq).expect("checked above");
        volumes.push(CaseVolume::load(id, seq.name(), path)?);
    }
    if let Some(gd) = &files.gd {
        volumes.push(CaseVolume::load(id, "gd", gd)?);
    }
    check_same_geometry(id, &volumes)?;
    for vol in &volumes[..3] {
        check_finite(id, vol)?;
    }
    let labels = match volumes.get(3) {
        Some(gd) => Some(label_codes(id, gd)?),
        None => None,
    };
    let de = &volumes[Sequence::DE as usize];
    Ok(Case {
        id: id.to_string(),
        files: files.clone(),
        images: std::array::from_fn(|i| volumes[i].data.mapv(|v| v as f32)),
        labels,
        spacing: de.spacing,
        header: de.header.clone(),
    })
}

/// One volume of a case, as `[x, y, z]`.
struct CaseVolume {
    name: &'static str,
    path: PathBuf,
    header: NiftiHeader,
    spacing: [f64; 3],
    data: Array3<f64>,
}

impl CaseVolume {
    /// Read `path`; a 2-D image becomes one slice and trailing dimensions of size 1 are dropped.
    /// File-level problems (truncated, not NIfTI, …) are reported as the case's problem.
    fn load(case: &str, name: &'static str, path: &Path) -> Result<Self> {
        let NiftiVolume { header, data, .. } =
            read_nifti(path).map_err(|e| Error::case(case, e.to_string()))?;
        let Some(data) = into_volume3(data) else {
            return Err(Error::case(
                case,
                format!(
                    "{name} ({}) is not a 3-D volume [x, y, slices]",
                    path.display()
                ),
            ));
        };
        Ok(CaseVolume {
            name,
            path: path.to_path_buf(),
            spacing: spacing3(&header),
            header,
            data,
        })
    }
}

fn check_same_geometry(case: &str, volumes: &[CaseVolume]) -> Result<()> {
    let first = &volumes[0];
    for vol in &volumes[1..] {
        if vol.data.shape() != first.data.shape() {
            return Err(Error::case(
                case,
                format!(
                    "sequences differ in shape: {} {:?} ({}) vs {} {:?} ({})",
                    first.name,
                    first.data.shape(),
                    first.path.display(),
                    vol.name,
                    vol.data.shape(),
                    vol.path.display()
                ),
            ));
        }
        if !same_spacing(first.spacing, vol.spacing) {
            return Err(Error::case(
                case,
                format!(
                    "voxel spacing differs: {} {:?} mm ({}) vs {} {:?} mm ({})",
                    first.name,
                    first.spacing,
                    first.path.display(),
                    vol.name,
                    vol.spacing,
                    vol.path.display()
                ),
            ));
        }
    }
    Ok(())
}

fn check_finite(case: &str, vol: &CaseVolume) -> Result<()> {
    let mut bad = vol.data.indexed_iter().filter(|(_, v)| !v.is_finite());
    if let Some(((x, y, z), v)) = bad.next() {
        let count = 1 + bad.count();
        return Err(Error::case(
            case,
            format!(
                "{} ({}) has {count} non-finite voxel(s), the first {v} at [{x}, {y}, {z}]",
                vol.name,
                vol.path.display()
            ),
        ));
    }
    Ok(())
}

/// Convert a label volume to MyoPS codes, refusing anything that is not one.
fn label_codes(case: &str, gd: &CaseVolume) -> Result<Array3<u16>> {
    codes_from_values(&gd.data)
        .map_err(|problem| Error::case(case, format!("gd ({}) {problem}", gd.path.display())))
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
