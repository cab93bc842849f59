//! One task of a plan: `awsnet task RUN --stage ID --index I`, the one entry point every
//! executor runs.
//!
//! A task reads its parents' outputs from the run directory, writes its own under
//! `RUN/stages/<id>/<index>/`, and records them last in `done.json` (`super::store`). Training
//! tasks keep an `awsnet train` run directory there, so a task killed mid-way resumes from its
//! last epoch when it runs again, with the bytes an uninterrupted task would have written.
//!
//! What needs the model stack goes through [`Engine`] (implemented by `crate::engine` for burn's
//! backends): the grid itself holds no model code.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plan::{Plan, Stage, Work, ASAN_NETS};
use super::seeds as plan_seeds;
use super::spec::{target_name, Deploy};
use super::status::HealthFlag;
use super::store::{RunStore, TaskState};
use crate::atomic;
use crate::das::weighting::{Candidate, Score, WeightingLine, WeightingState};
use crate::data::cases::discover;
use crate::data::labels::Target;
use crate::data::matching::CasePair;
use crate::data::nifti_write::{write_f32, write_i16};
use crate::error::{Error, Result};
use crate::eval::ensemble::{vote_vs_members, VoteVsMembers};
use crate::eval::evaluate::{evaluate_pair, CaseEvaluation};
use crate::eval::metrics::MaskMetrics;
use crate::eval::stats::samples::load_samples;
use crate::eval::stats::{compare_family, CompareOptions, Comparison, Family};
use crate::eval::summary::eval_json;
use crate::infer::pipeline::{Deployed, InferOptions};
use crate::infer::vote::{match_inputs, vote_case, VoteRule};
use crate::report::tables::{mean_std_table, p_value_table, render, Format, MethodEval, PValue};
use crate::train::checkpoint::{read_state, StateExtra, TrainState};
use crate::train::config::{epoch_seed, EpochRecord, TrainConfig};
use crate::train::deploy::{best_of, run_deployment};
use crate::train::health::{assess, HealthIssue};
use crate::train::run_dir::{read_lines, run_checkpoint, RunDir, Which};
use crate::train::samples::Network;
use crate::train::steps;

/// What tasks need from the model stack.
pub trait Engine {
    /// Train `config` into the `awsnet train` run directory `run` up to `config.epochs`,
    /// continuing what is there.
    fn train(&self, config: &TrainConfig, run: &Path) -> Result<()>;

    /// Train one child of the parent checkpoint (with the parent's state replaced by `state`)
    /// for epoch `state.epoch` with the candidate's α; save it as a checkpoint in `out`. None
    /// when its loss diverged.
    fn sample(
        &self,
        config: &TrainConfig,
        parent: &Path,
        state: &TrainState,
        candidate: &Candidate,
        out: &Path,
    ) -> Result<Option<ChildResult>>;

    /// What computes on this engine (`device.json` of every task that trains or predicts).
    fn compute(&self) -> ComputeRecord;

    /// Segment the cases `ids` of directory `cases` into `<case>_pred.nii.gz` files in `out`.
    fn predict(
        &self,
        networks: [Deployed; 4],
        cases: &Path,
        ids: &[String],
        options: InferOptions,
        out: &Path,
    ) -> Result<()>;
}

/// What computed a task's tensors (`device.json`): results repeat bit for bit only on the same
/// backend, device kind and CPU kernels, so the summary's provenance lists what the run used.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeRecord {
    /// burn's name for the backend (`autodiff<flex>`, …).
    pub backend: String,
    /// `cpu` or `cuda` (which GPU of a node does not change a result).
    pub device: String,
    /// On the CPU: which convolution kernels this CPU runs (`kernels::conv3x3::Kernel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_kernels: Option<String>,
}

/// The file a model task records its [`ComputeRecord`] in.
pub const DEVICE_FILE: &str = "device.json";

/// What a trained child reports (`result.json` of a sample task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildResult {
    pub index: usize,
    pub loss: f64,
    pub record: EpochRecord,
}

/// Where a member's network stands after an update (`parents/<member>-<net>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parent {
    /// The chosen child's checkpoint: `store/<key>`, relative to the run directory.
    pub checkpoint: PathBuf,
    /// The state to continue from (the search's state after the update).
    pub state: TrainState,
    /// Progress lines of the auto-weighted epochs so far.
    pub history: Vec<EpochRecord>,
    /// `weighting.jsonl` lines so far.
    pub lines: Vec<WeightingLine>,
    /// The best epoch of the fixed-weight warm-up.
    pub fixed_best: Option<Deployable>,
    /// Each auto-weighted epoch's chosen child, in order.
    pub auto: Vec<Deployable>,
    /// Progress lines of the fixed-weight warm-up, for the deployed net's health.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warmup: Vec<EpochRecord>,
}

/// A checkpoint that could be deployed, with its validation score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployable {
    /// `store/<key>`, relative to the run directory.
    pub checkpoint: PathBuf,
    pub epoch: u64,
    pub score: f64,
}

