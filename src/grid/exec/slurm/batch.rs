//! Which jobs to queue, and what each waits for: a pure function of the plan, the tasks
//! already done, and the tasks still in Slurm's queue.
//!
//! - One job per stage (chunked where the stage has more tasks than `MaxArraySize`), holding
//!   only the tasks that are neither done nor still queued: a resubmission after a failure
//!   queues what is missing and nothing else.
//! - Dependencies name tasks, not whole arrays (`afterok:J_0:J_1`): a whole-array `afterok` is
//!   never satisfied again once one element failed, even after that element is requeued and
//!   succeeds. The DAS update waits with `afterany` on its children (it runs with those that
//!   arrived) and with `afterok` on its other parents.
//! - A task still queued from an earlier submission is waited on where it is: its dependents
//!   are wired to it, not to a copy.
//! - In held mode (`grid::held`) a search's sample and update stages are one array of workers;
//!   what reads the search's result waits for every worker with `afterany` (a lost worker's
//!   share is done by the others).

use std::collections::{BTreeMap, BTreeSet};

use crate::grid::plan::{Plan, Stage, Work};

/// A task of the plan: (stage id, index).
pub type TaskKey = (String, usize);

/// One job to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Index of the stage in the plan.
    pub stage: usize,
    /// Task indices = array index + offset.
    pub offset: usize,
    /// Task indices in this job, ascending.
    pub indices: Vec<usize>,
    /// A one-task stage that needs no GPU (rendered from the reducer template, no array).
    pub reducer: bool,
    /// Held workers for the search beginning with this (sample) stage: one per child slot.
    pub held: bool,
    /// Every condition must hold before it starts.
    pub after: Vec<Dependency>,
}

/// `afterok:…` or `afterany:…` on some tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub any: bool,
    pub on: Vec<Element>,
}

/// A task, as a dependency names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    /// Already queued: its Slurm id (`123_4`, or `125` for a reducer).
    Queued(String),
    /// In this batch: job `job`'s task `index` (resolved to an id once that job is queued).
    New { job: usize, index: usize },
}

/// Whether a stage runs on the reducer template: one task, no GPU.
pub fn is_reducer(stage: &Stage) -> bool {
    matches!(
        stage.work,
        Work::Update { .. } | Work::Evaluate { .. } | Work::Stats { .. }
    )
}

