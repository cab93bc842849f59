//! The job spec: one experiment grid as a JSON file (`jobs/*.json`).
//!
//! A grid trains the shared CASN stage once, then for each **method** (a named variant of the
//! ASAN stage: the paper's ablations and comparators) one or more networks per pathology net,
//! predicts and evaluates the test cases, and compares the methods with paired tests.
//!
//! Reading is strict: an unknown field is refused with its path and the names allowed there
//! (`methods[1]: unknown field `pamm`, expected one of …`), a wrong type with its path, and
//! every value out of its domain by [`JobSpec::validate`] with the field's path. `--set a.b=v`
//! edits the document before it is read (`super::overrides`), so an override is checked exactly
//! like the file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::das::weighting::{ScoreDice, WeightingConfig, WeightingKind};
use crate::data::augment::AugmentConfig;
use crate::data::cases::Sequence;
use crate::data::labels::Target;
use crate::error::{Error, Result};
use crate::train::batches::EpochLength;
use crate::train::config::{
    check_input, default_epoch_length, default_foreground_oversampling, default_score, LossSettings,
};

pub use super::backend::Backend;

/// One experiment grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Names the run (and its Slurm jobs); letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// Every random draw of the grid derives from it (with the stage and task).
    #[serde(default)]
    pub seed: u64,
    pub data: DataSpec,
    #[serde(default)]
    pub scale: Scale,
    #[serde(default)]
    pub networks: Networks,
    /// The search settings methods with a searching weighting use (K, fixed epochs, controller).
    #[serde(default)]
    pub weighting: WeightingConfig,
    #[serde(default)]
    pub ensemble: Ensemble,
    /// The variants compared, in order: the first is the reference of the default comparisons.
    pub methods: Vec<Method>,
    /// How many times each method is trained, each time from another seed (`seeds::replicate`);
    /// the comparisons pair each case's metric averaged over the replicates, and the summary
    /// gives each replicate's means and their spread. The CASNs and the case splits are shared.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub replicates: usize,
    /// Which checkpoint of each ASAN is deployed for prediction.
    #[serde(default)]
    pub deploy: Deploy,
    #[serde(default)]
    pub evaluation: Evaluation,
    #[serde(default)]
    pub statistics: Statistics,
    #[serde(default)]
    pub backend: Backend,
}

/// Where the cases are: a training and a test directory, or one labelled `root` split by seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// Labelled cases for training and validation.
    #[serde(default)]
    pub train: Option<PathBuf>,
    /// Labelled cases to predict and evaluate.
    #[serde(default)]
    pub test: Option<PathBuf>,
    /// One directory of labelled cases, split into training and test by `test_cases`.
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// With `root`: how many cases (drawn with the job's seed) are test cases.
    #[serde(default)]
    pub test_cases: Option<usize>,
    /// Training cases held out for validation (drawn with the job's seed); the paper: 2 of 25.
    #[serde(default = "default_validation_cases")]
    pub validation_cases: usize,
}

fn default_validation_cases() -> usize {
    2
}

/// Sizes shared by the four networks; the defaults are the paper's (§4.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scale {
    /// Filters of the first U-Net level.
    pub base_filters: usize,
    /// Centre crop of each slice (pixels).
    pub crop: [usize; 2],
    /// Pixels added around the LV region's box.
    pub margin: usize,
    /// Network input (a multiple of 16).
    pub input: [usize; 2],
    pub batch_size: usize,
    pub epochs: u64,
    pub learning_rate: f64,
    /// Every network's `epoch_length` (`train::batches`).
    pub epoch_length: EpochLength,
    /// Every network's `foreground_oversampling`.
    pub foreground_oversampling: f64,
    /// Every network's validation `score` (best epoch, DAS reward).
    pub score: ScoreDice,
}

impl Default for Scale {
    fn default() -> Self {
        Scale {
            base_filters: 32,
            crop: [384, 384],
            margin: 10,
            input: [128, 128],
            batch_size: 16,
            epochs: 200,
            learning_rate: 1e-3,
            epoch_length: default_epoch_length(),
            foreground_oversampling: default_foreground_oversampling(),
            score: default_score(),
        }
    }
}

/// Per-network departures from `scale`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Networks {
    pub casn_coarse: NetworkSettings,
    pub casn_fine: NetworkSettings,
    pub scar: NetworkSettings,
    pub scar_edema: NetworkSettings,
}

