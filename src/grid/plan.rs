//! The planner: a job spec and its inputs become a DAG of stages, each an array of tasks.
//!
//! ```text
//! casn_coarse ─┐
//! casn_fine ───┼──────────────────────────────────────────────┐
//!              │  per method:                                 ▼
//!              └─ train (members × {scar, scar_edema})  ─▶ predict (members) ─▶ evaluate ─┐
//!                 or, for a searching weighting:                                          ├▶ stats
//!                 warmup ─▶ sample[1] ─▶ update[1] ─▶ … ─▶ update[T] ─▶ predict ─▶ evaluate ┘
//! ```
//!
//! - `sample[t]` is an array of members × 2 nets × K children (§3.2.1: the unit that runs in
//!   parallel), `update[t]` one reducer task that closes epoch t for every member and net.
//! - A stage's id is the sha256 of its kind, its work (the configs that affect it, with the
//!   data's content hash in place of its path), and its parents' ids. Identical work has one id:
//!   the CASN stages are shared by every method, and a rerun (or tonight's run on unchanged
//!   data) finds them done.
//! - Every seed is in the work: a member's training seed derives from the job's seed and the
//!   member's index (`super::seeds`), so the same member trains identically in whichever stage
//!   runs its epochs.
//! - With `replicates` > 1 each method's chain up to `predict` is planned once per replicate
//!   (`pam_das/seed2/warmup`, …), its members seeded from the replicate's seed; one `evaluate`
//!   takes every replicate's predictions and compares each case's mean over them.
//! - A method with `casn_rois` trains its ASANs on what the CASN stages predict, so its first
//!   ASAN stage (`train` or `warmup`) also waits for both CASN stages, and its configs name their
//!   run directories (relative to the run directory; the task roots them).
//!
//! Planning reads no file: it is a pure function of the spec and the gathered [`Inputs`], and
//! takes milliseconds for grids of 10⁴ tasks (`cargo bench --bench plan_grid`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::inputs::Inputs;
use super::seeds;
use super::spec::{Deploy, JobSpec, Method, NetworkSettings};
use crate::data::labels::Target;
use crate::error::{Error, Result};
use crate::train::config::{CasnFold, CasnRois, TrainConfig};
use crate::train::samples::{Network, SampleGeometry};

/// The two ASAN nets, in task order (§3.2: scar, and scar + edema).
pub const ASAN_NETS: [Network; 2] = [Network::Scar, Network::ScarEdema];

/// What a stage's tasks do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Work {
    /// Train one CASN network for its whole schedule (one task).
    Casn { config: Box<TrainConfig> },
    /// Train every member × net of a method for epochs `from..until` (task = member × 2 + net):
    /// a whole schedule, or a search's fixed warm-up.
    Train {
        method: String,
        /// Which of the job's `replicates` (0: the first, absent from plans and stage ids).
        #[serde(default, skip_serializing_if = "is_zero")]
        replicate: usize,
        configs: Vec<TrainConfig>,
        from: u64,
        until: u64,
    },
    /// Children of auto-weighted epoch `epoch` (0-based): task = (member × 2 + net) × K + k.
    Sample {
        method: String,
        /// Which of the job's `replicates` (0: the first, absent from plans and stage ids).
        #[serde(default, skip_serializing_if = "is_zero")]
        replicate: usize,
        configs: Vec<TrainConfig>,
        epoch: u64,
    },
    /// Close auto-weighted epoch `epoch` for every member and net (one reducer task).
    Update {
        method: String,
        /// Which of the job's `replicates` (0: the first, absent from plans and stage ids).
        #[serde(default, skip_serializing_if = "is_zero")]
        replicate: usize,
        configs: Vec<TrainConfig>,
        epoch: u64,
    },
    /// Segment the test cases with member `task`'s networks, deployed as `deploy` says.
    Predict {
        method: String,
        /// Which of the job's `replicates` (0: the first, absent from plans and stage ids).
        #[serde(default, skip_serializing_if = "is_zero")]
        replicate: usize,
        members: usize,
        test: PathBuf,
        cases: Vec<String>,
        deploy: Deploy,
        /// `InferOptions::largest_component`; absent from plans (and stage ids) when off.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        largest_component: bool,
    },
    /// Vote the members (if several) and evaluate against the test labels (one task); with
    /// several replicates, each replicate's prediction (one parent each), then their mean per case.
    Evaluate {
        method: String,
        members: usize,
        #[serde(
            default = "super::spec::one",
            skip_serializing_if = "super::spec::is_one"
        )]
        replicates: usize,
        test: PathBuf,
        cases: Vec<String>,
        targets: Vec<Target>,
    },
    /// Paired tests across methods and `results/summary.json` (one task).
    Stats {
        methods: Vec<String>,
        comparisons: Vec<[String; 2]>,
        metrics: Vec<String>,
    },
}

