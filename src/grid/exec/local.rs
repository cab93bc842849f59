//! The local executor: a plan's tasks on this machine, `workers` at a time, each an
//! `awsnet task` process with its output in `RUN/logs/`.
//!
//! A stage's tasks start once every parent stage has finished; an `update` stage (the DAS
//! reducer) also starts when some of its samples failed, since it tolerates missing samples.
//! A failed task blocks only what depends on it; the rest of the grid goes on, and the report
//! names each failed task with its log. Tasks already done (their manifest verifies) are not
//! run again, which is what `awsnet resume` relies on.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::grid::plan::{Plan, Work};
use crate::grid::store::RunStore;
use crate::progress::{Part, PartsProgress};
use crate::stop::Stop;

/// How to run tasks.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The `awsnet` binary tasks run with.
    pub exe: PathBuf,
    pub workers: usize,
    /// Threads each task computes with (`RAYON_NUM_THREADS`; results do not depend on it).
    pub threads: usize,
    /// Passed to each task as `--device`.
    pub device: String,
}

/// A task that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedTask {
    pub label: String,
    pub index: usize,
    pub code: Option<i32>,
    pub log: PathBuf,
}

/// What a run of the executor did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub ran: usize,
    pub already_done: usize,
    pub failed: Vec<FailedTask>,
    /// Stages that could not start because a parent failed.
    pub blocked: Vec<String>,
    /// Seconds each task took, by stage label: what `compute.json` is made of.
    pub seconds: BTreeMap<String, Vec<f64>>,
    /// Stopped on request (`awsnet cancel`, SIGTERM) before the plan was through.
    pub cancelled: bool,
}

/// Where a task's output goes.
pub fn log_path(store: &RunStore, label: &str, index: usize) -> PathBuf {
    let name = label.replace(['/', '[', ']'], "_");
    store
        .root
        .join("logs")
        .join(format!("{}-{index}.log", name.trim_end_matches('_')))
}

