//! `awsnet table`.

use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use super::eval::parse_target;
use super::output::{print_out, write_files};
use super::split_named;
use awsnet::data::labels::Target;
use awsnet::report::tables::{mean_std_table, p_value_table, render, Format, MethodEval, PValue};

#[derive(Args)]
pub struct TableArgs {
    /// A method's `awsnet eval` JSON, as NAME=FILE; repeat for each row of a mean ± std table
    #[arg(long, value_name = "NAME=FILE")]
    method: Vec<String>,
    /// An `awsnet stats` JSON; repeat to gather the rows of a p-value table
    #[arg(long, value_name = "FILE")]
    stats: Vec<PathBuf>,
    /// Targets of the mean ± std table
    #[arg(long, value_delimiter = ',', value_parser = parse_target,
          default_values_t = [Target::Scar, Target::ScarEdema])]
    targets: Vec<Target>,
    /// Metrics of the mean ± std table
    #[arg(long, value_delimiter = ',', default_values_t = ["dice", "jaccard", "hd", "assd"].map(String::from))]
    metrics: Vec<String>,
    /// Which p-value the p-value table shows
    #[arg(long, value_enum, default_value_t = PValue::T)]
    p: PValue,
    /// Print every p-value to 3 significant digits instead of p<0.05 / p<0.001
    #[arg(long)]
    exact_p: bool,
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    format: Format,
    /// Write the table(s) to FILE instead of stdout
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

fn read_json(path: &std::path::Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| awsnet::Error::Read {
        path: path.to_path_buf(),
        io: e,
    })?;
    serde_json::from_str(&text).map_err(|e| {
        awsnet::Error::Input {
            path: path.to_path_buf(),
            problem: format!("not valid JSON: {e}"),
        }
        .into()
    })
}

/// Every comparison of the `--stats` files, each checked to be one and to appear only once.
fn gather_comparisons(files: &[PathBuf]) -> anyhow::Result<Vec<Value>> {
    let mut seen: Vec<([String; 3], &PathBuf)> = Vec::new();
    let mut comparisons = Vec::new();
    for path in files {
        let doc = read_json(path)?;
        let list = match doc.get("comparisons").and_then(Value::as_array) {
            Some(list) => list.clone(),
            None => vec![doc],
        };
        for c in list {
            let field = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
            let (Some(a), Some(b), Some(metric)) = (field("a"), field("b"), field("metric")) else {
                return Err(awsnet::Error::Input {
                    path: path.clone(),
                    problem:
                        "a comparison lacks \"a\", \"b\" or \"metric\": not `awsnet stats` output"
                            .into(),
                }
                .into());
            };
            let key = [a, b, metric];
            if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
                return Err(awsnet::Error::Input {
                    path: path.clone(),
                    problem: format!(
                        "{} vs. {} on {} is also in {}; keep one",
                        key[0],
                        key[1],
                        key[2],
                        first.display()
                    ),
                }
                .into());
            }
            seen.push((key, path));
            comparisons.push(c);
        }
    }
    Ok(comparisons)
}

fn user_error(field: &str, problem: String) -> anyhow::Error {
    awsnet::Error::InvalidArgument {
        field: field.into(),
        problem,
    }
    .into()
}

pub fn run(args: &TableArgs) -> anyhow::Result<()> {
    if args.method.is_empty() && args.stats.is_empty() {
        return Err(user_error(
            "arguments",
            "give --method NAME=EVAL.json (mean ± std table) and/or --stats FILE (p-values)".into(),
        ));
    }
    let mut text = String::new();
    if !args.method.is_empty() {
        let mut docs = Vec::new();
        for m in &args.method {
            let (Some(name), file) = split_named(m) else {
                return Err(user_error("--method", format!("{m:?} is not NAME=FILE")));
            };
            if file.as_os_str().is_empty() {
                return Err(user_error("--method", format!("{m:?} is not NAME=FILE")));
            }
            docs.push((name.to_string(), read_json(&file)?));
        }
        let methods: Vec<MethodEval<'_>> = docs
            .iter()
            .map(|(name, eval)| MethodEval {
                name: name.clone(),
                eval,
            })
            .collect();
        let metrics: Vec<&str> = args.metrics.iter().map(String::as_str).collect();
        let table = mean_std_table(&methods, &args.targets, &metrics)?;
        text.push_str(&render(&table, args.format));
    }
    if !args.stats.is_empty() {
        let comparisons = gather_comparisons(&args.stats)?;
        let table = p_value_table(&comparisons, args.p, args.exact_p)?;
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&render(&table, args.format));
    }
    match &args.out {
        Some(path) => write_files(&[(path.clone(), text.into_bytes())]),
        None => print_out(&text),
    }
}
