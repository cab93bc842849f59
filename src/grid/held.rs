//! Held workers: one process per DAS child slot that stays up for a method's whole search,
//! instead of a process per child and epoch (Slurm's `das_mode: held`).
//!
//! The stages are the plan's own `sample[t]` and `update[t]`, run by the same task code, so the
//! run directory ends with the bytes the per-epoch arrays give. Workers coordinate only through
//! files in the run directory (no file locks, no scheduler calls):
//!
//! - **claims**: a task is run by whoever first hard-links a claim file naming itself into
//!   `RUN/held/<group>/claims/` (atomic on NFS and Lustre as on a local disk); the claim goes
//!   when the task ends.
//! - **heartbeats**: each worker rewrites `RUN/held/<group>/alive/<worker>` with a counter while
//!   it lives. A claim whose worker's counter has not moved for `stale` (measured on the
//!   observer's own clock, so node clocks need not agree) is taken over.
//! - each worker trains its own child first, then any child no one has claimed: workers that
//!   start late, or never (a full partition, a cancelled array element), have their children
//!   trained by the others, so no start order deadlocks, and a lost worker's child is retrained
//!   by another from its parent. A child whose task fails is marked failed, as a failed array
//!   task is, and the update proceeds without it.
//! - once every child of epoch t is done or failed, one worker claims `update[t]` and runs it
//!   (exactly once); every worker then goes on to epoch t+1. A worker that joins late (or is
//!   requeued) skips epochs whose update is done.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::engine::Engine;
use super::plan::{Plan, Stage, Work};
use super::store::{RunStore, TaskState};
use super::task::run_planned;
use crate::atomic;
use crate::error::{Error, Result};
use crate::stop::Stop;

/// The sample and update stages of the search that begins with sample stage `first`, in order.
pub fn chain<'a>(plan: &'a Plan, first: &str) -> Result<Vec<(&'a Stage, &'a Stage)>> {
    let (method, replicate) = match plan.stage(first).map(|s| &s.work) {
        Some(Work::Sample {
            method, replicate, ..
        }) => (method, *replicate),
        _ => {
            return Err(Error::invalid(
                "--stage",
                format!("{first} is not a DAS sample stage of the plan"),
            ))
        }
    };
    let of = |want_sample: bool| {
        let mut stages: Vec<(u64, &Stage)> = plan
            .stages
            .iter()
            .filter_map(|s| match &s.work {
                Work::Sample {
                    method: m,
                    replicate: r,
                    epoch,
                    ..
                } if want_sample && m == method && *r == replicate => Some((*epoch, s)),
                Work::Update {
                    method: m,
                    replicate: r,
                    epoch,
                    ..
                } if !want_sample && m == method && *r == replicate => Some((*epoch, s)),
                _ => None,
            })
            .collect();
        stages.sort_by_key(|(epoch, _)| *epoch);
        stages
    };
    let (samples, updates) = (of(true), of(false));
    if samples.len() != updates.len() || samples.first().map(|(_, s)| s.id.as_str()) != Some(first)
    {
        return Err(Error::Internal(format!(
            "the search of {method} is not a chain of sample and update stages"
        )));
    }
    Ok(samples
        .into_iter()
        .zip(updates)
        .map(|((_, s), (_, u))| (s, u))
        .collect())
}

/// Whether the search beginning with sample stage `first` is over: its last update is done
/// (a held worker's job is finished then, whatever became of its own children).
pub fn search_done(plan: &Plan, store: &RunStore, first: &str) -> Result<bool> {
    match chain(plan, first)?.last() {
        Some((_, update)) => Ok(store.state(&update.id, 0)? == TaskState::Done),
        None => Ok(false),
    }
}

