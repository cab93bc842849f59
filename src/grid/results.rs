//! What a finished run holds, gathered for its report: `results/summary.json` (read typed),
//! each member's training record and search from the stages the plan names, what each member
//! deployed, the recorded costs, and a few test slices with every method's prediction.
//!
//! Reading only: nothing here writes to the run directory.

use std::path::{Path, PathBuf};

use ndarray::{s, Array2, Array3};
use serde::Deserialize;

use super::compute;
use super::plan::{Plan, Stage, Work, ASAN_NETS};
use super::records::{DeployedRecord, Parent};
use super::spec::Method;
use super::status::HealthFlag;
use super::store::RunStore;
use crate::das::weighting::WeightingLine;
use crate::data::cases::{discover, Sequence};
use crate::data::labels::{codes_from_values, Target};
use crate::data::nifti_read::{into_volume3, read_nifti};
use crate::error::{Error, Result};
use crate::eval::ensemble::VoteVsMembers;
use crate::eval::stats::samples::Samples;
use crate::eval::stats::{compare, CompareOptions};
use crate::report::data::{
    Change, Cost, CurvePoint, Deployed, MemberData, MethodData, NetData, Previous, Replicates,
    ReportData, Variant,
};
use crate::report::figures::overlay::SliceRow;
use crate::train::checkpoint::read_state;
use crate::train::config::EpochRecord;
use crate::train::run_dir::{read_lines, RunDir};
use crate::train::samples::Network;

/// Test slices the overlay figure shows.
const SLICES: usize = 3;
/// Cases looked through to find them (the first, by id).
const CASES_SEARCHED: usize = 24;

/// `results/summary.json`, the parts a report reads.
#[derive(Deserialize)]
struct SummaryFile {
    run: String,
    job: String,
    seed: u64,
    targets: Vec<Target>,
    methods: serde_json::Map<String, serde_json::Value>,
    comparisons: Vec<serde_json::Value>,
    #[serde(default)]
    health: Vec<HealthFlag>,
    provenance: ProvenanceFile,
}

#[derive(Deserialize)]
struct MethodEntry {
    eval: serde_json::Value,
    deployed: Vec<Vec<DeployedRecord>>,
    /// Present when the method was trained from several seeds.
    #[serde(default)]
    replicates: Option<ReplicatesEntry>,
    /// Present for an ensemble.
    #[serde(default)]
    vote_vs_members: Option<Vec<VoteVsMembers>>,
}

#[derive(Deserialize)]
struct ReplicatesEntry {
    seeds: Vec<u64>,
    /// Per replicate, its evaluation's `mean` table (target → metric → value).
    mean: Vec<serde_json::Value>,
}

impl ReplicatesEntry {
    fn dice(&self, targets: &[Target]) -> Replicates {
        let dice = targets
            .iter()
            .map(|t| {
                let each = self
                    .mean
                    .iter()
                    .map(|m| m[t.name()]["dice"].as_f64().unwrap_or(f64::NAN))
                    .collect();
                (*t, each)
            })
            .collect();
        Replicates {
            seeds: self.seeds.clone(),
            dice,
        }
    }
}

#[derive(Deserialize)]
struct ProvenanceFile {
    awsnet: String,
    commit: String,
}

