//! `awsnet run JOB --dry-run`: the plan of a grid on phantom cases, and bad jobs refused with
//! exit 2 naming the field or path.

use std::fs;
use std::path::Path;

use crate::common::{self, awsnet};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const JOB: &str = r#"{
  "name": "tiny",
  "seed": 3,
  "data": { "root": "data", "test_cases": 1, "validation_cases": 1 },
  "scale": { "base_filters": 4, "crop": [64, 64], "margin": 3, "input": [32, 32],
             "batch_size": 4, "epochs": 3 },
  "weighting": { "epochs_fixed": 1, "samples": 2 },
  "methods": [
    { "name": "base", "pam": false, "deep_supervision": false },
    { "name": "pam_das", "weighting": "das" }
  ]
}"#;

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    common::small_phantoms(&tmp.path().join("data"), 5);
    let job = tmp.path().join("tiny.json");
    fs::write(&job, JOB).unwrap();
    let run_dir = tmp.path().join("run");
    let args = ["run", s(&job), "--run", s(&run_dir), "--dry-run"];
    let out = awsnet(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.assert_stdout_has(&[
        "cases: 2 training (1 for validation",
        "1 test",
        "casn_coarse",
        "pam_das/warmup",
        "pam_das/sample[2]",
        "pam_das/update[3]",
        "base/evaluate",
        "stats",
        "done",
    ]);
    assert!(!run_dir.exists(), "a dry run writes nothing");
    // The same job and data plan the same stages, from another directory too.
    let moved = tmp.path().join("moved");
    fs::rename(tmp.path().join("data"), &moved).unwrap();
    let again = awsnet(&[
        "run",
        s(&job),
        "--run",
        s(&run_dir),
        "--dry-run",
        "--data",
        s(&moved),
    ]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.stdout, out.stdout);

    let json = awsnet(&["run", s(&job), "--dry-run", "--json", "--data", s(&moved)]);
    let plan = common::json(&json.stdout);
    assert_eq!(plan["job"]["name"], "tiny");
    assert_eq!(plan["stages"].as_array().unwrap().len(), 13);
}

#[test]
fn bad_jobs_exit_2_naming_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let job = tmp.path().join("tiny.json");
    fs::write(&job, JOB).unwrap();
    let none = tmp.path().join("none.json");
    let bad = tmp.path().join("bad.json");
    fs::write(&bad, JOB.replace("\"seed\": 3", "\"seed\": \"three\"")).unwrap();
    let cases: [(Vec<&str>, &[&str]); 5] = [
        (vec!["run", s(&job), "--dry-run"], &["data", "No such file"]),
        (
            vec!["run", s(&bad), "--dry-run"],
            &["bad.json", "seed", "invalid type"],
        ),
        (
            vec![
                "run",
                s(&job),
                "--dry-run",
                "--set",
                "methods.pam_das.weigting=das",
            ],
            &["methods[1].weigting", "unknown field", "expected one of"],
        ),
        (
            vec!["run", s(&job), "--dry-run", "--set", "methods=[]"],
            &["methods", "at least one method"],
        ),
        (vec!["run", s(&none), "--dry-run"], &["none.json"]),
    ];
    for (args, fragments) in cases {
        awsnet(&args).assert_user_error(fragments);
    }
}