/// The jobs that bring `plan` to completion, given the tasks `done` and those `queued` (with
/// their Slurm ids), with arrays of at most `max_array` indices.
pub fn jobs(
    plan: &Plan,
    done: &BTreeSet<TaskKey>,
    queued: &BTreeMap<TaskKey, String>,
    max_array: usize,
    held: bool,
) -> Vec<Job> {
    let max_array = max_array.max(1);
    let mut jobs: Vec<Job> = Vec::new();
    // Where each task of the plan not done waits: elements of this batch or queued ones.
    // (elements, whether they are held workers: waited for with afterany).
    let mut placed: BTreeMap<TaskKey, (Vec<Element>, bool)> = BTreeMap::new();
    for (key, id) in queued {
        placed.insert(key.clone(), (vec![Element::Queued(id.clone())], false));
    }
    // Stages run by held workers (every stage of a search but its first).
    let mut by_workers: BTreeSet<&str> = BTreeSet::new();
    for (s, stage) in plan.stages.iter().enumerate() {
        if by_workers.contains(stage.id.as_str()) {
            continue;
        }
        if held && matches!(stage.work, Work::Sample { .. }) {
            if let Ok(chain) = crate::grid::held::chain(plan, &stage.id) {
                let tasks: Vec<TaskKey> = chain
                    .iter()
                    .flat_map(|(sample, update)| {
                        (0..sample.tasks)
                            .map(|i| (sample.id.clone(), i))
                            .chain((0..update.tasks).map(|i| (update.id.clone(), i)))
                    })
                    .collect();
                by_workers.extend(
                    chain
                        .iter()
                        .flat_map(|(a, b)| [a.id.as_str(), b.id.as_str()]),
                );
                let workers = stage.tasks;
                // Workers still queued from an earlier submission hold the search.
                let queued_workers: Vec<Element> = (0..workers)
                    .filter_map(|w| queued.get(&(stage.id.clone(), w)))
                    .map(|id| Element::Queued(id.clone()))
                    .collect();
                let open: Vec<&TaskKey> = tasks.iter().filter(|t| !done.contains(*t)).collect();
                if open.is_empty() {
                    continue;
                }
                let elements = if queued_workers.is_empty() {
                    let after = dependencies(plan, stage, done, &placed);
                    jobs.push(Job {
                        stage: s,
                        offset: 0,
                        indices: (0..workers).collect(),
                        reducer: false,
                        held: true,
                        after,
                    });
                    let job = jobs.len() - 1;
                    (0..workers)
                        .map(|index| Element::New { job, index })
                        .collect()
                } else {
                    queued_workers
                };
                for task in open {
                    placed.insert(task.clone(), (elements.clone(), true));
                }
                continue;
            }
        }
        let todo: Vec<usize> = (0..stage.tasks)
            .filter(|&i| {
                let key = (stage.id.clone(), i);
                !done.contains(&key) && !queued.contains_key(&key)
            })
            .collect();
        if todo.is_empty() {
            continue;
        }
        let after = dependencies(plan, stage, done, &placed);
        let reducer = is_reducer(stage);
        let mut chunks: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for index in todo {
            chunks
                .entry(index / max_array * max_array)
                .or_default()
                .push(index);
        }
        for (offset, indices) in chunks {
            let job = jobs.len();
            for &index in &indices {
                placed.insert(
                    (stage.id.clone(), index),
                    (vec![Element::New { job, index }], false),
                );
            }
            jobs.push(Job {
                stage: s,
                offset,
                indices,
                reducer,
                held: false,
                after: after.clone(),
            });
        }
    }
    jobs
}

fn dependencies(
    plan: &Plan,
    stage: &Stage,
    done: &BTreeSet<TaskKey>,
    placed: &BTreeMap<TaskKey, (Vec<Element>, bool)>,
) -> Vec<Dependency> {
    let mut ok: Vec<Element> = Vec::new();
    let mut any: Vec<Element> = Vec::new();
    for parent_id in &stage.parents {
        let Some(parent) = plan.stage(parent_id) else {
            continue;
        };
        // The DAS update reduces whatever children arrived.
        let tolerant =
            matches!(stage.work, Work::Update { .. }) && matches!(parent.work, Work::Sample { .. });
        for index in 0..parent.tasks {
            let key = (parent.id.clone(), index);
            if done.contains(&key) {
                continue;
            }
            let Some((elements, by_workers)) = placed.get(&key) else {
                continue;
            };
            // Held workers: any of them may have done the task; wait for all to end.
            let list = if tolerant || *by_workers {
                &mut any
            } else {
                &mut ok
            };
            for e in elements {
                if !list.contains(e) {
                    list.push(e.clone());
                }
            }
        }
    }
    let mut after = Vec::new();
    if !ok.is_empty() {
        after.push(Dependency { any: false, on: ok });
    }
    if !any.is_empty() {
        after.push(Dependency { any: true, on: any });
    }
    after
}

/// The `--dependency` expression for `after`, naming new elements with `id_of(job, index)`.
pub fn expression(after: &[Dependency], id_of: &dyn Fn(usize, usize) -> String) -> Option<String> {
    let parts: Vec<String> = after
        .iter()
        .map(|d| {
            let ids: Vec<String> =
                d.on.iter()
                    .map(|e| match e {
                        Element::Queued(id) => id.clone(),
                        Element::New { job, index } => id_of(*job, *index),
                    })
                    .collect();
            format!(
                "{}:{}",
                if d.any { "afterany" } else { "afterok" },
                ids.join(":")
            )
        })
        .collect();
    // Comma: every condition must hold.
    (!parts.is_empty()).then(|| parts.join(","))
}

