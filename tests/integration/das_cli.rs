//! `awsnet train` with a `weighting` section: the auto-weighted schedule (DAS and its
//! comparators) completes, records every sample, reruns to the same bytes and resumes
//! mid-search exactly.

use crate::common;
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::awsnet;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Small phantoms and a tiny ASAN-P config with the given weighting section.
fn setup(dir: &Path, name: &str, epochs: u64, weighting: &str) -> PathBuf {
    let data = dir.join("data");
    if !data.exists() {
        common::small_phantoms(&data, 5);
    }
    let config = dir.join(format!("{name}.json"));
    let text = format!(
        r#"{{ "data": "data", "net": "scar_edema", "base_filters": 4,
             "geometry": {{ "crop": [64, 64], "margin": 3, "input": [32, 32] }},
             "epochs": {epochs}, "batch_size": 4, "seed": 5,
             "weighting": {weighting} }}"#
    );
    fs::write(&config, text).unwrap();
    config
}

fn train(config: &Path, out: &Path) -> common::Run {
    awsnet(&["train", "--config", s(config), "--out", s(out)])
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(common::json)
        .collect()
}

fn latest_model(run: &Path) -> Vec<u8> {
    let pointer = common::json(&fs::read_to_string(run.join("checkpoint_latest.json")).unwrap());
    fs::read(
        run.join(pointer["path"].as_str().unwrap())
            .join("model.bin"),
    )
    .unwrap()
}

const DAS: &str = r#"{ "kind": "das", "samples": 2, "epochs_fixed": 1 }"#;

#[test]
fn das_run_records_every_sample_and_reruns_and_resumes_to_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path(), "das", 3, DAS);
    let first = tmp.path().join("first");
    let run = train(&config, &first);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let progress = lines(&first.join("progress.jsonl"));
    assert_eq!(progress.len(), 3);
    // The fixed epoch trains with softmax(β₀), β₀ = [0.5, 0.5, 0.5, 1].
    let alpha0: Vec<f64> = serde_json::from_value(progress[0]["alpha"].clone()).unwrap();
    let e = [0.5f64.exp(), 0.5f64.exp(), 0.5f64.exp(), 1f64.exp()];
    let total: f64 = e.iter().sum();
    for (a, x) in alpha0.iter().zip(e) {
        assert!((a - x / total).abs() < 1e-12, "{alpha0:?}");
    }

    let log = lines(&first.join("weighting.jsonl"));
    assert_eq!(log.len(), 2, "one record per auto-weighted epoch");
    for (i, record) in log.iter().enumerate() {
        assert_eq!(record["epoch"], 2 + i as u64);
        assert_eq!(record["weighting"], "das");
        for field in [
            "theta",
            "policy",
            "entropy",
            "baseline",
            "chosen",
            "beta",
            "learning_rate",
        ] {
            assert!(!record[field].is_null(), "{field} missing from {record}");
        }
        let samples = record["samples"].as_array().unwrap();
        assert_eq!(samples.len(), 2);
        for sample in samples {
            for field in ["actions", "delta_beta", "beta", "alpha", "dice", "reward"] {
                assert!(!sample[field].is_null(), "{field} missing from {sample}");
            }
            let dice = sample["dice"].as_f64().unwrap();
            let reward = sample["reward"].as_f64().unwrap();
            assert!((reward - (dice + 0.04).powi(3)).abs() < 1e-12);
        }
        // The epoch's model is the chosen child: progress shows its α.
        let chosen = record["chosen"].as_u64().unwrap() as usize;
        let chosen_alpha = samples
            .iter()
            .find(|s| s["index"].as_u64() == Some(chosen as u64))
            .unwrap()["alpha"]
            .clone();
        assert_eq!(progress[1 + i]["alpha"], chosen_alpha);
    }

    // Same seed, same bytes.
    let second = tmp.path().join("second");
    let run = train(&config, &second);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        fs::read_to_string(first.join("weighting.jsonl")).unwrap(),
        fs::read_to_string(second.join("weighting.jsonl")).unwrap()
    );
    assert!(latest_model(&first) == latest_model(&second));

    // Stopped after the first auto-weighted epoch, then extended: the same as never stopping.
    let short = setup(tmp.path(), "das-short", 2, DAS);
    let resumed = tmp.path().join("resumed");
    assert_eq!(train(&short, &resumed).code, 0);
    let run = awsnet(&[
        "train",
        "--config",
        s(&config),
        "--out",
        s(&resumed),
        "--resume",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        fs::read_to_string(first.join("weighting.jsonl")).unwrap(),
        fs::read_to_string(resumed.join("weighting.jsonl")).unwrap()
    );
    assert!(latest_model(&first) == latest_model(&resumed));
}