/// What one network may set differently from the grid's scale.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSettings {
    pub base_filters: Option<usize>,
    pub batch_size: Option<usize>,
    pub epochs: Option<u64>,
    pub learning_rate: Option<f64>,
    pub augment: Option<AugmentConfig>,
    pub loss: LossSettings,
}

/// Ensembles (§3.2.3): members differ in their seed and in a small draw around β₀.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ensemble {
    /// Networks per net in a method with `"ensemble": true`.
    pub members: usize,
    /// Half-width of the uniform draw around β₀ per member.
    pub beta_jitter: f64,
}

impl Default for Ensemble {
    fn default() -> Self {
        Ensemble {
            members: 5,
            beta_jitter: 0.05,
        }
    }
}

/// One variant of the ASAN stage (paper Table 1: base, pam, pam_ds, pam_ds_dcl, pam_das,
/// pam_das_dcl and the ensemble; Tables 7–8: the weighting comparators).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Method {
    /// How tables and comparisons name it: letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// PAM gates on the skip connections (Eq. 10–11).
    #[serde(default = "yes")]
    pub pam: bool,
    /// Four supervision heads (Eq. 4); off: one head.
    #[serde(default = "yes")]
    pub deep_supervision: bool,
    /// The hybrid loss, Dice plus λ_CE·cross-entropy (Eq. 3, "DCL"); off: Dice only.
    #[serde(default = "yes")]
    pub dcl: bool,
    /// How the heads are weighted; absent: equal weights (one head without deep supervision).
    /// The searching kinds take the grid's `weighting` settings.
    #[serde(default)]
    pub weighting: Option<WeightingKind>,
    /// α for `weighting: fixed`, coarse to fine; must sum to 1 (Eq. 4).
    #[serde(default)]
    pub alpha: Option<[f64; 4]>,
    /// Train `ensemble.members` networks per net and vote; off: one network per net.
    #[serde(default)]
    pub ensemble: bool,
    /// The ASANs' input sequences (Table 3); absent: DE and T2.
    #[serde(default)]
    pub sequences: Option<Vec<Sequence>>,
    /// Fields of this method's ASAN train configs, as a train config file names them, merged
    /// over what the grid builds (`super::patch`): the protocol options, e.g.
    /// `{"loss": {"ce_weight_auto": 0}}` or `{"weighting": {"controller": {"learning_rate": 0.1}}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<serde_json::Value>,
    /// Cut each test slice's ROI around the coarse LV mask's largest connected component only
    /// (`awsnet predict --largest-component`); off: around the whole mask, as the paper does.
    /// Only prediction changes: a method that differs from another only here trains the same
    /// networks bit for bit (seeds follow the run seed and the member, not the method).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub largest_component: bool,
    /// Train the ASANs on the ROIs and LV masks the grid's CASNs predict in the training and
    /// validation slices, as inference cuts them at test time (with `largest_component` too);
    /// off: on the ground truth's, as the paper does. The ASAN stages then wait for the CASNs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub casn_rois: bool,
    /// With `casn_rois`: split the training cases into this many folds and have each fold's
    /// LV found by CASNs trained without it (2·k more CASN trainings, shared by the methods
    /// with the same k), so the ASANs train on ROIs as good as a test case gets; absent: the
    /// grid's CASNs, which trained on those very cases, find it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub casn_folds: Option<usize>,
}

fn yes() -> bool {
    true
}

/// serde's default for counts that are one unless set (here and in `super::plan`).
pub(super) fn one() -> usize {
    1
}

pub(super) fn is_one(n: &usize) -> bool {
    *n == 1
}

/// Which checkpoint of a trained ASAN predicts the test cases (`train::deploy`).
pub use crate::train::deploy::Deploy;

/// What is measured on the test cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Evaluation {
    pub targets: Vec<Target>,
}

impl Default for Evaluation {
    fn default() -> Self {
        Evaluation {
            targets: vec![Target::Scar, Target::ScarEdema],
        }
    }
}

/// Which pairs of methods are tested, on which metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Statistics {
    /// Metrics compared, as `awsnet stats` names them (`scar_dice`, `scar_edema_hd`, …).
    pub metrics: Vec<String>,
    /// Pairs `[a, b]` of method names; absent: every method against the first. All pairs and
    /// metrics together form one Holm family.
    pub comparisons: Option<Vec<[String; 2]>>,
}

impl Default for Statistics {
    fn default() -> Self {
        Statistics {
            metrics: vec!["scar_dice".into(), "scar_edema_dice".into()],
            comparisons: None,
        }
    }
}

/// Metrics `statistics.metrics` may name (the per-case fields of an evaluation).
const METRICS: [&str; 5] = ["dice", "jaccard", "hd", "hd95", "assd"];

