//! A tiny ASAN must be able to learn two phantom cases by heart: the check that the model, the
//! losses, the sample pipeline and the optimiser fit together.

use std::time::{Duration, Instant};

use awsnet::data::augment::AugmentConfig;
use awsnet::data::cases::Sequence;
use awsnet::data::phantom::{generate_case, PhantomConfig};
use awsnet::model::asan::asan_config;
use awsnet::train::batches::{BatchSettings, EpochLength};
use awsnet::train::epoch::{train_epoch, validate, EpochSettings};
use awsnet::train::loss::LossConfig;
use awsnet::train::samples::{asan_samples, AsanNet, SampleGeometry};
use burn::backend::{Autodiff, Flex};
use burn::optim::AdamConfig;

type B = Autodiff<Flex>;

#[test]
fn asan_overfits_two_phantom_cases() {
    let config = PhantomConfig {
        size: [64, 64],
        spacing: [3.6, 3.6, 14.0],
        slices: [3, 4],
        seed: 7,
        ..PhantomConfig::default()
    };
    // Two cases with pathology.
    let cases: Vec<_> = (0..config.cases)
        .map(|i| generate_case(&config, i))
        .filter(|c| c.labels.iter().any(|&v| v == 1220 || v == 2221))
        .take(2)
        .map(|c| c.into_case())
        .collect();
    assert_eq!(cases.len(), 2);
    let geometry = SampleGeometry {
        crop: [64, 64],
        margin: 3,
        input: [32, 32],
    };
    let samples: Vec<_> = cases
        .iter()
        .flat_map(|c| {
            asan_samples(
                c,
                AsanNet::ScarEdema,
                &geometry,
                &[Sequence::DE, Sequence::T2],
            )
        })
        .collect();
    assert!(samples.len() >= 4, "{} samples", samples.len());

    let device = Default::default();
    let mut model = asan_config(8, true, true).init_seeded::<B>(3, &device);
    let mut optimizer = AdamConfig::new().init();
    let bar = awsnet::progress::Silent;
    let started = Instant::now();
    let mut best = 0.0f64;
    for epoch in 0..400u64 {
        let settings = EpochSettings {
            batches: BatchSettings {
                batch_size: 4,
                length: EpochLength::Pass,
                foreground_fraction: 0.0,
            },
            foreground_class: 2,
            learning_rate: 3e-3,
            alpha: vec![0.25; 4],
            loss: LossConfig::new(),
            augment: AugmentConfig::none(),
            seed: epoch,
        };
        let (next, _) = train_epoch(model, &mut optimizer, &samples, &settings, &device, &bar);
        model = next;
        if epoch % 10 == 9 {
            best = best.max(validate(&model, &samples, 2, 8, &device).pooled);
            if best >= 0.9 || started.elapsed() > Duration::from_secs(240) {
                break;
            }
        }
    }
    eprintln!("scar+edema Dice {best:.3} after {:.0?}", started.elapsed());
    assert!(
        best >= 0.9,
        "scar+edema Dice on the training slices only reached {best:.3}"
    );
}