impl Work {
    /// Whether its tasks compute with tensors (train or predict), and so record on what.
    pub fn computes(&self) -> bool {
        matches!(
            self,
            Work::Casn { .. } | Work::Train { .. } | Work::Sample { .. } | Work::Predict { .. }
        )
    }
}

/// One stage of the DAG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// sha256 (hex) of kind, work and parents.
    pub id: String,
    /// For people: `casn_coarse`, `pam_das/sample[3]`, …
    pub label: String,
    pub tasks: usize,
    /// Ids of the stages whose outputs this one reads.
    pub parents: Vec<String>,
    pub work: Work,
}

/// A whole grid, as `RUN/plan.json` keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// sha256 of the job's name and every stage id: names the run by its content.
    pub run: String,
    pub job: JobSpec,
    pub inputs: Inputs,
    /// Stages in an order where parents come first.
    pub stages: Vec<Stage>,
}

impl Plan {
    pub fn tasks(&self) -> usize {
        self.stages.iter().map(|s| s.tasks).sum()
    }

    pub fn stage(&self, id: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.id == id)
    }
}

impl Stage {
    /// What a search's held workers are called (Slurm's `das_mode: held`), named after the
    /// search's sample stages: `pam_das/held`, or `pam_das/seed2/held` with replicates.
    pub fn held_label(&self) -> String {
        let chain = self.label.rsplit_once("/sample[").map(|(chain, _)| chain);
        format!("{}/held", chain.unwrap_or(&self.label))
    }
}

/// Plan the grid `job` over `inputs`.
pub fn plan(job: &JobSpec, inputs: &Inputs) -> Result<Plan> {
    let mut planner = Planner {
        job,
        inputs,
        stages: Vec::new(),
    };
    let coarse = planner.casn(Network::CasnCoarse, "casn_coarse")?;
    let fine = planner.casn(Network::CasnFine, "casn_fine")?;
    let mut evaluated = Vec::new();
    for method in &job.methods {
        let members = planner.members(method);
        let mut predicted = Vec::with_capacity(job.replicates);
        for replicate in 0..job.replicates {
            let trained = planner.asan(method, replicate, [&coarse, &fine])?;
            predicted.push(planner.add(
                format!("{}/predict", planner.prefix(method, replicate)),
                members,
                vec![coarse.clone(), fine.clone(), trained],
                Work::Predict {
                    method: method.name.clone(),
                    replicate,
                    members,
                    test: inputs.test.dir.clone(),
                    cases: inputs.test.ids.clone(),
                    deploy: job.deploy,
                    largest_component: method.largest_component,
                },
            ));
        }
        evaluated.push(planner.add(
            format!("{}/evaluate", method.name),
            1,
            predicted,
            Work::Evaluate {
                method: method.name.clone(),
                members,
                replicates: job.replicates,
                test: inputs.test.dir.clone(),
                cases: inputs.test.ids.clone(),
                targets: job.evaluation.targets.clone(),
            },
        ));
    }
    planner.add(
        "stats".into(),
        1,
        evaluated,
        Work::Stats {
            methods: job.methods.iter().map(|m| m.name.clone()).collect(),
            comparisons: job.comparisons(),
            metrics: job.statistics.metrics.clone(),
        },
    );
    // Named by its content, like its stages: the same grid on the same cases is the same run
    // wherever its files are.
    let ids: Vec<&str> = planner.stages.iter().map(|s| s.id.as_str()).collect();
    let run = digest(&[job.name.as_bytes(), ids.join(",").as_bytes()]);
    Ok(Plan {
        run,
        job: job.clone(),
        inputs: inputs.clone(),
        stages: planner.stages,
    })
}

struct Planner<'a> {
    job: &'a JobSpec,
    inputs: &'a Inputs,
    stages: Vec<Stage>,
}

