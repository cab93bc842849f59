//! Where a grid's tasks run: the job spec's `backend` section.
//!
//! The backend never changes what a task computes, only where and how it is started, so it
//! enters no stage id: the same grid run locally and on Slurm is the same run, with the same
//! `summary.json`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where the grid's tasks run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Backend {
    /// This machine, with `workers` processes (default: the cores divided by the threads a task
    /// uses).
    Local {
        #[serde(default)]
        workers: Option<usize>,
    },
    /// A Slurm cluster: one `sbatch` array per stage, the whole DAG queued at once.
    Slurm(Box<SlurmSettings>),
}

impl Default for Backend {
    fn default() -> Self {
        Backend::Local { workers: None }
    }
}

/// `--backend` on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    Local,
    Slurm,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Local => "local",
            BackendKind::Slurm => "slurm",
        }
    }
}

impl Backend {
    /// This backend, or `kind`'s with its defaults when the spec names the other one.
    pub fn with_kind(self, kind: Option<BackendKind>) -> Backend {
        match (kind, self) {
            (Some(BackendKind::Local), Backend::Slurm(_)) => Backend::Local { workers: None },
            (Some(BackendKind::Slurm), Backend::Local { .. }) => Backend::Slurm(Box::default()),
            (_, backend) => backend,
        }
    }

    pub fn validate(&self) -> Result<()> {
        match self {
            Backend::Local { workers: Some(0) } => Err(Error::invalid(
                "backend.workers",
                "must be at least 1 (or left out: one per core)",
            )),
            Backend::Local { .. } => Ok(()),
            Backend::Slurm(slurm) => slurm.validate(),
        }
    }
}

/// What each array task asks Slurm for, and how it is started. Every field is optional; the
/// defaults suit a CPU partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmSettings {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// Generic resources per training or prediction task, e.g. `gpu:1` or `gpu:a100:1`.
    pub gres: Option<String>,
    /// GPUs per training or prediction task (`--gpus`), e.g. `1` or `"a100:1"`; instead of
    /// `gres`.
    #[serde(deserialize_with = "count_or_text")]
    pub gpus: Option<String>,
    /// CPU cores per training or prediction task (`--cpus-per-task`).
    pub cpus: usize,
    /// Memory per training or prediction task (`--mem`), e.g. `16G`.
    pub mem: String,
    /// Time limit per training or prediction task (`--time`), e.g. `24:00:00` or `2-00:00:00`.
    pub time: String,
    /// The reducers (DAS update, evaluation, statistics) need no GPU and little time.
    pub reducer: ReducerResources,
    /// At most this many tasks of one array run at once (`--array=…%throttle`).
    pub throttle: Option<usize>,
    /// Shell lines run before each task, e.g. `module load cuda/12.4`.
    pub setup: Vec<String>,
    /// More `sbatch` options for every job, e.g. `--constraint=a100` or `--exclude=node7`.
    pub sbatch_args: Vec<String>,
    /// Seconds before its time limit that a task is told to save and requeue itself
    /// (`--signal=B:USR2@seconds`): more than one epoch's time.
    pub signal_seconds: u64,
    /// The awsnet binary on the compute nodes [default: the one that submits].
    pub awsnet: Option<PathBuf>,
    /// A directory with edited copies of `array.sbatch` and `reducer.sbatch` [default: the
    /// templates built in, those of the repository's `sbatch/`].
    pub templates: Option<PathBuf>,
    /// How DAS epochs run: `arrays` (an array of children and an update job per epoch) or
    /// `held` (one array of workers for the whole search) [default: held where tasks get
    /// GPUs, arrays otherwise].
    pub das_mode: Option<DasMode>,
    /// Held mode: a worker whose heartbeat has not moved for this long is taken for lost, and
    /// the child it was training is trained by another.
    pub held_stale_seconds: u64,
}

/// How a search's epochs are queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DasMode {
    Arrays,
    Held,
}

impl Default for SlurmSettings {
    fn default() -> Self {
        SlurmSettings {
            partition: None,
            account: None,
            qos: None,
            gres: None,
            gpus: None,
            cpus: 4,
            mem: "16G".into(),
            time: "24:00:00".into(),
            reducer: ReducerResources::default(),
            throttle: None,
            setup: Vec::new(),
            sbatch_args: Vec::new(),
            signal_seconds: 300,
            awsnet: None,
            templates: None,
            das_mode: None,
            held_stale_seconds: 120,
        }
    }
}

/// What a reducer task asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReducerResources {
    pub cpus: usize,
    pub mem: String,
    pub time: String,
}

impl Default for ReducerResources {
    fn default() -> Self {
        ReducerResources {
            cpus: 2,
            mem: "8G".into(),
            time: "04:00:00".into(),
        }
    }
}

impl SlurmSettings {
    /// The DAS mode in effect.
    pub fn das_mode(&self) -> DasMode {
        self.das_mode.unwrap_or(if self.uses_gpus() {
            DasMode::Held
        } else {
            DasMode::Arrays
        })
    }

    /// Whether training and prediction tasks get a GPU (and so run with `--device cuda`).
    pub fn uses_gpus(&self) -> bool {
        self.gpus.is_some()
            || self
                .gres
                .as_deref()
                .is_some_and(|g| g.split(',').any(|r| r.starts_with("gpu")))
    }