impl Parent {
    /// The checkpoint `deploy` picks (relative to the run directory).
    fn deployed(&self, deploy: Deploy) -> PathBuf {
        let best_of = |items: &mut dyn Iterator<Item = &Deployable>| {
            best_of(items.map(|c| (c.checkpoint.clone(), c.score)))
        };
        match deploy {
            Deploy::Default | Deploy::Latest => Some(self.checkpoint.clone()),
            Deploy::BestAuto => best_of(&mut self.auto.iter()),
            Deploy::Best => best_of(&mut self.fixed_best.iter().chain(&self.auto)),
        }
        .unwrap_or_else(|| self.checkpoint.clone())
    }
}

/// What `run_task` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ran,
    /// The task's manifest verified: nothing ran and nothing was touched.
    AlreadyDone,
}

/// Run task `index` of stage `stage_id` of the plan in `run`, unless it is done.
///
/// A done task is left alone rather than run again: a scheduler may start a task twice (a
/// requeue racing its end, a resume of a task that finished meanwhile), and a second run
/// would begin by clearing outputs that its dependents may be reading.
pub fn run_task(run: &Path, stage_id: &str, index: usize, engine: &dyn Engine) -> Result<Outcome> {
    let store = RunStore::new(run);
    let plan = read_plan(&store)?;
    if plan.stage(stage_id).is_some_and(|s| index < s.tasks)
        && store.state(stage_id, index)? == TaskState::Done
    {
        return Ok(Outcome::AlreadyDone);
    }
    run_planned(&plan, &store, stage_id, index, engine)?;
    Ok(Outcome::Ran)
}

/// Run task `index` of stage `stage_id` of `plan`, whose run directory is `store`.
pub fn run_planned(
    plan: &Plan,
    store: &RunStore,
    stage_id: &str,
    index: usize,
    engine: &dyn Engine,
) -> Result<()> {
    let stage = plan.stage(stage_id).ok_or_else(|| {
        Error::invalid(
            "--stage",
            format!(
                "{stage_id} is not a stage of {}",
                store.plan_file().display()
            ),
        )
    })?;
    if index >= stage.tasks {
        return Err(Error::invalid(
            "--index",
            format!(
                "stage {} has {} tasks (0..{})",
                stage.label, stage.tasks, stage.tasks
            ),
        ));
    }
    let task = Task {
        plan,
        store,
        stage,
        index,
        engine,
    };
    task.run().map_err(|e| e.in_task(&stage.label, index))
}

/// Read `RUN/plan.json`.
pub fn read_plan(store: &RunStore) -> Result<Plan> {
    let path = store.plan_file();
    let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::input(&path, format!("not a plan: {e}")))
}

struct Task<'a> {
    plan: &'a Plan,
    store: &'a RunStore,
    stage: &'a Stage,
    index: usize,
    engine: &'a dyn Engine,
}

