//! Synthetic MyoPS-like cases for demos, tests and CPU-sized experiments.
//!
//! A phantom case is a short-axis stack of `slices` slices in the flat MyoPS naming
//! (`myops_training_<id>_{C0,DE,T2,gd}.nii.gz`, int16, spacing and affine in the header). See
//! [`anatomy`] for what is drawn and [`contrast`] for how each sequence renders it.
//!
//! Defaults ([`PhantomConfig::default`]): 6 cases of 128 × 128 pixels at 1.8 × 1.8 mm in-plane
//! (a 230 mm field of view), 3–5 slices 14 mm apart, ids from 101. MyoPS itself is about
//! 480 × 480 × 4 at 0.73 × 0.73 × 14 mm; since the anatomy is defined in millimetres,
//! `--size 480 480 --spacing 0.73 0.73 14` renders MyoPS-sized data.
//!
//! Determinism: case `i` draws from its own stream seeded by `seed::derive(seed, "phantom", i)`,
//! so the same seed gives the same bytes, and a case does not depend on how many others are made.

pub mod anatomy;
pub mod contrast;

use std::path::{Path, PathBuf};

use ndarray::{Array2, Array3};
use nifti::NiftiHeader;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::atomic::{PreparedFile, StagedDir};
use crate::data::cases::{Case, CaseFiles, Sequence};
use crate::data::nifti_read::spacing3;
use crate::data::nifti_write;
use crate::error::{Error, Result};
use crate::progress::Progress;
use anatomy::{CaseAnatomy, Tissue};
use contrast::SequenceStyle;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhantomConfig {
    pub cases: usize,
    pub seed: u64,
    /// In-plane matrix `[H, W]` = NIfTI `[x, y]`.
    pub size: [usize; 2],
    /// Inclusive range of the number of slices per case.
    pub slices: [usize; 2],
    /// Voxel spacing in mm `[x, y, z]`.
    pub spacing: [f64; 3],
    /// Id of the first case; the rest follow consecutively.
    pub first_id: u32,
    /// How hard the lesions are to see, in `[0, 1]`: 0 renders the default contrasts; 1 brings
    /// scar, edema and MVO 60 % of the way to normal myocardium in every sequence and raises
    /// the noise 2.5-fold ([`contrast::Difficulty`]). The anatomy and every random draw stay the
    /// same, so a case differs between difficulties only in how it is rendered.
    pub difficulty: f64,
}

impl Default for PhantomConfig {
    fn default() -> Self {
        PhantomConfig {
            cases: 6,
            seed: 0,
            size: [128, 128],
            slices: [3, 5],
            spacing: [1.8, 1.8, 14.0],
            first_id: 101,
            difficulty: 0.0,
        }
    }
}

impl PhantomConfig {
    /// Check every field, naming the one that is out of range.
    pub fn validate(&self) -> Result<()> {
        if !(1..=10_000).contains(&self.cases) {
            return Err(Error::invalid(
                "--cases",
                format!("{} is not in 1..=10000", self.cases),
            ));
        }
        if self.size.iter().any(|&n| !(16..=2048).contains(&n)) {
            return Err(Error::invalid(
                "--size",
                format!("{:?}: each side must be in 16..=2048 pixels", self.size),
            ));
        }
        let [lo, hi] = self.slices;
        if lo == 0 || lo > hi || hi > 64 {
            return Err(Error::invalid(
                "--slices",
                format!("{lo} {hi}: need 1 ≤ MIN ≤ MAX ≤ 64"),
            ));
        }
        if self
            .spacing
            .iter()
            .any(|s| !s.is_finite() || *s <= 0.0 || *s > 100.0)
        {
            return Err(Error::invalid(
                "--spacing",
                format!("{:?}: each spacing must be in (0, 100] mm", self.spacing),
            ));
        }
        if !(0.0..=1.0).contains(&self.difficulty) {
            return Err(Error::invalid(
                "--difficulty",
                format!("{} is not in [0, 1]", self.difficulty),
            ));
        }
        Ok(())
    }
}

