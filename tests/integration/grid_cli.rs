//! `awsnet run`, `resume`, `status` and `task` on a tiny grid of phantom cases: the plan a dry
//! run shows, bad jobs refused naming the field, and the results a user relies on — the same summary.json however the run went (in one go, rerun elsewhere,
//! killed and resumed, with a damaged output), the DAS of the grid equal to `awsnet train`'s,
//! a reducer that proceeds without a lost sample, and one driver per run directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{self, awsnet};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Two methods, the second auto-weighted (1 fixed + 2 DAS epochs, K = 2).
const JOB: &str = r#"{
  "name": "tiny",
  "seed": 3,
  "data": { "root": "data", "test_cases": 2, "validation_cases": 1 },
  "scale": { "base_filters": 4, "crop": [64, 64], "margin": 3, "input": [32, 32],
             "batch_size": 4, "epochs": 3 },
  "weighting": { "epochs_fixed": 1, "samples": 2 },
  "methods": [
    { "name": "base", "pam": false, "deep_supervision": false },
    { "name": "pam_das", "weighting": "das" }
  ],
  "backend": { "kind": "local", "workers": 2 }
}"#;

/// A job file and five phantom cases in a fresh directory.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    common::phantoms(&tmp.path().join("data"), 5, 7);
    let job = tmp.path().join("tiny.json");
    fs::write(&job, JOB).unwrap();
    (tmp, job)
}

fn run_grid(job: &Path, run: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec!["run", s(job), "--run", s(run)];
    args.extend_from_slice(extra);
    awsnet(&args)
}

fn summary(run: &Path) -> Vec<u8> {
    fs::read(run.join("results/summary.json")).unwrap()
}

fn plan(run: &Path) -> serde_json::Value {
    common::json(&fs::read_to_string(run.join("plan.json")).unwrap())
}