impl Task<'_> {
    fn dir(&self) -> PathBuf {
        self.store.task_dir(&self.stage.id, self.index)
    }

    fn parent(&self, i: usize) -> Result<&Stage> {
        let id = self.stage.parents.get(i).ok_or_else(|| {
            Error::Internal(format!("stage {} has no parent {i}", self.stage.label))
        })?;
        self.plan
            .stage(id)
            .ok_or_else(|| Error::Internal(format!("parent {id} is not in the plan")))
    }

    fn run(&self) -> Result<()> {
        let dir = self.dir();
        let resumable = matches!(self.stage.work, Work::Casn { .. } | Work::Train { .. });
        if !resumable && dir.exists() {
            // Left by an attempt that died before its manifest: start over. Training tasks
            // instead continue their run directory from its last epoch.
            std::fs::remove_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
        if self.stage.work.computes() {
            write_json(&dir.join(DEVICE_FILE), &self.engine.compute())?;
        }
        match &self.stage.work {
            Work::Casn { config } => self.engine.train(config, &dir.join("run"))?,
            Work::Train { configs, until, .. } => {
                let config = TrainConfig {
                    epochs: *until,
                    ..self.rooted(&configs[self.index])?
                };
                self.engine.train(&config, &dir.join("run"))?;
            }
            Work::Sample { configs, epoch, .. } => self.sample(configs, *epoch)?,
            Work::Update { configs, epoch, .. } => self.update(configs, *epoch)?,
            Work::Predict {
                test,
                cases,
                deploy,
                largest_component,
                ..
            } => {
                let options = InferOptions {
                    largest_component: *largest_component,
                    clean_small: false,
                };
                self.predict(test, cases, *deploy, options)?
            }
            Work::Evaluate {
                members,
                replicates,
                test,
                cases,
                targets,
                ..
            } => self.evaluate(*members, *replicates, test, cases, targets)?,
            Work::Stats {
                methods,
                comparisons,
                metrics,
            } => self.stats(methods, comparisons, metrics)?,
        }
        let outputs = files_under(&dir)?;
        let names: Vec<&str> = outputs.iter().map(String::as_str).collect();
        self.store.finish(&self.stage.id, self.index, &names)?;
        Ok(())
    }

    /// Where member-net `which` of the ASAN stage `stage` stands: its checkpoint and state.
    fn member_state(&self, stage: &Stage, which: usize) -> Result<(PathBuf, Parent)> {
        match &stage.work {
            Work::Train { configs, .. } => {
                let run = self.store.task_dir(&stage.id, which).join("run");
                let checkpoint = run_checkpoint(&run, Which::Latest)?;
                let state = read_state(&checkpoint)?;
                let best = run_checkpoint(&run, Which::Best)?;
                let best_epoch = read_state(&best)?.epoch;
                let warmup: Vec<EpochRecord> =
                    read_lines(&RunDir::new(&run).progress(), state.epoch)?;
                let score = warmup
                    .iter()
                    .find(|r| r.epoch == best_epoch)
                    .map_or(0.0, |r| r.validation().score(configs[which].score()));
                let parent = Parent {
                    checkpoint: self.store.stored(&checkpoint)?,
                    state,
                    history: Vec::new(),
                    lines: Vec::new(),
                    fixed_best: Some(Deployable {
                        checkpoint: self.store.stored(&best)?,
                        epoch: best_epoch,
                        score,
                    }),
                    auto: Vec::new(),
                    warmup,
                };
                Ok((self.store.root.join(&parent.checkpoint), parent))
            }
            Work::Update { .. } => {
                let path = self
                    .store
                    .task_dir(&stage.id, 0)
                    .join("parents")
                    .join(format!("{which}.json"));
                let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, e))?;
                let parent: Parent = serde_json::from_str(&text)
                    .map_err(|e| Error::input(&path, format!("not a parent record: {e}")))?;
                Ok((self.store.root.join(&parent.checkpoint), parent))
            }
            other => Err(Error::Internal(format!(
                "a search continues from a train or update stage, not {other:?}"
            ))),
        }
    }

    /// `config` with the run directories its `casn_rois` name (relative to the run directory
    /// in the plan) made absolute, so they read from wherever the task runs.
    fn rooted(&self, config: &TrainConfig) -> Result<TrainConfig> {
        let Some(rois) = &config.casn_rois else {
            return Ok(config.clone());
        };
        let root =
            std::path::absolute(&self.store.root).map_err(|e| Error::read(&self.store.root, e))?;
        Ok(TrainConfig {
            casn_rois: Some(rois.rooted(&root)),
            ..config.clone()
        })
    }

    fn sample(&self, configs: &[TrainConfig], epoch: u64) -> Result<()> {
        let k = self.samples(configs)?;
        let (which, child) = (self.index / k, self.index % k);
        let config = &self.rooted(&configs[which])?;
        let (checkpoint, parent) = self.member_state(self.parent(0)?, which)?;
        check_epoch(&parent.state, epoch)?;
        let candidate = candidates(config, &parent.state, epoch)?
            .into_iter()
            .find(|c| c.index == child)
            .ok_or_else(|| Error::Internal(format!("no candidate {child}")))?;
        let out = self.dir();
        let result = self.engine.sample(
            config,
            &checkpoint,
            &parent.state,
            &candidate,
            &out.join("child"),
        )?;
        write_json(&out.join("result.json"), &result)
    }

    fn samples(&self, configs: &[TrainConfig]) -> Result<usize> {
        configs[0]
            .weighting
            .as_ref()
            .map(|w| w.samples)
            .filter(|&k| k > 0)
            .ok_or_else(|| Error::Internal("a search stage without samples".into()))
    }

    fn update(&self, configs: &[TrainConfig], epoch: u64) -> Result<()> {
        let sampled = self.parent(0)?;
        let before = self
            .plan
            .stage(&sampled.parents[0])
            .ok_or_else(|| Error::Internal("a sample stage without a parent".into()))?;
        let k = self.samples(configs)?;
        let out = self.dir().join("parents");
        for (which, config) in configs.iter().enumerate() {
            let (_, parent) = self.member_state(before, which)?;
            let weighting = config
                .weighting
                .as_ref()
                .ok_or_else(|| Error::Internal("an update without a weighting".into()))?;
            let state = parent
                .state
                .weighting()
                .ok_or_else(|| Error::Internal("a parent without a search state".into()))?;
            let candidates = candidates(config, &parent.state, epoch)?;
            let mut results = Vec::new();
            for child in 0..k {
                let task = which * k + child;
                if self.store.state(&sampled.id, task)? != TaskState::Done {
                    continue;
                }
                let path = self.store.task_dir(&sampled.id, task).join("result.json");
                let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, e))?;
                let result: Option<ChildResult> = serde_json::from_str(&text)
                    .map_err(|e| Error::input(&path, format!("not a child result: {e}")))?;
                // None: the child's loss diverged; it counts as missing.
                if let Some(result) = result {
                    results.push((task, result));
                }
            }
            if results.is_empty() {
                return Err(Error::training(format!(
                    "no sample of epoch {} arrived for member {} ({:?}): none of its {k} \
                     children finished",
                    epoch + 1,
                    which / ASAN_NETS.len(),
                    config.net
                )));
            }
            let scores: Vec<Score> = results
                .iter()
                .map(|(_, r)| Score {
                    index: r.index,
                    dice: r.record.validation().score(config.score),
                })
                .collect();
            let conclusion =
                steps::update(weighting, state, &candidates, &scores, config.seed, epoch)?;
            let (task, chosen) = results
                .iter()
                .find(|(_, r)| r.index == conclusion.chosen)
                .ok_or_else(|| Error::Internal("the chosen child sent no result".into()))?;
            let mut history = parent.history;
            history.push(chosen.record.clone());
            let mut lines = parent.lines;
            lines.push(conclusion.line);
            let child = self
                .store
                .stored(&self.store.task_dir(&sampled.id, *task).join("child"))?;
            let mut auto = parent.auto;
            auto.push(Deployable {
                checkpoint: child.clone(),
                epoch: epoch + 1,
                score: chosen.record.validation().score(config.score),
            });
            let next = Parent {
                checkpoint: child,
                state: TrainState {
                    epoch: epoch + 1,
                    seed: config.seed,
                    alpha: chosen.record.alpha.clone(),
                    extra: Some(StateExtra {
                        weighting: conclusion.state,
                    }),
                },
                history,
                lines,
                fixed_best: parent.fixed_best,
                auto,
                warmup: parent.warmup,
            };
            write_json(&out.join(format!("{which}.json")), &next)?;
        }
        Ok(())
    }

    fn predict(
        &self,
        test: &Path,
        cases: &[String],
        deploy: Deploy,
        options: InferOptions,
    ) -> Result<()> {
        let member = self.index;
        // Each network with the validation records of its epochs, for its health.
        let casn = |i: usize| -> Result<(Deployed, Vec<EpochRecord>)> {
            let stage = self.parent(i)?;
            let Work::Casn { config } = &stage.work else {
                return Err(Error::Internal(format!(
                    "parent {i} of predict is not CASN"
                )));
            };
            let run = self.store.task_dir(&stage.id, 0).join("run");
            let best = self.store.stored(&run_checkpoint(&run, Which::Best)?)?;
            let deployed = Deployed {
                config: (**config).clone(),
                checkpoint: self.store.root.join(best),
                source: run.clone(),
            };
            Ok((deployed, run_history(&run)?))
        };
        let asan = self.parent(2)?;
        let asan_net = |net: usize| -> Result<(Deployed, Vec<EpochRecord>)> {
            let which = member * ASAN_NETS.len() + net;
            let configs = match &asan.work {
                Work::Train { configs, .. } | Work::Update { configs, .. } => configs,
                other => return Err(Error::Internal(format!("predict after {other:?}"))),
            };
            // Which checkpoint is deployed (`deploy` in the job): by default a fixed-weight
            // run's best validation epoch, as `awsnet predict` does, and a search's final
            // parent, so the deployed model is one the search chose.
            let (checkpoint, history) = match &asan.work {
                Work::Train { .. } => {
                    let run = self.store.task_dir(&asan.id, which).join("run");
                    let checkpoint = run_deployment(&run, &configs[which], deploy)?;
                    let stored = self.store.root.join(self.store.stored(&checkpoint)?);
                    (stored, run_history(&run)?)
                }
                _ => {
                    let (_, parent) = self.member_state(asan, which)?;
                    let checkpoint = self.store.root.join(parent.deployed(deploy));
                    (checkpoint, [parent.warmup, parent.history].concat())
                }
            };
            let deployed = Deployed {
                config: configs[which].clone(),
                source: checkpoint.clone(),
                checkpoint,
            };
            Ok((deployed, history))
        };
        let nets = [casn(0)?, casn(1)?, asan_net(0)?, asan_net(1)?];
        let deployed = nets
            .iter()
            .map(|(d, history)| {
                let epoch = read_state(&d.checkpoint)?.epoch;
                Ok(DeployedRecord {
                    net: d.config.net,
                    checkpoint: relative(&self.store.root, &d.checkpoint),
                    epoch,
                    health: assess(history, epoch, d.config.score()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let networks = nets.map(|(d, _)| d);
        let out = self.dir();
        write_json(&out.join("deployed.json"), &deployed)?;
        self.engine
            .predict(networks, test, cases, options, &out.join("pred"))
    }

    /// Evaluate the method's prediction or, with several replicates, each replicate's (in
    /// `seed<r>/`, counting from 1) and then their mean per case (`eval::replicates`): the
    /// task's `eval.json` is what the comparisons read either way.
    fn evaluate(
        &self,
        members: usize,
        replicates: usize,
        test: &Path,
        cases: &[String],
        targets: &[Target],
    ) -> Result<()> {
        let out = self.dir();
        if replicates == 1 {
            let evaluated = self.evaluate_predicted(0, members, test, cases, targets, &out)?;
            return write_json(&out.join("eval.json"), &eval_json(&evaluated, targets)?);
        }
        let mut each = Vec::with_capacity(replicates);
        for replicate in 0..replicates {
            let dir = out.join(replicate_dir(replicate));
            let evaluated =
                self.evaluate_predicted(replicate, members, test, cases, targets, &dir)?;
            write_json(&dir.join("eval.json"), &eval_json(&evaluated, targets)?)?;
            each.push(evaluated);
        }
        let mean = crate::eval::replicates::mean_per_case(&each)?;
        write_json(&out.join("eval.json"), &eval_json(&mean, targets)?)
    }

    /// Vote (several members) and evaluate the predictions of parent `parent`, writing what
    /// it votes under `out`.
    fn evaluate_predicted(
        &self,
        parent: usize,
        members: usize,
        test: &Path,
        cases: &[String],
        targets: &[Target],
        out: &Path,
    ) -> Result<Vec<CaseEvaluation>> {
        let predicted = self.parent(parent)?;
        let dirs: Vec<PathBuf> = (0..members)
            .map(|m| self.store.task_dir(&predicted.id, m).join("pred"))
            .collect();
        let pred = if members > 1 {
            // Region by region (MyoPS codes), with each voxel's agreement beside the vote.
            let voted = out.join("voted");
            let agreement = out.join("agreement");
            let mut staged = atomic::StagedDir::new(&voted)?;
            let mut agreed = atomic::StagedDir::new(&agreement)?;
            for case in match_inputs(&dirs)? {
                let v = vote_case(&case, VoteRule::Nested)?;
                let name = |what: &str| format!("{}_{what}.nii.gz", case.case);
                write_i16(&staged.file(&name("pred")), &v.labels, &v.header)?;
                write_f32(&agreed.file(&name("agreement")), &v.agreement, &v.header)?;
            }
            staged.commit()?;
            agreed.commit()?;
            voted
        } else {
            dirs[0].clone()
        };
        // Each member alone beside the vote, so the report can show whether voting helped.
        if members > 1 {
            for (m, dir) in dirs.iter().enumerate() {
                let alone = self.evaluate_dir(dir, test, cases, targets)?;
                write_json(
                    &out.join(member_dir(m)).join("eval.json"),
                    &eval_json(&alone, targets)?,
                )?;
            }
        }
        self.evaluate_dir(&pred, test, cases, targets)
    }

    /// Evaluate the predictions `<case>_pred.nii.gz` in `pred` of `cases` against `test`'s
    /// labels.
    fn evaluate_dir(
        &self,
        pred: &Path,
        test: &Path,
        cases: &[String],
        targets: &[Target],
    ) -> Result<Vec<CaseEvaluation>> {
        let references = discover(test)?;
        let mut evaluated = Vec::with_capacity(cases.len());
        for id in cases {
            let reference = references
                .iter()
                .find(|c| &c.id == id)
                .and_then(|c| c.gd.clone())
                .ok_or_else(|| Error::case(id, format!("no labels in {}", test.display())))?;
            let pair = CasePair {
                case: id.clone(),
                prediction: pred.join(format!("{id}_pred.nii.gz")),
                reference,
            };
            let mut case = evaluate_pair(&pair, targets)?;
            // Paths relative to the run and to the test directory: the same grid evaluates to
            // the same bytes wherever it ran.
            case.prediction_file = relative(&self.store.root, &pair.prediction)
                .display()
                .to_string();
            case.reference_file = relative(test, &pair.reference).display().to_string();
            evaluated.push(case);
        }
        Ok(evaluated)
    }

    /// An ensemble's vote against each of its members (the first replicate's), on `metrics`;
    /// None for a single net.
    fn vote_vs_members(
        &self,
        evaluated: &Stage,
        metrics: &[String],
        options: &CompareOptions,
    ) -> Result<Option<Vec<VoteVsMembers>>> {
        let Work::Evaluate {
            members,
            replicates,
            ..
        } = &evaluated.work
        else {
            return Ok(None);
        };
        if *members < 2 {
            return Ok(None);
        }
        let mut dir = self.store.task_dir(&evaluated.id, 0);
        if *replicates > 1 {
            dir = dir.join(replicate_dir(0));
        }
        let each: Vec<PathBuf> = (0..*members)
            .map(|m| dir.join(member_dir(m)).join("eval.json"))
            .collect();
        vote_vs_members(&dir.join("eval.json"), &each, metrics, options).map(Some)
    }

    /// A method evaluated over several replicates: each replicate's seed and mean metrics, and
    /// per target and metric the mean and sample deviation of those means (the spread across
    /// seeds). None for a single replicate.
    fn replicates(&self, evaluated: &Stage) -> Result<Option<serde_json::Value>> {
        let Work::Evaluate {
            replicates,
            targets,
            ..
        } = &evaluated.work
        else {
            return Ok(None);
        };
        if *replicates < 2 {
            return Ok(None);
        }
        let dir = self.store.task_dir(&evaluated.id, 0);
        let mut means = Vec::with_capacity(*replicates);
        for replicate in 0..*replicates {
            let path = dir.join(replicate_dir(replicate)).join("eval.json");
            let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, e))?;
            let eval: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::input(&path, format!("not an evaluation: {e}")))?;
            means.push(eval["mean"].clone());
        }
        let mut spread = serde_json::Map::new();
        for target in targets {
            let mut by_metric = serde_json::Map::new();
            for metric in MaskMetrics::NAMES {
                let values: Option<Vec<f64>> = means
                    .iter()
                    .map(|m| m[target.name()][metric].as_f64())
                    .collect();
                let Some(values) = values else { continue };
                let (mean, sd) = crate::eval::replicates::spread(&values);
                by_metric.insert(metric.into(), serde_json::json!({ "mean": mean, "sd": sd }));
            }
            spread.insert(target.name().into(), serde_json::Value::Object(by_metric));
        }
        let seeds: Vec<u64> = (0..*replicates)
            .map(|r| plan_seeds::replicate(self.plan.job.seed, r))
            .collect();
        Ok(Some(serde_json::json!({
            "seeds": seeds,
            "mean": means,
            "spread": spread,
        })))
    }

    /// Which checkpoint (and epoch) each member of an evaluated method deployed, per network.
    fn deployed(&self, evaluated: &Stage) -> Result<Vec<Vec<DeployedRecord>>> {
        let predicted = self
            .plan
            .stage(&evaluated.parents[0])
            .ok_or_else(|| Error::Internal("an evaluation without predictions".into()))?;
        (0..predicted.tasks)
            .map(|member| {
                let path = self
                    .store
                    .task_dir(&predicted.id, member)
                    .join("deployed.json");
                let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, e))?;
                serde_json::from_str(&text)
                    .map_err(|e| Error::input(&path, format!("not a deployment record: {e}")))
            })
            .collect()
    }

    /// What the run's model tasks computed on, each distinct record once.
    fn computed_on(&self) -> Result<BTreeSet<ComputeRecord>> {
        let mut seen = BTreeSet::new();
        for stage in self.plan.stages.iter().filter(|s| s.work.computes()) {
            for index in 0..stage.tasks {
                let path = self.store.task_dir(&stage.id, index).join(DEVICE_FILE);
                // A task of a run begun before tasks recorded it, or a DAS child the update
                // went ahead without: nothing to add.
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                seen.insert(
                    serde_json::from_str(&text)
                        .map_err(|e| Error::input(&path, format!("not a device record: {e}")))?,
                );
            }
        }
        Ok(seen)
    }

    fn stats(
        &self,
        methods: &[String],
        comparisons: &[[String; 2]],
        metrics: &[String],
    ) -> Result<()> {
        let eval_of = |name: &str| -> Result<(PathBuf, &Stage)> {
            let stage = self
                .stage
                .parents
                .iter()
                .filter_map(|id| self.plan.stage(id))
                .find(|s| matches!(&s.work, Work::Evaluate { method, .. } if method == name))
                .ok_or_else(|| Error::Internal(format!("no evaluation of {name}")))?;
            Ok((self.store.task_dir(&stage.id, 0).join("eval.json"), stage))
        };
        let mut pairs = Vec::new();
        for metric in metrics {
            for [a, b] in comparisons {
                let load = |name: &str| -> Result<_> {
                    let mut samples = load_samples(&eval_of(name)?.0, metric)?;
                    samples.name = name.to_string();
                    Ok(samples)
                };
                pairs.push((load(a)?, load(b)?));
            }
        }
        let options = CompareOptions {
            seed: plan_seeds::bootstrap(self.plan.job.seed),
            ..CompareOptions::default()
        };
        let mut compared = compare_family(&pairs, Family::All, &options)?;
        for c in &mut compared {
            c.a_file = relative(&self.store.root, Path::new(&c.a_file))
                .display()
                .to_string();
            c.b_file = relative(&self.store.root, Path::new(&c.b_file))
                .display()
                .to_string();
        }
        let mut by_method = serde_json::Map::new();
        for name in methods {
            let (path, stage) = eval_of(name)?;
            let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, e))?;
            let eval: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::input(&path, format!("not an evaluation: {e}")))?;
            let deployed = self.deployed(stage)?;
            let mut entry = serde_json::json!({
                "eval": eval,
                "stage": stage.id,
                "deployed": deployed,
            });
            if let Some(replicates) = self.replicates(stage)? {
                entry["replicates"] = replicates;
            }
            if let Some(vote) = self.vote_vs_members(stage, metrics, &options)? {
                entry["vote_vs_members"] = serde_json::to_value(vote)
                    .map_err(|e| Error::Internal(format!("encoding vote_vs_members: {e}")))?;
            }
            by_method.insert(name.clone(), entry);
        }
        // The job as run, without its data directories: the cases are recorded by content
        // (`train_cases`, `test_cases`), so the summary does not depend on where they lie.
        let mut job = self.plan.job.clone();
        for dir in [&mut job.data.train, &mut job.data.test, &mut job.data.root] {
            dir.take();
        }
        // Nor on where it ran: the backend and its workers change no result.
        job.backend = Default::default();
        let summary = Summary {
            run: &self.plan.run,
            job: &self.plan.job.name,
            seed: self.plan.job.seed,
            methods: by_method,
            health: super::status::health(self.plan, self.store)?,
            comparisons: compared,
            targets: self
                .plan
                .job
                .evaluation
                .targets
                .iter()
                .map(|t| target_name(*t))
                .collect(),
            provenance: Provenance {
                awsnet: env!("CARGO_PKG_VERSION"),
                commit: env!("AWSNET_COMMIT"),
                train_cases: &self.plan.inputs.train.sha256,
                test_cases: &self.plan.inputs.test.sha256,
                job: &job,
                seeds: seeds(self.plan),
                compute: self.computed_on()?,
            },
        };
        let tables = paper_tables(&summary)?;
        write_json(&self.dir().join("summary.json"), &summary)?;
        atomic::write_bytes(&self.dir().join("tables.md"), tables.as_bytes())?;
        let results = self.store.root.join("results");
        std::fs::create_dir_all(&results).map_err(|e| Error::write(&results, e))?;
        atomic::write_bytes(&results.join("tables.md"), tables.as_bytes())?;
        write_json(&results.join("summary.json"), &summary)?;
        // What each method cost, from what its tasks recorded: informative, so a failure to
        // gather it is a warning, not a failed grid.
        if let Err(e) = super::compute::write_summary(self.plan, &self.store.root) {
            tracing::warn!("results/compute.json: {e}");
        }
        // The report renders what is written above; like the costs it is outside the task's
        // outputs (it shows costs, which vary), and a report that fails to render must not
        // cost the user the statistics: it warns, and `awsnet report RUN` retries.
        let report = super::results::gather(&self.store.root)
            .and_then(|data| crate::report::document::write_report(&data, &results));
        if let Err(e) = report {
            tracing::warn!("results/report.md: {e}");
        }
        Ok(())
    }
}