impl Planner<'_> {
    /// Add a stage (once: identical work under identical parents is one stage) and return its id.
    fn add(&mut self, label: String, tasks: usize, parents: Vec<String>, work: Work) -> String {
        let id = stage_id(&work, &parents, self.inputs);
        if !self.stages.iter().any(|s| s.id == id) {
            self.stages.push(Stage {
                id: id.clone(),
                label,
                tasks,
                parents,
                work,
            });
        }
        id
    }

    fn members(&self, method: &Method) -> usize {
        seeds::members_of(self.job, method)
    }

    /// The start of a method's stage labels: `pam_das`, or `pam_das/seed2` for the second of
    /// several replicates (counting from 1, as people do).
    fn prefix(&self, method: &Method, replicate: usize) -> String {
        if self.job.replicates > 1 {
            format!("{}/seed{}", method.name, replicate + 1)
        } else {
            method.name.clone()
        }
    }

    fn casn(&mut self, net: Network, label: &str) -> Result<String> {
        self.casn_without(net, label, &[])
    }

    /// A CASN stage trained on the training cases but `held`.
    fn casn_without(&mut self, net: Network, label: &str, held: &[String]) -> Result<String> {
        let settings = match net {
            Network::CasnCoarse => &self.job.networks.casn_coarse,
            _ => &self.job.networks.casn_fine,
        };
        let mut config = self.train_config(net, settings, seeds::casn(self.job.seed));
        if !held.is_empty() {
            let kept = |ids: &[String]| -> Vec<String> {
                ids.iter()
                    .filter(|id| !held.contains(id))
                    .cloned()
                    .collect()
            };
            config.cases = Some(kept(&self.inputs.train.ids));
            config.validation_cases = kept(&self.inputs.validation);
        }
        config.validate().map_err(|e| in_network(e, label))?;
        Ok(self.add(
            label.into(),
            1,
            Vec::new(),
            Work::Casn {
                config: Box::new(config),
            },
        ))
    }

    /// The ASAN stages of `method`; returns the id of the last (whose outputs are the trained
    /// members). `casns` are the coarse and fine CASN stages, which its `casn_rois` read.
    fn asan(&mut self, method: &Method, replicate: usize, casns: [&str; 2]) -> Result<String> {
        let members = self.members(method);
        let mut configs = self.member_configs(method, members, replicate)?;
        // The first stage waits for the CASNs whose predictions its samples are cut from; the
        // rest follow it.
        let mut first_parents = Vec::new();
        if let Some((rois, casn_stages)) = self.casn_rois(method, casns)? {
            for config in &mut configs {
                config.casn_rois = Some(rois.clone());
            }
            first_parents = casn_stages;
        }
        let prefix = self.prefix(method, replicate);
        let tasks = members * ASAN_NETS.len();
        // Both nets of a member train one schedule (their searches advance epoch by epoch
        // together), so they must agree on its length.
        let epochs = configs[0].epochs;
        if configs.iter().any(|c| c.epochs != epochs) {
            return Err(Error::invalid(
                "networks.scar.epochs",
                format!(
                    "differs from networks.scar_edema.epochs; method {}'s two ASANs train one \
                     schedule",
                    method.name
                ),
            ));
        }
        let search = configs[0].weighting.as_ref().filter(|w| w.is_search());
        let Some(search) = search.cloned() else {
            return Ok(self.add(
                format!("{prefix}/train"),
                tasks,
                first_parents,
                Work::Train {
                    method: method.name.clone(),
                    replicate,
                    configs,
                    from: 0,
                    until: epochs,
                },
            ));
        };
        let mut last = self.add(
            format!("{prefix}/warmup"),
            tasks,
            first_parents,
            Work::Train {
                method: method.name.clone(),
                replicate,
                configs: configs.clone(),
                from: 0,
                until: search.epochs_fixed,
            },
        );
        for epoch in search.epochs_fixed..epochs {
            let sampled = self.add(
                format!("{prefix}/sample[{}]", epoch + 1),
                tasks * search.samples,
                vec![last],
                Work::Sample {
                    method: method.name.clone(),
                    replicate,
                    configs: configs.clone(),
                    epoch,
                },
            );
            last = self.add(
                format!("{prefix}/update[{}]", epoch + 1),
                1,
                vec![sampled],
                Work::Update {
                    method: method.name.clone(),
                    replicate,
                    configs: configs.clone(),
                    epoch,
                },
            );
        }
        Ok(last)
    }

    /// What a method with `casn_rois` cuts its samples with, and the CASN stages that are:
    /// `casns` (the grid's coarse and fine CASN), and with `casn_folds` the out-of-fold pairs.
    fn casn_rois(
        &mut self,
        method: &Method,
        casns: [&str; 2],
    ) -> Result<Option<(CasnRois, Vec<String>)>> {
        if !method.casn_rois {
            return Ok(None);
        }
        let mut stages: Vec<String> = casns.map(String::from).to_vec();
        let mut folds = Vec::new();
        if let Some(k) = method.casn_folds {
            let at = format!("methods.{}.casn_folds", method.name);
            for (coarse, fine, cases) in self.casn_folds(k, &at)? {
                folds.push(CasnFold {
                    coarse: run_path(&coarse),
                    fine: run_path(&fine),
                    cases,
                });
                stages.extend([coarse, fine]);
            }
        }
        let rois = CasnRois {
            coarse: run_path(casns[0]),
            fine: run_path(casns[1]),
            largest_component: method.largest_component,
            folds,
        };
        Ok(Some((rois, stages)))
    }

    /// The out-of-fold CASN stages of `k` folds of the training cases, as (coarse, fine, the
    /// fold's cases): fold f holds every k-th case from the f-th, and its CASNs train on the
    /// others. Methods with the same k share them.
    fn casn_folds(&mut self, k: usize, at: &str) -> Result<Vec<(String, String, Vec<String>)>> {
        let ids = self.inputs.train.ids.clone();
        if k > ids.len() {
            return Err(Error::invalid(
                at,
                format!(
                    "{k} folds of {} training cases: at most one fold per case",
                    ids.len()
                ),
            ));
        }
        let mut folds = Vec::with_capacity(k);
        for f in 0..k {
            let cases: Vec<String> = ids.iter().skip(f).step_by(k).cloned().collect();
            let coarse = self.casn_without(
                Network::CasnCoarse,
                &format!("casn_coarse/fold{}of{k}", f + 1),
                &cases,
            )?;
            let fine = self.casn_without(
                Network::CasnFine,
                &format!("casn_fine/fold{}of{k}", f + 1),
                &cases,
            )?;
            folds.push((coarse, fine, cases));
        }
        Ok(folds)
    }

    /// One train config per member and net (task order: member × 2 + net).
    fn member_configs(
        &self,
        method: &Method,
        members: usize,
        replicate: usize,
    ) -> Result<Vec<TrainConfig>> {
        let jitter = if method.ensemble {
            self.job.ensemble.beta_jitter
        } else {
            0.0
        };
        let mut configs = Vec::with_capacity(members * ASAN_NETS.len());
        for member in 0..members {
            let member_seed = seeds::member(seeds::replicate(self.job.seed, replicate), member);
            for net in ASAN_NETS {
                let settings = match net {
                    Network::Scar => &self.job.networks.scar,
                    _ => &self.job.networks.scar_edema,
                };
                let mut config = self.train_config(net, settings, member_seed);
                config.pam = Some(method.pam);
                config.deep_supervision = Some(method.deep_supervision);
                if !method.dcl {
                    config.loss.ce_weight = Some(0.0);
                }
                config.weighting = method.weighting_config(&self.job.weighting, jitter);
                config.sequences = method.sequences.clone();
                if let Some(patch) = &method.train {
                    let at = format!("methods.{}.train", method.name);
                    config = super::patch::apply(&config, patch, &at)?;
                }
                config
                    .validate()
                    .map_err(|e| in_network(e, &format!("method {} ({net:?})", method.name)))?;
                configs.push(config);
            }
        }
        Ok(configs)
    }

    fn train_config(&self, net: Network, settings: &NetworkSettings, seed: u64) -> TrainConfig {
        let scale = &self.job.scale;
        let inputs = self.inputs;
        TrainConfig {
            data: inputs.train.dir.clone(),
            validation_cases: inputs.validation.clone(),
            cases: Some(inputs.train.ids.clone()),
            net,
            base_filters: settings.base_filters.unwrap_or(scale.base_filters),
            pam: None,
            deep_supervision: None,
            geometry: SampleGeometry {
                crop: scale.crop,
                margin: scale.margin,
                input: scale.input,
            },
            epochs: settings.epochs.unwrap_or(scale.epochs),
            batch_size: settings.batch_size.unwrap_or(scale.batch_size),
            epoch_length: scale.epoch_length,
            foreground_oversampling: scale.foreground_oversampling,
            score: scale.score,
            learning_rate: settings.learning_rate.unwrap_or(scale.learning_rate),
            alpha: None,
            sequences: None,
            loss: settings.loss,
            optimizer: Default::default(),
            pam_width: Default::default(),
            augment: settings.augment.unwrap_or_default(),
            seed,
            weighting: None,
            casn_rois: None,
        }
    }
}

