//! `awsnet stats`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::output::{json_bytes, print_out, write_files};
use super::split_named;
use awsnet::eval::stats::bootstrap::DEFAULT_RESAMPLES;
use awsnet::eval::stats::samples::{load_samples, Samples};
use awsnet::eval::stats::{compare_family, CompareOptions, Comparison, Family};

#[derive(Args)]
pub struct StatsArgs {
    /// First method: an `awsnet eval` JSON or a CSV (`case,<metric>,…`), optionally NAME=FILE
    #[arg(long, value_name = "[NAME=]FILE")]
    a: String,
    /// Second method(s), same forms; repeat to compare A with several methods
    #[arg(long, value_name = "[NAME=]FILE", required = true)]
    b: Vec<String>,
    /// Metric(s) to compare, e.g. scar_dice,scar_edema_hd (eval JSON: <target>_<metric>)
    #[arg(long, value_delimiter = ',', required = true)]
    metric: Vec<String>,
    /// Write the comparisons as JSON
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Which comparisons share one Holm correction
    #[arg(long, value_enum, default_value_t = Family::All)]
    family: Family,
    /// Compare the cases both files hold instead of failing on the others (they are reported)
    #[arg(long)]
    intersect: bool,
    /// Seed of the bootstrap intervals
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Bootstrap resamples
    #[arg(long, default_value_t = DEFAULT_RESAMPLES)]
    resamples: usize,
}

fn load(arg: &str, metric: &str) -> anyhow::Result<Samples> {
    let (name, path) = split_named(arg);
    let mut samples = load_samples(&path, metric)?;
    if let Some(name) = name {
        samples.name = name.to_string();
    }
    Ok(samples)
}

pub fn run(args: &StatsArgs) -> anyhow::Result<()> {
    let mut pairs = Vec::new();
    for metric in &args.metric {
        let a = load(&args.a, metric)?;
        for b in &args.b {
            pairs.push((a.clone(), load(b, metric)?));
        }
    }
    let options = CompareOptions {
        intersect: args.intersect,
        resamples: args.resamples,
        seed: args.seed,
    };
    let comparisons = compare_family(&pairs, args.family, &options)?;
    if let Some(path) = &args.json {
        let doc = if comparisons.len() == 1 {
            serde_json::to_value(&comparisons[0])
        } else {
            serde_json::to_value(serde_json::json!({
                "family": format!("{:?}", args.family).to_lowercase(),
                "comparisons": comparisons,
            }))
        }
        .context("serialising comparisons")?;
        write_files(&[(path.clone(), json_bytes(&doc)?)])?;
    }
    print_out(&render(&comparisons))
}

fn num(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v != 0.0 && v.abs() < 1e-3 => format!("{v:.3e}"),
        Some(v) => format!("{v:.4}"),
    }
}

fn render(comparisons: &[Comparison]) -> String {
    let mut out = String::new();
    for c in comparisons {
        out.push_str(&format!(
            "{} — {} vs. {} (n = {})\n  mean {} vs. {}, difference {} [95% CI {} … {}]\n  \
             paired t: t = {}, df = {}, p = {} (Holm {})\n  \
             Wilcoxon: W = {}, p = {} (Holm {}, {})\n",
            c.metric,
            c.a,
            c.b,
            c.n,
            num(c.mean_a),
            num(c.mean_b),
            num(c.mean_diff),
            num(c.ci_low),
            num(c.ci_high),
            num(c.t),
            c.df.map_or("–".into(), |d| d.to_string()),
            num(c.p_t),
            num(c.p_t_holm),
            c.wilcoxon_w.map_or("–".into(), |w| w.to_string()),
            num(c.p_wilcoxon),
            num(c.p_wilcoxon_holm),
            c.wilcoxon_method.unwrap_or("–"),
        ));
        if let Some(note) = &c.note {
            out.push_str(&format!("  note: {note}\n"));
        }
    }
    out
}
