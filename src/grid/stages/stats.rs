//! The stats task: the paired comparisons of the job over every evaluated method, and
//! `summary.json`, the one document holding every number of a run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::super::plan::{Plan, Stage, Work};
use super::super::records::{
    member_dir, replicate_dir, ComputeRecord, DeployedRecord, DEVICE_FILE,
};
use super::super::seeds as plan_seeds;
use super::super::spec::target_name;
use super::super::status::HealthFlag;
use super::super::task::{relative, write_json, Task};
use crate::atomic;
use crate::data::labels::Target;
use crate::error::{Error, Result};
use crate::eval::ensemble::{vote_vs_members, VoteVsMembers};
use crate::eval::metrics::MaskMetrics;
use crate::eval::stats::samples::load_samples;
use crate::eval::stats::{compare_family, CompareOptions, Comparison, Family};
use crate::report::tables::{mean_std_table, p_value_table, render, Format, MethodEval, PValue};

pub(crate) fn stats(
    task: &Task<'_>,
    methods: &[String],
    comparisons: &[[String; 2]],
    metrics: &[String],
) -> Result<()> {
    let eval_of = |name: &str| -> Result<(PathBuf, &Stage)> {
        let stage = task
            .stage
            .parents
            .iter()
            .filter_map(|id| task.plan.stage(id))
            .find(|s| matches!(&s.work, Work::Evaluate { method, .. } if method == name))
            .ok_or_else(|| Error::Internal(format!("no evaluation of {name}")))?;
        Ok((task.store.task_dir(&stage.id, 0).join("eval.json"), stage))
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
        seed: plan_seeds::bootstrap(task.plan.job.seed),
        ..CompareOptions::default()
    };
    let mut compared = compare_family(&pairs, Family::All, &options)?;
    for c in &mut compared {
        c.a_file = relative(&task.store.root, Path::new(&c.a_file))
            .display()
            .to_string();
        c.b_file = relative(&task.store.root, Path::new(&c.b_file))
            .display()
            .to_string();
    }
    let mut by_method = serde_json::Map::new();
    for name in methods {
        let (path, stage) = eval_of(name)?;
        let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, e))?;
        let eval: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::input(&path, format!("not an evaluation: {e}")))?;
        let deployed = deployed(task, stage)?;
        let mut entry = serde_json::json!({
            "eval": eval,
            "stage": stage.id,
            "deployed": deployed,
        });
        if let Some(replicates) = replicates(task, stage)? {
            entry["replicates"] = replicates;
        }
        if let Some(vote) = vote_against_members(task, stage, metrics, &options)? {
            entry["vote_vs_members"] = serde_json::to_value(vote)
                .map_err(|e| Error::Internal(format!("encoding vote_vs_members: {e}")))?;
        }
        by_method.insert(name.clone(), entry);
    }
    // The job as run, without its data directories: the cases are recorded by content
    // (`train_cases`, `test_cases`), so the summary does not depend on where they lie.
    let mut job = task.plan.job.clone();
    for dir in [&mut job.data.train, &mut job.data.test, &mut job.data.root] {
        dir.take();
    }
    // Nor on where it ran: the backend and its workers change no result.
    job.backend = Default::default();
    let summary = Summary {
        run: &task.plan.run,
        job: &task.plan.job.name,
        seed: task.plan.job.seed,
        methods: by_method,
        health: crate::grid::status::health(task.plan, task.store)?,
        comparisons: compared,
        targets: task
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
            train_cases: &task.plan.inputs.train.sha256,
            test_cases: &task.plan.inputs.test.sha256,
            job: &job,
            seeds: seeds(task.plan),
            compute: computed_on(task)?,
        },
    };
    let tables = paper_tables(&summary)?;
    write_json(&task.dir().join("summary.json"), &summary)?;
    atomic::write_bytes(&task.dir().join("tables.md"), tables.as_bytes())?;
    let results = task.store.root.join("results");
    std::fs::create_dir_all(&results).map_err(|e| Error::write(&results, e))?;
    atomic::write_bytes(&results.join("tables.md"), tables.as_bytes())?;
    write_json(&results.join("summary.json"), &summary)
}

/// An ensemble's vote against each of its members (the first replicate's), on `metrics`;
/// None for a single net.
fn vote_against_members(
    task: &Task<'_>,
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
    let mut dir = task.store.task_dir(&evaluated.id, 0);
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
fn replicates(task: &Task<'_>, evaluated: &Stage) -> Result<Option<serde_json::Value>> {
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
    let dir = task.store.task_dir(&evaluated.id, 0);
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
        .map(|r| plan_seeds::replicate(task.plan.job.seed, r))
        .collect();
    Ok(Some(serde_json::json!({
        "seeds": seeds,
        "mean": means,
        "spread": spread,
    })))
}

/// Which checkpoint (and epoch) each member of an evaluated method deployed, per network.
fn deployed(task: &Task<'_>, evaluated: &Stage) -> Result<Vec<Vec<DeployedRecord>>> {
    let predicted = task
        .plan
        .stage(&evaluated.parents[0])
        .ok_or_else(|| Error::Internal("an evaluation without predictions".into()))?;
    (0..predicted.tasks)
        .map(|member| {
            let path = task
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
fn computed_on(task: &Task<'_>) -> Result<BTreeSet<ComputeRecord>> {
    let mut seen = BTreeSet::new();
    for stage in task.plan.stages.iter().filter(|s| s.work.computes()) {
        for index in 0..stage.tasks {
            let path = task.store.task_dir(&stage.id, index).join(DEVICE_FILE);
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

/// `RUN/results/summary.json`.
#[derive(Serialize)]
pub(crate) struct Summary<'a> {
    pub(crate) run: &'a str,
    pub(crate) job: &'a str,
    pub(crate) seed: u64,
    pub(crate) targets: Vec<&'static str>,
    pub(crate) methods: serde_json::Map<String, serde_json::Value>,
    /// Every deployed network that failed to learn, by method, member and net.
    pub(crate) health: Vec<HealthFlag>,
    pub(crate) comparisons: Vec<Comparison>,
    provenance: Provenance<'a>,
}

#[derive(Serialize)]
struct Provenance<'a> {
    awsnet: &'static str,
    commit: &'static str,
    train_cases: &'a str,
    test_cases: &'a str,
    job: &'a crate::grid::spec::JobSpec,
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