/// Run held worker `worker` of the search beginning with sample stage `first` until the
/// search's last update is done.
pub fn run_worker(
    run: &Path,
    first: &str,
    worker: usize,
    engine: &dyn Engine,
    stop: &dyn Stop,
    stale: Duration,
) -> Result<()> {
    let store = RunStore::new(run);
    let plan = store.read_plan()?;
    let chain = chain(&plan, first)?;
    let slots = chain[0].0.tasks;
    if worker >= slots {
        return Err(Error::invalid(
            "--index",
            format!("the search has {slots} held workers (0..{slots})"),
        ));
    }
    let board = Board::open(run, first, worker, stale)?;
    let _heartbeat = Heartbeat::start(board.alive(worker), stale)?;
    board.release_mine()?;
    let mut watch = Watch::default();
    let mut done = Done::default();
    for (sample, update) in chain {
        loop {
            if stop.requested() {
                return Err(Error::Stopped {
                    saved: format!("held worker {worker}: every finished child is saved"),
                });
            }
            if done.check(&store, &update.id, 0)? {
                break;
            }
            if let Some(why) = board.failed(&update.id, 0) {
                return Err(Error::training(format!(
                    "{} failed (in another worker): {why}",
                    update.label
                )));
            }
            // Own child first, then the others in turn from ours.
            let mut open = 0;
            let mut ran = false;
            for k in (0..slots).map(|i| (worker + i) % slots) {
                if done.check(&store, &sample.id, k)? || board.failed(&sample.id, k).is_some() {
                    continue;
                }
                open += 1;
                if board.take(&store, &mut done, &sample.id, k, &mut watch)? {
                    board.run(&plan, &store, sample, k, engine, false)?;
                    ran = true;
                    break;
                }
            }
            if ran {
                continue;
            }
            if open == 0 && board.take(&store, &mut done, &update.id, 0, &mut watch)? {
                board.run(&plan, &store, update, 0, engine, true)?;
                continue;
            }
            // Waiting costs a few stat calls per poll: poll often, so an epoch's end is seen
            // at once.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

/// Tasks seen done: a manifest is verified (its outputs hashed) once, when it appears; until
/// then a poll is one stat of `done.json`.
#[derive(Default)]
struct Done {
    verified: std::collections::HashSet<(String, usize)>,
}

impl Done {
    fn check(&mut self, store: &RunStore, stage: &str, index: usize) -> Result<bool> {
        let key = (stage.to_string(), index);
        if self.verified.contains(&key) {
            return Ok(true);
        }
        if !store.task_dir(stage, index).join("done.json").exists() {
            return Ok(false);
        }
        let done = store.state(stage, index)? == TaskState::Done;
        if done {
            self.verified.insert(key);
        }
        Ok(done)
    }
}

/// The files workers coordinate through: `RUN/held/<first 12 of the group's id>/`.
struct Board {
    dir: PathBuf,
    me: usize,
    stale: Duration,
}

impl Board {
    fn open(run: &Path, first: &str, me: usize, stale: Duration) -> Result<Board> {
        let dir = run.join("held").join(&first[..first.len().min(12)]);
        for sub in ["claims", "alive", "failed"] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| Error::write(&d, e))?;
        }
        Ok(Board { dir, me, stale })
    }

    fn alive(&self, worker: usize) -> PathBuf {
        self.dir.join("alive").join(worker.to_string())
    }

    fn name(stage: &str, index: usize) -> String {
        format!("{}-{index}", &stage[..stage.len().min(12)])
    }

    fn claim_path(&self, stage: &str, index: usize) -> PathBuf {
        self.dir.join("claims").join(Self::name(stage, index))
    }

    fn failed(&self, stage: &str, index: usize) -> Option<String> {
        std::fs::read_to_string(self.dir.join("failed").join(Self::name(stage, index))).ok()
    }

    /// Claims left by an earlier life of this worker (killed, requeued) are this life's.
    fn release_mine(&self) -> Result<()> {
        let dir = self.dir.join("claims");
        for entry in std::fs::read_dir(&dir)
            .map_err(|e| Error::read(&dir, e))?
            .flatten()
        {
            if holder(&entry.path()) == Some(self.me) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// Take task (stage, index) if no live worker holds it.
    fn claim(&self, stage: &str, index: usize, watch: &mut Watch) -> Result<bool> {
        let path = self.claim_path(stage, index);
        let ours =
            self.dir
                .join("claims")
                .join(format!(".{}.{}", Self::name(stage, index), self.me));
        {
            let mut file = std::fs::File::create(&ours).map_err(|e| Error::write(&ours, e))?;
            writeln!(file, "{}", self.me).map_err(|e| Error::write(&ours, e))?;
        }
        let taken = match std::fs::hard_link(&ours, &path) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                match holder(&path) {
                    Some(other) if other != self.me && watch.stale(self, other) => {
                        // Its worker is gone: remove the claim if it still names that worker,
                        // and take the task on the next round.
                        if holder(&path) == Some(other) {
                            let _ = std::fs::remove_file(&path);
                        }
                        false
                    }
                    _ => false,
                }
            }
            Err(e) => return Err(Error::write(&path, e)),
        };
        let _ = std::fs::remove_file(&ours);
        Ok(taken)
    }

    /// Claim task (stage, index) to run it: true when it is claimed and still to do.
    ///
    /// A worker releases its claim only after the task's manifest is written, so a task not
    /// done when this worker looked may have finished, and its claim gone, by the time this
    /// worker claims it: looking again under the claim is what keeps a finished task from
    /// running twice (a second run would start by clearing the outputs others now read).
    fn take(
        &self,
        store: &RunStore,
        done: &mut Done,
        stage: &str,
        index: usize,
        watch: &mut Watch,
    ) -> Result<bool> {
        if !self.claim(stage, index, watch)? {
            return Ok(false);
        }
        if done.check(store, stage, index)? {
            self.release(stage, index);
            return Ok(false);
        }
        Ok(true)
    }

    fn release(&self, stage: &str, index: usize) {
        let _ = std::fs::remove_file(self.claim_path(stage, index));
    }

    /// Run a claimed task; a failure is recorded for the others (and, for an update, ends the
    /// search), a stop request is passed on.
    fn run(
        &self,
        plan: &Plan,
        store: &RunStore,
        stage: &Stage,
        index: usize,
        engine: &dyn Engine,
        fatal: bool,
    ) -> Result<()> {
        let result = run_planned(plan, store, &stage.id, index, engine);
        let outcome = match result {
            Ok(()) => Ok(()),
            Err(e) if matches!(unwrap_in_task(&e), Error::Stopped { .. }) => Err(e),
            // Another worker took the task for lost and finished it meanwhile: it is done.
            Err(_) if store.state(&stage.id, index)? == TaskState::Done => Ok(()),
            Err(e) => {
                let path = self.dir.join("failed").join(Self::name(&stage.id, index));
                atomic::write_bytes(&path, format!("{e}\n").as_bytes())?;
                tracing::warn!("{e}");
                if fatal {
                    Err(e)
                } else {
                    Ok(())
                }
            }
        };
        self.release(&stage.id, index);
        outcome
    }
}

fn unwrap_in_task(e: &Error) -> &Error {
    match e {
        Error::InTask { error, .. } => unwrap_in_task(error),
        other => other,
    }
}

/// The worker a claim file names.
fn holder(path: &Path) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// What this worker has seen of the others' heartbeats: (last content, when it changed).
#[derive(Default)]
struct Watch {
    seen: HashMap<usize, (String, Instant)>,
}

impl Watch {
    fn stale(&mut self, board: &Board, worker: usize) -> bool {
        let beat = std::fs::read_to_string(board.alive(worker)).unwrap_or_default();
        let now = Instant::now();
        let entry = self
            .seen
            .entry(worker)
            .or_insert_with(|| (beat.clone(), now));
        if entry.0 != beat {
            *entry = (beat, now);
        }
        now.duration_since(entry.1) >= board.stale
    }
}

/// Rewrites a counter into the worker's `alive` file until dropped.
struct Heartbeat {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    fn start(path: PathBuf, stale: Duration) -> Result<Heartbeat> {
        let every = (stale / 8).max(Duration::from_millis(100));
        // The first beat before any claim, so no claim is ever held without one.
        let start = format!("{}:0", std::process::id());
        std::fs::write(&path, start.as_bytes()).map_err(|e| Error::write(&path, e))?;
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let thread = std::thread::spawn(move || {
            let mut n: u64 = 0;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(every);
                n += 1;
                // No fsync: a beat needs no durability, and an fsync stalled by a busy disk
                // would make a live worker look lost. A reader that catches the file half
                // written sees it change, which is all a beat has to say.
                let beat = format!("{}:{n}", std::process::id());
                if let Err(e) = std::fs::write(&path, beat.as_bytes()) {
                    tracing::warn!("heartbeat: {e}");
                }
            }
        });
        Ok(Heartbeat {
            done,
            thread: Some(thread),
        })
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::test_plans::two_methods;

    #[test]
    fn a_search_is_its_samples_and_updates_in_order() {
        let plan = two_methods();
        let first = plan
            .stages
            .iter()
            .find(|s| s.label == "das/sample[2]")
            .unwrap();
        let labels: Vec<(String, String)> = chain(&plan, &first.id)
            .unwrap()
            .into_iter()
            .map(|(s, u)| (s.label.clone(), u.label.clone()))
            .collect();
        assert_eq!(
            labels,
            [
                ("das/sample[2]".to_string(), "das/update[2]".to_string()),
                ("das/sample[3]".to_string(), "das/update[3]".to_string())
            ]
        );
        let not_first = &plan
            .stages
            .iter()
            .find(|s| s.label == "das/sample[3]")
            .unwrap()
            .id;
        assert!(chain(&plan, not_first).is_err());
    }

    #[test]
    fn a_claim_is_taken_once_and_taken_over_from_a_dead_worker() {
        let tmp = tempfile::tempdir().unwrap();
        let stale = Duration::from_millis(300);
        let a = Board::open(tmp.path(), "abcdef0123456789", 0, stale).unwrap();
        let b = Board::open(tmp.path(), "abcdef0123456789", 1, stale).unwrap();
        let (mut wa, mut wb) = (Watch::default(), Watch::default());
        let beat = Heartbeat::start(a.alive(0), stale).unwrap();
        assert!(a.claim("s1", 0, &mut wa).unwrap());
        assert!(!b.claim("s1", 0, &mut wb).unwrap(), "held by a live worker");
        std::thread::sleep(Duration::from_millis(400));
        assert!(!b.claim("s1", 0, &mut wb).unwrap(), "its heartbeat moves");
        drop(beat);
        // Worker 0 stops beating: after `stale`, its claim is removed, then taken.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut taken = false;
        while !taken && Instant::now() < deadline {
            taken = b.claim("s1", 0, &mut wb).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(taken, "a dead worker's claim is taken over");
        assert_eq!(holder(&b.claim_path("s1", 0)), Some(1));
    }

    #[test]
    fn a_task_that_finished_after_the_look_is_not_run_again() {
        // Worker 1 saw child 0 of stage s1 unfinished; before its claim, worker 0 finished the
        // child and released its claim. The claim succeeds, the look under it sees the manifest.
        let tmp = tempfile::tempdir().unwrap();
        let store = RunStore::new(tmp.path());
        let board =
            Board::open(tmp.path(), "abcdef0123456789", 1, Duration::from_secs(60)).unwrap();
        let _beat = Heartbeat::start(board.alive(1), Duration::from_secs(60)).unwrap();
        let mut done = Done::default();
        let mut watch = Watch::default();
        let dir = store.task_dir("s1", 0);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("result.json"), b"{}").unwrap();
        assert!(!done.check(&store, "s1", 0).unwrap());
        store.finish("s1", 0, &["result.json"]).unwrap();
        assert!(!board.take(&store, &mut done, "s1", 0, &mut watch).unwrap());
        assert!(!board.claim_path("s1", 0).exists(), "the claim is released");
        // An unfinished task is taken.
        assert!(board.take(&store, &mut done, "s1", 1, &mut watch).unwrap());
    }
}
