//! Benchmark: HD + HD95 + ASSD of one MyoPS-sized label pair (512×512×6, 0.73×0.73×14 mm).
//!
//! Run with `cargo bench --bench surface_metrics`. Prints, per target, the median wall time of
//! `compare_masks` (cropped exact EDT, what `awsnet eval` runs) and of two baselines measured in
//! the same run: the same EDT over the whole volume (no crop) and brute force over all pairs of
//! surface voxels. The three must agree; the benchmark checks that before printing.

use std::time::{Duration, Instant};

use awsnet::data::labels::Target;
use awsnet::data::phantom::{generate_case, PhantomConfig};
use awsnet::eval::edt::distance_to_features;
use awsnet::eval::metrics::{compare_masks, percentile};
use awsnet::eval::surface::surface;
use ndarray::{s, Array3, ArrayD};

const SPACING: [f64; 3] = [0.73, 0.73, 14.0];

fn median_time<T>(reps: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::with_capacity(reps);
    let mut last = None;
    for _ in 0..reps {
        let t = Instant::now();
        last = Some(std::hint::black_box(f()));
        times.push(t.elapsed());
    }
    times.sort();
    (times[reps / 2], last.expect("reps > 0"))
}

/// HD, HD95, ASSD without the crop: the distance transform runs over the whole volume.
fn uncropped(p: &ArrayD<bool>, g: &ArrayD<bool>) -> (f64, f64, f64) {
    let (sp, sg) = (surface(p.view()), surface(g.view()));
    let to_g = distance_to_features(sg.view(), &SPACING);
    let to_p = distance_to_features(sp.view(), &SPACING);
    let pick = |field: &ArrayD<f64>, at: &ArrayD<bool>| -> Vec<f64> {
        field
            .iter()
            .zip(at.iter())
            .filter_map(|(&d, &s)| s.then_some(d))
            .collect()
    };
    summarise([pick(&to_g, &sp), pick(&to_p, &sg)].concat())
}

/// HD, HD95, ASSD by checking every pair of surface voxels.
fn brute_force(p: &ArrayD<bool>, g: &ArrayD<bool>) -> (f64, f64, f64) {
    let points = |m: &ArrayD<bool>| -> Vec<[f64; 3]> {
        surface(m.view())
            .indexed_iter()
            .filter(|(_, &s)| s)
            .map(|(i, _)| [0, 1, 2].map(|a| i[a] as f64 * SPACING[a]))
            .collect()
    };
    let (pp, pg) = (points(p), points(g));
    let nearest = |from: &[[f64; 3]], to: &[[f64; 3]]| -> Vec<f64> {
        from.iter()
            .map(|a| {
                to.iter()
                    .map(|b| (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>())
                    .fold(f64::INFINITY, f64::min)
                    .sqrt()
            })
            .collect()
    };
    summarise([nearest(&pp, &pg), nearest(&pg, &pp)].concat())
}

fn summarise(mut joined: Vec<f64>) -> (f64, f64, f64) {
    let hd = joined.iter().copied().fold(0.0, f64::max);
    let assd = joined.iter().sum::<f64>() / joined.len() as f64;
    (hd, percentile(&mut joined, 95.0), assd)
}

fn main() {
    let config = PhantomConfig {
        size: [512, 512],
        slices: [6, 6],
        spacing: SPACING,
        ..PhantomConfig::default()
    };
    // A phantom with pathology as reference; the prediction is the same case shifted by 3 px and
    // 2 px in-plane with its first slice's labels taken from the second: errors of the size a
    // decent model makes.
    let gt = (0..config.cases)
        .map(|i| generate_case(&config, i))
        .find(|c| c.labels.iter().any(|&v| v == 2221))
        .expect("a phantom with scar")
        .labels;
    let mut pred = Array3::<u16>::zeros(gt.raw_dim());
    pred.slice_mut(s![3.., 2.., ..])
        .assign(&gt.slice(s![..-3, ..-2, ..]));
    let second = pred.slice(s![.., .., 1]).to_owned();
    pred.slice_mut(s![.., .., 0]).assign(&second);

    println!(
        "HD + HD95 + ASSD on a {:?} pair, spacing {SPACING:?} mm",
        gt.shape()
    );
    println!(
        "{:<12} {:>9} {:>9} {:>14} {:>14} {:>14}",
        "target", "surf. P", "surf. G", "awsnet (ms)", "no crop (ms)", "brute (ms)"
    );
    for target in [Target::Scar, Target::ScarEdema, Target::Myo, Target::Lv] {
        let p = pred.mapv(|c| target.contains(c)).into_dyn();
        let g = gt.mapv(|c| target.contains(c)).into_dyn();
        let (t_fast, m) = median_time(21, || compare_masks(p.view(), g.view(), &SPACING));
        let (t_full, full) = median_time(5, || uncropped(&p, &g));
        let (t_brute, brute) = median_time(3, || brute_force(&p, &g));
        let fast = (m.hd.unwrap(), m.hd95.unwrap(), m.assd.unwrap());
        for (name, other) in [("no crop", full), ("brute force", brute)] {
            let same = [(fast.0, other.0), (fast.1, other.1), (fast.2, other.2)]
                .iter()
                .all(|(a, b)| (a - b).abs() < 1e-9 * a.abs().max(1.0));
            assert!(same, "{name} disagrees: {fast:?} vs {other:?}");
        }
        let count = |m: &ArrayD<bool>| surface(m.view()).iter().filter(|&&s| s).count();
        println!(
            "{:<12} {:>9} {:>9} {:>14.2} {:>14.2} {:>14.2}",
            target.name(),
            count(&p),
            count(&g),
            t_fast.as_secs_f64() * 1e3,
            t_full.as_secs_f64() * 1e3,
            t_brute.as_secs_f64() * 1e3
        );
    }
}