/// Run every task of `plan` not yet done. On an error of the executor itself, the tasks it
/// started are stopped (SIGTERM: they save at their next safe point) and waited for, so none
/// outlives the run's lock.
pub fn run_plan(
    plan: &Plan,
    store: &RunStore,
    options: &LocalOptions,
    progress: &dyn PartsProgress,
    stop: &dyn Stop,
) -> Result<Report> {
    let mut running = Vec::new();
    let result = drive(plan, store, options, progress, stop, &mut running);
    if result.is_err() {
        for (child, ..) in &mut running {
            // SAFETY: a signal to a child process this executor started.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
    result
}

type Running<'a> = Vec<(Child, &'a str, usize, Instant)>;

fn drive<'a>(
    plan: &'a Plan,
    store: &RunStore,
    options: &LocalOptions,
    progress: &dyn PartsProgress,
    stop: &dyn Stop,
    running: &mut Running<'a>,
) -> Result<Report> {
    let mut report = Report::default();
    // finished[stage] = tasks that ended (done or failed); failed stages recorded separately.
    let mut pending: BTreeMap<&str, VecDeque<usize>> = BTreeMap::new();
    let mut open: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failed_stages: BTreeSet<&str> = BTreeSet::new();
    // Stages that could not start because something before them failed.
    let mut blocked_stages: BTreeSet<&str> = BTreeSet::new();
    for stage in &plan.stages {
        let mut todo = VecDeque::new();
        for (index, settled) in store.settled(plan, stage)?.into_iter().enumerate() {
            if settled {
                report.already_done += 1;
            } else {
                todo.push_back(index);
            }
        }
        open.insert(&stage.id, todo.len());
        pending.insert(&stage.id, todo);
    }
    // Where each stage stands, in plan order, for the progress lines.
    let mut parts: Vec<Part> = plan
        .stages
        .iter()
        .map(|stage| Part {
            label: stage.label.clone(),
            total: stage.tasks as u64,
            done: (stage.tasks - pending[stage.id.as_str()].len()) as u64,
            ..Part::default()
        })
        .collect();
    let part_of: BTreeMap<&str, usize> = plan
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    progress.update(&parts);
    let logs = store.root.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| Error::write(&logs, e))?;

    let mut started_stages: BTreeSet<&str> = BTreeSet::new();
    loop {
        if stop.requested() && !report.cancelled {
            // Start nothing more; running tasks get SIGTERM, save at their next safe point
            // and exit, and `awsnet resume` continues from there.
            report.cancelled = true;
            for (child, ..) in running.iter() {
                // SAFETY: a signal to a child process this executor started.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            }
        }
        // Start what is ready, up to the worker count.
        for stage in plan.stages.iter().filter(|_| !report.cancelled) {
            if running.len() >= options.workers.max(1) {
                break;
            }
            let id = stage.id.as_str();
            // A stage whose own task failed still runs its other tasks (a failed DAS child
            // must not keep its siblings from running); only its dependents wait.
            if pending[id].is_empty() {
                continue;
            }
            // The DAS update tolerates samples that failed, not samples that never ran: a
            // parent stage that was itself blocked blocks it too.
            let tolerant = matches!(stage.work, Work::Update { .. });
            let ready = stage.parents.iter().all(|p| open[p.as_str()] == 0);
            let blocked = stage.parents.iter().any(|p| {
                let p = p.as_str();
                open[p] == 0
                    && (blocked_stages.contains(p) || (!tolerant && failed_stages.contains(p)))
            });
            if blocked {
                if started_stages.insert(id) {
                    report.blocked.push(stage.label.clone());
                }
                let n = pending
                    .get_mut(id)
                    .map(|q| q.drain(..).count())
                    .unwrap_or(0);
                *open.get_mut(id).expect("every stage is open") -= n;
                blocked_stages.insert(id);
                continue;
            }
            if !ready {
                continue;
            }
            started_stages.insert(id);
            while running.len() < options.workers.max(1) {
                let Some(index) = pending.get_mut(id).and_then(VecDeque::pop_front) else {
                    break;
                };
                let log = log_path(store, &stage.label, index);
                let child = spawn(options, &store.root, id, index, &log)?;
                running.push((child, id, index, Instant::now()));
                parts[part_of[id]].running += 1;
            }
        }
        progress.update(&parts);
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        let mut i = 0;
        while i < running.len() {
            let status = running[i]
                .0
                .try_wait()
                .map_err(|e| Error::Internal(format!("waiting for a task: {e}")))?;
            let Some(status) = status else {
                i += 1;
                continue;
            };
            let (_, id, index, started) = running.swap_remove(i);
            let stage = plan.stage(id).expect("a planned stage");
            *open.get_mut(id).expect("every stage is open") -= 1;
            report.ran += 1;
            report
                .seconds
                .entry(stage.label.clone())
                .or_default()
                .push(started.elapsed().as_secs_f64());
            let part = &mut parts[part_of[id]];
            part.running -= 1;
            part.busy_seconds += started.elapsed().as_secs_f64();
            if status.success() {
                part.done += 1;
            } else if !report.cancelled {
                part.failed += 1;
            }
            if !status.success() && !report.cancelled {
                failed_stages.insert(id);
                report.failed.push(FailedTask {
                    label: stage.label.clone(),
                    index,
                    code: status.code(),
                    log: log_path(store, &stage.label, index),
                });
            }
        }
    }
    // Whatever could not start (a parent failed further up) is reported, never dropped.
    for stage in plan.stages.iter().filter(|_| !report.cancelled) {
        if !pending[stage.id.as_str()].is_empty() && !report.blocked.contains(&stage.label) {
            report.blocked.push(stage.label.clone());
        }
    }
    progress.finish(&parts);
    Ok(report)
}