/// One generated case in memory.
#[derive(Debug, Clone)]
pub struct PhantomCase {
    pub id: String,
    /// C0, DE, T2, each `[x, y, z]`.
    pub images: [Array3<i16>; 3],
    /// MyoPS label codes `[x, y, z]`.
    pub labels: Array3<u16>,
    pub header: NiftiHeader,
    pub has_pathology: bool,
}

impl PhantomCase {
    /// The case as if it had been written and loaded again (`load_case`), without the disk.
    pub fn into_case(self) -> Case {
        Case {
            id: self.id.clone(),
            files: CaseFiles {
                id: self.id,
                ..CaseFiles::default()
            },
            images: self.images.map(|v| v.mapv(f32::from)),
            labels: Some(self.labels),
            spacing: spacing3(&self.header),
            header: self.header,
        }
    }
}

/// The volumes of a case, in the order they are written: the sequences, then the labels.
const VOLUMES: [&str; 4] = ["C0", "DE", "T2", "gd"];

/// The file of one volume of case `id`: `<id>_<volume>.nii.gz`.
fn volume_file_name(id: &str, volume: &str) -> String {
    format!("{id}_{volume}.nii.gz")
}

/// Generate case number `index` (0-based) of `config`.
pub fn generate_case(config: &PhantomConfig, index: usize) -> PhantomCase {
    let mut rng =
        ChaCha8Rng::seed_from_u64(crate::seed::derive(config.seed, "phantom", index as u64));
    let [n0, n1] = config.size;
    let [s0, s1, _] = config.spacing;
    let nz = rng.random_range(config.slices[0]..=config.slices[1]);
    let half_fov = [n0 as f64 * s0 / 2.0, n1 as f64 * s1 / 2.0];
    let anatomy = CaseAnatomy::sample(&mut rng, nz, half_fov);
    let difficulty = contrast::Difficulty(config.difficulty);
    let styles = Sequence::ALL.map(|seq| SequenceStyle::sample(&mut rng, seq, difficulty));

    let coords = |i: usize, j: usize| {
        [
            (i as f64 - (n0 as f64 - 1.0) / 2.0) * s0,
            (j as f64 - (n1 as f64 - 1.0) / 2.0) * s1,
        ]
    };
    let tissues: Vec<Array2<Tissue>> = (0..nz)
        .map(|k| Array2::from_shape_fn((n0, n1), |(i, j)| anatomy.tissue_at(k, coords(i, j))))
        .collect();

    let mut labels = Array3::zeros((n0, n1, nz));
    for (k, t) in tissues.iter().enumerate() {
        labels
            .index_axis_mut(ndarray::Axis(2), k)
            .assign(&t.mapv(|t| t.label().code()));
    }
    let images = styles.map(|style| {
        let mut vol = Array3::<i16>::zeros((n0, n1, nz));
        for (k, t) in tissues.iter().enumerate() {
            let slice = style.render(t, coords, &mut rng);
            vol.index_axis_mut(ndarray::Axis(2), k)
                .assign(&slice.mapv(|v| v.round().clamp(0.0, i16::MAX as f64) as i16));
        }
        vol
    });

    let id = case_id(config, index);
    PhantomCase {
        header: phantom_header(config, nz, &id),
        id,
        images,
        labels,
        has_pathology: anatomy.has_pathology(),
    }
}

/// The MyoPS-style id of case `index`.
fn case_id(config: &PhantomConfig, index: usize) -> String {
    format!("myops_training_{}", config.first_id as usize + index)
}