fn stage_id(run: &Path, label: &str) -> String {
    plan(run)["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == label)
        .unwrap_or_else(|| panic!("no stage {label}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_grid_runs_end_to_end_and_reruns_to_the_same_summary() {
    let (tmp, job) = setup();
    let first = tmp.path().join("first");
    let out = run_grid(&job, &first, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.assert_stdout_has(&["tasks run, 0 already done", "summary.json"]);
    let doc = common::json(&String::from_utf8(summary(&first)).unwrap());
    assert_eq!(doc["job"], "tiny");
    for method in ["base", "pam_das"] {
        let cases = doc["methods"][method]["eval"]["metric_per_case"]
            .as_array()
            .unwrap();
        assert_eq!(cases.len(), 2, "{method}: the two test cases");
    }
    let comparisons = doc["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), 2, "pam_das vs base on two metrics");
    assert_eq!(
        (comparisons[0]["a"].clone(), comparisons[0]["n"].clone()),
        ("base".into(), 2.into())
    );
    assert!(comparisons[0].get("p_t_holm").is_some());
    // Provenance: what computed the results, and the seeds they derive from.
    let provenance = &doc["provenance"];
    let compute = provenance["compute"].as_array().unwrap();
    assert_eq!(compute.len(), 1, "{compute:?}");
    assert_eq!(compute[0]["device"], "cpu");
    assert_eq!(compute[0]["backend"], "autodiff<flex>");
    assert!(compute[0]["cpu_kernels"].is_string());
    assert_eq!(provenance["seeds"]["members"].as_array().unwrap().len(), 1);
    assert!(provenance["seeds"]["casn"].is_u64());
    assert!(first.join("results/compute.json").exists());
    assert!(first.join("results/tables.md").exists());
    out.assert_stdout_has(&["report: "]);
    crate::report_cli::check_report(&first);
    // Cost per method, beside accuracy: DAS trains K children per auto-weighted epoch.
    let compute = common::json(&fs::read_to_string(first.join("results/compute.json")).unwrap());
    let tasks = |m: &str| compute["methods"][m]["tasks"].as_u64().unwrap();
    assert!(
        compute["methods"]["pam_das"]["cpu_seconds_total"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(
        (tasks("casn"), tasks("base")),
        (2, 4),
        "train ×2, predict, evaluate"
    );
    assert_eq!(
        tasks("pam_das"),
        2 + 2 * (4 + 1) + 2,
        "warmup ×2, 2 epochs of 4 + 1, predict, evaluate"
    );
    // What each member deployed: the search's final parent, the fixed run's best epoch.
    let deployed = |method: &str, net: usize| {
        doc["methods"][method]["deployed"][0][net]["epoch"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(deployed("pam_das", 2), 3);
    assert_eq!(deployed("pam_das", 3), 3);
    assert!((1..=3).contains(&deployed("base", 2)));
    assert!(first.join("logs/casn_coarse-0.log").exists());

    // Again in the same directory: nothing to do. Elsewhere, from another working directory:
    // the same bytes.
    let again = run_grid(&job, &first, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    again.assert_stdout_has(&["0 tasks run"]);
    let second = tmp.path().join("second");
    let out = common::awsnet_in(&["run", "tiny.json", "--run", "second"], Some(tmp.path()));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(summary(&first), summary(&second));

    // Another job in that directory is refused.
    let other = run_grid(&job, &first, &["--set", "seed=4"]);
    other.assert_user_error(&["holds another grid's run"]);
}

/// The grid's DAS, one child per task and an update per epoch through checkpoints on disk,
/// trains the very bytes `awsnet train` trains in one process.
#[test]
fn sharded_das_equals_awsnet_train() {
    let (tmp, job) = setup();
    let run = tmp.path().join("run");
    let out = run_grid(
        &job,
        &run,
        &[
            "--set",
            "methods=[{\"name\": \"d\", \"weighting\": \"das\"}]",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let update = stage_id(&run, "d/update[3]");
    let stage = plan(&run)["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == update.as_str())
        .unwrap()
        .clone();
    let config = tmp.path().join("member.json");
    fs::write(&config, stage["work"]["configs"][1].to_string()).unwrap();
    let parent = common::json(
        &fs::read_to_string(run.join(format!("stages/{update}/0/parents/1.json"))).unwrap(),
    );
    let grid_model = fs::read(
        run.join(parent["checkpoint"].as_str().unwrap())
            .join("model.bin"),
    )
    .unwrap();

    let single = tmp.path().join("single");
    let trained = awsnet(&["train", "--config", s(&config), "--out", s(&single)]);
    assert_eq!(trained.code, 0, "{}", trained.stderr);
    let model = fs::read(single.join("checkpoints/epoch-0003/model.bin")).unwrap();
    assert!(
        model == grid_model,
        "the grid's final parent differs from awsnet train's model"
    );
    let lines: Vec<serde_json::Value> = fs::read_to_string(single.join("weighting.jsonl"))
        .unwrap()
        .lines()
        .map(common::json)
        .collect();
    assert_eq!(parent["lines"], serde_json::Value::from(lines));
}

/// `awsnet run JOB --run RUN EXTRA…` started in the background, its stderr captured.
fn spawn_run(job: &Path, run: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_awsnet"))
        .args(["run", s(job), "--run", s(run)])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The direct children of process `pid` (from /proc).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …: the comm may hold spaces, so split after its ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(vec![], |(_, r)| r.split_whitespace().collect());
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            if let Ok(child) = entry.file_name().to_string_lossy().parse() {
                out.push(child);
            }
        }
    }
    out
}

#[test]
fn a_killed_task_resumes_to_the_same_summary() {
    let (tmp, job) = setup();
    // A longer CASN run, so there is a task to kill mid-training.
    let slow = ["--set", "networks.casn_coarse.epochs=40"];
    let clean = tmp.path().join("clean");
    assert_eq!(run_grid(&job, &clean, &slow).code, 0);

    let killed = tmp.path().join("killed");
    let mut driver = spawn_run(&job, &killed, &slow);
    // Wait for the coarse CASN to have saved an epoch, then SIGKILL every running task.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut shot = 0;
    while Instant::now() < deadline && shot == 0 {
        let started = fs::read_dir(killed.join("stages"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|stage| stage.path().join("0/run/checkpoint_latest.json").exists());
        if started {
            for child in children(driver.id()) {
                // SAFETY: SIGKILL to our own child processes.
                unsafe { libc::kill(child as i32, libc::SIGKILL) };
                shot += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(shot > 0, "no task was running to kill");
    let status = driver.wait().unwrap();
    assert_eq!(status.code(), Some(1), "a killed task fails the run");
    let resumed = awsnet(&["resume", s(&killed)]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(summary(&clean), summary(&killed));
}

#[test]
fn a_damaged_output_is_found_and_recomputed() {
    let (tmp, job) = setup();
    let run = tmp.path().join("run");
    assert_eq!(run_grid(&job, &run, &[]).code, 0);
    let before = summary(&run);
    let sample = stage_id(&run, "pam_das/sample[2]");
    let model = run.join(format!("stages/{sample}/1/child/model.bin"));
    let mut bytes = fs::read(&model).unwrap();
    bytes[100] ^= 0xff;
    fs::write(&model, bytes).unwrap();

    let status = awsnet(&["status", s(&run)]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    status.assert_stdout_has(&["task 1 reruns: child/model.bin: sha256 differs"]);
    let resumed = awsnet(&["resume", s(&run)]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    resumed.assert_stdout_has(&["1 tasks run"]);
    assert_eq!(summary(&run), before);

    // The deployed checkpoint is named by content in the run's store; a stored copy replaced
    // by other bytes is found, and the task that stored it runs again to repair it.
    let doc = common::json(&String::from_utf8(before.clone()).unwrap());
    let deployed = doc["methods"]["pam_das"]["deployed"][0][2]["checkpoint"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(deployed.starts_with("store/"), "{deployed}");
    let stored = run.join(&deployed).join("model.bin");
    let mut bytes = fs::read(&stored).unwrap();
    bytes[100] ^= 0xff;
    fs::remove_file(&stored).unwrap();
    fs::write(&stored, bytes).unwrap();
    let status = awsnet(&["status", s(&run)]);
    status.assert_stdout_has(&[&format!(
        "child: its stored copy {deployed}: model.bin: sha256 differs"
    )]);
    let resumed = awsnet(&["resume", s(&run)]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    resumed.assert_stdout_has(&["1 tasks run"]);
    assert_eq!(summary(&run), before);
    let status = awsnet(&["status", s(&run)]);
    assert!(!status.stdout.contains("reruns"), "{}", status.stdout);
}

#[test]
fn the_update_proceeds_without_a_lost_sample_and_fails_clearly_without_any() {
    let (tmp, job) = setup();
    let run = tmp.path().join("run");
    assert_eq!(run_grid(&job, &run, &[]).code, 0);
    let sample = stage_id(&run, "pam_das/sample[2]");
    let update = stage_id(&run, "pam_das/update[2]");
    // Child 1 of member 0, net scar never arrived (and the update has yet to run: a done
    // task is left alone).
    fs::remove_file(run.join(format!("stages/{sample}/1/done.json"))).unwrap();
    fs::remove_file(run.join(format!("stages/{update}/0/done.json"))).unwrap();
    let task = awsnet(&["task", s(&run), "--stage", &update, "--index", "0"]);
    assert_eq!(task.code, 0, "{}", task.stderr);
    let parent = common::json(
        &fs::read_to_string(run.join(format!("stages/{update}/0/parents/0.json"))).unwrap(),
    );
    assert_eq!(parent["lines"][0]["missing"], serde_json::json!([1]));
    assert_eq!(parent["lines"][0]["samples"].as_array().unwrap().len(), 1);

    fs::remove_file(run.join(format!("stages/{sample}/0/done.json"))).unwrap();
    fs::remove_file(run.join(format!("stages/{update}/0/done.json"))).unwrap();
    let none = awsnet(&["task", s(&run), "--stage", &update, "--index", "0"]);
    assert_eq!(none.code, 3, "{}", none.stderr);
    assert!(
        none.stderr.contains("no sample of epoch 2 arrived"),
        "{}",
        none.stderr
    );
    assert!(
        none.stderr.contains("pam_das/update[2], task 0"),
        "{}",
        none.stderr
    );
}

#[test]
fn one_driver_per_run_directory() {
    let (tmp, job) = setup();
    let run = tmp.path().join("run");
    fs::create_dir_all(&run).unwrap();
    // This test process stands in for a live driver.
    fs::write(run.join("lock"), format!("{}\n", std::process::id())).unwrap();
    run_grid(&job, &run, &[]).assert_user_error(&["is being run by process"]);
    assert!(!run.join("plan.json").exists());
}

/// SIGUSR2 (Slurm's warning before a time limit or preemption) stops a training task at the end
/// of its epoch with exit 4, its progress saved; run again, it ends with the bytes of a task
/// never stopped.
#[test]
fn a_signalled_task_saves_stops_and_resumes_to_the_same_bytes() {
    let (tmp, job) = setup();
    let slow = ["--set", "networks.casn_coarse.epochs=60"];
    let clean = tmp.path().join("clean");
    // The clean run trains its coarse CASN uninterrupted; the stopped one runs the same plan.
    let full = run_grid(&job, &clean, &slow);
    assert_eq!(full.code, 0, "{}", full.stderr);
    let stage = stage_id(&clean, "casn_coarse");

    let stopped = tmp.path().join("stopped");
    fs::create_dir_all(&stopped).unwrap();
    fs::copy(clean.join("plan.json"), stopped.join("plan.json")).unwrap();
    let task = Command::new(env!("CARGO_BIN_EXE_awsnet"))
        .args(["task", s(&stopped), "--stage", &stage, "--index", "0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let latest = stopped.join(format!("stages/{stage}/0/run/checkpoint_latest.json"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !latest.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: a signal to our own child process.
    unsafe { libc::kill(task.id() as i32, libc::SIGUSR2) };
    let out = task.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("stopped on request: epoch"), "{stderr}");
    assert!(!stopped.join(format!("stages/{stage}/0/done.json")).exists());

    let again = awsnet(&["task", s(&stopped), "--stage", &stage, "--index", "0"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let model = |run: &Path| {
        let dir = run.join(format!("stages/{stage}/0/run"));
        let pointer =
            common::json(&fs::read_to_string(dir.join("checkpoint_latest.json")).unwrap());
        fs::read(
            dir.join(pointer["path"].as_str().unwrap())
                .join("model.bin"),
        )
        .unwrap()
    };
    assert!(
        model(&clean) == model(&stopped),
        "a resumed task differs from an uninterrupted one"
    );
}

/// `awsnet cancel` stops the driver: it starts nothing more, its tasks save and exit, and the
/// run exits 4; `resume` then finishes with the summary of a run never cancelled.
#[test]
fn cancel_stops_the_run_and_resume_finishes_it() {
    let (tmp, job) = setup();
    let slow = ["--set", "networks.casn_coarse.epochs=40"];
    let clean = tmp.path().join("clean");
    assert_eq!(run_grid(&job, &clean, &slow).code, 0);

    let run = tmp.path().join("run");
    let driver = spawn_run(&job, &run, &slow);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !run.join("lock").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let cancel = awsnet(&["cancel", s(&run)]);
    assert_eq!(cancel.code, 0, "{}", cancel.stderr);
    let out = driver.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("awsnet resume"), "{stderr}");
    assert!(!run.join("lock").exists());
    let resumed = awsnet(&["resume", s(&run)]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(summary(&clean), summary(&run));
    awsnet(&["cancel", s(&run)]).assert_stdout_has(&["nothing is running"]);
}

/// Table 3: methods that differ in the ASANs' input sequences train, predict and compare.
#[test]
fn methods_may_choose_the_input_sequences() {
    let (tmp, job) = setup();
    let run = tmp.path().join("run");
    let methods = r#"methods=[{"name": "lge", "sequences": ["LGE"]},
                              {"name": "all", "sequences": ["C0", "DE", "T2"]}]"#;
    let out = run_grid(&job, &run, &["--set", methods]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = common::json(&String::from_utf8(summary(&run)).unwrap());
    assert_eq!(doc["comparisons"][0]["b"], "all");
    let repeated = r#"methods=[{"name": "twice", "sequences": ["DE", "LGE"]}]"#;
    run_grid(&job, &tmp.path().join("bad"), &["--set", repeated]).assert_user_error(&[
        "sequences",
        "each once",
        "method twice",
    ]);
}

/// Three seeds per method: each case's metric averaged over them is what is compared, each
/// seed's mean is in the summary and the report; `largest_component` changes prediction only.
#[test]
fn replicates_average_per_case_and_report_the_spread() {
    let (tmp, job) = setup();
    let run = tmp.path().join("run");
    let methods = r#"methods=[{"name": "base", "pam": false, "deep_supervision": false},
        {"name": "lcc", "pam": false, "deep_supervision": false, "largest_component": true}]"#;
    let out = run_grid(&job, &run, &["--set", methods, "--set", "replicates=3"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for label in ["base/seed1/train", "base/seed3/predict", "lcc/seed2/train"] {
        stage_id(&run, label);
    }
    let doc = common::json(&String::from_utf8(summary(&run)).unwrap());
    let base = &doc["methods"]["base"];
    let seeds = base["replicates"]["seeds"].as_array().unwrap();
    assert_eq!(seeds.len(), 3);
    assert_eq!(
        seeds[0], 3,
        "the first replicate trains from the job's seed"
    );
    assert_eq!(
        doc["provenance"]["seeds"]["replicates"],
        base["replicates"]["seeds"]
    );
    // The compared value of a case is its mean over the three seeds.
    let eval_dir = run
        .join("stages")
        .join(stage_id(&run, "base/evaluate"))
        .join("0");
    let dice = |eval: &serde_json::Value, case: usize| {
        eval["metric_per_case"][case]["scar_edema"]["dice"]
            .as_f64()
            .unwrap()
    };
    let each: Vec<serde_json::Value> = (1..=3)
        .map(|r| {
            let path = eval_dir.join(format!("seed{r}/eval.json"));
            common::json(&fs::read_to_string(path).unwrap())
        })
        .collect();
    for case in 0..2 {
        let mean = each.iter().map(|e| dice(e, case)).sum::<f64>() / 3.0;
        assert!((dice(&base["eval"], case) - mean).abs() < 1e-12);
    }
    let spread = &base["replicates"]["spread"]["scar_edema"]["dice"];
    assert!(spread["sd"].as_f64().unwrap() >= 0.0, "{spread}");
    // Same seeds, same training: the largest-component twin deploys the very checkpoints.
    assert_eq!(doc["methods"]["lcc"]["deployed"], base["deployed"]);
    let report = fs::read_to_string(run.join("results/report.md")).unwrap();
    assert!(report.contains("## Across seeds"), "{report}");
    assert!(report.contains("| lcc |"), "{report}");
}

/// ASANs trained where the CASNs find the LV — the grid's CASNs, or out-of-fold ones — train
/// other networks than on the ground truth's ROIs, deploy the same CASNs, and rerun to the same
/// summary; CASNs that find no LV stop the ASAN task with an error that says so.
#[test]
fn asans_may_train_on_the_rois_the_casns_predict() {
    let (tmp, job) = setup();
    let methods = r#"methods=[{"name": "base", "pam": false, "deep_supervision": false},
        {"name": "casn", "pam": false, "deep_supervision": false, "casn_rois": true},
        {"name": "oof", "pam": false, "deep_supervision": false, "casn_rois": true,
         "casn_folds": 3}]"#;
    // Three epochs leave the tiny CASNs finding no LV at all.
    let untrained = tmp.path().join("untrained");
    let out = run_grid(&job, &untrained, &["--set", methods]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    for fragment in ["casn/train[0] (exit 2)", "logs/casn_train-0.log"] {
        assert!(out.stderr.contains(fragment), "{}", out.stderr);
    }
    let log = fs::read_to_string(untrained.join("logs/casn_train-0.log")).unwrap();
    assert!(
        log.contains("no labelled training slice where the CASNs of casn_rois find the LV"),
        "{log}"
    );

    let trained = [
        "--set",
        methods,
        "--set",
        "networks.casn_coarse.epochs=40",
        "--set",
        "networks.casn_fine.epochs=40",
    ];
    let (first, second) = (tmp.path().join("first"), tmp.path().join("second"));
    for run in [&first, &second] {
        let out = run_grid(&job, run, &trained);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    assert_eq!(summary(&first), summary(&second));
    for label in ["casn_coarse/fold1of3", "casn_fine/fold3of3"] {
        stage_id(&first, label);
    }
    let doc = common::json(&String::from_utf8(summary(&first)).unwrap());
    let deployed =
        |method: &str, net: usize| doc["methods"][method]["deployed"][0][net]["checkpoint"].clone();
    for method in ["casn", "oof"] {
        for net in [0, 1] {
            assert_eq!(
                deployed(method, net),
                deployed("base", net),
                "{method}: CASN"
            );
        }
        for net in [2, 3] {
            assert_ne!(
                deployed(method, net),
                deployed("base", net),
                "{method}: ASAN"
            );
        }
    }
    assert_ne!(deployed("casn", 2), deployed("oof", 2));
}

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    let (tmp, job) = setup();
    let run_dir = tmp.path().join("run");
    let args = ["run", s(&job), "--run", s(&run_dir), "--dry-run"];
    let out = awsnet(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.assert_stdout_has(&[
        "cases: 3 training (1 for validation",
        "2 test",
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

/// Nightly retraining (`--if-changed`): unchanged data runs nothing; a test case added to the
/// data reruns prediction, evaluation and the statistics only (the training stages do not read
/// the test cases), keeps the previous results, and the report compares with them.
#[test]
fn if_changed_reruns_only_what_a_new_case_reaches() {
    let tmp = tempfile::tempdir().unwrap();
    let all = tmp.path().join("all");
    common::phantoms(&all, 6, 7);
    let move_case = |id: u32, to: &str| {
        let dir = tmp.path().join(to);
        fs::create_dir_all(&dir).unwrap();
        for seq in ["C0", "DE", "T2", "gd"] {
            let name = format!("myops_training_{id}_{seq}.nii.gz");
            fs::rename(all.join(&name), dir.join(&name)).unwrap();
        }
    };
    for id in 101..=103 {
        move_case(id, "train");
    }
    for id in 104..=105 {
        move_case(id, "test");
    }
    let job = tmp.path().join("nightly.json");
    let text = JOB.replace(
        r#""data": { "root": "data", "test_cases": 2, "validation_cases": 1 }"#,
        r#""data": { "train": "train", "test": "test", "validation_cases": 1 }"#,
    );
    assert_ne!(text, JOB);
    fs::write(&job, text).unwrap();
    let run = tmp.path().join("run");
    let first = run_grid(&job, &run, &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);

    let same = run_grid(&job, &run, &["--if-changed"]);
    assert_eq!(same.code, 0, "{}", same.stderr);
    same.assert_stdout_has(&["0 tasks run"]);

    move_case(106, "test");
    // Without --if-changed a run over other data is another run: refused.
    run_grid(&job, &run, &[]).assert_user_error(&["holds another grid's run"]);
    let night = run_grid(&job, &run, &["--if-changed"]);
    assert_eq!(night.code, 0, "{}", night.stderr);
    night.assert_stdout_has(&["re-planned", "5 tasks run", "previous results are in"]);
    let history: Vec<_> = fs::read_dir(run.join("history"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("results/summary.json").exists())
        .collect();
    assert_eq!(history.len(), 1, "the first run's results are kept");
    let doc = common::json(&String::from_utf8(summary(&run)).unwrap());
    assert_eq!(
        doc["methods"]["base"]["eval"]["metric_per_case"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "tonight evaluates the new case too"
    );
    let report = fs::read_to_string(run.join("results/report.md")).unwrap();
    assert!(
        report.contains("## Tonight against the previous run")
            && report.contains("| base | scar_dice | 2 |"),
        "{report}"
    );
}

/// A net made to collapse — its training cases show no scar, its validation case does, and a
/// high learning rate drives the scar class out — is named by `awsnet status`, the summary
/// and the report, with its method, member, net and epoch.
#[test]
fn a_collapsed_net_is_flagged_by_status_summary_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let all = tmp.path().join("all");
    common::phantoms(&all, 12, 7);
    let cases = common::json(&awsnet(&["cases", s(&all), "--json"]).stdout);
    let (mut free, mut lesion) = (Vec::new(), Vec::new());
    for c in cases["cases"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap().to_string();
        let labels = c["summary"]["labels_present"].as_array().unwrap();
        if labels.iter().any(|l| l == "scar") {
            lesion.push(id);
        } else {
            free.push(id);
        }
    }
    assert!(free.len() >= 2 && lesion.len() >= 2, "{free:?} {lesion:?}");
    let copy = |id: &str, to: &str| {
        let dir = tmp.path().join(to);
        fs::create_dir_all(&dir).unwrap();
        for entry in fs::read_dir(&all).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with(&format!("{id}_")) {
                fs::copy(&path, dir.join(name)).unwrap();
            }
        }
    };
    for id in [&free[0], &free[1], &lesion[0]] {
        copy(id, "train");
    }
    copy(&lesion[1], "test");
    let job = tmp.path().join("collapse.json");
    let write_job = |seed: u64| {
        let text = format!(
            r#"{{ "name": "collapse", "seed": {seed},
              "data": {{ "train": "train", "test": "test", "validation_cases": 1 }},
              "scale": {{ "base_filters": 4, "crop": [64, 64], "margin": 3, "input": [32, 32],
                         "batch_size": 4, "epochs": 4, "learning_rate": 0.01,
                         "epoch_length": {{ "batches": 10 }} }},
              "deploy": "latest",
              "methods": [ {{ "name": "base", "pam": false, "deep_supervision": false }} ],
              "backend": {{ "kind": "local", "workers": 2 }} }}"#
        );
        fs::write(&job, text).unwrap();
    };
    // The job seed whose validation draw holds out the case with the lesion.
    let seed = (1..40)
        .find(|&seed| {
            write_job(seed);
            let dry = awsnet(&[
                "run",
                s(&job),
                "--run",
                s(&tmp.path().join("dry")),
                "--dry-run",
            ]);
            dry.stdout
                .contains(&format!("1 for validation: {})", lesion[0]))
        })
        .expect("a seed that validates on the lesion case");
    write_job(seed);
    let run = tmp.path().join("run");
    let out = run_grid(&job, &run, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    let doc = common::json(&String::from_utf8(summary(&run)).unwrap());
    let flagged: Vec<(String, String, String)> = doc["health"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let field = |k: &str| f[k].as_str().unwrap().to_string();
            (field("method"), field("net"), field("issue"))
        })
        .collect();
    let collapsed = (
        "base".to_string(),
        "scar".to_string(),
        "collapsed".to_string(),
    );
    assert!(flagged.contains(&collapsed), "{flagged:?}");
    let record = &doc["methods"]["base"]["deployed"][0][2];
    assert_eq!(record["net"], "scar");
    assert_eq!(record["health"][0]["issue"], "collapsed");
    assert_eq!(
        record["health"][0]["epoch"], 4,
        "the deployed (latest) epoch"
    );

    let status = awsnet(&["status", s(&run)]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    status.assert_stdout_has(&["⚠ base member 1, scar: collapsed: epoch 4"]);
    let json = common::json(&awsnet(&["status", s(&run), "--json"]).stdout);
    assert_eq!(json["health"], doc["health"]);
    let report = fs::read_to_string(run.join("results/report.md")).unwrap();
    assert!(
        report.contains("## ⚠ Networks that did not learn"),
        "{report}"
    );
    assert!(
        report.contains("- ⚠ base member 1, scar: collapsed: epoch 4"),
        "{report}"
    );
}