/// Gather the report of the run in `run` (which must have its `results/summary.json`).
pub fn gather(run: &Path) -> Result<ReportData> {
    let store = RunStore::new(run);
    let plan = store.read_plan()?;
    let path = run.join("results").join("summary.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::input(
                &path,
                "no summary yet: the grid's statistics stage has not run (see `awsnet status`)",
            )
        } else {
            Error::read(&path, e)
        }
    })?;
    let summary: SummaryFile = serde_json::from_str(&text)
        .map_err(|e| Error::input(&path, format!("not a grid summary: {e}")))?;
    let mut methods = Vec::new();
    let mut entries = Vec::new();
    for (name, value) in &summary.methods {
        let entry: MethodEntry = serde_json::from_value(value.clone())
            .map_err(|e| Error::input(&path, format!("methods.{name}: {e}")))?;
        let mut data = method(&plan, &store, name, &entry)?;
        data.replicates = entry.replicates.as_ref().map(|r| r.dice(&summary.targets));
        data.vote_vs_members = entry.vote_vs_members.clone().unwrap_or_default();
        methods.push(data);
        entries.push((name.clone(), entry));
    }
    let costs = compute::gather(&plan, run);
    // The statistics stage records its cost only once it has written the report: leaving it
    // out keeps a report rendered again from the same run the same.
    let compute = costs
        .methods
        .iter()
        .filter(|(name, _)| name.as_str() != "stats")
        .map(|(name, t)| {
            let cost = Cost {
                tasks: t.tasks,
                wall_seconds: t.wall_seconds_total,
                cpu_seconds: t.cpu_seconds_total,
            };
            (name.clone(), cost)
        })
        .collect();
    let test_cases = methods
        .first()
        .and_then(|m| m.eval["metric_per_case"].as_array().map(Vec::len))
        .unwrap_or(0);
    Ok(ReportData {
        run: summary.run,
        job: summary.job,
        seed: summary.seed,
        test_cases,
        targets: summary.targets,
        slices: slices(&plan, &store, &entries)?,
        methods,
        comparisons: summary.comparisons,
        compute,
        previous: match super::history::previous_results(run) {
            Some(dir) => Some(previous(&dir, &summary.methods)?),
            None => None,
        },
        provenance: format!(
            "awsnet {} (commit {})",
            summary.provenance.awsnet,
            &summary.provenance.commit[..summary.provenance.commit.len().min(12)]
        ),
        health: summary.health.iter().map(HealthFlag::describe).collect(),
    })
}

fn method(plan: &Plan, store: &RunStore, name: &str, entry: &MethodEntry) -> Result<MethodData> {
    let spec = plan
        .job
        .methods
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| Error::Internal(format!("method {name} is not in the plan's job")))?;
    let warmup = plan
        .stages
        .iter()
        .find(|s| matches!(&s.work, Work::Train { method, replicate: 0, .. } if method == name));
    let last_update = plan
        .stages
        .iter()
        .filter_map(|s| match &s.work {
            Work::Update {
                method,
                replicate: 0,
                epoch,
                ..
            } if method == name => Some((*epoch, s)),
            _ => None,
        })
        .max_by_key(|(epoch, _)| *epoch)
        .map(|(_, s)| s);
    let mut members = Vec::new();
    for (member, deployed) in entry.deployed.iter().enumerate() {
        let mut nets = Vec::new();
        for (n, record) in deployed
            .iter()
            .filter(|d| d.net.asan().is_some())
            .enumerate()
        {
            let which = member * ASAN_NETS.len() + n;
            nets.push(net(store, warmup, last_update, which, record)?);
        }
        members.push(MemberData { member, nets });
    }
    Ok(MethodData {
        name: name.to_string(),
        variant: variant(spec),
        eval: entry.eval.clone(),
        members,
        replicates: None,
        vote_vs_members: Vec::new(),
    })
}

fn variant(spec: &Method) -> Variant {
    let sequences = spec.sequences.clone();
    let names: Vec<&str> = sequences
        .as_deref()
        .unwrap_or(&[Sequence::DE, Sequence::T2])
        .iter()
        .map(|s| match s {
            Sequence::C0 => "bSSFP",
            Sequence::DE => "LGE",
            Sequence::T2 => "T2",
        })
        .collect();
    Variant {
        pam: spec.pam,
        deep_supervision: spec.deep_supervision,
        dcl: spec.dcl,
        weighting: spec.weighting.map(|w| {
            serde_json::to_value(w)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        }),
        ensemble: spec.ensemble,
        sequences: names.join(" + "),
        default_sequences: sequences.is_none(),
    }
}