/// A NIfTI-1 header for an axis-aligned stack centred on the scanner origin.
fn phantom_header(config: &PhantomConfig, nz: usize, id: &str) -> NiftiHeader {
    let [n0, n1] = config.size;
    let [s0, s1, s2] = config.spacing.map(|s| s as f32);
    let origin = [
        -(n0 as f32 - 1.0) / 2.0 * s0,
        -(n1 as f32 - 1.0) / 2.0 * s1,
        -(nz as f32 - 1.0) / 2.0 * s2,
    ];
    let mut header = NiftiHeader {
        dim: [3, n0 as u16, n1 as u16, nz as u16, 1, 1, 1, 1],
        pixdim: [1.0, s0, s1, s2, 1.0, 1.0, 1.0, 1.0],
        datatype: 4,
        bitpix: 16,
        // millimetres and seconds
        xyzt_units: 2 | 8,
        qform_code: 1,
        sform_code: 1,
        quatern_x: origin[0],
        quatern_y: origin[1],
        quatern_z: origin[2],
        srow_x: [s0, 0.0, 0.0, origin[0]],
        srow_y: [0.0, s1, 0.0, origin[1]],
        srow_z: [0.0, 0.0, s2, origin[2]],
        ..NiftiHeader::default()
    };
    let descrip = format!("{DESCRIPTION_PREFIX} seed {} {id}", config.seed);
    let mut bytes = descrip.into_bytes();
    bytes.resize(80, 0);
    header.descrip = bytes;
    header
}

/// What [`write_phantoms`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct PhantomSummary {
    pub out: PathBuf,
    pub config: PhantomConfig,
    pub cases: Vec<PhantomCaseInfo>,
    pub preview: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhantomCaseInfo {
    pub id: String,
    pub slices: usize,
    pub has_pathology: bool,
    pub files: Vec<PathBuf>,
}

/// How many cases a preview shows at most, to keep the sheet viewable.
pub const PREVIEW_MAX_CASES: usize = 12;

/// The description every phantom volume carries in its header; it marks files that awsnet may
/// overwrite without `--force`.
const DESCRIPTION_PREFIX: &str = "awsnet phantom";

/// A picture of generated cases, drawn by whoever asks for one (the CLI hands in the report's
/// contact sheet): this module only passes it the volumes.
pub trait Preview {
    /// One case's C0, DE and T2 volumes and its labels; called for the first
    /// [`PREVIEW_MAX_CASES`] cases.
    fn add_case(&mut self, images: &[Array3<f32>; 3], labels: &Array3<u16>);
    /// The picture as PNG bytes.
    fn png(&self) -> Result<Vec<u8>>;
}

/// Where a preview goes, and what draws it.
pub struct PreviewRequest<'a> {
    pub path: &'a Path,
    pub draw: &'a mut dyn Preview,
}

/// Generate `config.cases` cases into `out`, all files appearing together at the end (or none on
/// failure), plus an optional preview of the first [`PREVIEW_MAX_CASES`] cases.
///
/// Files of the same names that `awsnet phantom` did not write (real MyoPS data share the naming)
/// are never replaced unless `overwrite` is set.
pub fn write_phantoms(
    config: &PhantomConfig,
    out: &Path,
    mut preview: Option<PreviewRequest<'_>>,
    overwrite: bool,
    progress: &dyn Progress,
) -> Result<PhantomSummary> {
    config.validate()?;
    if !overwrite {
        refuse_foreign_files(config, out)?;
    }
    // Catch what would make the final rename fail before any work, so a bad preview path never
    // leaves a dataset without its preview.
    if let Some(path) = preview.as_ref().map(|p| p.path).filter(|p| p.is_dir()) {
        return Err(Error::invalid(
            "--preview",
            format!(
                "{} is a directory; give a file name such as preview.png",
                path.display()
            ),
        ));
    }
    let mut staged = StagedDir::new(out)?;
    let mut infos = Vec::with_capacity(config.cases);
    progress.set_total(config.cases as u64);
    for index in 0..config.cases {
        let case = generate_case(config, index);
        let mut files = Vec::new();
        for (volume, image) in VOLUMES.iter().zip(&case.images) {
            let name = volume_file_name(&case.id, volume);
            nifti_write::write_i16(&staged.file(&name), image, &case.header)?;
            files.push(out.join(name));
        }
        let name = volume_file_name(&case.id, VOLUMES[3]);
        nifti_write::write_labels(&staged.file(&name), &case.labels, &case.header)?;
        files.push(out.join(name));
        infos.push(PhantomCaseInfo {
            id: case.id.clone(),
            slices: case.labels.dim().2,
            has_pathology: case.has_pathology,
            files,
        });
        if let Some(request) = preview.as_mut().filter(|_| index < PREVIEW_MAX_CASES) {
            request.draw.add_case(
                &case.images.each_ref().map(|v| v.mapv(f32::from)),
                &case.labels,
            );
        }
        progress.advance(1);
    }
    let preview_path = preview.as_ref().map(|p| p.path.to_path_buf());
    let preview_file = match preview {
        Some(PreviewRequest { path, draw }) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| Error::write(parent, e))?;
            }
            let png = draw.png()?;
            Some(PreparedFile::prepare(path, |tmp| {
                std::fs::write(tmp, &png)
            })?)
        }
        None => None,
    };
    staged.commit()?;
    if let Some(file) = preview_file {
        file.commit()?;
    }
    progress.finish();
    Ok(PhantomSummary {
        out: out.to_path_buf(),
        config: config.clone(),
        cases: infos,
        preview: preview_path,
    })
}

