//! Benchmark: seconds per ASAN training step (forward, deep-supervision loss, backward, Adam) on
//! the CPU backend, at the demo scale and at the paper's (base 32, 128×128, batch 16), plus
//! inference time per slice and peak memory.
//!
//! Run with `cargo bench --bench train_step` (add `-- paper` for the paper scale only, `-- demo`
//! for the demo scale only). After one warm-up step it times 11 steps (demo) or 3 (paper) and
//! prints the median and the fastest: on a shared machine the spread between the two shows how
//! much the neighbours took. Not part of the test suite: a paper-scale step takes seconds even
//! on a fast machine.

use std::time::Instant;

use awsnet::model::asan::asan_config;
use awsnet::train::loss::{deep_supervision, LossConfig};
use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::{Int, Tensor, TensorData};

type B = Autodiff<Flex>;

struct Scale {
    name: &'static str,
    base: usize,
    size: usize,
    batch: usize,
    steps: usize,
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() {
    // As the `awsnet` binary does: the step times below are what training sees.
    awsnet::memory::keep_freed_memory();
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let scales = [
        Scale {
            name: "demo",
            base: 16,
            size: 64,
            batch: 16,
            steps: 11,
        },
        Scale {
            name: "paper",
            base: 32,
            size: 128,
            batch: 16,
            steps: 3,
        },
    ];
    println!(
        "ASAN (PAM + 4 heads), Autodiff<Flex>, {} threads",
        rayon_threads()
    );
    println!(
        "{:<6} {:>5} {:>5} {:>6} {:>12} {:>10} {:>10} {:>16} {:>13}",
        "scale",
        "base",
        "size",
        "batch",
        "s/step",
        "fastest",
        "images/s",
        "infer s/slice",
        "peak RSS MiB"
    );
    for scale in scales
        .iter()
        .filter(|s| filter.is_empty() || filter.iter().any(|f| f == s.name))
    {
        let device = Default::default();
        let config = asan_config(scale.base, true, true);
        let mut model = config.init_seeded::<B>(1, &device);
        let mut optimizer = AdamConfig::new().init();
        let n = scale.batch * 2 * scale.size * scale.size;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        let y: Vec<i64> = (0..scale.batch * scale.size * scale.size)
            .map(|i| (i % 7 % 3) as i64)
            .collect();
        let input = Tensor::<B, 4>::from_data(
            TensorData::new(x, [scale.batch, 2, scale.size, scale.size]),
            &device,
        );
        let target = Tensor::<B, 3, Int>::from_data(
            TensorData::new(y, [scale.batch, scale.size, scale.size]),
            &device,
        );
        let loss_config = LossConfig::new();
        let mut times = Vec::new();
        // One warm-up step, then the timed ones.
        for step in 0..=scale.steps {
            let t = Instant::now();
            let heads = model.forward(input.clone());
            let loss = deep_supervision(&heads, target.clone(), &[0.25; 4], &loss_config);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(1e-3, model, grads);
            if step > 0 {
                times.push(t.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        let per_step = times[times.len() / 2];

        let inner = model.valid();
        let slices = Tensor::<Flex, 4>::from_data(
            TensorData::new(
                (0..6 * 2 * scale.size * scale.size)
                    .map(|i| (i % 13) as f32 / 13.0)
                    .collect::<Vec<f32>>(),
                [6, 2, scale.size, scale.size],
            ),
            &device,
        );
        let t = Instant::now();
        let out = inner.forward(slices).pop().expect("a head");
        let _ = out.into_data();
        let infer = t.elapsed().as_secs_f64() / 6.0;
        println!(
            "{:<6} {:>5} {:>5} {:>6} {:>12.3} {:>10.3} {:>10.1} {:>16.4} {:>13.0}",
            scale.name,
            scale.base,
            scale.size,
            scale.batch,
            per_step,
            times[0],
            scale.batch as f64 / per_step,
            infer,
            peak_rss_mib()
        );
    }
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
