//! Benchmark: throughput of the CPU convolution kernels (`awsnet::kernels::conv3x3`) on the
//! layer shapes of an ASAN at the demo and paper scales, in GFLOP/s per pass.
//!
//! Run with `cargo bench --bench conv_kernels`. Not part of the test suite.

use std::time::Instant;

use awsnet::kernels::conv3x3::{forward, input_grad, weight_grad, ConvShape};

fn median_seconds(mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[2]
}

fn main() {
    println!(
        "{:>5} {:>5} {:>5} {:>5} {:>10} {:>10} {:>10}",
        "batch", "in", "out", "size", "fwd GF/s", "dx GF/s", "dw GF/s"
    );
    for (batch, in_channels, out_channels, size) in [
        (16, 16, 16, 64),
        (16, 32, 32, 32),
        (16, 64, 64, 16),
        (16, 128, 128, 8),
        (16, 256, 256, 4),
        (16, 32, 32, 128),
        (16, 64, 64, 64),
        (16, 512, 256, 8),
    ] {
        let shape = ConvShape {
            batch,
            in_channels,
            out_channels,
            height: size,
            width: size,
        };
        let x: Vec<f32> = (0..batch * in_channels * size * size)
            .map(|i| (i % 17) as f32 / 17.0)
            .collect();
        let w: Vec<f32> = (0..out_channels * in_channels * 9)
            .map(|i| (i % 5) as f32 / 5.0)
            .collect();
        let g: Vec<f32> = (0..batch * out_channels * size * size)
            .map(|i| (i % 3) as f32 / 3.0)
            .collect();
        let flop = 2.0 * (batch * in_channels * out_channels * 9 * size * size) as f64;
        let rate = |s: f64| flop / s / 1e9;
        let fwd = median_seconds(|| {
            std::hint::black_box(forward(&x, &w, &shape));
        });
        let dx = median_seconds(|| {
            std::hint::black_box(input_grad(&g, &w, &shape));
        });
        let dw = median_seconds(|| {
            std::hint::black_box(weight_grad(&x, &g, &shape));
        });
        println!(
            "{batch:>5} {in_channels:>5} {out_channels:>5} {size:>5} {:>10.1} {:>10.1} {:>10.1}",
            rate(fwd),
            rate(dx),
            rate(dw)
        );
    }
}
