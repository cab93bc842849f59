//! A grid's input cases, by content: which cases train, validate and test, and the sha256 of
//! their bytes. Stage ids hash this content, never a path, so a laptop and a cluster (or
//! tonight's and last night's run) agree on what is the same work.

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::seeds;
use super::spec::DataSpec;
use crate::data::cases::{discover, CaseFiles};
use crate::error::{Error, Result};

/// One set of cases: where they are, which, and their content hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSet {
    pub dir: PathBuf,
    pub ids: Vec<String>,
    /// sha256 over each case's id and the bytes of its files (sequences and labels), in id order.
    pub sha256: String,
}

/// The cases of a grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    pub train: CaseSet,
    /// Training cases held out for validation (a subset of `train.ids`).
    pub validation: Vec<String>,
    pub test: CaseSet,
}

impl Inputs {
    /// Find and hash the cases `data` names; splits are drawn with `job_seed`.
    pub fn gather(data: &DataSpec, job_seed: u64) -> Result<Inputs> {
        let (train, test) = match (&data.train, &data.test, &data.root) {
            (Some(train), Some(test), _) => (labelled(train)?, labelled(test)?),
            (_, _, Some(root)) => {
                let all = labelled(root)?;
                let n_test = data.test_cases.unwrap_or(0);
                if n_test >= all.len() {
                    return Err(Error::Dataset {
                        path: root.clone(),
                        problem: format!(
                            "{} labelled cases; data.test_cases = {n_test} leaves none to train on",
                            all.len()
                        ),
                    });
                }
                let mut order: Vec<usize> = (0..all.len()).collect();
                order.shuffle(&mut ChaCha8Rng::seed_from_u64(seeds::test_split(job_seed)));
                let mut test_idx = order[..n_test].to_vec();
                test_idx.sort_unstable();
                let (test, train): (Vec<_>, Vec<_>) = all
                    .into_iter()
                    .enumerate()
                    .partition(|(i, _)| test_idx.contains(i));
                (
                    train.into_iter().map(|(_, c)| c).collect(),
                    test.into_iter().map(|(_, c)| c).collect(),
                )
            }
            _ => {
                return Err(Error::invalid(
                    "data",
                    "give `train` and `test` directories, or one `root` with `test_cases`",
                ))
            }
        };
        let absolute = |dir: Option<&PathBuf>| -> Result<PathBuf> {
            let dir = dir.cloned().unwrap_or_default();
            dir.canonicalize().map_err(|e| Error::read(&dir, e))
        };
        // Absolute, so tasks find the cases from any working directory.
        let train_dir = absolute(data.train.as_ref().or(data.root.as_ref()))?;
        let test_dir = absolute(data.test.as_ref().or(data.root.as_ref()))?;
        if train.len() <= data.validation_cases {
            return Err(Error::Dataset {
                path: train_dir,
                problem: format!(
                    "{} training cases; data.validation_cases = {} leaves none to train on",
                    train.len(),
                    data.validation_cases
                ),
            });
        }
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seeds::validation_split(
            job_seed,
        )));
        let mut validation: Vec<String> = order[..data.validation_cases]
            .iter()
            .map(|&i| train[i].id.clone())
            .collect();
        validation.sort();
        Ok(Inputs {
            train: case_set(train_dir, &train)?,
            validation,
            test: case_set(test_dir, &test)?,
        })
    }
}

/// The labelled cases under `dir`, sorted by id.
fn labelled(dir: &Path) -> Result<Vec<CaseFiles>> {
    let cases = discover(dir)?;
    let unlabelled: Vec<&str> = cases
        .iter()
        .filter(|c| c.gd.is_none())
        .map(|c| c.id.as_str())
        .collect();
    if !unlabelled.is_empty() {
        return Err(Error::Dataset {
            path: dir.to_path_buf(),
            problem: format!(
                "cases without labels (gd): {}; a grid trains and evaluates on labelled cases",
                unlabelled.join(", ")
            ),
        });
    }
    Ok(cases)
}

fn case_set(dir: PathBuf, cases: &[CaseFiles]) -> Result<CaseSet> {
    let mut hasher = Sha256::new();
    for case in cases {
        hasher.update(case.id.as_bytes());
        hasher.update([0]);
        for (role, path) in [
            ("C0", &case.c0),
            ("DE", &case.de),
            ("T2", &case.t2),
            ("gd", &case.gd),
        ] {
            let Some(path) = path else {
                return Err(Error::case(&case.id, format!("no {role} volume")));
            };
            let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
            hasher.update(role.as_bytes());
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(Sha256::digest(&bytes));
        }
    }
    Ok(CaseSet {
        dir,
        ids: cases.iter().map(|c| c.id.clone()).collect(),
        sha256: format!("{:x}", hasher.finalize()),
    })
}