fn net_name(net: Network) -> String {
    serde_json::to_value(net)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Member-net `which`: its curve (warm-up epochs, then each search epoch's chosen child), its
/// search, and what it deployed.
fn net(
    store: &RunStore,
    warmup: Option<&Stage>,
    last_update: Option<&Stage>,
    which: usize,
    record: &DeployedRecord,
) -> Result<NetData> {
    let mut curve: Vec<CurvePoint> = Vec::new();
    // The curve shows the Dice the net was scored by, so its peak is the epoch it deployed.
    let score = match warmup.map(|s| &s.work) {
        Some(Work::Train { configs, .. }) => configs.get(which).map(|c| c.score),
        _ => None,
    }
    .unwrap_or_else(crate::train::config::default_score);
    let point = |r: &EpochRecord| CurvePoint {
        epoch: r.epoch,
        loss: r.loss,
        val_dice: r.validation().score(score),
    };
    let mut auto_from = None;
    let mut search = Vec::new();
    if let Some(
        stage @ Stage {
            work: Work::Train { until, .. },
            ..
        },
    ) = warmup
    {
        let run = store.task_dir(&stage.id, which).join("run");
        let lines: Vec<EpochRecord> = read_lines(&RunDir::new(&run).progress(), *until)?;
        curve.extend(lines.iter().map(point));
    }
    if let Some(update) = last_update {
        let path = store
            .task_dir(&update.id, 0)
            .join("parents")
            .join(format!("{which}.json"));
        let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, e))?;
        let parent: Parent = serde_json::from_str(&text)
            .map_err(|e| Error::input(&path, format!("not a parent record: {e}")))?;
        auto_from = parent.history.first().map(|r| r.epoch);
        curve.extend(parent.history.iter().map(point));
        search = parent
            .lines
            .into_iter()
            .filter_map(|line| match line {
                WeightingLine::Das(r) | WeightingLine::Norl(r) => Some(r),
                _ => None,
            })
            .collect();
    }
    let checkpoint = store.root.join(&record.checkpoint);
    Ok(NetData {
        net: net_name(record.net),
        deployed: Deployed {
            epoch: record.epoch,
            alpha: read_state(&checkpoint)?.alpha,
            checkpoint: record.checkpoint.display().to_string(),
        },
        curve,
        auto_from,
        search,
    })
}

/// The test slices with the most scar + edema (one per case, at most [`SLICES`]), with each
/// method's prediction and each ensemble's agreement map.
fn slices(
    plan: &Plan,
    store: &RunStore,
    methods: &[(String, MethodEntry)],
) -> Result<Vec<SliceRow>> {
    let Some(test) = plan.stages.iter().find_map(|s| match &s.work {
        Work::Evaluate { test, .. } => Some(test.clone()),
        _ => None,
    }) else {
        return Ok(Vec::new());
    };
    let cases = discover(&test)?;
    let mut ranked: Vec<(usize, usize, &str, Array3<u16>)> = Vec::new();
    for case in cases.iter().take(CASES_SEARCHED) {
        let Some(gd) = &case.gd else { continue };
        if !methods
            .iter()
            .all(|(_, m)| prediction_of(m, &case.id).is_some())
        {
            continue;
        }
        let labels = read_labels(gd)?;
        let (z, area) = (0..labels.dim().2)
            .map(|z| {
                let area = labels
                    .slice(s![.., .., z])
                    .iter()
                    .filter(|&&c| Target::ScarEdema.contains(c))
                    .count();
                (z, area)
            })
            .max_by_key(|&(z, area)| (area, std::cmp::Reverse(z)))
            .unwrap_or((0, 0));
        ranked.push((area, z, &case.id, labels));
    }
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.2.cmp(b.2)));
    let mut rows = Vec::new();
    for (_, z, id, labels) in ranked.into_iter().take(SLICES) {
        let files = cases
            .iter()
            .find(|c| c.id == id)
            .expect("ranked from cases");
        let de = files
            .de
            .as_ref()
            .ok_or_else(|| Error::case(id, "no LGE (DE) image"))?;
        let lge = read_volume(de)?.slice(s![.., .., z]).mapv(|v| v as f32);
        let mut predictions = Vec::new();
        let mut agreement = Vec::new();
        for (name, entry) in methods {
            let file = prediction_of(entry, id).expect("checked above");
            let pred = read_labels(&store.root.join(file))?;
            predictions.push((name.clone(), slice_of(&pred, z, id)?));
            // Beside the voted labels (`voted/`, or `seed1/voted/` with replicates) when the
            // method is an ensemble.
            let agreed = store
                .root
                .join(file)
                .parent()
                .and_then(Path::parent)
                .map(|dir| dir.join("agreement").join(format!("{id}_agreement.nii.gz")));
            if let Some(agreed) = agreed.filter(|p| p.exists()) {
                let a = read_volume(&agreed)?;
                agreement.push((name.clone(), slice_of(&a, z, id)?.mapv(|v| v as f32)));
            }
        }
        rows.push(SliceRow {
            case: id.to_string(),
            slice: z,
            reference: labels.slice(s![.., .., z]).to_owned(),
            lge,
            predictions,
            agreement,
        });
    }
    Ok(rows)
}