#[test]
fn every_comparator_runs_and_bad_weightings_are_refused_by_field() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, weighting, auto_records) in [
        ("equal", r#"{ "kind": "equal" }"#, 0),
        (
            "fixed",
            r#"{ "kind": "fixed", "alpha": [0.1, 0.2, 0.3, 0.4] }"#,
            0,
        ),
        ("decay", r#"{ "kind": "decay", "decay_rate": 0.5 }"#, 0),
        (
            "norl",
            r#"{ "kind": "norl", "samples": 2, "epochs_fixed": 1 }"#,
            1,
        ),
        (
            "genetic",
            r#"{ "kind": "genetic", "samples": 2, "epochs_fixed": 1 }"#,
            1,
        ),
        ("gradient", r#"{ "kind": "gradient" }"#, 2),
    ] {
        let config = setup(tmp.path(), name, 2, weighting);
        let out = tmp.path().join(name);
        let run = train(&config, &out);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        let progress = lines(&out.join("progress.jsonl"));
        assert_eq!(progress.len(), 2, "{name}");
        let log = out.join("weighting.jsonl");
        assert_eq!(log.exists(), auto_records > 0, "{name}");
        if auto_records > 0 {
            assert_eq!(lines(&log).len(), auto_records, "{name}");
            assert_eq!(lines(&log)[0]["weighting"], name);
        }
        if name == "gradient" {
            // β moved by backpropagation: the two epochs trained with different α.
            assert_ne!(progress[0]["alpha"], progress[1]["alpha"]);
            assert_eq!(lines(&log)[1]["alpha"], progress[1]["alpha"]);
        }
        if name == "decay" {
            // Hidden heads 0.25 · 0.5^e, the final head the rest.
            assert_eq!(
                progress[1]["alpha"],
                serde_json::json!([0.125, 0.125, 0.125, 0.625])
            );
        }
    }

    for (weighting, fragments) in [
        (
            r#"{ "kind": "das", "samples": 2, "epochs_fixed": 2 }"#,
            &["weighting.epochs_fixed", "none of the 2 epochs"][..],
        ),
        (r#"{ "kind": "fixed" }"#, &["weighting.alpha"][..]),
        (
            r#"{ "kind": "das", "samples": 0 }"#,
            &["weighting.samples"][..],
        ),
        (
            r#"{ "kind": "equal", "epochs_fixed": 1 }"#,
            &["weighting.epochs_fixed", "equal"][..],
        ),
        (
            r#"{ "kind": "das", "decay_rate": 0.5 }"#,
            &["weighting.decay_rate"][..],
        ),
        (r#"{ "kind": "sometimes" }"#, &["unknown variant"][..]),
        (
            r#"{ "kind": "das", "smaples": 3 }"#,
            &["unknown field", "smaples"][..],
        ),
        (
            r#"{ "kind": "das", "controller": { "learning_rate": -1 } }"#,
            &["weighting.controller.learning_rate"][..],
        ),
    ] {
        let config = setup(tmp.path(), "bad", 2, weighting);
        let out = tmp.path().join("bad-run");
        let run = train(&config, &out);
        run.assert_user_error(fragments);
        assert!(!out.exists(), "a refused config left {}", out.display());
    }
}

/// Training results must not depend on how many threads the machine has: the parallel kernels
/// reduce in a fixed order.
#[test]
fn results_do_not_depend_on_the_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(
        tmp.path(),
        "threads",
        2,
        r#"{ "kind": "das", "samples": 1, "epochs_fixed": 1 }"#,
    );
    let mut models = Vec::new();
    for threads in ["1", "3"] {
        let out = tmp.path().join(format!("threads-{threads}"));
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_awsnet"))
            .args(["train", "--config", s(&config), "--out", s(&out)])
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        models.push(latest_model(&out));
    }
    assert!(
        models[0] == models[1],
        "1 and 3 threads trained different weights"
    );
}
