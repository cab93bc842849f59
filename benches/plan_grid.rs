//! How long planning takes: the paper's grid (jobs/paper.json, 12 methods, 5-member ensemble,
//! K = 10, 50 auto-weighted epochs) and a larger one, on made-up inputs (planning reads no file).
//!
//! `cargo bench --bench plan_grid` prints stages, tasks and the median of 9 plannings.

use std::path::PathBuf;
use std::time::Instant;

use awsnet::grid::inputs::{CaseSet, Inputs};
use awsnet::grid::plan::plan;
use awsnet::grid::spec::JobSpec;

fn inputs() -> Inputs {
    let set = |sub: &str, n: usize| CaseSet {
        dir: PathBuf::from("/data").join(sub),
        ids: (0..n)
            .map(|i| format!("myops_training_{}", 101 + i))
            .collect(),
        sha256: format!("{sub}-hash"),
    };
    Inputs {
        train: set("train", 25),
        validation: vec!["myops_training_101".into(), "myops_training_102".into()],
        test: set("test", 20),
    }
}

fn main() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("jobs/paper.json");
    let text = std::fs::read_to_string(&path).expect("jobs/paper.json");
    let paper: JobSpec = serde_json::from_str(&text).expect("a job spec");
    let mut larger = paper.clone();
    larger.ensemble.members = 10;
    larger.weighting.samples = 16;
    for (name, job) in [("paper", &paper), ("paper, 10 members, K = 16", &larger)] {
        let inputs = inputs();
        let mut times = Vec::new();
        let mut shape = (0, 0);
        for _ in 0..9 {
            let started = Instant::now();
            let plan = plan(job, &inputs).expect("plans");
            times.push(started.elapsed().as_secs_f64());
            shape = (plan.stages.len(), plan.tasks());
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{name}: {} stages, {} tasks, planned in {:.1} ms (median of 9; fastest {:.1} ms)",
            shape.0,
            shape.1,
            times[4] * 1e3,
            times[0] * 1e3
        );
    }
}
