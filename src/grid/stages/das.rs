//! A DAS child (one sample task: the parent's copy trained one epoch with its own α) and the
//! update that closes an auto-weighted epoch from its children's scores (§3.2.1).

use super::super::plan::{Stage, ASAN_NETS};
use super::super::records::{ChildResult, Deployable};
use super::super::store::TaskState;
use super::super::task::{write_json, Task};
use super::member_state;
use crate::das::weighting::{Candidate, Score, WeightingState};
use crate::error::{Error, Result};
use crate::train::checkpoint::TrainState;
use crate::train::config::{epoch_seed, TrainConfig};
use crate::train::steps;

pub(crate) fn sample(task: &Task<'_>, configs: &[TrainConfig], epoch: u64) -> Result<()> {
    let k = samples(configs)?;
    let (which, child) = (task.index / k, task.index % k);
    let config = &task.rooted(&configs[which])?;
    let (checkpoint, parent) = member_state(task, task.parent(0)?, which)?;
    check_epoch(&parent.state, epoch)?;
    let candidate = candidates(config, &parent.state, epoch)?
        .into_iter()
        .find(|c| c.index == child)
        .ok_or_else(|| Error::Internal(format!("no candidate {child}")))?;
    let out = task.dir();
    let result = task.engine.sample(
        config,
        &checkpoint,
        &parent.state,
        &candidate,
        &out.join("child"),
    )?;
    write_json(&out.join("result.json"), &result)
}

/// K, the children of each auto-weighted epoch.
fn samples(configs: &[TrainConfig]) -> Result<usize> {
    configs[0]
        .weighting
        .as_ref()
        .map(|w| w.samples)
        .filter(|&k| k > 0)
        .ok_or_else(|| Error::Internal("a search stage without samples".into()))
}

/// Close auto-weighted epoch `epoch` for every member-net: from the scores of the children
/// that arrived, the search's update chooses the next parent (`parents/<which>.json`).
pub(crate) fn update(task: &Task<'_>, configs: &[TrainConfig], epoch: u64) -> Result<()> {
    let sampled = task.parent(0)?;
    let before = task
        .plan
        .stage(&sampled.parents[0])
        .ok_or_else(|| Error::Internal("a sample stage without a parent".into()))?;
    let k = samples(configs)?;
    let out = task.dir().join("parents");
    for (which, config) in configs.iter().enumerate() {
        let (_, parent) = member_state(task, before, which)?;
        check_epoch(&parent.state, epoch)?;
        let weighting = config
            .weighting
            .as_ref()
            .ok_or_else(|| Error::Internal("an update without a weighting".into()))?;
        let results = arrived(task, sampled, which, k)?;
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
        let candidates = candidates(config, &parent.state, epoch)?;
        let closed = steps::update(weighting, &parent.state, &candidates, &scores)?;
        let (sample, chosen) = results
            .iter()
            .find(|(_, r)| r.index == closed.chosen)
            .ok_or_else(|| Error::Internal("the chosen child sent no result".into()))?;
        let child = task
            .store
            .stored(&task.store.task_dir(&sampled.id, *sample).join("child"))?;
        let mut next = parent;
        next.history.push(chosen.record.clone());
        next.lines.push(closed.line);
        next.auto.push(Deployable {
            checkpoint: child.clone(),
            epoch: epoch + 1,
            score: chosen.record.validation().score(config.score),
        });
        next.checkpoint = child;
        next.state = closed.state;
        write_json(&out.join(format!("{which}.json")), &next)?;
    }
    Ok(())
}

/// The results of member-net `which`'s children in sample stage `sampled` that finished, by
/// task; a child whose loss diverged counts as missing.
fn arrived(
    task: &Task<'_>,
    sampled: &Stage,
    which: usize,
    k: usize,
) -> Result<Vec<(usize, ChildResult)>> {
    let mut results = Vec::new();
    for child in 0..k {
        let sample = which * k + child;
        if task.store.state(&sampled.id, sample)? != TaskState::Done {
            continue;
        }
        let path = task.store.task_dir(&sampled.id, sample).join("result.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, e))?;
        let result: Option<ChildResult> = serde_json::from_str(&text)
            .map_err(|e| Error::input(&path, format!("not a child result: {e}")))?;
        if let Some(result) = result {
            results.push((sample, result));
        }
    }
    Ok(results)
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