/// Where an evaluate task keeps member `member`'s own evaluation (`member1`, …).
fn member_dir(member: usize) -> String {
    format!("member{}", member + 1)
}

/// Where an evaluate task keeps replicate `replicate`'s votes and evaluation (`seed1`, …).
fn replicate_dir(replicate: usize) -> String {
    format!("seed{}", replicate + 1)
}

/// One network a predict task deployed (`deployed.json`, and per member in the summary).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployedRecord {
    pub net: Network,
    /// `store/<key>`, relative to the run directory: the checkpoint by its content.
    pub checkpoint: PathBuf,
    /// Epochs the deployed network had trained.
    pub epoch: u64,
    /// How it failed to learn, if it did (`train::health`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<HealthIssue>,
}

/// The progress lines of every epoch of the `awsnet train` run `run`.
fn run_history(run: &Path) -> Result<Vec<EpochRecord>> {
    let dir = RunDir::new(run);
    let epochs = dir.epoch_of(Which::Latest)?.unwrap_or(0);
    read_lines(&dir.progress(), epochs)
}

/// `RUN/results/summary.json`.
#[derive(Serialize)]
struct Summary<'a> {
    run: &'a str,
    job: &'a str,
    seed: u64,
    targets: Vec<&'static str>,
    methods: serde_json::Map<String, serde_json::Value>,
    /// Every deployed network that failed to learn, by method, member and net.
    health: Vec<HealthFlag>,
    comparisons: Vec<Comparison>,
    provenance: Provenance<'a>,
}