/// Fail if `out` holds a file this run would replace that is not an earlier phantom.
fn refuse_foreign_files(config: &PhantomConfig, out: &Path) -> Result<()> {
    for index in 0..config.cases {
        let id = case_id(config, index);
        for volume in VOLUMES {
            let path = out.join(volume_file_name(&id, volume));
            if !path.exists() {
                continue;
            }
            let ours = nifti::NiftiHeader::from_file(&path)
                .map(|h| String::from_utf8_lossy(&h.descrip).starts_with(DESCRIPTION_PREFIX))
                .unwrap_or(false);
            if !ours {
                return Err(Error::invalid(
                    "--out",
                    format!(
                        "{} exists and was not written by awsnet phantom; choose another directory \
                         or pass --force to overwrite it",
                        path.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Draw a uniform value in `[lo, hi]`: the phantom's one way of sampling a parameter.
pub(crate) fn u(rng: &mut impl Rng, lo: f64, hi: f64) -> f64 {
    rng.random_range(lo..=hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::labels::Label;

    fn small() -> PhantomConfig {
        PhantomConfig {
            cases: 8,
            size: [64, 64],
            spacing: [3.6, 3.6, 14.0],
            ..PhantomConfig::default()
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_case_whatever_the_case_count() {
        let a = generate_case(&small(), 2);
        let b = generate_case(
            &PhantomConfig {
                cases: 3,
                ..small()
            },
            2,
        );
        assert_eq!(a.images, b.images);
        assert_eq!(a.labels, b.labels);
        let c = generate_case(&PhantomConfig { seed: 1, ..small() }, 2);
        assert_ne!(a.images[0], c.images[0]);
    }

    #[test]
    fn cases_vary_and_hold_the_myops_structures() {
        let config = small();
        let mut centres = Vec::new();
        let (mut with_pathology, mut scar_cases, mut edema_cases) = (0, 0, 0);
        for i in 0..config.cases {
            let case = generate_case(&config, i);
            let nz = case.labels.dim().2;
            assert!((3..=5).contains(&nz));
            let count = |l: Label| case.labels.iter().filter(|&&c| c == l.code()).count();
            assert!(count(Label::LvBlood) > 0 && count(Label::Myocardium) > 0);
            assert!(count(Label::RvBlood) > 0, "case {i} has no RV");
            with_pathology += usize::from(count(Label::Edema) + count(Label::Scar) > 0);
            scar_cases += usize::from(count(Label::Scar) > 0);
            edema_cases += usize::from(count(Label::Edema) > 0);
            // LV centre of mass in the base slice.
            let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
            for ((x, y, z), &c) in case.labels.indexed_iter() {
                if z == 0 && c == Label::LvBlood.code() {
                    sx += x as f64;
                    sy += y as f64;
                    n += 1.0;
                }
            }
            centres.push((sx / n, sy / n));
        }
        assert!(
            with_pathology >= 4,
            "{with_pathology} of 8 cases with pathology"
        );
        assert!(
            scar_cases > 0 && edema_cases > 0,
            "scar {scar_cases}, edema {edema_cases}"
        );
        let off_centre = centres
            .iter()
            .filter(|(x, y)| (x - 31.5).abs() > 3.0 || (y - 31.5).abs() > 3.0)
            .count();
        assert!(off_centre >= 4, "{centres:?}");
    }

    /// Mean DE signal over the voxels of `code`.
    fn mean_de(case: &PhantomCase, code: u16) -> f64 {
        let (sum, n) = case
            .labels
            .iter()
            .zip(case.images[1].iter())
            .filter(|(&l, _)| l == code)
            .fold((0.0, 0.0), |(s, n), (_, &v)| (s + f64::from(v), n + 1.0));
        sum / n
    }

    #[test]
    fn difficulty_lowers_lesion_contrast_and_keeps_the_anatomy() {
        let easy = small();
        let index = (0..easy.cases)
            .find(|&i| {
                let labels = generate_case(&easy, i).labels;
                labels.iter().any(|&c| c == Label::Scar.code())
            })
            .expect("a phantom with scar");
        let hard = PhantomConfig {
            difficulty: 1.0,
            ..small()
        };
        let (a, b) = (generate_case(&easy, index), generate_case(&hard, index));
        assert_eq!(a.labels, b.labels);
        let contrast = |case: &PhantomCase| {
            mean_de(case, Label::Scar.code()) - mean_de(case, Label::Myocardium.code())
        };
        let (ca, cb) = (contrast(&a), contrast(&b));
        // 60 % of the contrast removed; blur and bias move the means a little.
        assert!(cb < 0.5 * ca && cb > 0.25 * ca, "scar contrast {ca} → {cb}");
        assert!(PhantomConfig {
            difficulty: 1.5,
            ..small()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn volume_names_follow_the_channel_order() {
        assert_eq!(VOLUMES[..3], Sequence::ALL.map(Sequence::name));
        assert_eq!(
            volume_file_name("myops_training_101", "gd"),
            "myops_training_101_gd.nii.gz"
        );
    }

    #[test]
    fn some_cases_have_no_pathology() {
        let config = PhantomConfig {
            cases: 40,
            size: [32, 32],
            spacing: [7.0, 7.0, 14.0],
            slices: [2, 2],
            ..PhantomConfig::default()
        };
        let healthy = (0..config.cases)
            .filter(|&i| !generate_case(&config, i).has_pathology)
            .count();
        // About 15 % by design: 6 expected of 40.
        assert!(
            (1..=15).contains(&healthy),
            "{healthy} of 40 without pathology"
        );
    }

    #[test]
    fn sequences_show_their_contrasts_on_the_labels() {
        // Mean intensity per label in each sequence, pooled over cases.
        let config = small();
        let mut sums = std::collections::HashMap::<(usize, u16), (f64, f64)>::new();
        for i in 0..config.cases {
            let case = generate_case(&config, i);
            for (s, img) in case.images.iter().enumerate() {
                for (v, &c) in img.iter().zip(case.labels.iter()) {
                    let e = sums.entry((s, c)).or_default();
                    e.0 += *v as f64;
                    e.1 += 1.0;
                }
            }
        }
        let mean = |s: usize, l: Label| {
            let (t, n) = sums[&(s, l.code())];
            t / n
        };
        let (c0, de, t2) = (0, 1, 2);
        assert!(mean(c0, Label::LvBlood) > 2.5 * mean(c0, Label::Myocardium));
        assert!(mean(de, Label::Scar) > 3.0 * mean(de, Label::Myocardium));
        assert!(mean(de, Label::Edema) > 1.5 * mean(de, Label::Myocardium));
        assert!(mean(t2, Label::Edema) > 1.5 * mean(t2, Label::Myocardium));
        assert!(mean(t2, Label::LvBlood) < mean(t2, Label::Myocardium));
    }

    #[test]
    fn bad_configs_name_the_flag() {
        let table = [
            (
                PhantomConfig {
                    cases: 0,
                    ..small()
                },
                "--cases",
            ),
            (
                PhantomConfig {
                    size: [8, 64],
                    ..small()
                },
                "--size",
            ),
            (
                PhantomConfig {
                    slices: [4, 2],
                    ..small()
                },
                "--slices",
            ),
            (
                PhantomConfig {
                    spacing: [1.0, f64::NAN, 1.0],
                    ..small()
                },
                "--spacing",
            ),
        ];
        for (config, flag) in table {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(flag), "{err}");
        }
    }
}
