//! Benchmark: throughput of the CPU convolution kernels (`awsnet::kernels::conv3x3`) on the
//! layer shapes of an ASAN at the demo and paper scales, in GFLOP/s per pass, for each kernel
//! this CPU can run; `*` marks the one training uses for that shape and pass.
//!
//! Run with `cargo bench --bench conv_kernels`. Not part of the test suite.

use std::time::Instant;

use awsnet::kernels::conv3x3::{
    forward_using, input_grad_using, weight_grad_using, ConvShape, Kernel,
};

/// The fastest of 7 runs after a warm-up: on a shared machine the slower runs measure the
/// neighbours, not the kernel.
fn best_seconds(mut f: impl FnMut()) -> f64 {
    f();
    (0..7)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    println!(
        "{:>5} {:>5} {:>5} {:>5} {:>7} {:>10} {:>10} {:>10}",
        "batch", "in", "out", "size", "kernel", "fwd GF/s", "dx GF/s", "dw GF/s"
    );
    for (batch, in_channels, out_channels, size) in [
        (16, 2, 16, 64),
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
        for kernel in [Kernel::Im2col, Kernel::Direct] {
            if !kernel.available() {
                continue;
            }
            let fwd = best_seconds(|| {
                std::hint::black_box(forward_using(kernel, &x, &w, &shape));
            });
            let dx = best_seconds(|| {
                std::hint::black_box(input_grad_using(kernel, &g, &w, &shape));
            });
            let dw = best_seconds(|| {
                std::hint::black_box(weight_grad_using(kernel, &x, &g, &shape));
            });
            let mark = |chosen: Kernel| if chosen == kernel { "*" } else { " " };
            println!(
                "{batch:>5} {in_channels:>5} {out_channels:>5} {size:>5} {:>7} {:>9.1}{} {:>9.1}{} {:>9.1}{}",
                format!("{kernel:?}"),
                rate(fwd),
                mark(Kernel::for_forward(&shape)),
                rate(dx),
                mark(Kernel::for_forward(&shape)),
                rate(dw),
                mark(Kernel::for_weight_grad(&shape)),
            );
        }
    }
}