/// A CASN stage's `awsnet train` run directory, relative to the run directory.
fn run_path(stage: &str) -> PathBuf {
    task_path(stage, 0).join("run")
}

fn in_network(e: Error, what: &str) -> Error {
    match e {
        Error::InvalidArgument { field, problem } => {
            Error::invalid(field, format!("{problem} (in the {what} config)"))
        }
        other => other,
    }
}

/// The id of a stage: its work with every data path replaced by the content hash it stands
/// for, and its parents.
fn stage_id(work: &Work, parents: &[String], inputs: &Inputs) -> String {
    let mut value = serde_json::to_value(work).expect("plans encode");
    let dirs = [
        inputs.train.dir.display().to_string(),
        inputs.test.dir.display().to_string(),
    ];
    strip_paths(&mut value, &dirs);
    let text = serde_json::to_vec(&value).expect("plans encode");
    // The cases a stage reads, by content: training stages read the training cases, predict and
    // evaluate the test cases (which may lie in the same directory, so the path alone could not
    // tell them apart); the rest read only their parents' outputs.
    let cases = match work {
        Work::Casn { .. } | Work::Train { .. } | Work::Sample { .. } | Work::Update { .. } => {
            inputs.train.sha256.as_str()
        }
        Work::Predict { .. } | Work::Evaluate { .. } => inputs.test.sha256.as_str(),
        Work::Stats { .. } => "",
    };
    let parents = parents.join(",");
    digest(&[&text, cases.as_bytes(), parents.as_bytes()])
}