#[derive(Serialize)]
struct Provenance<'a> {
    awsnet: &'static str,
    commit: &'static str,
    train_cases: &'a str,
    test_cases: &'a str,
    job: &'a super::spec::JobSpec,
    seeds: Seeds,
    /// Backends, devices and CPU kernels the training and prediction tasks ran on.
    compute: BTreeSet<ComputeRecord>,
}

/// The seeds every stream of the run derives from (`crate::seed`), from the job's seed.
#[derive(Serialize)]
struct Seeds {
    casn: u64,
    /// Per ensemble member: the seed of its whole chain of training stages (of the first
    /// replicate).
    members: Vec<u64>,
    /// With several replicates, each one's seed, from which its members' seeds derive as the
    /// first replicate's derive from the job's seed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    replicates: Vec<u64>,
    test_split: u64,
    validation_split: u64,
    bootstrap: u64,
}

fn seeds(plan: &Plan) -> Seeds {
    let job = plan.job.seed;
    let members = plan
        .job
        .methods
        .iter()
        .map(|m| plan_seeds::members_of(&plan.job, m))
        .max()
        .unwrap_or(1);
    Seeds {
        casn: plan_seeds::casn(job),
        members: (0..members).map(|m| plan_seeds::member(job, m)).collect(),
        replicates: match plan.job.replicates {
            1 => Vec::new(),
            n => (0..n).map(|r| plan_seeds::replicate(job, r)).collect(),
        },
        test_split: plan_seeds::test_split(job),
        validation_split: plan_seeds::validation_split(job),
        bootstrap: plan_seeds::bootstrap(job),
    }
}

