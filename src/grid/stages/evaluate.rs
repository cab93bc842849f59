//! An evaluate task: vote an ensemble's members (each member also scored alone), pair each
//! prediction with its reference and score it; several replicates are scored one by one and
//! then averaged per case.

use std::path::{Path, PathBuf};

use super::super::records::{member_dir, replicate_dir};
use super::super::task::{relative, write_json, Task};
use crate::data::cases::discover;
use crate::data::labels::Target;
use crate::data::matching::CasePair;
use crate::error::{Error, Result};
use crate::eval::evaluate::{evaluate_cases, CaseEvaluation};
use crate::eval::summary::eval_json;
use crate::infer::vote::{vote_dirs, VoteRule};
use crate::progress::Silent;

/// Evaluate the method's prediction or, with several replicates, each replicate's (in
/// `seed<r>/`, counting from 1) and then their mean per case (`eval::replicates`): the
/// task's `eval.json` is what the comparisons read either way.
pub(crate) fn evaluate(
    task: &Task<'_>,
    members: usize,
    replicates: usize,
    test: &Path,
    cases: &[String],
    targets: &[Target],
) -> Result<()> {
    let out = task.dir();
    if replicates == 1 {
        let evaluated = evaluate_predicted(task, 0, members, test, cases, targets, &out)?;
        return write_json(&out.join("eval.json"), &eval_json(&evaluated, targets)?);
    }
    let mut each = Vec::with_capacity(replicates);
    for replicate in 0..replicates {
        let dir = out.join(replicate_dir(replicate));
        let evaluated = evaluate_predicted(task, replicate, members, test, cases, targets, &dir)?;
        write_json(&dir.join("eval.json"), &eval_json(&evaluated, targets)?)?;
        each.push(evaluated);
    }
    let mean = crate::eval::replicates::mean_per_case(&each)?;
    write_json(&out.join("eval.json"), &eval_json(&mean, targets)?)
}

/// Vote (several members) and evaluate the predictions of parent `parent`, writing what
/// it votes under `out`.
pub(crate) fn evaluate_predicted(
    task: &Task<'_>,
    parent: usize,
    members: usize,
    test: &Path,
    cases: &[String],
    targets: &[Target],
    out: &Path,
) -> Result<Vec<CaseEvaluation>> {
    let predicted = task.parent(parent)?;
    let dirs: Vec<PathBuf> = (0..members)
        .map(|m| task.store.task_dir(&predicted.id, m).join("pred"))
        .collect();
    let pred = if members > 1 {
        // Region by region (MyoPS codes), with each voxel's agreement beside the vote.
        let voted = out.join("voted");
        let agreement = out.join("agreement");
        vote_dirs(&dirs, VoteRule::Nested, &voted, Some(&agreement), &Silent)?;
        voted
    } else {
        dirs[0].clone()
    };
    // Each member alone beside the vote, so the report can show whether voting helped.
    if members > 1 {
        for (m, dir) in dirs.iter().enumerate() {
            let alone = evaluate_dir(task, dir, test, cases, targets)?;
            write_json(
                &out.join(member_dir(m)).join("eval.json"),
                &eval_json(&alone, targets)?,
            )?;
        }
    }
    evaluate_dir(task, &pred, test, cases, targets)
}

/// Evaluate the predictions `<case>_pred.nii.gz` in `pred` of `cases` against `test`'s
/// labels.
pub(crate) fn evaluate_dir(
    task: &Task<'_>,
    pred: &Path,
    test: &Path,
    cases: &[String],
    targets: &[Target],
) -> Result<Vec<CaseEvaluation>> {
    let references = discover(test)?;
    let pairs = cases
        .iter()
        .map(|id| {
            let reference = references
                .iter()
                .find(|c| &c.id == id)
                .and_then(|c| c.gd.clone())
                .ok_or_else(|| Error::case(id, format!("no labels in {}", test.display())))?;
            Ok(CasePair {
                case: id.clone(),
                prediction: pred.join(format!("{id}_pred.nii.gz")),
                reference,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut evaluated = evaluate_cases(&pairs, targets, &Silent)?;
    for (case, pair) in evaluated.iter_mut().zip(&pairs) {
        // Paths relative to the run and to the test directory: the same grid evaluates to
        // the same bytes wherever it ran.
        case.prediction_file = relative(&task.store.root, &pair.prediction)
            .display()
            .to_string();
        case.reference_file = relative(test, &pair.reference).display().to_string();
    }
    Ok(evaluated)
}