/// Replace each data directory in a stage's work by a placeholder: where the cases lie is no
/// part of what a stage computes.
fn strip_paths(value: &mut serde_json::Value, dirs: &[String]) {
    use serde_json::Value;
    match value {
        Value::String(s) if dirs.contains(s) => *s = "<cases>".into(),
        Value::Array(items) => items.iter_mut().for_each(|v| strip_paths(v, dirs)),
        Value::Object(map) => map.values_mut().for_each(|v| strip_paths(v, dirs)),
        _ => {}
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn digest(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    format!("{:x}", hasher.finalize())
}

/// Where a task keeps its outputs, relative to the run directory.
pub fn task_path(stage: &str, index: usize) -> PathBuf {
    Path::new("stages").join(stage).join(index.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::inputs::CaseSet;
    use crate::grid::spec::{JobSpec, Method};
    use std::collections::BTreeMap;

    fn job() -> JobSpec {
        serde_json::from_value(serde_json::json!({
            "name": "t",
            "data": { "train": "tr", "test": "te" },
            "scale": { "epochs": 4 },
            "weighting": { "epochs_fixed": 2, "samples": 3 },
            "ensemble": { "members": 2 },
            "methods": [
                { "name": "base", "pam": false, "deep_supervision": false },
                { "name": "pam_ds", "weighting": "equal" },
                { "name": "pam_das", "weighting": "das" },
                { "name": "ensemble", "weighting": "das", "ensemble": true }
            ]
        }))
        .unwrap()
    }

    fn inputs(dir: &str, hash: &str) -> Inputs {
        let set = |sub: &str| CaseSet {
            dir: PathBuf::from(dir).join(sub),
            ids: vec!["a".into(), "b".into(), "c".into()],
            sha256: format!("{hash}-{sub}"),
        };
        Inputs {
            train: set("train"),
            validation: vec!["b".into()],
            test: set("test"),
        }
    }

    fn labels(plan: &Plan) -> Vec<(&str, usize)> {
        plan.stages
            .iter()
            .map(|s| (s.label.as_str(), s.tasks))
            .collect()
    }

    #[test]
    fn the_dag_has_the_designed_stages_and_task_counts() {
        let plan = plan(&job(), &inputs("/data", "h")).unwrap();
        let stages = labels(&plan);
        for expected in [
            ("casn_coarse", 1),
            ("casn_fine", 1),
            ("base/train", 2),
            ("pam_ds/train", 2),
            ("pam_das/warmup", 2),
            ("pam_das/sample[3]", 6),
            ("pam_das/update[4]", 1),
            ("ensemble/sample[4]", 12),
            ("ensemble/predict", 2),
            ("ensemble/evaluate", 1),
            ("stats", 1),
        ] {
            assert!(stages.contains(&expected), "{expected:?} not in {stages:?}");
        }
        // CASN is planned once for all four methods.
        assert_eq!(
            stages.iter().filter(|(l, _)| l.starts_with("casn")).count(),
            2
        );
        // Parents come before their children.
        for (i, stage) in plan.stages.iter().enumerate() {
            for parent in &stage.parents {
                let at = plan.stages.iter().position(|s| &s.id == parent).unwrap();
                assert!(at < i, "{} before its parent", stage.label);
            }
        }
        let sample = plan
            .stages
            .iter()
            .find(|s| s.label == "pam_das/sample[4]")
            .unwrap();
        let update = plan.stage(&sample.parents[0]).unwrap();
        assert_eq!(update.label, "pam_das/update[3]");
    }

    /// Ids follow content, not paths: the same cases elsewhere plan the same stages; other
    /// cases, another seed or another method setting change exactly the stages they affect.
    #[test]
    fn stage_ids_follow_content_not_paths() {
        let ids = |job: &JobSpec, inputs: &Inputs| -> BTreeMap<String, String> {
            plan(job, inputs)
                .unwrap()
                .stages
                .into_iter()
                .map(|s| (s.label, s.id))
                .collect()
        };
        let base = ids(&job(), &inputs("/data", "h"));
        assert_eq!(base, ids(&job(), &inputs("/elsewhere/cluster", "h")));
        let other_data = ids(&job(), &inputs("/data", "h2"));
        assert!(base.iter().all(|(label, id)| other_data[label] != *id));
        // One directory split into training and test cases (a job with `root`): a changed
        // training case changes the training stages, and what follows them.
        let mut split = inputs("/data", "h");
        split.test.dir = split.train.dir.clone();
        let mut retrained = split.clone();
        retrained.train.sha256 = "other".into();
        let (a, b) = (ids(&job(), &split), ids(&job(), &retrained));
        assert!(a.iter().all(|(label, id)| b[label] != *id), "{a:?}\n{b:?}");

        let mut changed = job();
        changed.methods[1].dcl = false;
        let changed = ids(&changed, &inputs("/data", "h"));
        let differs: Vec<&str> = base
            .iter()
            .filter(|(label, id)| changed[*label] != **id)
            .map(|(label, _)| label.as_str())
            .collect();
        assert_eq!(
            differs,
            ["pam_ds/evaluate", "pam_ds/predict", "pam_ds/train", "stats"]
        );
        let mut reseeded = job();
        reseeded.seed = 9;
        let reseeded = ids(&reseeded, &inputs("/data", "h"));
        assert!(base.iter().all(|(label, id)| reseeded[label] != *id));
    }

    #[test]
    fn replicates_plan_a_chain_each_with_its_own_seeds_and_one_evaluation() {
        let mut replicated = job();
        replicated.replicates = 2;
        let plan = plan(&replicated, &inputs("/data", "h")).unwrap();
        let stage = |label: &str| {
            plan.stages
                .iter()
                .find(|s| s.label == label)
                .unwrap_or_else(|| panic!("no {label} in {:?}", labels(&plan)))
        };
        let seed_of = |label: &str| match &stage(label).work {
            Work::Train { configs, .. } => configs[0].seed,
            other => panic!("{other:?}"),
        };
        assert_ne!(seed_of("base/seed1/train"), seed_of("base/seed2/train"));
        // The first replicate is what a job without replicates trains.
        let single = plan_of_job();
        let base = single
            .stages
            .iter()
            .find(|s| s.label == "base/train")
            .unwrap();
        let Work::Train { configs, .. } = &base.work else {
            panic!("{:?}", base.work)
        };
        assert_eq!(seed_of("base/seed1/train"), configs[0].seed);
        let evaluate = stage("pam_das/evaluate");
        assert_eq!(
            evaluate.parents,
            [
                stage("pam_das/seed1/predict").id.clone(),
                stage("pam_das/seed2/predict").id.clone()
            ]
        );
        assert_eq!(
            labels(&plan)
                .iter()
                .filter(|(l, _)| l.starts_with("casn"))
                .count(),
            2
        );
    }

    /// `casn_rois` makes a method's first ASAN stage wait for the CASNs whose run directories
    /// its configs name; `casn_folds` adds k out-of-fold CASN pairs, shared by the methods with
    /// the same k, each trained without the cases it locates. Nothing else changes.
    #[test]
    fn casn_rois_wait_for_the_casns_they_name() {
        let mut job = job();
        let twin = |name: &str, folds: Option<usize>| Method {
            name: name.into(),
            casn_rois: true,
            casn_folds: folds,
            ..job.methods[2].clone()
        };
        job.methods.extend([
            twin("casn", None),
            twin("oof", Some(2)),
            twin("oof2", Some(2)),
        ]);
        let plan = plan(&job, &inputs("/data", "h")).unwrap();
        let stage = |label: &str| {
            plan.stages
                .iter()
                .find(|s| s.label == label)
                .unwrap_or_else(|| panic!("no {label} in {:?}", labels(&plan)))
        };
        let configs = |label: &str| match &stage(label).work {
            Work::Train { configs, .. } => configs.clone(),
            other => panic!("{other:?}"),
        };
        let (coarse, fine) = (&stage("casn_coarse").id, &stage("casn_fine").id);
        assert!(stage("pam_das/warmup").parents.is_empty());
        assert_eq!(
            &stage("casn/warmup").parents,
            &[coarse.clone(), fine.clone()]
        );
        let rois = configs("casn/warmup")[0].casn_rois.clone().unwrap();
        assert_eq!(rois.coarse, PathBuf::from(format!("stages/{coarse}/0/run")));
        assert_eq!(rois.fine, PathBuf::from(format!("stages/{fine}/0/run")));
        assert!(rois.folds.is_empty());
        // Apart from the ROIs, the twin trains pam_das's very configs.
        let mut stripped = configs("casn/warmup");
        stripped.iter_mut().for_each(|c| c.casn_rois = None);
        assert_eq!(stripped, configs("pam_das/warmup"));

        let folds = configs("oof/warmup")[0].casn_rois.clone().unwrap().folds;
        let cases: Vec<Vec<&str>> = folds
            .iter()
            .map(|f| f.cases.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(cases, [vec!["a", "c"], vec!["b"]]);
        for (f, fold) in folds.iter().enumerate() {
            let label = format!("casn_coarse/fold{}of2", f + 1);
            let Work::Casn { config } = &stage(&label).work else {
                panic!("{label}")
            };
            let trained = config.cases.clone().unwrap();
            assert!(trained.iter().all(|c| !fold.cases.contains(c)), "{label}");
            assert_eq!(trained.len() + fold.cases.len(), 3, "{label}");
            assert!(config.validation_cases.iter().all(|c| trained.contains(c)));
            assert_eq!(fold.coarse, run_path(&stage(&label).id));
        }
        assert_eq!(stage("oof/warmup").parents.len(), 2 + 2 * 2);
        // Two methods with k = 2 share the fold CASNs: four stages, not eight.
        let fold_stages = labels(&plan)
            .iter()
            .filter(|(l, _)| l.contains("/fold"))
            .count();
        assert_eq!(fold_stages, 4);

        job.methods[5].casn_folds = Some(4);
        let err = super::plan(&job, &inputs("/data", "h"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("methods.oof.casn_folds"), "{err}");
        assert!(err.contains("4 folds of 3 training cases"), "{err}");
    }

    fn plan_of_job() -> Plan {
        plan(&job(), &inputs("/data", "h")).unwrap()
    }

    #[test]
    fn members_train_with_their_own_seed_and_jitter() {
        let plan = plan(&job(), &inputs("/data", "h")).unwrap();
        let warmup = plan
            .stages
            .iter()
            .find(|s| s.label == "ensemble/warmup")
            .unwrap();
        let Work::Train { configs, .. } = &warmup.work else {
            panic!("{:?}", warmup.work)
        };
        assert_eq!(configs.len(), 4, "2 members × 2 nets");
        assert_eq!(configs[0].seed, configs[1].seed, "one member, two nets");
        assert_ne!(configs[0].seed, configs[2].seed, "two members");
        assert_eq!(configs[2].net, Network::Scar);
        let jitter = configs[0].weighting.as_ref().unwrap().beta_jitter;
        assert_eq!(jitter, job().ensemble.beta_jitter);
        assert_eq!(
            configs[0].cases.as_deref(),
            Some(&["a".to_string(), "b".into(), "c".into()][..])
        );
    }
}