impl JobSpec {
    /// Read a job file, apply `--set` overrides, and check every field.
    pub fn read(path: &Path, overrides: &[String]) -> Result<JobSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
        let mut document: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::input(path, format!("not JSON: {e}")))?;
        for assignment in overrides {
            super::overrides::apply(&mut document, assignment)?;
        }
        let spec = from_document(&document).map_err(|problem| {
            let origin = if overrides.is_empty() {
                String::new()
            } else {
                format!(" (after --set {})", overrides.join(", --set "))
            };
            Error::input(path, format!("{problem}{origin}"))
        })?;
        spec.validate().map_err(|e| match e {
            Error::InvalidArgument { field, problem } => {
                Error::input(path, format!("{field}: {problem}"))
            }
            other => other,
        })?;
        Ok(spec)
    }

    /// Check what serde cannot: domains, names, references between sections.
    pub fn validate(&self) -> Result<()> {
        check_name("name", &self.name)?;
        self.data.validate()?;
        self.scale.validate()?;
        if self.methods.is_empty() {
            return Err(Error::invalid(
                "methods",
                "is empty: a grid needs at least one method",
            ));
        }
        let mut names = BTreeSet::new();
        for (i, method) in self.methods.iter().enumerate() {
            method.validate(&format!("methods[{i}]"))?;
            if !names.insert(method.name.as_str()) {
                return Err(Error::invalid(
                    format!("methods[{i}].name"),
                    format!("{} names two methods", method.name),
                ));
            }
        }
        if !(1..=50).contains(&self.replicates) {
            return Err(Error::invalid(
                "replicates",
                format!("{} is not in 1..=50", self.replicates),
            ));
        }
        if self.ensemble.members == 0 {
            return Err(Error::invalid("ensemble.members", "must be at least 1"));
        }
        if !(self.ensemble.beta_jitter.is_finite() && self.ensemble.beta_jitter >= 0.0) {
            return Err(Error::invalid(
                "ensemble.beta_jitter",
                "must be a non-negative number",
            ));
        }
        if self.evaluation.targets.is_empty() {
            return Err(Error::invalid("evaluation.targets", "is empty"));
        }
        self.check_weighting()?;
        self.backend.validate()?;
        self.check_statistics(&names)
    }

    fn check_weighting(&self) -> Result<()> {
        let w = &self.weighting;
        if w.kind != WeightingKind::default() || w.alpha.is_some() {
            return Err(Error::invalid(
                "weighting",
                "holds the settings methods share; name the kind (and α) per method",
            ));
        }
        // The ASANs' schedule: their own epochs if the job sets them, else the scale's.
        let epochs = self.networks.scar.epochs.unwrap_or(self.scale.epochs);
        for (i, method) in self.methods.iter().enumerate() {
            if let Some(config) = method.weighting_config(w, 0.0) {
                config.validate(epochs).map_err(|e| match e {
                    Error::InvalidArgument { field, problem } => Error::invalid(
                        field,
                        format!("{problem} (for method {}, methods[{i}])", method.name),
                    ),
                    other => other,
                })?;
            }
        }
        Ok(())
    }

    fn check_statistics(&self, names: &BTreeSet<&str>) -> Result<()> {
        for (i, metric) in self.statistics.metrics.iter().enumerate() {
            let known = self.evaluation.targets.iter().any(|t| {
                let target = target_name(*t);
                METRICS.iter().any(|m| *metric == format!("{target}_{m}"))
            });
            if !known {
                return Err(Error::invalid(
                    format!("statistics.metrics[{i}]"),
                    format!(
                        "{metric} is not a metric of the evaluated targets; use TARGET_METRIC \
                         with a target of evaluation.targets and a metric among {}",
                        METRICS.join(", ")
                    ),
                ));
            }
        }
        for (i, pair) in self.statistics.comparisons.iter().flatten().enumerate() {
            for (j, name) in pair.iter().enumerate() {
                if !names.contains(name.as_str()) {
                    return Err(Error::invalid(
                        format!("statistics.comparisons[{i}][{j}]"),
                        format!("{name} is not a method of this job"),
                    ));
                }
            }
            if pair[0] == pair[1] {
                return Err(Error::invalid(
                    format!("statistics.comparisons[{i}]"),
                    "compares a method with itself",
                ));
            }
        }
        Ok(())
    }

    /// The comparisons the statistics stage runs: as given, or every method against the first.
    pub fn comparisons(&self) -> Vec<[String; 2]> {
        match &self.statistics.comparisons {
            Some(pairs) => pairs.clone(),
            None => self.methods[1..]
                .iter()
                .map(|m| [self.methods[0].name.clone(), m.name.clone()])
                .collect(),
        }
    }
}

