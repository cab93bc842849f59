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