fn prediction_of<'a>(entry: &'a MethodEntry, case: &str) -> Option<&'a str> {
    entry.eval["metric_per_case"]
        .as_array()?
        .iter()
        .find(|c| c["case"] == case)?["prediction_file"]
        .as_str()
}

fn slice_of<T: Clone>(volume: &Array3<T>, z: usize, case: &str) -> Result<Array2<T>> {
    if z >= volume.dim().2 {
        return Err(Error::case(
            case,
            format!(
                "a prediction has {} slices; the reference more",
                volume.dim().2
            ),
        ));
    }
    Ok(volume.slice(s![.., .., z]).to_owned())
}

fn read_volume(path: &Path) -> Result<Array3<f64>> {
    let volume = read_nifti(path)?;
    into_volume3(volume.data).ok_or_else(|| Error::input(path, "not a 3-D volume"))
}

fn read_labels(path: &Path) -> Result<Array3<u16>> {
    codes_from_values(&read_volume(path)?).map_err(|e| Error::input(path, e))
}

/// Where `awsnet report` writes: `RUN/results`.
pub fn results_dir(run: &Path) -> PathBuf {
    run.join("results")
}

/// Tonight's methods against those of the previous run's summary in `dir`, per target and
/// metric, on the cases both evaluated.
fn previous(dir: &Path, now: &serde_json::Map<String, serde_json::Value>) -> Result<Previous> {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, e))?;
    let before: SummaryFile = serde_json::from_str(&text)
        .map_err(|e| Error::input(&path, format!("not a grid summary: {e}")))?;
    let mut rows = Vec::new();
    for (method, tonight) in now {
        let Some(earlier) = before.methods.get(method) else {
            continue;
        };
        for target in &before.targets {
            for metric in ["dice", "jaccard", "hd", "assd"] {
                let name = format!("{}_{metric}", target.name());
                let samples = |eval: &serde_json::Value, label: &str| Samples {
                    name: label.to_string(),
                    path: PathBuf::from(label),
                    metric: name.clone(),
                    values: eval["eval"]["metric_per_case"]
                        .as_array()
                        .map(|cases| {
                            cases
                                .iter()
                                .filter_map(|c| {
                                    let case = c["case"].as_str()?.to_string();
                                    Some((case, c[target.name()][metric].as_f64()))
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                };
                let options = CompareOptions {
                    intersect: true,
                    resamples: 1,
                    seed: 0,
                };
                // No shared case with a value: nothing to compare on this metric.
                let Ok(c) = compare(
                    &samples(tonight, "tonight"),
                    &samples(earlier, "previous"),
                    &options,
                ) else {
                    continue;
                };
                let higher_better = matches!(metric, "dice" | "jaccard");
                let diff = c.mean_diff.unwrap_or(0.0);
                let worse_direction = if higher_better {
                    diff < 0.0
                } else {
                    diff > 0.0
                };
                rows.push(Change {
                    method: method.clone(),
                    metric: name,
                    n: c.n,
                    before: c.mean_b,
                    now: c.mean_a,
                    p: c.p_t,
                    worse: worse_direction && c.p_t.is_some_and(|p| p < 0.05),
                });
            }
        }
    }
    Ok(Previous {
        run: before.run,
        rows,
    })
}
