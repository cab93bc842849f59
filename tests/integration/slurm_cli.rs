//! `--backend slurm`: the scripts a dry run writes, the states Slurm reports (a fake `squeue`
//! for those one node cannot produce), and — on a real Slurm (`scripts/slurm-dev-cluster.sh`)
//! — the grid queued whole, giving the local run's summary.json byte for byte, surviving a
//! cancelled DAS child, a failed array and a task told to save and requeue.
//!
//! The real-Slurm tests need a cluster that answers `sinfo`, so plain `cargo test` lists them
//! as ignored; `cargo test -- --ignored` runs them (`.ci/run` starts a one-node cluster and
//! does), and then a missing cluster fails them rather than letting them pass unrun.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::common::{self, json};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Two methods, the second auto-weighted (1 fixed + 2 DAS epochs, K = 2); tasks ask Slurm for
/// one core and 1 GB so several run at once on a small node.
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
  "backend": { "kind": "slurm", "cpus": 1, "mem": "1G", "time": "00:20:00",
               "reducer": { "cpus": 1, "mem": "1G", "time": "00:20:00" } }
}"#;

fn setup() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    common::phantoms(&tmp.path().join("data"), 5, 7);
    let job = tmp.path().join("tiny.json");
    fs::write(&job, JOB).unwrap();
    (tmp, job)
}

/// `awsnet ARGS` with `path` (if any) before PATH.
fn awsnet_with_path(args: &[&str], path: Option<&Path>) -> common::Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_awsnet"));
    command.args(args);
    if let Some(dir) = path {
        let old = std::env::var("PATH").unwrap_or_default();
        command.env("PATH", format!("{}:{old}", dir.display()));
    }
    let out = command.output().unwrap();
    common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn records(run: &Path) -> serde_json::Value {
    json(&fs::read_to_string(run.join("slurm/jobs.json")).unwrap())
}

