//! `awsnet train`: a run directory users can rely on — resumable to the same bytes, refusing bad
//! configs by field, never silently overwriting a run.

use crate::common;
use std::fs;
use std::path::Path;

use crate::common::awsnet;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Three small phantom cases and a tiny config over them.
fn setup(dir: &Path, epochs: u64) -> std::path::PathBuf {
    let data = dir.join("data");
    if !data.exists() {
        common::small_phantoms(&data, 5);
    }
    let config = dir.join("tiny.json");
    let text = format!(
        r#"{{ "data": "data", "net": "scar_edema", "base_filters": 4,
             "geometry": {{ "crop": [64, 64], "margin": 3, "input": [32, 32] }},
             "epochs": {epochs}, "batch_size": 4, "seed": 11 }}"#
    );
    fs::write(&config, text).unwrap();
    config
}

/// `awsnet train --config CONFIG --out OUT` and `extra`.
fn train(config: &Path, out: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec!["train", "--config", s(config), "--out", s(out)];
    args.extend_from_slice(extra);
    awsnet(&args)
}

/// The latest checkpoint directory of a run, as its pointer names it.
fn latest(run: &Path) -> std::path::PathBuf {
    let pointer = common::json(&fs::read_to_string(run.join("checkpoint_latest.json")).unwrap());
    run.join(pointer["path"].as_str().unwrap())
}

fn read_dir_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn resuming_a_stopped_run_gives_the_bytes_of_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path(), 2);
    let straight = tmp.path().join("straight");
    let run = train(&config, &straight, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_stdout_has(&["    2 ", "run directory"]);
    assert_eq!(
        fs::read_to_string(straight.join("progress.jsonl"))
            .unwrap()
            .lines()
            .count(),
        2
    );

    // The same run stopped after one epoch, then extended to two.
    let stopped = tmp.path().join("stopped");
    let one = setup(tmp.path(), 1);
    let run = train(&one, &stopped, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = train(&one, &stopped, &[]);
    run.assert_user_error(&["already holds a training run", "--resume"]);
    // A crash while writing epoch 2's checkpoint leaves a directory no pointer names.
    let partial = stopped.join("checkpoints/epoch-0002");
    fs::create_dir_all(&partial).unwrap();
    fs::write(partial.join("model.bin"), b"half").unwrap();
    let two = setup(tmp.path(), 2);
    let run = train(&two, &stopped, &["--resume"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        read_dir_bytes(&latest(&straight)),
        read_dir_bytes(&latest(&stopped))
    );
    // Only checkpoints a pointer names are kept.
    let kept = fs::read_dir(straight.join("checkpoints")).unwrap().count();
    assert!((1..=2).contains(&kept), "{kept} checkpoint directories");

    // Resuming with another config is refused.
    let text = fs::read_to_string(&two)
        .unwrap()
        .replace("\"seed\": 11", "\"seed\": 12");
    fs::write(&two, text).unwrap();
    let run = train(&two, &stopped, &["--resume"]);
    run.assert_user_error(&["differs from the configuration"]);
}

#[test]
fn bad_configs_and_devices_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path(), 1);
    let good = fs::read_to_string(&config).unwrap();
    let table = [
        (
            good.replace("\"epochs\"", "\"epochz\""),
            "unknown field `epochz`",
        ),
        (good.replace("[32, 32]", "[30, 32]"), "geometry.input"),
        (
            good.replace("\"batch_size\": 4", "\"batch_size\": 0"),
            "batch_size",
        ),
        (
            good.replace("\"data\"", "\"data\": \"nowhere\", \"x\""),
            "unknown field `x`",
        ),
        (
            good.replace("\"data\": \"data\"", "\"data\": \"nowhere\""),
            "nowhere",
        ),
        (
            good.replace("scar_edema", "edema"),
            "unknown variant `edema`",
        ),
        (
            good.replace(
                "\"seed\": 11",
                "\"seed\": 11, \"loss\": { \"ce_weight\": -1 }",
            ),
            "loss.ce_weight",
        ),
        (
            good.replace("\"seed\": 11", "\"seed\": 11, \"alpha\": [0, 0, 0, 0]"),
            "at least one weight must be positive",
        ),
        (
            good.replace(
                "\"seed\": 11",
                "\"seed\": 11, \"casn_rois\": { \"coarse\": \"missing\", \"fine\": \"f\" }",
            ),
            "missing/config.json",
        ),
        ("{".to_string(), "not a train config"),
    ];
    for (text, fragment) in table {
        let path = tmp.path().join("bad.json");
        fs::write(&path, text).unwrap();
        let out = tmp.path().join("out-bad");
        let run = train(&path, &out, &[]);
        run.assert_user_error(&[fragment]);
        assert!(!out.exists(), "{fragment}: output created");
    }
    let out = tmp.path().join("out-cuda");
    let run = train(&config, &out, &["--device", "cuda:0"]);
    run.assert_user_error(&["no CUDA device available"]);
    let run = awsnet(&["train", "--config", s(&config), "--device", "tpu"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("unknown device"), "{}", run.stderr);
}

#[test]
fn casn_stages_train_plain_two_class_unets() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path(), 1);
    let text = fs::read_to_string(&config)
        .unwrap()
        .replace("scar_edema", "casn_coarse")
        .replace("[64, 64]", "[48, 48]");
    fs::write(&config, text).unwrap();
    let out = tmp.path().join("coarse");
    let run = train(&config, &out, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let saved = common::json(&fs::read_to_string(latest(&out).join("checkpoint.json")).unwrap());
    let model = &saved["config"];
    assert_eq!(model["in_channels"], 3);
    assert_eq!(model["out_channels"], 2);
    assert_eq!(model["pam"], false);
    assert_eq!(model["deep_supervision"], false);
    assert_eq!(saved["state"]["alpha"], serde_json::json!([1.0]));

    // An ASAN may cut its samples where trained CASNs find the LV (run directories relative to
    // its config), if they fit it: the same centre crop, a fine CASN in the fine place.
    let asan = |crop: &str| {
        let path = tmp.path().join("asan.json");
        let text = fs::read_to_string(setup(tmp.path(), 1)).unwrap().replace(
            "\"seed\": 11",
            "\"seed\": 11, \"casn_rois\": { \"coarse\": \"coarse\", \"fine\": \"coarse\" }",
        );
        fs::write(&path, text.replace("[64, 64]", crop)).unwrap();
        path
    };
    let out = tmp.path().join("asan");
    train(&asan("[64, 64]"), &out, &[]).assert_user_error(&[
        "coarse/config.json",
        "geometry.crop [48, 48] differs from the ASAN's [64, 64]",
    ]);
    train(&asan("[48, 48]"), &out, &[])
        .assert_user_error(&["coarse/config.json", "this place needs CasnFine"]);
    assert!(!out.exists());
}

