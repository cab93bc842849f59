//! The protocol options a train config offers where the paper leaves a choice open or the
//! authors' released code differs from it: each changes what it says and nothing else.

use burn::backend::{Autodiff, Flex};

use super::checkpoint::model_bytes;
use super::config::{EpochKind, TrainConfig};
use super::steps::{candidates, fixed_epoch, model_config, sample, Session, Trainee};
use crate::das::controller::softmax;
use crate::das::weighting::{Candidate, WarmupAlpha, WeightingState};
use crate::data::phantom::{generate_case, PhantomConfig};
use crate::model::unet::UNetConfig;
use crate::progress::Silent;
use crate::train::samples::{Network, Sample, SampleGeometry};

type B = Autodiff<Flex>;

/// A tiny ASAN-S config (DAS: 1 fixed epoch, then 2 auto-weighted, K = 2), with `patch`
/// merged into its JSON.
fn config(patch: serde_json::Value) -> TrainConfig {
    let mut doc = serde_json::json!({
        "data": "unused", "net": "scar", "epochs": 3, "base_filters": 4, "batch_size": 4,
        "geometry": { "crop": [48, 48], "margin": 2, "input": [32, 32] },
        "weighting": { "kind": "das", "epochs_fixed": 1, "samples": 2 },
    });
    merge(&mut doc, patch);
    let config: TrainConfig = serde_json::from_value(doc).expect("a train config");
    config.validate().expect("a valid config");
    config
}

fn merge(doc: &mut serde_json::Value, patch: serde_json::Value) {
    match (doc, patch) {
        (serde_json::Value::Object(d), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                merge(d.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (d, p) => *d = p,
    }
}

/// Training samples of a few phantom cases (validation: the same; only differences matter).
fn samples() -> Vec<Sample> {
    let phantom = PhantomConfig {
        size: [64, 64],
        spacing: [3.6, 3.6, 14.0],
        ..PhantomConfig::default()
    };
    let geometry = SampleGeometry {
        crop: [48, 48],
        margin: 2,
        input: [32, 32],
    };
    let sequences = config(serde_json::json!({})).input_sequences();
    (0..3)
        .flat_map(|i| {
            Network::Scar.samples(
                &generate_case(&phantom, i).into_case(),
                &geometry,
                &sequences,
            )
        })
        .collect()
}

fn session<'a>(config: &'a TrainConfig, samples: &[Sample]) -> Session<'a, B> {
    static DEVICE: std::sync::OnceLock<burn::backend::flex::FlexDevice> =
        std::sync::OnceLock::new();
    let device = DEVICE.get_or_init(Default::default);
    Session::with_samples(config, device, samples.to_vec(), samples[..2].to_vec())
}

/// The trainee after its fixed epochs (the parent of the first auto-weighted epoch).
fn after_warmup(session: &Session<'_, B>) -> Trainee<B> {
    let mut trainee = session.start();
    while session.config.epoch_kind(trainee.state.epoch) != EpochKind::Auto {
        trainee = fixed_epoch(session, trainee, &Silent).unwrap().trainee;
    }
    trainee
}

fn child_bytes(session: &Session<'_, B>, parent: &Trainee<B>, candidate: &Candidate) -> Vec<u8> {
    model_bytes(
        &sample(session, parent, candidate, &Silent)
            .expect("a finite loss")
            .model,
    )
}

#[test]
fn ce_weight_auto_is_lambda_in_the_auto_weighted_epochs_only() {
    let samples = samples();
    let released =
        config(serde_json::json!({ "loss": { "ce_weight": 0.2, "ce_weight_auto": 0.0 } }));
    let paper = config(serde_json::json!({ "loss": { "ce_weight": 0.2 } }));
    let (released, paper) = (session(&released, &samples), session(&paper, &samples));
    for (epoch, want) in [(0, 0.2), (1, 0.0), (2, 0.0)] {
        let r = released.settings(epoch);
        let p = paper.settings(epoch);
        assert_eq!(r.loss.ce_weight, want, "epoch {epoch}");
        assert_eq!(p.loss.ce_weight, 0.2, "epoch {epoch}");
        assert_eq!(
            (r.seed, r.alpha, r.batches.batch_size, r.loss.dice_smooth),
            (p.seed, p.alpha, p.batches.batch_size, p.loss.dice_smooth),
            "nothing else differs"
        );
    }
}

#[test]
fn adam_epsilon_is_the_one_given_and_defaults_to_pytorchs() {
    let samples = samples();
    let trained = |patch| {
        let config = config(patch);
        let session = session(&config, &samples);
        model_bytes(
            &fixed_epoch(&session, session.start(), &Silent)
                .unwrap()
                .trainee
                .model,
        )
    };
    let default = trained(serde_json::json!({}));
    assert_eq!(
        default,
        trained(serde_json::json!({ "optimizer": { "epsilon": 1e-8 } }))
    );
    assert_ne!(
        default,
        trained(serde_json::json!({ "optimizer": { "epsilon": 1e-5 } }))
    );
}

