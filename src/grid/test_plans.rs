//! Small plans the executors' tests share.

use std::path::PathBuf;

use super::inputs::{CaseSet, Inputs};
use super::plan::{plan, Plan};
use super::spec::JobSpec;

/// `base` (one training stage) and `das` (warm-up, then two auto-weighted epochs of K = 2
/// children per net), one member each, on two training and two test cases that are not read.
pub fn two_methods() -> Plan {
    let job: JobSpec = serde_json::from_value(serde_json::json!({
        "name": "t",
        "data": { "train": "tr", "test": "te" },
        "scale": { "epochs": 3 },
        "weighting": { "epochs_fixed": 1, "samples": 2 },
        "methods": [
            { "name": "base", "pam": false, "deep_supervision": false },
            { "name": "das", "weighting": "das" }
        ]
    }))
    .unwrap();
    let set = |dir: &str| CaseSet {
        dir: PathBuf::from(dir),
        ids: vec!["a".into(), "b".into()],
        sha256: dir.into(),
    };
    let inputs = Inputs {
        train: set("/tr"),
        validation: vec!["a".into()],
        test: set("/te"),
    };
    plan(&job, &inputs).unwrap()
}
