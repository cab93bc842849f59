//! `--set a.b=value`: edit a job document before it is read, so an override is checked exactly
//! like the file (unknown fields refused with their path, types checked, domains validated).
//!
//! The path is dot-separated. An array element is named by its index (`methods.0.pam`) or, for
//! arrays of named objects such as `methods`, by its `name` (`methods.pam_das.weighting`). The
//! value is read as JSON when it parses as JSON (`5`, `true`, `[64, 64]`, `{"kind": "local"}`),
//! else taken as a string (`--set name=trial-2`).

use serde_json::Value;

use crate::error::{Error, Result};

/// Apply one `PATH=VALUE` assignment to `document`.
pub fn apply(document: &mut Value, assignment: &str) -> Result<()> {
    let bad = |problem: String| Error::invalid(format!("--set {assignment}"), problem);
    let (path, text) = assignment
        .split_once('=')
        .ok_or_else(|| bad("expected PATH=VALUE, e.g. scale.epochs=10".into()))?;
    if path.is_empty() || path.split('.').any(str::is_empty) {
        return Err(bad(format!(
            "{path:?} is not a dotted path such as scale.epochs"
        )));
    }
    let value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()));
    let segments: Vec<&str> = path.split('.').collect();
    let mut node = document;
    for (depth, segment) in segments.iter().enumerate() {
        let last = depth + 1 == segments.len();
        let here = segments[..depth].join(".");
        node = match node {
            Value::Object(map) => {
                if last {
                    // A tagged section (`backend`) of another kind keeps none of its fields:
                    // `backend.kind=slurm` on a local backend starts from Slurm's defaults.
                    if *segment == "kind" && map.get("kind").is_some_and(|k| *k != value) {
                        map.clear();
                    }
                    map.insert((*segment).to_string(), value);
                    return Ok(());
                }
                // A section the file left out takes its defaults: create it, and let reading
                // the document refuse a name that is no field.
                map.entry((*segment).to_string())
                    .or_insert_with(|| Value::Object(Default::default()))
            }
            Value::Array(items) => {
                let len = items.len();
                let index = match segment.parse::<usize>() {
                    Ok(i) if i < len => i,
                    Ok(i) => {
                        return Err(bad(format!("{here} has {len} elements; there is no [{i}]")))
                    }
                    Err(_) => items
                        .iter()
                        .position(|item| item.get("name") == Some(&Value::from(*segment)))
                        .ok_or_else(|| bad(format!("{here} has no element named {segment}")))?,
                };
                if last {
                    items[index] = value;
                    return Ok(());
                }
                &mut items[index]
            }
            other => {
                return Err(bad(format!(
                    "{} is {}, which has no field {segment}",
                    if here.is_empty() {
                        "the document"
                    } else {
                        &here
                    },
                    kind(other)
                )))
            }
        };
    }
    unreachable!("the loop returns at the last segment")
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "name": "g",
            "scale": { "epochs": 200 },
            "methods": [ { "name": "base", "pam": false }, { "name": "pam_das" } ]
        })
    }

    #[test]
    fn assignments_edit_the_document() {
        let table: &[(&str, Value)] = &[
            ("scale.epochs=3", json!({"epochs": 3})),
            (
                "scale.input=[64, 64]",
                json!({"epochs": 200, "input": [64, 64]}),
            ),
            (
                "scale.learning_rate=2e-3",
                json!({"epochs": 200, "learning_rate": 0.002}),
            ),
        ];
        for (assignment, scale) in table {
            let mut d = doc();
            apply(&mut d, assignment).unwrap();
            assert_eq!(&d["scale"], scale, "{assignment}");
        }
        let mut d = doc();
        apply(&mut d, "name=trial-2").unwrap();
        assert_eq!(d["name"], "trial-2");
        apply(&mut d, "methods.1.weighting=das").unwrap();
        apply(&mut d, "methods.base.pam=true").unwrap();
        assert_eq!(d["methods"][1]["weighting"], "das");
        assert_eq!(d["methods"][0]["pam"], true);
        apply(&mut d, "backend.kind=local").unwrap();
        assert_eq!(d["backend"], json!({"kind": "local"}));
        // Another kind keeps none of the old kind's fields; the same kind keeps them all.
        apply(&mut d, "backend.workers=2").unwrap();
        apply(&mut d, "backend.kind=local").unwrap();
        assert_eq!(d["backend"], json!({"kind": "local", "workers": 2}));
        apply(&mut d, "backend.kind=slurm").unwrap();
        apply(&mut d, "backend.mem=2G").unwrap();
        assert_eq!(d["backend"], json!({"kind": "slurm", "mem": "2G"}));
    }

    #[test]
    fn impossible_paths_are_refused_by_name() {
        let table = [
            ("scale.epochs", "expected PATH=VALUE"),
            ("=3", "not a dotted path"),
            ("scale..epochs=3", "not a dotted path"),
            (
                "methods.7.pam=true",
                "methods has 2 elements; there is no [7]",
            ),
            ("methods.nope.pam=true", "methods has no element named nope"),
            ("name.first=x", "name is a string, which has no field first"),
        ];
        for (assignment, expected) in table {
            let err = apply(&mut doc(), assignment).unwrap_err().to_string();
            assert!(err.contains(expected), "{assignment}: {err}");
            assert!(err.contains(assignment), "{assignment}: {err}");
        }
    }
}