#[test]
fn reset_at_auto_restarts_adam_when_the_search_starts_and_only_then() {
    let samples = samples();
    let keep = config(serde_json::json!({}));
    let reset = config(serde_json::json!({ "optimizer": { "reset_at_auto": true } }));
    let (keep, reset) = (session(&keep, &samples), session(&reset, &samples));
    let parent = after_warmup(&keep);
    let candidate = &candidates(&keep, &parent).unwrap()[0];
    let kept = child_bytes(&keep, &parent, candidate);
    assert_ne!(
        kept,
        child_bytes(&reset, &parent, candidate),
        "first auto-weighted epoch"
    );
    // A second auto-weighted epoch continues the child's own Adam either way.
    let child = sample(&keep, &parent, candidate, &Silent).unwrap();
    let next = Trainee {
        model: child.model,
        optimizer: child.optimizer,
        state: super::checkpoint::TrainState {
            epoch: parent.state.epoch + 1,
            ..parent.state.clone()
        },
    };
    let candidate = &candidates(&keep, &next).unwrap()[0];
    assert_eq!(
        child_bytes(&keep, &next, candidate),
        child_bytes(&reset, &next, candidate)
    );
}

#[test]
fn own_child_batches_give_each_child_its_own_shuffle_and_augmentation() {
    let samples = samples();
    let shared = config(serde_json::json!({}));
    let own = config(serde_json::json!({ "weighting": { "child_batches": "own" } }));
    let (shared, own) = (session(&shared, &samples), session(&own, &samples));
    let parent = after_warmup(&shared);
    // Two children with the same α: only their batches can tell them apart.
    let first = candidates(&shared, &parent).unwrap()[0].clone();
    let twin = Candidate {
        index: 1,
        ..first.clone()
    };
    assert_eq!(
        child_bytes(&shared, &parent, &first),
        child_bytes(&shared, &parent, &twin)
    );
    assert_ne!(
        child_bytes(&own, &parent, &first),
        child_bytes(&own, &parent, &twin)
    );
}

#[test]
fn warmup_alpha_sets_the_fixed_epochs_weights_and_gradient_may_warm_up_too() {
    let samples = samples();
    let table: [(serde_json::Value, [f64; 4]); 3] = [
        (
            serde_json::json!("softmax_beta"),
            softmax(&[0.5, 0.5, 0.5, 1.0]),
        ),
        (serde_json::json!("equal"), [0.25; 4]),
        (
            serde_json::json!({ "given": [0.1, 0.2, 0.3, 0.4] }),
            [0.1, 0.2, 0.3, 0.4],
        ),
    ];
    for (kind, epochs) in [
        ("das", [EpochKind::Fixed, EpochKind::Auto, EpochKind::Auto]),
        (
            "gradient",
            [
                EpochKind::Fixed,
                EpochKind::LearningAlpha,
                EpochKind::LearningAlpha,
            ],
        ),
    ] {
        for (warmup, want) in &table {
            let mut patch =
                serde_json::json!({ "weighting": { "kind": kind, "warmup_alpha": warmup } });
            if kind == "gradient" {
                patch["weighting"]["samples"] = serde_json::json!(10);
            }
            let config = config(patch);
            let got: Vec<EpochKind> = (0..3).map(|e| config.epoch_kind(e)).collect();
            assert_eq!(got, epochs, "{kind}");
            let session = session(&config, &samples);
            let stepped = fixed_epoch(&session, session.start(), &Silent).unwrap();
            for (a, b) in stepped.record.alpha.iter().zip(want) {
                assert!(
                    (a - b).abs() < 1e-12,
                    "{kind} {warmup}: {:?}",
                    stepped.record.alpha
                );
            }
            if let Some(WeightingState::Gradient(learned)) = stepped.trainee.state.weighting() {
                assert_eq!(
                    learned.beta,
                    [0.5, 0.5, 0.5, 1.0],
                    "β learns only after the warm-up"
                );
            }
        }
    }
    assert!(matches!(
        config(serde_json::json!({}))
            .weighting
            .unwrap()
            .warmup_alpha,
        WarmupAlpha::SoftmaxBeta
    ));
}

#[test]
fn pam_width_reaches_the_model() {
    let half = model_config(&config(serde_json::json!({})));
    let released = model_config(&config(serde_json::json!({ "pam_width": "released" })));
    assert!(!half.pam_released && released.pam_released);
    assert_eq!(
        UNetConfig {
            pam_released: false,
            ..released
        },
        half,
        "nothing else of the network changes"
    );
}

