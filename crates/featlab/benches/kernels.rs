//! Micro-benchmarks of the training kernels (divan): `cargo bench -p featlab --bench kernels`
//! (filter with a name, e.g. `-- two_layer`). Sequential (`Par::Seq`) throughout; the
//! end-to-end and multi-threaded figures come from `featlab bench` (docs/performance.md).
//!
//! Sizes are issue 8's: small n = 256, d = 16, m = 64; medium n = 2048, d = 64, m = 512;
//! the deep linear net has L = 4 layers of width 256 and n = 2048.

use divan::{black_box, Bencher};
use faer::{Accum, Mat, Par};
use featlab::data::Dataset;
use featlab::linalg::{matmul, view, view_mut};
use featlab::model::deep_linear::DeepLinear;
use featlab::model::two_layer::TwoLayer;
use featlab::model::{Activation, Loss, Model};
use featlab::rng::{normal_vec, stream};
use featlab::train::{GradientDescent, Problem, Stepper};

fn main() {
    divan::main();
}

/// (n, d, m) of a named size.
fn size(name: &str) -> (usize, usize, usize) {
    match name {
        "small" => (256, 16, 64),
        "medium" => (2048, 64, 512),
        other => panic!("unknown size {other}"),
    }
}

fn normal_mat(rows: usize, cols: usize, tag: &str) -> Mat<f64> {
    let v = normal_vec(&mut stream(0, tag), rows * cols, 1.0);
    Mat::from_fn(rows, cols, |i, j| v[i * cols + j])
}

/// Forward GEMM of the first layer, Z = X W₁ᵀ (n × d · d × m; W₁ row-major m × d, as in
/// the flat parameter vector).
#[divan::bench(args = ["small", "medium"])]
fn matmul_x_w1t(bencher: Bencher, name: &str) {
    let (n, d, m) = size(name);
    let x = normal_mat(n, d, "x");
    let w = normal_vec(&mut stream(0, "w"), m * d, 1.0);
    let mut z = Mat::zeros(n, m);
    bencher
        .counter(divan::counter::ItemsCount::new(2 * n * d * m))
        .bench_local(|| {
            matmul(
                z.as_mut(),
                Accum::Replace,
                x.as_ref(),
                view(&w, m, d).transpose(),
                1.0,
                Par::Seq,
            );
            black_box(&z);
        });
}

/// Backward GEMM of the first layer, ∂W₁ = dZᵀ X (m × n · n × d, written row-major into
/// the flat gradient).
#[divan::bench(args = ["small", "medium"])]
fn matmul_dzt_x(bencher: Bencher, name: &str) {
    let (n, d, m) = size(name);
    let x = normal_mat(n, d, "x");
    let dz = normal_mat(n, m, "dz");
    let mut g = vec![0.0; m * d];
    bencher
        .counter(divan::counter::ItemsCount::new(2 * n * d * m))
        .bench_local(|| {
            matmul(
                view_mut(&mut g, m, d),
                Accum::Replace,
                dz.transpose(),
                x.as_ref(),
                1.0,
                Par::Seq,
            );
            black_box(&g);
        });
}

fn two_layer_data(n: usize, d: usize, c: usize) -> Dataset {
    let x = normal_mat(n, d, "x");
    let y = Mat::from_fn(n, c, |i, k| {
        x[(i, k % d)].max(0.0) + 0.5 * x[(i, 1 % d)].powi(2)
    });
    Dataset::new(x, y).unwrap()
}

/// One forward + loss + backward pass of the scalar-output two-layer net
/// (`Model::loss_and_grad`), per size and activation.
#[divan::bench(args = [
    "small relu", "small quadratic", "small linear",
    "medium relu", "medium quadratic", "medium linear",
])]
fn two_layer_loss_and_grad(bencher: Bencher, case: &str) {
    let (name, act) = case.split_once(' ').unwrap();
    let act = match act {
        "relu" => Activation::Relu,
        "quadratic" => Activation::Quadratic,
        _ => Activation::Linear,
    };
    let (n, d, m) = size(name);
    let data = two_layer_data(n, d, 1);
    let model = TwoLayer::new(d, m, 1, act, false);
    let params = normal_vec(&mut stream(0, "init"), model.num_params(), 1e-3);
    let mut grad = vec![0.0; params.len()];
    let mut ws = model.workspace(n);
    bencher.bench_local(|| {
        black_box(model.loss_and_grad(
            &params,
            data.x.as_ref(),
            data.y.as_ref(),
            Loss::Mse,
            &mut grad,
            &mut ws,
        ))
    });
}

/// One full GD step (as the runner takes it) of the scalar-output two-layer ReLU net.
#[divan::bench(args = ["small", "medium"])]
fn two_layer_gd_step(bencher: Bencher, name: &str) {
    let (n, d, m) = size(name);
    let data = two_layer_data(n, d, 1);
    let model = TwoLayer::new(d, m, 1, Activation::Relu, false);
    let params = normal_vec(&mut stream(0, "init"), model.num_params(), 1e-3);
    let mut problem = Problem::new(&model, &data, Loss::Mse, 0.0, Par::Seq);
    let mut gd = GradientDescent::new(0.05, params);
    bencher.bench_local(|| gd.step(&mut problem, f64::INFINITY).unwrap());
}

/// One full GD step of a deep linear net (L = 4, width 256, c = 256, n = 2048): 11 GEMMs
/// of 2·2048·256·256 flops each.
#[divan::bench(sample_count = 20)]
fn deep_linear_gd_step(bencher: Bencher) {
    let (n, k, l) = (2048, 256, 4);
    let x = normal_mat(n, k, "x");
    let t = normal_vec(&mut stream(0, "teacher"), k * k, (1.0 / k as f64).sqrt());
    let mut y = Mat::zeros(n, k);
    matmul(
        y.as_mut(),
        Accum::Replace,
        x.as_ref(),
        view(&t, k, k).transpose(),
        1.0,
        Par::Seq,
    );
    let data = Dataset::new(x, y).unwrap();
    let model = DeepLinear::new(vec![k; l + 1], vec![1.0; l], vec![1.0; l]);
    let params = normal_vec(
        &mut stream(0, "init"),
        model.num_params(),
        (1.0 / k as f64).sqrt(),
    );
    let mut problem = Problem::new(&model, &data, Loss::Mse, 0.0, Par::Seq);
    let mut gd = GradientDescent::new(1e-3, params);
    bencher
        .counter(divan::counter::ItemsCount::new(11 * 2 * n * k * k))
        .bench_local(|| gd.step(&mut problem, f64::INFINITY).unwrap());
}