/// The job id queued for the stage labelled `label` (its latest submission).
fn job_of(run: &Path, label: &str) -> String {
    records(run)["submissions"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|s| s["label"] == label)
        .unwrap_or_else(|| panic!("no job for {label}"))["job"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_dry_run_writes_readable_scripts_and_queues_nothing() {
    let (tmp, job) = setup();
    let run = tmp.path().join("run");
    let out = awsnet_with_path(
        &[
            "run",
            s(&job),
            "--run",
            s(&run),
            "--dry-run",
            "--set",
            "backend.gres=gpu:1",
            "--set",
            "backend.partition=gpu",
            "--set",
            "backend.throttle=2",
            "--set",
            "backend.setup=[\"module load cuda/12.4\"]",
            "--set",
            "backend.das_mode=arrays",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.assert_stdout_has(&["sbatch scripts written, nothing queued", "submit.sh"]);
    assert!(!run.join("slurm/jobs.json").exists(), "nothing was queued");
    let run = run.canonicalize().unwrap();
    let planned = awsnet_with_path(&["run", s(&job), "--dry-run", "--json"], None);
    let plan = json(&planned.stdout);
    let id = |label: &str| {
        plan["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["label"] == label)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Snapshots, with the paths and ids that vary from run to run named.
    let normalise = |text: String| {
        text.replace(s(&run), "RUN")
            .replace(env!("CARGO_BIN_EXE_awsnet"), "AWSNET")
            .replace(&id("pam_das/sample[2]"), "SAMPLE2")
            .replace(&id("pam_das/update[2]"), "UPDATE2")
            .replace(&plan["run"].as_str().unwrap()[..12], "RUNID")
    };
    let sample = normalise(fs::read_to_string(run.join("sbatch/pam_das_sample_2.sbatch")).unwrap());
    let expected_sample = r#"#!/bin/bash
# awsnet array job: stage pam_das/sample[2] of run RUNID, one array element per task.
# Rendered by `awsnet run --backend slurm` from sbatch/array.sbatch. To change every job of
# a grid, edit that template (or a copy named by the job spec's backend.templates).
#SBATCH --job-name=awsnet-RUNID
#SBATCH --array=0-3%2
#SBATCH --output=RUN/logs/pam_das_sample_2-%a.log
#SBATCH --open-mode=append
#SBATCH --requeue
#SBATCH --signal=B:USR2@300
#SBATCH --kill-on-invalid-dep=yes
#SBATCH --partition=gpu
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=1
#SBATCH --mem=1G
#SBATCH --time=00:20:00
set -uo pipefail
module load cuda/12.4
# The task index within the stage: array indices stop at MaxArraySize, so a large stage is
# submitted in chunks, each with its offset.
index=$((SLURM_ARRAY_TASK_ID + 0))
export RAYON_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}

AWSNET task RUN --stage SAMPLE2 --index "$index" --device cuda &
"#;
    assert!(
        sample.starts_with(expected_sample),
        "array script:\n{sample}"
    );
    assert!(sample.contains("scontrol requeue"), "requeues on exit 4");
    let update = normalise(fs::read_to_string(run.join("sbatch/pam_das_update_2.sbatch")).unwrap());
    for line in [
        "#SBATCH --output=RUN/logs/pam_das_update_2-0.log",
        "#SBATCH --partition=gpu\n#SBATCH --cpus-per-task=1\n#SBATCH --mem=1G",
        "AWSNET task RUN --stage UPDATE2 --index 0 --device cpu &",
    ] {
        assert!(
            update.contains(line),
            "reducer script lacks {line:?}:\n{update}"
        );
    }
    assert!(!update.contains("--gres"), "a reducer needs no GPU");
    assert!(!update.contains("--array"), "a reducer is one job");
    let submit = normalise(fs::read_to_string(run.join("sbatch/submit.sh")).unwrap());
    assert!(
        submit.contains(
            "j7=$(sbatch --parsable --dependency=afterany:${j6}_0:${j6}_1:${j6}_2:${j6}_3 \
             RUN/sbatch/pam_das_update_2.sbatch | cut -d';' -f1)  # pam_das/update[2]"
        ),
        "{submit}"
    );
    assert_eq!(
        submit.matches("sbatch --parsable").count(),
        13,
        "a job per stage"
    );

    // On GPUs a search is held workers by default: one array for all its epochs.
    let held = tmp.path().join("held");
    let out = awsnet_with_path(
        &[
            "run",
            s(&job),
            "--run",
            s(&held),
            "--dry-run",
            "--set",
            "backend.gpus=1",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let script = fs::read_to_string(held.join("sbatch/pam_das_held.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-3\n"), "{script}");
    assert!(script.contains("#SBATCH --gpus=1\n"), "{script}");
    assert!(
        script.contains("--device cuda --held --stale-seconds 120 &"),
        "{script}"
    );
    let submit = fs::read_to_string(held.join("sbatch/submit.sh")).unwrap();
    assert_eq!(submit.matches("sbatch --parsable").count(), 10, "{submit}");
    assert!(!held.join("sbatch/pam_das_sample_2.sbatch").exists());
}

/// Fake Slurm commands in `dir`: `sbatch` logs its arguments and prints ids 1, 2, …; `squeue`
/// prints `squeue.txt`; `sacct` has no accounting; `scontrol` reports MaxArraySize.
fn fake_slurm(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let d = dir.display();
    let scripts = [
        (
            "sbatch",
            format!(
                "#!/bin/sh\necho \"$@\" >> {d}/sbatch.log\nn=$(cat {d}/n 2>/dev/null || echo 0)\n\
                 n=$((n + 1))\necho $n > {d}/n\necho $n\n"
            ),
        ),
        (
            "squeue",
            format!("#!/bin/sh\ncat {d}/squeue.txt 2>/dev/null\n"),
        ),
        (
            "sacct",
            "#!/bin/sh\necho 'sacct: error: accounting storage is disabled' >&2\nexit 1\n".into(),
        ),
        (
            "scontrol",
            "#!/bin/sh\necho 'MaxArraySize            = 1001'\n".into(),
        ),
        (
            "scancel",
            format!("#!/bin/sh\necho \"$@\" >> {d}/scancel.log\n"),
        ),
    ];
    for (name, text) in scripts {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// States one node cannot produce (NODE_FAIL, OUT_OF_MEMORY, PREEMPTED) are failures that
/// `status` names with their logs, and `resume` queues those tasks and what waits on them,
/// wired to the task still running.
#[test]
fn failed_states_are_named_and_resume_requeues_only_them() {
    let (tmp, job) = setup();
    let fake = tmp.path().join("fake");
    fake_slurm(&fake);
    let run = tmp.path().join("run");
    let out = awsnet_with_path(&["run", s(&job), "--run", s(&run)], Some(&fake));
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.assert_stdout_has(&["queued 21 tasks in 13 jobs"]);
    let log = fs::read_to_string(fake.join("sbatch.log")).unwrap();
    assert_eq!(log.lines().count(), 13, "{log}");
    // Job ids 1, 2, 3 are the two CASNs and base/train (2 tasks); 4 is base/predict.
    assert!(
        log.lines()
            .nth(3)
            .unwrap()
            .contains("--dependency=afterok:1_0:2_0:3_0:3_1"),
        "{log}"
    );

    // Slurm's view: the CASNs lost (node failure, memory), base/train task 0 preempted and
    // task 1 running; everything after them cancelled on their account.
    let mut queue = String::from("1_0|NODE_FAIL|None\n2_0|OUT_OF_MEMORY|None\n");
    queue += "3_0|PREEMPTED|None\n3_1|RUNNING|None\n";
    for (job, tasks) in [
        (4, 1),
        (5, 0),
        (6, 2),
        (7, 4),
        (8, 0),
        (9, 4),
        (10, 0),
        (11, 1),
    ] {
        for i in 0..tasks {
            queue += &format!("{job}_{i}|CANCELLED|DependencyNeverSatisfied\n");
        }
        if tasks == 0 {
            queue += &format!("{job}|CANCELLED|DependencyNeverSatisfied\n");
        }
    }
    // Job 13 (stats) has dropped out of squeue (MinJobAge): accounting is asked, has none,
    // and the task counts as ended without its manifest.
    queue += "12|CANCELLED|DependencyNeverSatisfied\n";
    fs::write(fake.join("squeue.txt"), &queue).unwrap();

    let status = awsnet_with_path(&["status", s(&run)], Some(&fake));
    assert_eq!(status.code, 0, "{}", status.stderr);
    let logs = run.canonicalize().unwrap().join("logs");
    for line in [
        format!(
            "failed: casn_coarse[0] (Slurm 1_0 node_fail): log {}",
            logs.join("casn_coarse-0.log").display()
        ),
        format!(
            "failed: casn_fine[0] (Slurm 2_0 out_of_memory): log {}",
            logs.join("casn_fine-0.log").display()
        ),
        format!(
            "failed: base/train[0] (Slurm 3_0 preempted): log {}",
            logs.join("base_train-0.log").display()
        ),
    ] {
        assert!(status.stdout.contains(&line), "{line}\n{}", status.stdout);
    }
    assert!(status.stdout.contains("awsnet resume"), "{}", status.stdout);
    let listed = awsnet_with_path(&["status", s(&run), "--json"], Some(&fake));
    let doc = json(&listed.stdout);
    assert_eq!(
        doc["slurm"]["scheduler_calls"], 2,
        "one squeue for the run, one sacct for the job it forgot"
    );
    let running: Vec<&serde_json::Value> = doc["slurm"]["not_done"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "running")
        .collect();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0]["id"], "3_1");

    fs::write(fake.join("sbatch.log"), "").unwrap();
    let resumed = awsnet_with_path(&["resume", s(&run)], Some(&fake));
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    resumed.assert_stdout_has(&["queued 20 tasks in 13 jobs", "1 still queued"]);
    let log = fs::read_to_string(fake.join("sbatch.log")).unwrap();
    let base_train = log.lines().nth(2).unwrap();
    assert!(base_train.ends_with("base_train.sbatch"), "{log}");
    let script = fs::read_to_string(run.join("sbatch/base_train.sbatch")).unwrap();
    assert!(
        script.contains("#SBATCH --array=0\n"),
        "only task 0: {script}"
    );
    // base/predict waits for the new CASN jobs (14, 15), the new base/train task 0 (16_0)
    // and the one still running from before (3_1).
    assert!(
        log.lines()
            .nth(3)
            .unwrap()
            .contains("--dependency=afterok:14_0:15_0:16_0:3_1"),
        "{log}"
    );

    let cancelled = awsnet_with_path(&["cancel", s(&run)], Some(&fake));
    assert_eq!(cancelled.code, 0, "{}", cancelled.stderr);
    let name = records(&run)["job_name"].as_str().unwrap().to_string();
    assert_eq!(
        fs::read_to_string(fake.join("scancel.log")).unwrap(),
        format!("--name {name}\n"),
        "one scancel for the whole run"
    );
}

#[test]
fn without_slurm_the_error_says_what_to_do() {
    let (tmp, job) = setup();
    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_awsnet"))
        .args(["run", s(&job), "--run", s(&tmp.path().join("run"))])
        .env("PATH", &empty)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not on PATH"), "{stderr}");
    assert!(stderr.contains("--backend local"), "{stderr}");
}

// ---- on a real Slurm -------------------------------------------------------------------

/// One real-Slurm test at a time: they share a small node.
static CLUSTER: Mutex<()> = Mutex::new(());

/// A real-Slurm test was asked for: fail, saying how, unless a cluster answers.
fn require_cluster() {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%t"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    assert!(
        up,
        "no Slurm cluster answers `sinfo`: start one with scripts/slurm-dev-cluster.sh start"
    );
}

/// Wait until no job of the run is pending or running.
fn wait_idle(run: &Path) {
    let name = records(run)["job_name"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let out = Command::new("squeue")
            .args([
                "-h",
                "--name",
                &name,
                "-t",
                "PENDING,RUNNING,CONFIGURING,COMPLETING,REQUEUED,SUSPENDED",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() && text.trim().is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the run's jobs did not finish:\n{text}"
        );
    }
}

fn summary(run: &Path) -> Vec<u8> {
    fs::read(run.join("results/summary.json")).unwrap_or_default()
}

/// jobs/demo.json, shrunk, on Slurm and on this machine: the same summary.json, byte for byte.
#[test]
#[ignore = "needs a Slurm cluster: scripts/slurm-dev-cluster.sh start, then cargo test -- --ignored"]
fn the_demo_grid_on_slurm_gives_the_local_summary() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    require_cluster();
    let tmp = tempfile::tempdir().unwrap();
    common::phantoms(&tmp.path().join("data"), 6, 5);
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/demo.json");
    let shrink = [
        "scale.base_filters=4",
        "scale.crop=[64,64]",
        "scale.margin=3",
        "scale.input=[32,32]",
        "scale.batch_size=4",
        "scale.epochs=3",
        "networks.casn_coarse.epochs=2",
        "networks.casn_fine.epochs=2",
        "weighting.epochs_fixed=2",
        "weighting.samples=2",
        "ensemble.members=2",
        "data.test_cases=2",
        "data.validation_cases=1",
    ];
    let mut args: Vec<String> = vec![
        "run".into(),
        s(&demo).into(),
        "--data".into(),
        s(&tmp.path().join("data")).into(),
    ];
    for set in shrink {
        args.extend(["--set".into(), set.into()]);
    }
    let local = tmp.path().join("local");
    let mut local_args = args.clone();
    local_args.extend(["--run".into(), s(&local).into()]);
    let refs: Vec<&str> = local_args.iter().map(String::as_str).collect();
    let out = common::awsnet(&refs);
    assert_eq!(out.code, 0, "{}", out.stderr);

    let slurm = tmp.path().join("slurm");
    args.extend([
        "--run".into(),
        s(&slurm).into(),
        "--backend".into(),
        "slurm".into(),
    ]);
    for set in [
        "backend.cpus=1",
        "backend.mem=1G",
        "backend.reducer.cpus=1",
        "backend.reducer.mem=1G",
    ] {
        args.extend(["--set".into(), set.into()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = common::awsnet(&refs);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.assert_stdout_has(&["queued", "awsnet status"]);
    wait_idle(&slurm);
    let status = common::awsnet(&["status", s(&slurm)]);
    assert_eq!(
        summary(&local),
        summary(&slurm),
        "status:\n{}",
        status.stdout
    );
    assert!(!summary(&slurm).is_empty());
    // What each method cost, recorded by the tasks themselves: no driver process timed them.
    let compute = json(&fs::read_to_string(slurm.join("results/compute.json")).unwrap());
    assert_eq!(compute["methods"]["base"]["tasks"], 4, "{compute}");
    assert!(
        compute["methods"]["ensemble"]["wall_seconds_total"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

/// A cancelled DAS child: the update goes on without it and records it. A failing array:
/// `status` names its tasks and logs, and `resume` after the fix finishes the run with the
/// summary an untroubled run gives.
#[test]
#[ignore = "needs a Slurm cluster: scripts/slurm-dev-cluster.sh start, then cargo test -- --ignored"]
fn faults_on_slurm_are_survived() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    require_cluster();
    let (tmp, job) = setup();
    let clean = tmp.path().join("clean");
    let out = common::awsnet(&["run", s(&job), "--run", s(&clean), "--backend", "local"]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    // The binary behind a wrapper that fails base/predict while `broken` exists.
    let wrapper = tmp.path().join("awsnet-wrapper");
    let broken = tmp.path().join("broken");
    fs::write(&broken, "").unwrap();
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n[ -e {b} ] && grep -q \"$4\" {b} && {{ echo 'broken on purpose' >&2; exit 1; }}\nexec {a} \"$@\"\n",
            b = broken.display(),
            a = env!("CARGO_BIN_EXE_awsnet")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let run = tmp.path().join("run");
    let planned = common::awsnet(&["run", s(&job), "--run", s(&run), "--dry-run", "--json"]);
    let plan = json(&planned.stdout);
    let predict = plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == "base/predict")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    fs::write(&broken, format!("{predict}\n")).unwrap();

    let out = common::awsnet(&[
        "run",
        s(&job),
        "--run",
        s(&run),
        "--set",
        &format!("backend.awsnet={}", wrapper.display()),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Child 1 of the first DAS epoch never runs.
    let sample = job_of(&run, "pam_das/sample[2]");
    let cancel = Command::new("scancel")
        .arg(format!("{sample}_1"))
        .output()
        .unwrap();
    assert!(cancel.status.success());
    wait_idle(&run);

    let update = plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == "pam_das/update[2]")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let parent =
        json(&fs::read_to_string(run.join(format!("stages/{update}/0/parents/0.json"))).unwrap());
    assert_eq!(
        parent["lines"][0]["missing"],
        serde_json::json!([1]),
        "the update recorded the lost child"
    );

    let status = common::awsnet(&["status", s(&run)]);
    let log = run.canonicalize().unwrap().join("logs/base_predict-0.log");
    assert!(
        status.stdout.contains("failed: base/predict[0] (Slurm")
            && status.stdout.contains(&log.display().to_string()),
        "{}",
        status.stdout
    );
    assert!(fs::read_to_string(&log)
        .unwrap()
        .contains("broken on purpose"));
    assert!(summary(&run).is_empty(), "stats waits for every evaluation");

    fs::remove_file(&broken).unwrap();
    let out = common::awsnet(&["resume", s(&run)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    wait_idle(&run);
    assert!(
        !summary(&run).is_empty(),
        "{}",
        common::awsnet(&["status", s(&run)]).stdout
    );
    // The lost child changed pam_das's search, so compare what it cannot touch.
    let a = json(&String::from_utf8(summary(&run)).unwrap());
    let b = json(&String::from_utf8(summary(&clean)).unwrap());
    assert_eq!(a["methods"]["base"], b["methods"]["base"]);
}

/// State of one Slurm job element (`squeue -h -j ID -o %T`), empty once forgotten.
fn slurm_state(id: &str) -> String {
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-j", id, "-o", "%T"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Preemption: a task told to save before its time limit (`scancel --signal=USR2 --batch`, what
/// `--signal=B:USR2@…` does) saves at its next epoch, requeues itself and resumes; one requeued
/// by the scheduler (`scontrol requeue`) resumes from its last epoch. Either way the run ends
/// with the bytes of an uninterrupted one.
#[test]
#[ignore = "needs a Slurm cluster: scripts/slurm-dev-cluster.sh start, then cargo test -- --ignored"]
fn a_preempted_task_requeues_and_resumes_to_the_same_bytes() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    require_cluster();
    let (tmp, job) = setup();
    let slow = ["--set", "networks.casn_coarse.epochs=60"];
    let clean = tmp.path().join("clean");
    let out = common::awsnet(&[
        "run",
        s(&job),
        "--run",
        s(&clean),
        "--backend",
        "local",
        slow[0],
        slow[1],
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    let run = tmp.path().join("run");
    let out = common::awsnet(&["run", s(&job), "--run", s(&run), slow[0], slow[1]]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let element = format!("{}_0", job_of(&run, "casn_coarse"));
    let stage = records(&run)["submissions"][0]["stage"]
        .as_str()
        .unwrap()
        .to_string();
    let latest = run.join(format!("stages/{stage}/0/run/checkpoint_latest.json"));
    let log = run.join("logs/casn_coarse-0.log");
    wait_until("a first epoch", || latest.exists());

    let signal = Command::new("scancel")
        .args(["--signal=USR2", "--batch", &element])
        .output()
        .unwrap();
    assert!(
        signal.status.success(),
        "{}",
        String::from_utf8_lossy(&signal.stderr)
    );
    wait_until("the task to save and requeue itself", || {
        fs::read_to_string(&log).is_ok_and(|t| t.contains("requeueing"))
    });
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("stopped on request: epoch"), "{text}");
    // Back in the queue, then running again (after Slurm's credential delay).
    wait_until("the requeued task to run", || {
        slurm_state(&element) == "RUNNING"
    });
    let epoch = || {
        fs::read_to_string(&latest)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["epoch"].as_u64())
            .unwrap_or(0)
    };
    let saved = epoch();
    wait_until("the resumed task to train an epoch", || epoch() > saved);
    let requeue = Command::new("scontrol")
        .args(["requeue", &element])
        .output()
        .unwrap();
    assert!(
        requeue.status.success(),
        "{}",
        String::from_utf8_lossy(&requeue.stderr)
    );
    wait_idle(&run);
    assert!(
        !summary(&run).is_empty(),
        "{}",
        common::awsnet(&["status", s(&run)]).stdout
    );
    assert_eq!(summary(&clean), summary(&run));
}

/// The process ids whose command line holds every one of `words`.
fn processes_with(words: &[&str]) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if words.iter().all(|w| cmdline.contains(w)) {
            found.push(pid);
        }
    }
    found
}

/// A task's process killed mid-epoch (SIGKILL: nothing saved on the way out): its job fails,
/// what waits on it is cancelled, and `resume` finishes the run with the summary of a run
/// never troubled.
#[test]
#[ignore = "needs a Slurm cluster: scripts/slurm-dev-cluster.sh start, then cargo test -- --ignored"]
fn a_killed_task_on_slurm_resumes_to_the_same_summary() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    require_cluster();
    let (tmp, job) = setup();
    let slow = ["--set", "networks.casn_coarse.epochs=40"];
    let clean = tmp.path().join("clean");
    let out = common::awsnet(&[
        "run",
        s(&job),
        "--run",
        s(&clean),
        "--backend",
        "local",
        slow[0],
        slow[1],
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    let run = tmp.path().join("run");
    let out = common::awsnet(&["run", s(&job), "--run", s(&run), slow[0], slow[1]]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let stage = records(&run)["submissions"][0]["stage"]
        .as_str()
        .unwrap()
        .to_string();
    let latest = run.join(format!("stages/{stage}/0/run/checkpoint_latest.json"));
    wait_until("a first epoch", || latest.exists());
    let run_dir = run.canonicalize().unwrap();
    let pids = processes_with(&["awsnet", " task ", s(&run_dir), &stage]);
    assert_eq!(pids.len(), 1, "one task process: {pids:?}");
    // SAFETY: SIGKILL to a task process this test's run started.
    unsafe { libc::kill(pids[0], libc::SIGKILL) };
    wait_idle(&run);
    let status = common::awsnet(&["status", s(&run)]);
    assert!(
        status.stdout.contains("failed: casn_coarse[0]"),
        "{}",
        status.stdout
    );
    assert!(summary(&run).is_empty());

    let out = common::awsnet(&["resume", s(&run)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    wait_idle(&run);
    assert_eq!(
        summary(&clean),
        summary(&run),
        "{}",
        common::awsnet(&["status", s(&run)]).stdout
    );
}

/// The GPU request path on fake GPUs: `gres` reaches Slurm, which grants a device and sets
/// CUDA_VISIBLE_DEVICES; training and prediction tasks are started with `--device cuda`,
/// reducers with `--device cpu` and no GPU. No GPU runs anything here: a wrapper records each
/// command line and runs it with `--device cpu` (scripts/gpu-check.sh runs the CUDA build).
#[test]
#[ignore = "needs a Slurm cluster: scripts/slurm-dev-cluster.sh start, then cargo test -- --ignored"]
fn gpu_requests_reach_slurm_and_tasks_start_with_device_cuda() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    require_cluster();
    let (tmp, job) = setup();
    let seen = tmp.path().join("seen.log");
    let wrapper = tmp.path().join("awsnet-on-gpu");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"gpu=${{CUDA_VISIBLE_DEVICES:-none}} $*\" >> {seen}\n\
             exec {awsnet} $(echo \"$@\" | sed 's/--device cuda/--device cpu/')\n",
            seen = seen.display(),
            awsnet = env!("CARGO_BIN_EXE_awsnet")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let run = tmp.path().join("run");
    let out = common::awsnet(&[
        "run",
        s(&job),
        "--run",
        s(&run),
        "--set",
        "backend.gres=gpu:1",
        "--set",
        &format!("backend.awsnet={}", wrapper.display()),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    wait_idle(&run);
    assert!(
        !summary(&run).is_empty(),
        "{}",
        common::awsnet(&["status", s(&run)]).stdout
    );
    // On GPUs the DAS search runs as held workers (das_mode's default there): 11 tasks and
    // 4 workers, each one process.
    let seen = fs::read_to_string(&seen).unwrap();
    assert_eq!(seen.lines().count(), 15, "every task: {seen}");
    assert_eq!(seen.matches("--held").count(), 4, "{seen}");
    for line in seen.lines() {
        let on_gpu = line.starts_with("gpu=0 ") || line.starts_with("gpu=1 ");
        if line.contains("--device cuda") {
            assert!(on_gpu, "a cuda task got no GPU: {line}");
        } else {
            assert!(
                line.starts_with("gpu=none ") && line.ends_with("--device cpu"),
                "{line}"
            );
        }
    }
    assert_eq!(
        seen.matches("--device cuda").count(),
        12,
        "all but the 3 reducers (2 evaluations, stats): {seen}"
    );
}

/// Held mode: one array of workers for the whole search gives the bytes of per-epoch arrays
/// (and of the local executor). The node runs two of the four workers at a time, so the others
/// start only when the first two are done: workers that start late, or never, must not
/// deadlock the search.
#[test]
#[ignore = "needs a Slurm cluster: scripts/slurm-dev-cluster.sh start, then cargo test -- --ignored"]
fn held_workers_give_the_same_bytes() {
    held_workers(false);
}

/// A held worker killed mid-search is taken for lost once its heartbeat stops, and the others
/// train its children: the same bytes again. (This test once failed about 1 run in 6: a
/// worker could claim a child another had just finished and rerun it, clearing the checkpoint
/// the next epoch loaded; claims are now checked again under the claim.)
#[test]
#[ignore = "needs a Slurm cluster: scripts/slurm-dev-cluster.sh start, then cargo test -- --ignored"]
fn held_workers_survive_a_lost_worker() {
    held_workers(true);
}

fn held_workers(kill: bool) {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    require_cluster();
    let (tmp, job) = setup();
    let longer = ["--set", "scale.epochs=30"];
    let held = [
        "--set",
        "backend.das_mode=held",
        "--set",
        "backend.held_stale_seconds=3",
    ];
    let (name, extra) = if kill {
        ("long", &longer[..])
    } else {
        ("short", &[][..])
    };
    {
        let clean = tmp.path().join(format!("{name}-clean"));
        let mut args = vec!["run", s(&job), "--run", s(&clean), "--backend", "local"];
        args.extend_from_slice(extra);
        let out = common::awsnet(&args);
        assert_eq!(out.code, 0, "{}", out.stderr);

        let run = tmp.path().join(format!("{name}-held"));
        let mut args = vec!["run", s(&job), "--run", s(&run)];
        args.extend_from_slice(extra);
        args.extend_from_slice(&held);
        let out = common::awsnet(&args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.assert_stdout_has(&["queued 15 tasks in 10 jobs"]);
        if name == "long" {
            // Kill worker 0 once the search is under way.
            let run_dir = run.canonicalize().unwrap();
            let mut pids = Vec::new();
            wait_until("worker 0 to start", || {
                pids = processes_with(&["--held", s(&run_dir), "--index 0 "]);
                !pids.is_empty()
            });
            std::thread::sleep(Duration::from_millis(300));
            // SAFETY: SIGKILL to a worker this test's run started.
            unsafe { libc::kill(pids[0], libc::SIGKILL) };
        }
        wait_idle(&run);
        let logs: String = (0..4)
            .map(|w| {
                let log = run.join(format!("logs/pam_das_held-{w}.log"));
                format!(
                    "worker {w}:\n{}\n",
                    fs::read_to_string(log).unwrap_or_default()
                )
            })
            .collect();
        assert!(
            !summary(&run).is_empty(),
            "{}\n{logs}",
            common::awsnet(&["status", s(&run)]).stdout
        );
        assert_eq!(summary(&clean), summary(&run), "{name}");
        assert!(run.join("logs/pam_das_held-3.log").exists());
        let compute = json(&fs::read_to_string(run.join("results/compute.json")).unwrap());
        assert!(
            compute["stages"]["pam_das/held"]["tasks"].as_u64().unwrap() >= 3,
            "the workers that finished recorded their cost: {compute}"
        );
    }
}
