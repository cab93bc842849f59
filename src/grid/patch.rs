//! A method's `train` section: fields of its ASAN train configs, set as in a train config file,
//! merged over what the grid built (JSON merge patch, RFC 7386: an object merges key by key, a
//! value replaces, `null` removes). It reaches every protocol option of `train::config` — the
//! warm-up's α, λ_CE per phase, the Dice reduction, Adam, the PAM width, the controller's
//! learning rate — without the job spec repeating each one.
//!
//! What the grid plans from is not the patch's to change: the cases, the network, the seed, the
//! schedule's length, the geometry all four networks share, and the weighting's kind, K, fixed
//! warm-up of a search (the sample and update stages follow them), α and the CASN ROIs (the
//! method's own fields). A patch that changes one is refused, naming it.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::train::config::TrainConfig;

/// `config` with `patch` merged in; `at` names the patch in errors (`methods[2].train`).
pub fn apply(config: &TrainConfig, patch: &Value, at: &str) -> Result<TrainConfig> {
    if !patch.is_object() {
        return Err(Error::invalid(
            at,
            "must be an object of train config fields",
        ));
    }
    let mut doc = serde_json::to_value(config)
        .map_err(|e| Error::Internal(format!("encoding a train config: {e}")))?;
    merge(&mut doc, patch);
    let patched: TrainConfig = serde_path_to_error::deserialize(doc).map_err(|e| {
        let field = match e.path().to_string() {
            path if path == "." => at.to_string(),
            path => format!("{at}.{path}"),
        };
        Error::invalid(field, e.inner().to_string())
    })?;
    if let Some(field) = changed_plan_fields(config, &patched).first() {
        return Err(Error::invalid(
            format!("{at}.{field}"),
            "is set by the grid (the job's data, scale, weighting or the method's own fields), \
             not by a method's train patch",
        ));
    }
    Ok(patched)
}

/// RFC 7386 merge.
fn merge(doc: &mut Value, patch: &Value) {
    match (doc, patch) {
        (Value::Object(d), Value::Object(p)) => {
            for (key, value) in p {
                if value.is_null() {
                    d.remove(key);
                } else {
                    merge(d.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (d, p) => *d = p.clone(),
    }
}

/// The fields the planner relies on that differ between `before` and `after`.
fn changed_plan_fields(before: &TrainConfig, after: &TrainConfig) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |field: &'static str, same: bool| {
        if !same {
            changed.push(field);
        }
    };
    check("data", before.data == after.data);
    check("cases", before.cases == after.cases);
    check(
        "validation_cases",
        before.validation_cases == after.validation_cases,
    );
    check("net", before.net == after.net);
    check("seed", before.seed == after.seed);
    check("epochs", before.epochs == after.epochs);
    check("geometry", before.geometry == after.geometry);
    check("pam", before.pam == after.pam);
    check(
        "deep_supervision",
        before.deep_supervision == after.deep_supervision,
    );
    check("sequences", before.sequences == after.sequences);
    check("alpha", before.alpha == after.alpha);
    check("casn_rois", before.casn_rois == after.casn_rois);
    match (&before.weighting, &after.weighting) {
        (Some(b), Some(a)) => {
            check("weighting.kind", b.kind == a.kind);
            check("weighting.samples", b.samples == a.samples);
            check("weighting.alpha", b.alpha == a.alpha);
            check("weighting.beta_jitter", b.beta_jitter == a.beta_jitter);
            check(
                "weighting.epochs_fixed",
                !b.is_search() || b.epochs_fixed == a.epochs_fixed,
            );
        }
        (None, None) => {}
        _ => check("weighting", false),
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(weighting: &str) -> TrainConfig {
        serde_json::from_value(json!({
            "data": "d", "net": "scar", "epochs": 4,
            "geometry": { "crop": [64, 64], "margin": 3, "input": [32, 32] },
            "weighting": { "kind": weighting, "epochs_fixed": if weighting == "das" { 2 } else { 0 } },
        }))
        .unwrap()
    }

    #[test]
    fn a_patch_sets_options_and_nothing_the_grid_plans_from() {
        let das = config("das");
        let patched = apply(
            &das,
            &json!({ "loss": { "ce_weight_auto": 0.0 },
                     "weighting": { "controller": { "learning_rate": 0.1 } } }),
            "methods[1].train",
        )
        .unwrap();
        assert_eq!(patched.loss.ce_weight_auto, Some(0.0));
        let (w, before) = (patched.weighting.unwrap(), das.weighting.clone().unwrap());
        assert_eq!(w.controller.learning_rate, 0.1);
        assert_eq!(w.epochs_fixed, before.epochs_fixed, "the rest is kept");

        // gradient is one task: its warm-up is the patch's to set.
        let gradient = config("gradient");
        let warm = apply(
            &gradient,
            &json!({ "weighting": { "epochs_fixed": 2 } }),
            "t",
        )
        .unwrap();
        assert_eq!(warm.weighting.unwrap().epochs_fixed, 2);

        let table: [(Value, &str); 7] = [
            (json!({ "epochs": 9 }), "methods[1].train.epochs"),
            (
                json!({ "casn_rois": { "coarse": "c", "fine": "f" } }),
                "methods[1].train.casn_rois",
            ),
            (
                json!({ "weighting": { "samples": 3 } }),
                "methods[1].train.weighting.samples",
            ),
            (
                json!({ "weighting": { "epochs_fixed": 1 } }),
                "methods[1].train.weighting.epochs_fixed",
            ),
            (json!({ "optimiser": {} }), "unknown field `optimiser`"),
            (
                json!({ "loss": { "bogus": 0 } }),
                "methods[1].train.loss.bogus: unknown field `bogus`",
            ),
            (json!([1]), "must be an object"),
        ];
        for (patch, want) in table {
            let err = apply(&das, &patch, "methods[1].train")
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{patch}: {err}");
        }
    }
}