/// `awsnet diagnose` scores a checkpoint in each batch-norm mode, on validation and test
/// slices; `awsnet export-schedule` writes each epoch's batches, and refuses what it cannot
/// mirror.
#[test]
fn diagnose_scores_every_mode_and_export_writes_the_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path(), 2);
    let run = tmp.path().join("run");
    let out = train(&config, &run, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.assert_stdout_has(&["deployed by default: epoch"]);
    let cases = common::json(&awsnet(&["cases", s(&tmp.path().join("data")), "--json"]).stdout);
    let first = cases["cases"][0]["id"].as_str().unwrap().to_string();
    let diag = awsnet(&["diagnose", s(&run), "--test-cases", &first, "--json"]);
    assert_eq!(diag.code, 0, "{}", diag.stderr);
    let doc = common::json(&diag.stdout);
    let modes: Vec<&str> = doc["diagnosis"]["modes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["eval", "batch", "reestimated"]);
    for m in doc["diagnosis"]["modes"].as_array().unwrap() {
        for set in ["validation", "test"] {
            let dice = m[set]["pooled"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&dice), "{m}");
            assert_eq!(m[set]["gate_means"].as_array().unwrap().len(), 4, "PAM on");
        }
    }
    assert_eq!(doc["diagnosis"]["test_cases"], 1);
    awsnet(&["diagnose", s(&run), "--test-cases", "nope"]).assert_user_error(&["nope"]);

    let export = tmp.path().join("export");
    let out = awsnet(&[
        "export-schedule",
        "--config",
        s(&config),
        "--out",
        s(&export),
        "--test-cases",
        &first,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let manifest = common::json(&fs::read_to_string(export.join("manifest.json")).unwrap());
    let epochs = manifest["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    for e in epochs {
        let set = &manifest["sets"][e["set"].as_str().unwrap()];
        let n: u64 = e["batches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_u64().unwrap())
            .sum();
        assert_eq!(
            set["n"].as_u64().unwrap(),
            n,
            "the batches cover the epoch's set"
        );
        let file = export.join(format!("{}.images.f32", e["set"].as_str().unwrap()));
        let (c, h, w) = (2, 32, 32);
        assert_eq!(fs::metadata(file).unwrap().len(), n * c * h * w * 4);
    }
    // Into a directory that holds files, or for a schedule that searches α: refused.
    let again = awsnet(&[
        "export-schedule",
        "--config",
        s(&config),
        "--out",
        s(&export),
    ]);
    again.assert_user_error(&["not empty"]);
    let das = tmp.path().join("das.json");
    let mut doc = common::json(&fs::read_to_string(&config).unwrap());
    doc["weighting"] = serde_json::json!({ "kind": "das", "epochs_fixed": 1, "samples": 2 });
    fs::write(&das, doc.to_string()).unwrap();
    let refused = awsnet(&[
        "export-schedule",
        "--config",
        s(&das),
        "--out",
        s(&tmp.path().join("e2")),
    ]);
    refused.assert_user_error(&["fixed-weight"]);
}