/// A target's name as metric prefixes spell it.
pub fn target_name(target: Target) -> &'static str {
    match target {
        Target::LvRegion => "lv_region",
        Target::Scar => "scar",
        Target::ScarEdema => "scar_edema",
        Target::Myo => "myo",
        Target::Lv => "lv",
    }
}

/// Deserialise a job document, naming the path of whatever is wrong.
fn from_document(document: &serde_json::Value) -> std::result::Result<JobSpec, String> {
    serde_path_to_error::deserialize(document).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })
}

fn check_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "{name:?}: use 1 to 64 letters, digits, '-', '_' or '.' (not first), so it can \
                 name files and Slurm jobs"
            ),
        ))
    }
}

impl DataSpec {
    fn validate(&self) -> Result<()> {
        match (&self.train, &self.test, &self.root) {
            (Some(_), Some(_), None) => {
                if self.test_cases.is_some() {
                    return Err(Error::invalid(
                        "data.test_cases",
                        "splits `root`; with `train` and `test` directories it is not used",
                    ));
                }
            }
            (None, None, Some(_)) => match self.test_cases {
                None | Some(0) => {
                    return Err(Error::invalid(
                        "data.test_cases",
                        "with `root`, say how many cases are held out for testing (at least 1)",
                    ))
                }
                Some(_) => {}
            },
            _ => {
                return Err(Error::invalid(
                    "data",
                    "give `train` and `test` directories, or one `root` with `test_cases`",
                ))
            }
        }
        Ok(())
    }

    /// Point the job at `dir` (`--data DIR`): it becomes `root` for a job that splits one
    /// directory, and the base of relative `train` and `test` directories otherwise.
    pub fn relocate(&mut self, dir: &Path) {
        if self.root.is_some() {
            self.root = Some(dir.to_path_buf());
        } else {
            self.resolve(dir);
        }
    }

    /// Resolve relative directories against `base` (the job file's directory).
    pub fn resolve(&mut self, base: &Path) {
        for dir in [&mut self.train, &mut self.test, &mut self.root]
            .into_iter()
            .flatten()
        {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
    }
}

impl Scale {
    fn validate(&self) -> Result<()> {
        check_input("scale.input", self.input)?;
        for (field, value) in [
            ("scale.base_filters", self.base_filters as u64),
            ("scale.batch_size", self.batch_size as u64),
            ("scale.epochs", self.epochs),
            ("scale.crop", self.crop[0].min(self.crop[1]) as u64),
        ] {
            if value == 0 {
                return Err(Error::invalid(field, "must be at least 1"));
            }
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::invalid(
                "scale.learning_rate",
                "must be a positive number",
            ));
        }
        self.epoch_length.validate().map_err(|_| {
            Error::invalid(
                "scale.epoch_length",
                "0 batches trains nothing: give at least one, or \"pass\"",
            )
        })?;
        crate::train::batches::check_fraction(
            "scale.foreground_oversampling",
            self.foreground_oversampling,
        )
    }
}

impl Method {
    /// The `weighting` section of this method's ASAN configs: the grid's shared settings for the
    /// method's kind, with its α and the member's jitter; None without a weighting.
    pub fn weighting_config(
        &self,
        shared: &WeightingConfig,
        beta_jitter: f64,
    ) -> Option<WeightingConfig> {
        let kind = self.weighting?;
        Some(WeightingConfig {
            alpha: self.alpha,
            beta_jitter,
            ..shared.for_kind(kind)
        })
    }