/// The paper-style tables of a summary (what `awsnet table` prints): mean ± std per method,
/// then the comparisons' p-values, raw and Holm-adjusted.
fn paper_tables(summary: &Summary<'_>) -> Result<String> {
    let methods: Vec<MethodEval<'_>> = summary
        .methods
        .iter()
        .map(|(name, m)| MethodEval {
            name: name.clone(),
            eval: &m["eval"],
        })
        .collect();
    let targets: Vec<Target> = methods
        .first()
        .and_then(|m| m.eval["targets"].as_array())
        .map(|ts| {
            ts.iter()
                .filter_map(|t| serde_json::from_value(t.clone()).ok())
                .collect()
        })
        .unwrap_or_default();
    let mut text = String::from("# Mean ± std over the test cases\n\n");
    text += &render(
        &mean_std_table(&methods, &targets, &["dice", "jaccard", "hd", "assd"])?,
        Format::Markdown,
    );
    if !summary.comparisons.is_empty() {
        let comparisons: Vec<serde_json::Value> = summary
            .comparisons
            .iter()
            .map(|c| serde_json::to_value(c).expect("comparisons encode"))
            .collect();
        for (title, which) in [
            ("Paired t-test p-values", PValue::T),
            ("Holm-adjusted over the family", PValue::THolm),
        ] {
            text += &format!("\n# {title}\n\n");
            text += &render(
                &p_value_table(&comparisons, which, false)?,
                Format::Markdown,
            );
        }
    }
    Ok(text)
}