    fn validate(&self) -> Result<()> {
        // Values end up on `#SBATCH` lines of a shell script: one line each, no shell syntax
        // that would change what the line means.
        let words = [
            ("backend.partition", &self.partition),
            ("backend.account", &self.account),
            ("backend.qos", &self.qos),
            ("backend.gres", &self.gres),
            ("backend.gpus", &self.gpus),
        ];
        for (field, value) in words {
            if let Some(value) = value {
                check_word(field, value)?;
            }
        }
        if self.gres.is_some() && self.gpus.is_some() {
            return Err(Error::invalid(
                "backend.gpus",
                "give either gres (e.g. \"gpu:1\") or gpus, not both",
            ));
        }
        check_resources("backend", self.cpus, &self.mem, &self.time)?;
        check_resources(
            "backend.reducer",
            self.reducer.cpus,
            &self.reducer.mem,
            &self.reducer.time,
        )?;
        if self.throttle == Some(0) {
            return Err(Error::invalid("backend.throttle", "must be at least 1"));
        }
        if self.held_stale_seconds == 0 {
            return Err(Error::invalid(
                "backend.held_stale_seconds",
                "must be at least 1",
            ));
        }
        if self.signal_seconds == 0 {
            return Err(Error::invalid(
                "backend.signal_seconds",
                "must be at least 1 (seconds before the time limit)",
            ));
        }
        for (i, line) in self.setup.iter().enumerate() {
            if line.contains('\n') {
                return Err(Error::invalid(
                    format!("backend.setup[{i}]"),
                    "one shell line per entry",
                ));
            }
        }
        for (i, arg) in self.sbatch_args.iter().enumerate() {
            let field = format!("backend.sbatch_args[{i}]");
            check_word(&field, arg)?;
            if !arg.starts_with("--") {
                return Err(Error::invalid(
                    field,
                    format!("{arg:?} is not a long sbatch option such as --constraint=a100"),
                ));
            }
        }
        Ok(())
    }
}

/// `1` or `"a100:1"`: a count may be written as a number.
fn count_or_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum CountOrText {
        Count(u64),
        Text(String),
    }
    Ok(
        Option::<CountOrText>::deserialize(deserializer)?.map(|v| match v {
            CountOrText::Count(n) => n.to_string(),
            CountOrText::Text(t) => t,
        }),
    )
}

fn check_word(field: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | ',' | '=' | '/' | '+')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{value:?}: expected letters, digits and - _ . : , = / + only"),
        ))
    }
}

fn check_resources(at: &str, cpus: usize, mem: &str, time: &str) -> Result<()> {
    if cpus == 0 {
        return Err(Error::invalid(format!("{at}.cpus"), "must be at least 1"));
    }
    let digits = mem.trim_end_matches(['K', 'M', 'G', 'T']);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::invalid(
            format!("{at}.mem"),
            format!("{mem:?}: expected a size such as 16G or 4000M"),
        ));
    }
    let ok = !time.is_empty()
        && time
            .chars()
            .all(|c| c.is_ascii_digit() || c == ':' || c == '-')
        && time.chars().next().is_some_and(|c| c.is_ascii_digit());
    if !ok {
        return Err(Error::invalid(
            format!("{at}.time"),
            format!("{time:?}: expected a Slurm time such as 24:00:00 or 2-00:00:00"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slurm(json: serde_json::Value) -> std::result::Result<(), String> {
        let backend: Backend = serde_json::from_value(json).map_err(|e| e.to_string())?;
        backend.validate().map_err(|e| e.to_string())
    }

    #[test]
    fn settings_are_checked_field_by_field() {
        use serde_json::json;
        let cases = [
            (json!({"kind": "slurm"}), None),
            (
                json!({"kind": "slurm", "partition": "gpu", "gres": "gpu:a100:1", "setup": ["module load cuda"]}),
                None,
            ),
            (
                json!({"kind": "slurm", "partition": "gpu; rm -rf ~"}),
                Some("invalid backend.partition"),
            ),
            (
                json!({"kind": "slurm", "gres": "gpu:1", "gpus": "1"}),
                Some("either gres"),
            ),
            (json!({"kind": "slurm", "mem": "lots"}), Some("backend.mem")),
            (
                json!({"kind": "slurm", "reducer": {"time": "soon"}}),
                Some("backend.reducer.time"),
            ),
            (
                json!({"kind": "slurm", "sbatch_args": ["-C a100"]}),
                Some("backend.sbatch_args[0]"),
            ),
            (json!({"kind": "slurm", "throttle": 0}), Some("throttle")),
            (
                json!({"kind": "slurm", "gpu": "1"}),
                Some("unknown field `gpu`"),
            ),
            (
                json!({"kind": "local", "workers": 0}),
                Some("backend.workers"),
            ),
        ];
        for (json, expected) in cases {
            let got = slurm(json.clone());
            match expected {
                None => assert_eq!(got, Ok(()), "{json}"),
                Some(text) => {
                    let err = got.expect_err(&json.to_string());
                    assert!(err.contains(text), "{json}: {err}");
                }
            }
        }
    }

    #[test]
    fn a_gpu_request_means_cuda_tasks() {
        let mut s = SlurmSettings::default();
        assert!(!s.uses_gpus());
        s.gres = Some("gpu:a100:2".into());
        assert!(s.uses_gpus());
        s.gres = Some("tmpdisk:10".into());
        assert!(!s.uses_gpus());
        s.gres = None;
        s.gpus = Some("1".into());
        assert!(s.uses_gpus());
        assert_eq!(s.das_mode(), DasMode::Held, "held by default on GPUs");
        s.das_mode = Some(DasMode::Arrays);
        assert_eq!(s.das_mode(), DasMode::Arrays);
        assert_eq!(SlurmSettings::default().das_mode(), DasMode::Arrays);
    }
}