    fn validate(&self, at: &str) -> Result<()> {
        check_name(&format!("{at}.name"), &self.name)?;
        let field = |f: &str| format!("{at}.{f}");
        if self.weighting.is_some() && !self.deep_supervision {
            return Err(Error::invalid(
                field("weighting"),
                "weights four supervision heads; this method has deep_supervision off",
            ));
        }
        if self.alpha.is_some() && self.weighting != Some(WeightingKind::Fixed) {
            return Err(Error::invalid(
                field("alpha"),
                "only `weighting: fixed` takes weights",
            ));
        }
        match self.casn_folds {
            Some(_) if !self.casn_rois => Err(Error::invalid(
                field("casn_folds"),
                "splits the CASNs that casn_rois trains on; set casn_rois too",
            )),
            Some(k) if k < 2 => Err(Error::invalid(
                field("casn_folds"),
                "must be at least 2 (leave it out for the grid's own CASNs)",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job() -> serde_json::Value {
        json!({
            "name": "t",
            "data": { "train": "tr", "test": "te" },
            "weighting": { "epochs_fixed": 1, "samples": 2 },
            "scale": { "epochs": 3 },
            "methods": [
                { "name": "base", "pam": false, "deep_supervision": false },
                { "name": "pam_das", "weighting": "das" }
            ]
        })
    }

    fn read(document: serde_json::Value, overrides: &[&str]) -> Result<JobSpec> {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("job.json");
        std::fs::write(&path, document.to_string()).unwrap();
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        JobSpec::read(&path, &overrides)
    }

    #[test]
    fn a_good_job_reads_with_defaults() {
        let spec = read(job(), &[]).unwrap();
        assert_eq!(spec.scale.base_filters, 32);
        assert_eq!(spec.data.validation_cases, 2);
        assert!(spec.methods[1].dcl && spec.methods[1].pam);
        assert_eq!(
            spec.comparisons(),
            vec![["base".to_string(), "pam_das".to_string()]]
        );
        let das = spec.methods[1]
            .weighting_config(&spec.weighting, 0.0)
            .unwrap();
        assert_eq!((das.kind, das.samples), (WeightingKind::Das, 2));
        let overridden =
            read(job(), &["scale.epochs=5", "methods.pam_das.weighting=norl"]).unwrap();
        assert_eq!(overridden.scale.epochs, 5);
        assert_eq!(overridden.methods[1].weighting, Some(WeightingKind::Norl));
    }

    /// Every mistake names where it is and what would be right.
    #[test]
    fn bad_jobs_are_refused_naming_the_field() {
        let mut unknown = job();
        unknown["methods"][1]["pamm"] = json!(true);
        let mut wrong_type = job();
        wrong_type["scale"]["epochs"] = json!("many");
        let mut empty = job();
        empty["methods"] = json!([]);
        let mut twice = job();
        twice["methods"][1]["name"] = json!("base");
        let mut no_data = job();
        no_data["data"] = json!({ "train": "tr" });
        let mut alpha = job();
        alpha["methods"][1] =
            json!({ "name": "f", "weighting": "fixed", "alpha": [0.5, 0.5, 0.5, 0.5] });
        let mut stats = job();
        stats["statistics"] = json!({ "comparisons": [["base", "nope"]] });
        let mut metric = job();
        metric["statistics"] = json!({ "metrics": ["scar_dic"] });
        let mut search = job();
        search["weighting"]["epochs_fixed"] = json!(3);
        let mut folds_alone = job();
        folds_alone["methods"][1]["casn_folds"] = json!(3);
        let mut one_fold = job();
        one_fold["methods"][1]["casn_rois"] = json!(true);
        one_fold["methods"][1]["casn_folds"] = json!(1);
        let table: Vec<(serde_json::Value, &[&str], &[&str])> = vec![
            (
                unknown,
                &[],
                &["methods[1].pamm", "unknown field `pamm`", "`weighting`"],
            ),
            (wrong_type, &[], &["scale.epochs", "invalid type: string"]),
            (empty, &[], &["methods", "at least one method"]),
            (twice, &[], &["methods[1].name", "base names two methods"]),
            (no_data, &[], &["data", "`root` with `test_cases`"]),
            (
                alpha,
                &[],
                &["weighting.alpha", "must sum to 1", "methods[1]"],
            ),
            (
                stats,
                &[],
                &["statistics.comparisons[0][1]", "nope is not a method"],
            ),
            (metric, &[], &["statistics.metrics[0]", "scar_dic"]),
            (search, &[], &["weighting.epochs_fixed", "leaves none"]),
            (
                folds_alone,
                &[],
                &["methods[1].casn_folds", "set casn_rois too"],
            ),
            (one_fold, &[], &["methods[1].casn_folds", "at least 2"]),
            (
                job(),
                &["scale.epoch=3"],
                &["scale.epoch", "unknown field", "--set scale.epoch=3"],
            ),
            (
                job(),
                &["methods.9.pam=true"],
                &["--set methods.9.pam=true", "no [9]"],
            ),
        ];
        for (document, overrides, fragments) in table {
            let err = read(document, overrides).unwrap_err();
            assert_eq!(err.exit_code(), crate::error::EXIT_USER, "{err}");
            let text = err.to_string();
            for fragment in fragments {
                assert!(text.contains(fragment), "{fragment:?} not in: {text}");
            }
        }
    }
}