fn spawn(
    options: &LocalOptions,
    run: &Path,
    stage: &str,
    index: usize,
    log: &Path,
) -> Result<Child> {
    let file = std::fs::File::create(log).map_err(|e| Error::write(log, e))?;
    let err = file.try_clone().map_err(|e| Error::write(log, e))?;
    Command::new(&options.exe)
        .arg("task")
        .arg(run)
        .args(["--stage", stage, "--index", &index.to_string()])
        .args(["--device", &options.device])
        .env("RAYON_NUM_THREADS", options.threads.max(1).to_string())
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|e| Error::Internal(format!("starting {}: {e}", options.exe.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;
    use crate::stop::Never;

    /// A stand-in for `awsnet task` that fails one stage's tasks (named by its id in the file
    /// `fail`) and the sample task 1 of any stage named in `fail-1`, and succeeds otherwise.
    fn fake_task(dir: &Path) -> PathBuf {
        let exe = dir.join("fake-awsnet");
        let script = format!(
            "#!/bin/sh\n# task RUN --stage ID --index I\n\
             grep -qx \"$4\" {d}/fail 2>/dev/null && exit 1\n\
             [ \"$6\" = 1 ] && grep -qx \"$4\" {d}/fail-1 2>/dev/null && exit 1\n\
             exit 0\n",
            d = dir.display()
        );
        std::fs::write(&exe, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        exe
    }

    fn plan() -> Plan {
        crate::grid::test_plans::two_methods()
    }

    fn id(plan: &Plan, label: &str) -> String {
        plan.stages
            .iter()
            .find(|s| s.label == label)
            .unwrap()
            .id
            .clone()
    }

    fn run(plan: &Plan, dir: &Path) -> Report {
        let options = LocalOptions {
            exe: fake_task(dir),
            workers: 2,
            threads: 1,
            device: "cpu".into(),
        };
        run_plan(
            plan,
            &RunStore::new(dir.join("run")),
            &options,
            &Silent,
            &Never,
        )
        .unwrap()
    }

    /// A failed warm-up blocks the whole search after it — the updates included, which
    /// tolerate failed samples but not samples that never ran — and nothing else.
    #[test]
    fn a_failure_blocks_its_dependents_only() {
        let tmp = tempfile::tempdir().unwrap();
        let plan = plan();
        std::fs::write(tmp.path().join("fail"), id(&plan, "das/warmup") + "\n").unwrap();
        let report = run(&plan, tmp.path());
        let failed: Vec<&str> = report.failed.iter().map(|f| f.label.as_str()).collect();
        assert_eq!(
            failed,
            ["das/warmup", "das/warmup"],
            "both nets' warm-up tasks"
        );
        let mut blocked = report.blocked.clone();
        blocked.sort();
        assert_eq!(
            blocked,
            [
                "das/evaluate",
                "das/predict",
                "das/sample[2]",
                "das/sample[3]",
                "das/update[2]",
                "das/update[3]",
                "stats"
            ]
        );
        assert!(
            report.seconds.contains_key("base/evaluate"),
            "the other method ran"
        );
    }

    /// One failed DAS child: its siblings still run, and the update runs with what arrived.
    #[test]
    fn a_failed_sample_leaves_its_siblings_and_the_update_running() {
        let tmp = tempfile::tempdir().unwrap();
        let plan = plan();
        std::fs::write(tmp.path().join("fail-1"), id(&plan, "das/sample[2]") + "\n").unwrap();
        let report = run(&plan, tmp.path());
        let failed: Vec<(&str, usize)> = report
            .failed
            .iter()
            .map(|f| (f.label.as_str(), f.index))
            .collect();
        assert_eq!(failed, [("das/sample[2]", 1)]);
        assert_eq!(report.seconds["das/sample[2]"].len(), 4, "every child ran");
        assert_eq!(report.seconds["das/update[2]"].len(), 1, "the update ran");
        // The next epoch builds on the update, not on the failed child: the search goes on.
        assert!(report.seconds.contains_key("das/update[3]"));
        assert_eq!(report.blocked, Vec::<String>::new());
    }
}