/// The Slurm id of task `index` in a job queued as `job_id`.
pub fn element_id(job_id: &str, job: &Job, index: usize) -> String {
    element_of(job_id, job.reducer, job.offset, index)
}

/// The Slurm id of task `index` in job `job_id`: the job itself for a reducer (not an array),
/// else its array element `index - offset`.
pub fn element_of(job_id: &str, reducer: bool, offset: usize, index: usize) -> String {
    if reducer {
        job_id.to_string()
    } else {
        format!("{job_id}_{}", index - offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::test_plans::two_methods;

    fn label_of(plan: &Plan, job: &Job) -> String {
        plan.stages[job.stage].label.clone()
    }

    /// Stand-in ids: job n is `Jn`.
    fn ids(jobs: &[Job]) -> impl Fn(usize, usize) -> String + '_ {
        move |job, index| format!("J{job}_{}", index - jobs[job].offset)
    }

    /// Every stage queued at once; dependencies name tasks; the update waits on its children
    /// with afterany and on its parent state with afterok.
    #[test]
    fn a_fresh_grid_is_queued_whole_with_per_task_dependencies() {
        let plan = two_methods();
        let jobs = jobs(&plan, &BTreeSet::new(), &BTreeMap::new(), 1001, false);
        let labels: Vec<String> = jobs.iter().map(|j| label_of(&plan, j)).collect();
        assert_eq!(labels.len(), plan.stages.len(), "{labels:?}");
        let by_label = |l: &str| jobs.iter().position(|j| label_of(&plan, j) == l).unwrap();
        let id_of = ids(&jobs);

        // The first update reads the children only (they read the warm-up); the next one
        // also reads the state the first one left.
        let sample = by_label("das/sample[2]");
        let update = &jobs[by_label("das/update[2]")];
        assert!(update.reducer);
        assert_eq!(
            expression(&update.after, &id_of).unwrap(),
            format!("afterany:J{sample}_0:J{sample}_1:J{sample}_2:J{sample}_3")
        );
        let first = by_label("das/update[2]");
        let sample = by_label("das/sample[3]");
        let update = &jobs[by_label("das/update[3]")];
        let reducer_id = |j: usize, i: usize| {
            if jobs[j].reducer {
                format!("J{j}")
            } else {
                id_of(j, i)
            }
        };
        assert_eq!(
            expression(&jobs[sample].after, &reducer_id).unwrap(),
            format!("afterok:J{first}")
        );
        let expr = expression(&update.after, &reducer_id).unwrap();
        assert!(
            expr.ends_with(&format!(
                "afterany:J{sample}_0:J{sample}_1:J{sample}_2:J{sample}_3"
            )),
            "{expr}"
        );
        let predict = &jobs[by_label("base/predict")];
        assert!(!predict.reducer);
        assert_eq!(predict.indices, [0]);
        let expr = expression(&predict.after, &id_of).unwrap();
        assert!(expr.starts_with("afterok:"), "{expr}");
        assert_eq!(
            expr.matches(':').count(),
            4,
            "two CASNs and two nets: {expr}"
        );
    }

    /// A resubmission queues what is neither done nor queued, and wires it to queued tasks.
    #[test]
    fn a_resubmission_queues_only_the_missing_and_waits_on_the_queued() {
        let plan = two_methods();
        let stage = |l: &str| plan.stages.iter().find(|s| s.label == l).unwrap();
        let mut done = BTreeSet::new();
        for s in &plan.stages {
            if s.label.starts_with("casn") || s.label.starts_with("base") {
                for i in 0..s.tasks {
                    done.insert((s.id.clone(), i));
                }
            }
        }
        let warmup = stage("das/warmup");
        done.insert((warmup.id.clone(), 0));
        let sample = stage("das/sample[2]");
        let mut queued = BTreeMap::new();
        queued.insert((warmup.id.clone(), 1), "40_1".to_string());
        queued.insert((sample.id.clone(), 2), "41_2".to_string());
        let jobs = jobs(&plan, &done, &queued, 1001, false);
        let first = &jobs[0];
        assert_eq!(label_of(&plan, first), "das/sample[2]");
        assert_eq!(first.indices, [0, 1, 3], "task 2 is still queued");
        assert_eq!(
            expression(&first.after, &|j, i| format!("J{j}_{i}")).unwrap(),
            "afterok:40_1"
        );
        let update = jobs
            .iter()
            .find(|j| label_of(&plan, j) == "das/update[2]")
            .unwrap();
        assert_eq!(
            expression(&update.after, &|j, i| format!("J{j}_{i}")).unwrap(),
            "afterany:J0_0:J0_1:41_2:J0_3"
        );
        assert!(jobs
            .iter()
            .all(|j| !label_of(&plan, j).starts_with("base")
                && !label_of(&plan, j).starts_with("casn")));
    }

    #[test]
    fn large_stages_are_chunked_under_max_array_size() {
        let plan = two_methods();
        // 4 tasks per sample stage; arrays of at most 3 indices.
        let jobs = jobs(&plan, &BTreeSet::new(), &BTreeMap::new(), 3, false);
        let chunks: Vec<(usize, Vec<usize>)> = jobs
            .iter()
            .filter(|j| label_of(&plan, j) == "das/sample[2]")
            .map(|j| (j.offset, j.indices.clone()))
            .collect();
        assert_eq!(chunks, [(0, vec![0, 1, 2]), (3, vec![3])]);
        let update = jobs
            .iter()
            .find(|j| label_of(&plan, j) == "das/update[2]")
            .unwrap();
        let first = jobs
            .iter()
            .position(|j| label_of(&plan, j) == "das/sample[2]")
            .unwrap();
        let expr = expression(&update.after, &|j, i| {
            format!("J{j}_{}", i - jobs[j].offset)
        })
        .unwrap();
        assert!(
            expr.ends_with(&format!(
                "afterany:J{first}_0:J{first}_1:J{first}_2:J{}_0",
                first + 1
            )),
            "{expr}"
        );
    }

    /// Held mode: a search's samples and updates are one array of workers (one per child
    /// slot), after the warm-up; what reads the search waits for every worker with afterany.
    #[test]
    fn held_mode_queues_a_search_as_one_array_of_workers() {
        let plan = two_methods();
        let jobs = jobs(&plan, &BTreeSet::new(), &BTreeMap::new(), 1001, true);
        let labels: Vec<String> = jobs
            .iter()
            .map(|j| crate::grid::exec::slurm::script::job_label(&plan, j))
            .collect();
        assert_eq!(labels.len(), plan.stages.len() - 3, "{labels:?}");
        let held = labels.iter().position(|l| l == "das/held").unwrap();
        assert!(jobs[held].held);
        assert_eq!(jobs[held].indices, [0, 1, 2, 3]);
        let warmup = labels.iter().position(|l| l == "das/warmup").unwrap();
        let id_of = ids(&jobs);
        assert_eq!(
            expression(&jobs[held].after, &id_of).unwrap(),
            format!("afterok:J{warmup}_0:J{warmup}_1")
        );
        let predict = labels.iter().position(|l| l == "das/predict").unwrap();
        let expr = expression(&jobs[predict].after, &id_of).unwrap();
        assert!(
            expr.ends_with(&format!("afterany:J{held}_0:J{held}_1:J{held}_2:J{held}_3")),
            "{expr}"
        );
        // Workers still queued: nothing of the search is queued again.
        let first = &plan.stages[jobs[held].stage].id;
        let mut queued = BTreeMap::new();
        queued.insert((first.clone(), 2), "77_2".to_string());
        let again = super::jobs(&plan, &BTreeSet::new(), &queued, 1001, true);
        assert!(again.iter().all(|j| !j.held));
        let predict = again
            .iter()
            .find(|j| plan.stages[j.stage].label == "das/predict")
            .unwrap();
        assert!(expression(&predict.after, &ids(&again))
            .unwrap()
            .ends_with("afterany:77_2"));
    }
}
