//! What people read of a finished grid beyond summary.json and its tables: what each method
//! cost (`results/compute.json`) and the report (`results/report.md`).

use super::super::task::Task;

/// Write `results/compute.json` and `results/report.md` from what the stats task wrote. Both
/// are outside the task's outputs (costs vary from run to run), and neither may cost the user
/// the statistics: a failure warns, and `awsnet report RUN` retries.
pub(crate) fn publish(task: &Task<'_>) {
    if let Err(e) = crate::grid::compute::write_summary(task.plan, &task.store.root) {
        tracing::warn!("results/compute.json: {e}");
    }
    let results = task.store.root.join("results");
    let report = crate::grid::results::gather(&task.store.root)
        .and_then(|data| crate::report::document::write_report(&data, &results));
    if let Err(e) = report {
        tracing::warn!("results/report.md: {e}");
    }
}
