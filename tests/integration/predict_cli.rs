//! `awsnet predict`: four tiny trained networks turn phantom cases into MyoPS label volumes that
//! `awsnet eval` accepts, the same bytes every time.

use crate::common;
use std::fs;
use std::path::Path;

use crate::common::awsnet;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `awsnet predict --model MODEL --cases DATA --out OUT` and `extra`.
fn predict(model: &Path, data: &Path, out: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec![
        "predict",
        "--model",
        s(model),
        "--cases",
        s(data),
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    awsnet(&args)
}

#[test]
fn trained_networks_segment_cases_that_eval_can_score() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::small_phantoms(&data, 8);
    let model = tmp.path().join("model");
    for net in ["casn_coarse", "casn_fine", "scar", "scar_edema"] {
        let config = tmp.path().join(format!("{net}.json"));
        fs::write(
            &config,
            format!(
                r#"{{ "data": "data", "net": "{net}", "base_filters": 4, "epochs": 1,
                     "geometry": {{ "crop": [64, 64], "margin": 3, "input": [32, 32] }},
                     "batch_size": 4, "seed": 1 }}"#
            ),
        )
        .unwrap();
        let run = awsnet(&[
            "train",
            "--config",
            s(&config),
            "--out",
            s(&model.join(net)),
        ]);
        assert_eq!(run.code, 0, "{net}: {}", run.stderr);
    }

    let out = tmp.path().join("pred");
    let run = predict(&model, &data, &out, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_stdout_has(&["wrote 3 label volumes"]);
    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "myops_training_101_pred.nii.gz",
            "myops_training_102_pred.nii.gz",
            "myops_training_103_pred.nii.gz"
        ]
    );
    // Predictions are on the cases' grid with MyoPS codes: eval accepts them as they are.
    let run = awsnet(&["eval", "--pred", s(&out), "--gt", s(&data)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_stdout_has(&["3 cases"]);

    let again = tmp.path().join("pred-again");
    let run = predict(&model, &data, &again, &["--clean-small"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = predict(&model, &data, &again, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for name in &names {
        assert_eq!(
            fs::read(out.join(name)).unwrap(),
            fs::read(again.join(name)).unwrap(),
            "{name}"
        );
    }

    // One epoch each: latest and best are the same checkpoint, so the same labels.
    let latest = tmp.path().join("pred-latest");
    let run = predict(&model, &data, &latest, &["--deploy", "latest"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for name in &names {
        assert_eq!(
            fs::read(out.join(name)).unwrap(),
            fs::read(latest.join(name)).unwrap()
        );
    }
    let run = predict(
        &model,
        &data,
        &tmp.path().join("x"),
        &["--deploy", "newest"],
    );
    run.assert_user_error(&["best_auto"]);

    let run = predict(
        &model,
        &data,
        &tmp.path().join("gpu"),
        &["--device", "cuda"],
    );
    run.assert_user_error(&["no CUDA device available"]);

    fs::remove_dir_all(model.join("scar")).unwrap();
    let bad_out = tmp.path().join("pred-bad");
    let run = predict(&model, &data, &bad_out, &[]);
    run.assert_user_error(&["no scar/ run directory"]);
    assert!(!bad_out.exists());
}