/// The children of auto-weighted epoch `epoch` of a member whose state is `state`.
fn candidates(config: &TrainConfig, state: &TrainState, epoch: u64) -> Result<Vec<Candidate>> {
    let weighting = config
        .weighting
        .as_ref()
        .ok_or_else(|| Error::Internal("a search without a weighting".into()))?;
    let search: &WeightingState = state
        .weighting()
        .ok_or_else(|| Error::Internal("a parent without a search state".into()))?;
    Ok(weighting.candidates(search, epoch_seed(config.seed, epoch)))
}

fn check_epoch(state: &TrainState, epoch: u64) -> Result<()> {
    if state.epoch == epoch {
        Ok(())
    } else {
        Err(Error::Internal(format!(
            "the parent has trained {} epochs; epoch {} needs {epoch}",
            state.epoch,
            epoch + 1
        )))
    }
}

fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    }
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Internal(format!("encoding {}: {e}", path.display())))?;
    bytes.push(b'\n');
    atomic::write_bytes(path, &bytes)
}

/// Every file under `dir` (relative, sorted), `done.json` aside.
fn files_under(dir: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        for entry in std::fs::read_dir(dir).map_err(|e| Error::read(dir, e))? {
            let path = entry.map_err(|e| Error::read(dir, e))?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else {
                let rel = relative(root, &path).display().to_string();
                if rel != "done.json" {
                    out.push(rel);
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(epoch: u64, score: f64) -> Deployable {
        Deployable {
            checkpoint: PathBuf::from(format!("e{epoch}")),
            epoch,
            score,
        }
    }

    #[test]
    fn deploy_picks_the_checkpoint_it_names() {
        let mut parent = Parent {
            warmup: Vec::new(),
            checkpoint: PathBuf::from("e4"),
            state: TrainState {
                epoch: 4,
                seed: 0,
                alpha: vec![0.25; 4],
                extra: None,
            },
            history: Vec::new(),
            lines: Vec::new(),
            fixed_best: Some(at(1, 0.5)),
            auto: vec![at(2, 0.4), at(3, 0.6), at(4, 0.6)],
        };
        let table = [
            (Deploy::Default, "e4"),
            (Deploy::Latest, "e4"),
            (Deploy::BestAuto, "e3"),
            (Deploy::Best, "e3"),
        ];
        for (deploy, expected) in table {
            assert_eq!(
                parent.deployed(deploy),
                PathBuf::from(expected),
                "{deploy:?}"
            );
        }
        // A warm-up epoch better than every auto-weighted one: `best` deploys a model that
        // never used DAS, which is why it is not the default.
        parent.fixed_best = Some(at(1, 0.9));
        assert_eq!(parent.deployed(Deploy::Best), PathBuf::from("e1"));
        assert_eq!(parent.deployed(Deploy::BestAuto), PathBuf::from("e3"));
    }
}
