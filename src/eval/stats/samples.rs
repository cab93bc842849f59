//! Per-case values of one metric, read from an `awsnet eval` JSON file or a CSV file.
//!
//! - JSON: the `metric_per_case` list of `awsnet eval`; a metric is named
//!   `<target>_<metric>` (`scar_dice`, `scar_edema_hd95`) and read from
//!   `metric_per_case[i][target][metric]`.
//! - CSV: a header row starting with `case`, then one column per metric (`awsnet eval --csv`
//!   writes this). An empty cell, `NA` or `null` is a missing value; `nan` or `inf` is an error.
//!
//! The format is taken from the extension (`.json`, `.csv`), else from the first character.
//! A missing value (JSON `null`: a distance with one empty mask) is kept as `None`; pairing
//! decides what to do with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

/// One metric's value per case, as read from one file.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    /// The method's display name: the file's stem unless the caller names it.
    pub name: String,
    pub path: PathBuf,
    pub metric: String,
    pub values: BTreeMap<String, Option<f64>>,
}

/// Read `metric` for every case of `path`.
pub fn load_samples(path: &Path, metric: &str) -> Result<Samples> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let is_json = match ext.as_deref() {
        Some("json") => true,
        Some("csv") => false,
        _ => text.trim_start().starts_with('{'),
    };
    let values = if is_json {
        from_eval_json(path, &text, metric)?
    } else {
        from_csv(path, &text, metric)?
    };
    if values.is_empty() {
        return Err(Error::input(path, "no cases"));
    }
    Ok(Samples {
        name: path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        ),
        path: path.to_path_buf(),
        metric: metric.to_string(),
        values,
    })
}

fn from_eval_json(path: &Path, text: &str, metric: &str) -> Result<BTreeMap<String, Option<f64>>> {
    let err = |p: String| Error::input(path, p);
    let doc: Value = serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))?;
    let cases = doc
        .get("metric_per_case")
        .and_then(Value::as_array)
        .ok_or_else(|| err("no \"metric_per_case\" list: not an `awsnet eval` JSON file".into()))?;
    let mut values = BTreeMap::new();
    for (i, record) in cases.iter().enumerate() {
        let case = record
            .get("case")
            .and_then(Value::as_str)
            .ok_or_else(|| err(format!("metric_per_case[{i}] has no \"case\" string")))?;
        let value = metric_in_record(record, metric).ok_or_else(|| {
            err(format!(
                "case {case} has no metric {metric}; available: {}",
                available_metrics(record).join(", ")
            ))
        })?;
        let value = match value {
            Value::Null => None,
            Value::Number(n) => Some(n.as_f64().filter(|v| v.is_finite()).ok_or_else(|| {
                err(format!(
                    "case {case}: {metric} = {n} is not a finite number"
                ))
            })?),
            other => {
                return Err(err(format!(
                    "case {case}: {metric} = {other} is not a number"
                )))
            }
        };
        if values.insert(case.to_string(), value).is_some() {
            return Err(err(format!("case {case} is listed twice")));
        }
    }
    Ok(values)
}

/// `scar_edema_hd` → `record["scar_edema"]["hd"]`: try each split of the name at an underscore.
fn metric_in_record<'a>(record: &'a Value, metric: &str) -> Option<&'a Value> {
    metric.match_indices('_').find_map(|(at, _)| {
        record
            .get(&metric[..at])
            .filter(|v| v.is_object())
            .and_then(|t| t.get(&metric[at + 1..]))
    })
}

fn available_metrics(record: &Value) -> Vec<String> {
    let Some(obj) = record.as_object() else {
        return Vec::new();
    };
    obj.iter()
        .filter_map(|(target, v)| v.as_object().map(|m| (target, m)))
        .flat_map(|(target, m)| {
            m.iter()
                .filter(|(_, v)| v.is_number() || v.is_null())
                .map(move |(name, _)| format!("{target}_{name}"))
        })
        .collect()
}

fn from_csv(path: &Path, text: &str, metric: &str) -> Result<BTreeMap<String, Option<f64>>> {
    let err = |p: String| Error::input(path, p);
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| err(format!("unreadable CSV header: {e}")))?
        .clone();
    if header.get(0) != Some("case") {
        return Err(err(format!(
            "the first column must be \"case\", found {:?}",
            header.get(0).unwrap_or("")
        )));
    }
    let column = header.iter().position(|h| h == metric).ok_or_else(|| {
        err(format!(
            "no column {metric}; columns: {}",
            header.iter().skip(1).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let mut values = BTreeMap::new();
    for row in reader.records() {
        let row = row.map_err(|e| err(format!("{e}")))?;
        let line = row.position().map_or(0, |p| p.line());
        let case = row.get(0).unwrap_or("");
        if case.is_empty() {
            return Err(err(format!("line {line}: empty case id")));
        }
        let cell = row.get(column).ok_or_else(|| {
            err(format!(
                "line {line} (case {case}): no value in column {metric}"
            ))
        })?;
        let value = match cell {
            "" | "NA" | "null" => None,
            s => Some(
                s.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        err(format!(
                            "line {line} (case {case}), column {metric}: {s:?} is not a finite number"
                        ))
                    })?,
            ),
        };
        if values.insert(case.to_string(), value).is_some() {
            return Err(err(format!("line {line}: case {case} is listed twice")));
        }
    }
    Ok(values)
}