#[test]
fn options_that_cannot_apply_are_refused_naming_the_field() {
    let table: [(serde_json::Value, &[&str]); 8] = [
        (
            serde_json::json!({ "optimizer": { "epsilon": 0.0 } }),
            &["optimizer.epsilon"],
        ),
        (
            serde_json::json!({ "optimizer": { "reset_at_auto": true }, "weighting": { "kind": "equal", "epochs_fixed": 0, "samples": 10 } }),
            &["optimizer.reset_at_auto", "has none"],
        ),
        (
            serde_json::json!({ "loss": { "ce_weight_auto": 0.0 }, "weighting": null }),
            &["loss.ce_weight_auto"],
        ),
        (
            serde_json::json!({ "weighting": { "warmup_alpha": { "given": [0.5, 0.5, 0.5, 0.5] } } }),
            &["weighting.warmup_alpha", "Eq. 4"],
        ),
        (
            serde_json::json!({ "weighting": { "kind": "equal", "epochs_fixed": 0, "samples": 10, "warmup_alpha": "equal" } }),
            &["weighting.warmup_alpha", "is not used by"],
        ),
        (
            serde_json::json!({ "weighting": { "kind": "gradient", "samples": 10, "child_batches": "own" } }),
            &["weighting.child_batches"],
        ),
        (
            serde_json::json!({ "weighting": { "kind": "gradient", "samples": 10, "epochs_fixed": 3 } }),
            &["weighting.epochs_fixed", "leaves none"],
        ),
        (
            serde_json::json!({ "net": "casn_fine", "weighting": null, "pam_width": "released" }),
            &["pam_width", "has none"],
        ),
    ];
    for (patch, words) in table {
        let mut doc = serde_json::to_value(config(serde_json::json!({}))).unwrap();
        merge(&mut doc, patch.clone());
        if doc["weighting"].is_null() {
            doc.as_object_mut().unwrap().remove("weighting");
        }
        let config: TrainConfig = serde_json::from_value(doc).unwrap();
        let err = config.validate().unwrap_err().to_string();
        for w in words {
            assert!(err.contains(w), "{patch}: {err}");
        }
    }
}

/// `epoch_length` and `foreground_oversampling` reach the epoch's batches and nothing else;
/// `"pass"` with no oversampling is the paper's epoch, each sample once.
#[test]
fn epoch_length_and_oversampling_shape_the_batches_only() {
    use super::batches::EpochLength;
    use super::epoch::epoch_batches;
    let samples = samples();
    let paper = config(serde_json::json!({
        "epoch_length": "pass", "foreground_oversampling": 0.0
    }));
    let default = config(serde_json::json!({}));
    let (paper, default) = (session(&paper, &samples), session(&default, &samples));
    let (p, d) = (paper.settings(0), default.settings(0));
    assert_eq!(p.batches.length, EpochLength::Pass);
    assert_eq!(d.batches.length, EpochLength::MinBatches(7));
    assert_eq!(
        (p.seed, p.alpha, p.loss, p.learning_rate),
        (d.seed, d.alpha, d.loss, d.learning_rate),
        "nothing else differs"
    );
    let sizes = |s: &Session<'_, B>| -> Vec<usize> {
        epoch_batches(&s.train, &s.settings(0))
            .iter()
            .map(Vec::len)
            .collect()
    };
    let n = samples.len();
    assert_eq!(sizes(&paper).iter().sum::<usize>(), n, "one pass");
    // The phantom slices make fewer than 7 batches of 4: the default trains 7 full ones.
    assert!(n.div_ceil(4) < 7, "{n} samples");
    assert_eq!(sizes(&default), vec![4; 7]);
    // Oversampling: the last place of each batch of 4 shows scar.
    let scar = |s: &Sample| s.classes.iter().any(|&k| k == 2);
    for batch in epoch_batches(&default.train, &default.settings(0)) {
        assert!(
            scar(batch.last().unwrap()),
            "the foreground place holds scar"
        );
    }
}

/// The default score is the pooled validation Dice, and `score` is what the best epoch and a
/// child's reward read.
#[test]
fn score_picks_which_validation_dice_counts() {
    use super::config::ValidationDice;
    use crate::das::weighting::ScoreDice;
    let dice = ValidationDice {
        per_slice: 0.6,
        pooled: 0.0,
        per_case: 0.3,
        found: 0,
        lesion_slices: 2,
    };
    assert_eq!(config(serde_json::json!({})).score(), ScoreDice::Pooled);
    for (name, want) in [("pooled", 0.0), ("per_slice", 0.6), ("per_case", 0.3)] {
        let c = config(serde_json::json!({ "score": name }));
        assert_eq!(dice.score(c.score()), want, "{name}");
    }
}
