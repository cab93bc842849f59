//! What people read of a finished grid: the paper-style tables (`tables.md`, a stats output),
//! what each method cost (`results/compute.json`) and the report (`results/report.md`).

use super::super::task::Task;
use super::stats::Summary;
use crate::data::labels::Target;
use crate::error::Result;
use crate::report::tables::{mean_std_table, p_value_table, render, Format, MethodEval, PValue};

/// The paper-style tables of a summary (what `awsnet table` prints): mean ± std per method,
/// then the comparisons' p-values, raw and Holm-adjusted.
pub(crate) fn paper_tables(summary: &Summary<'_>) -> Result<String> {
    let methods: Vec<MethodEval<'_>> = summary
        .methods
        .iter()
        .map(|(name, m)| MethodEval {
            name: name.clone(),
            eval: &m["eval"],
        })
        .collect();
    let targets: Vec<Target> = methods
        .first()
        .and_then(|m| m.eval["targets"].as_array())
        .map(|ts| {
            ts.iter()
                .filter_map(|t| serde_json::from_value(t.clone()).ok())
                .collect()
        })
        .unwrap_or_default();
    let mut text = String::from("# Mean ± std over the test cases\n\n");
    text += &render(
        &mean_std_table(&methods, &targets, &["dice", "jaccard", "hd", "assd"])?,
        Format::Markdown,
    );
    if !summary.comparisons.is_empty() {
        let comparisons: Vec<serde_json::Value> = summary
            .comparisons
            .iter()
            .map(|c| serde_json::to_value(c).expect("comparisons encode"))
            .collect();
        for (title, which) in [
            ("Paired t-test p-values", PValue::T),
            ("Holm-adjusted over the family", PValue::THolm),
        ] {
            text += &format!("\n# {title}\n\n");
            text += &render(
                &p_value_table(&comparisons, which, false)?,
                Format::Markdown,
            );
        }
    }
    Ok(text)
}

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
