//! Gradient checks: every model × activation × loss against central finite differences.

use super::*;
use crate::rng::{normal_vec, stream};
use faer::Mat;

fn data(n: usize, d: usize, c: usize, seed: u64, classes: bool) -> (Mat<f64>, Mat<f64>) {
    let mut r = stream(seed, "test-data");
    let xv = normal_vec(&mut r, n * d, 1.0);
    let x = Mat::from_fn(n, d, |i, j| xv[i * d + j]);
    let y = if classes {
        Mat::from_fn(n, c, |i, j| if j == (i * 7 + 3) % c { 1.0 } else { 0.0 })
    } else {
        let yv = normal_vec(&mut r, n * c, 1.0);
        Mat::from_fn(n, c, |i, j| yv[i * c + j])
    };
    (x, y)
}

/// Max relative error of the analytic gradient vs fourth-order central differences, with
/// relative error |g − fd| / max(|g|, |fd|, floor), floor = 1e-6·max|g| (so exactly-zero
/// components, e.g. dead ReLU units, are compared at the round-off level of the loss).
pub(crate) fn grad_check(
    model: &dyn Model,
    params: &[f64],
    x: &Mat<f64>,
    y: &Mat<f64>,
    loss: Loss,
) -> f64 {
    let mut ws = model.workspace(x.nrows());
    let mut g = vec![0.0; params.len()];
    model.loss_and_grad(params, x.as_ref(), y.as_ref(), loss, &mut g, &mut ws);
    let gmax = g.iter().fold(0.0f64, |a, b| a.max(b.abs()));
    let mut p = params.to_vec();
    let mut worst = 0.0f64;
    for k in 0..p.len() {
        // Fourth-order central stencil (−L(2h) + 8L(h) − 8L(−h) + L(−2h)) / 12h at several h;
        // the best h per coordinate is kept, so a ReLU kink within 2h of one step size
        // (where finite differences are meaningless) does not fail the check.
        let orig = p[k];
        let mut best = f64::INFINITY;
        for h0 in [1e-3, 1e-4, 1e-5] {
            let h = h0 * (1.0 + orig.abs());
            let mut at = |delta: f64, p: &mut Vec<f64>| {
                p[k] = orig + delta;
                let l = model.loss(p, x.as_ref(), y.as_ref(), loss, &mut ws);
                p[k] = orig;
                l
            };
            let fd = (-at(2.0 * h, &mut p) + 8.0 * at(h, &mut p) - 8.0 * at(-h, &mut p)
                + at(-2.0 * h, &mut p))
                / (12.0 * h);
            let denom = g[k].abs().max(fd.abs()).max(1e-6 * gmax).max(1e-300);
            best = best.min((g[k] - fd).abs() / denom);
        }
        worst = worst.max(best);
    }
    worst
}

fn configs() -> Vec<(String, ModelConfig, usize, usize)> {
    let mut v = Vec::new();
    for act in Activation::ALL {
        for (bias, c) in [(false, 3), (true, 3), (false, 1), (true, 1)] {
            v.push((
                format!("two_layer {act:?} bias={bias} c={c}"),
                ModelConfig::TwoLayer(config::TwoLayerConfig {
                    width: 7,
                    activation: act,
                    bias,
                    output_scale: 0.7,
                    parametrization: Parametrization::Standard,
                    init_scale: 1.0,
                    init_std: None,
                    multipliers: None,
                    lr_layers: None,
                }),
                5,
                c,
            ));
        }
        v.push((
            format!("mlp {act:?}"),
            ModelConfig::Mlp(config::MlpConfig {
                hidden: vec![6, 5, 4],
                activation: act,
                bias: true,
                output_scale: 1.3,
                parametrization: Parametrization::Ntk,
                init_scale: 1.0,
                init_std: None,
                multipliers: None,
                lr_layers: None,
            }),
            4,
            3,
        ));
    }
    // scalar output two-layer
    v.push((
        "two_layer scalar".into(),
        ModelConfig::TwoLayer(config::TwoLayerConfig {
            width: 4,
            activation: Activation::Tanh,
            bias: true,
            output_scale: 1.0,
            parametrization: Parametrization::MeanField,
            init_scale: 1.0,
            init_std: None,
            multipliers: None,
            lr_layers: None,
        }),
        3,
        1,
    ));
    for hidden in [vec![], vec![5], vec![6, 4, 5]] {
        v.push((
            format!("deep_linear {hidden:?}"),
            ModelConfig::DeepLinear(config::DeepLinearConfig {
                hidden,
                output_scale: 0.9,
                parametrization: Parametrization::Mup,
                init_scale: 1.0,
                init: config::InitKind::Gaussian,
                init_std: None,
                multipliers: None,
                lr_layers: None,
            }),
            4,
            3,
        ));
    }
    for form in [
        diagonal::DiagonalForm::Uv,
        diagonal::DiagonalForm::U2MinusV2,
    ] {
        v.push((
            format!("diagonal {form:?}"),
            ModelConfig::Diagonal(config::DiagonalConfig {
                form,
                init_scale: 0.8,
                init: config::InitKind::Gaussian,
                lr_mult: 1.0,
            }),
            6,
            1,
        ));
    }
    v
}

#[test]
fn every_model_activation_and_loss_passes_finite_differences() {
    for (name, cfg, d, c) in configs() {
        for loss in [Loss::Mse, Loss::CrossEntropy] {
            if c == 1 && loss == Loss::CrossEntropy {
                continue; // one-class softmax is constant
            }
            let (x, y) = data(9, d, c, 3, loss == Loss::CrossEntropy);
            let (model, params) = cfg.build(d, c, &mut stream(11, "init")).unwrap();
            assert_eq!(params.len(), model.num_params(), "{name}");
            let err = grad_check(model.as_ref(), &params, &x, &y, loss);
            assert!(
                err <= 1e-6,
                "{name} {loss:?}: max relative gradient error {err:.3e}"
            );
        }
    }
}

#[test]
fn balanced_init_is_balanced() {
    for hidden in [vec![4], vec![5, 5], vec![6, 6, 6, 6]] {
        let cfg = ModelConfig::DeepLinear(config::DeepLinearConfig {
            hidden: hidden.clone(),
            output_scale: 1.0,
            parametrization: Parametrization::Standard,
            init_scale: 1.0,
            init: config::InitKind::Balanced,
            init_std: None,
            multipliers: None,
            lr_layers: None,
        });
        let (model, p) = cfg.build(4, 3, &mut stream(5, "init")).unwrap();
        let ws = model.layer_weights(&p);
        for l in 0..ws.len() - 1 {
            let a = ws[l + 1].transpose() * ws[l + 1];
            let b = ws[l] * ws[l].transpose();
            let diff = (&a - &b).norm_l2();
            assert!(
                diff < 1e-12 * (1.0 + a.norm_l2()),
                "imbalance {diff} at layer {l} for {hidden:?}"
            );
        }
    }
}

#[test]
fn parallel_workspace_gives_identical_gradients() {
    use std::num::NonZeroUsize;
    let cfg = ModelConfig::Mlp(config::MlpConfig {
        hidden: vec![130, 70],
        activation: Activation::Relu,
        bias: false,
        output_scale: 1.0,
        parametrization: Parametrization::Standard,
        init_scale: 1.0,
        init_std: None,
        multipliers: None,
        lr_layers: None,
    });
    let (x, y) = data(300, 40, 3, 1, false);
    let (model, p) = cfg.build(40, 3, &mut stream(2, "init")).unwrap();
    let mut g1 = vec![0.0; p.len()];
    let mut g2 = vec![0.0; p.len()];
    let mut ws = model.workspace(300);
    model.loss_and_grad(&p, x.as_ref(), y.as_ref(), Loss::Mse, &mut g1, &mut ws);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    ws.par = faer::Par::Rayon(NonZeroUsize::new(2).unwrap());
    pool.install(|| model.loss_and_grad(&p, x.as_ref(), y.as_ref(), Loss::Mse, &mut g2, &mut ws));
    assert!(g1.iter().zip(&g2).all(|(a, b)| a.to_bits() == b.to_bits()));
}

/// The scalar-output two-layer net on shapes with several row blocks per lane and several
/// lanes (see `two_layer_rows`), with biases and multipliers ≠ 1.
fn blocked_two_layer(act: Activation, d: usize, m: usize) -> (TwoLayer, Vec<f64>) {
    let model = two_layer::TwoLayer::new(d, m, 1, act, true).multipliers(0.8, 1.7 / m as f64);
    let p = normal_vec(&mut stream(4, "blocked-init"), model.num_params(), 0.6);
    (model, p)
}
use two_layer::TwoLayer;

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

/// Shapes for the row-blocked, register-tiled kernels (32-row tiles, 6-column register
/// blocks, see `two_layer_tiles`): (n, d, m).
/// - 300, 3, 2048: 16-row blocks (every tile ragged), 19 blocks in 7 lanes of 3;
/// - 203, 19, 37: one block of 203 rows (6 full tiles + 11 rows), m = 6·6 + 1, odd d;
/// - 1000, 9, 133: 246-row blocks in 5 lanes (the last block 16 rows), m = 22·6 + 1.
const TILED_SHAPES: [(usize, usize, usize); 3] = [(300, 3, 2048), (203, 19, 37), (1000, 9, 133)];

#[test]
fn blocked_scalar_two_layer_gradient_matches_directional_finite_differences() {
    for (n, d, m) in TILED_SHAPES {
        directional_fd_check(n, d, m);
    }
}

fn directional_fd_check(n: usize, d: usize, m: usize) {
    let (x, y) = data(n, d, 1, 8, false);
    for act in Activation::ALL {
        let (model, p) = blocked_two_layer(act, d, m);
        let mut ws = model.workspace(n);
        let mut g = vec![0.0; p.len()];
        model.loss_and_grad(&p, x.as_ref(), y.as_ref(), Loss::Mse, &mut g, &mut ws);
        let mut r = stream(9, "directions");
        for k in 0..4 {
            // Along g/‖g‖ plus a random unit vector: the slope is O(‖g‖), well above the
            // round-off of the finite differences, and any wrong component shows.
            let noise = normal_vec(&mut r, p.len(), 1.0);
            let (gn, rn) = (norm(&g), norm(&noise));
            let v: Vec<f64> = g.iter().zip(&noise).map(|(a, b)| a / gn + b / rn).collect();
            let slope: f64 = g.iter().zip(&v).map(|(a, b)| a * b).sum();
            let mut best = f64::INFINITY;
            // small steps too: with 614k pre-activations, a ReLU kink lies within ±2h of
            // some unit unless h is tiny
            for h in [1e-3, 1e-4, 1e-5, 1e-6, 1e-7] {
                let mut at = |s: f64| {
                    let q: Vec<f64> = p.iter().zip(&v).map(|(a, b)| a + s * b).collect();
                    model.loss(&q, x.as_ref(), y.as_ref(), Loss::Mse, &mut ws)
                };
                let fd = (-at(2.0 * h) + 8.0 * at(h) - 8.0 * at(-h) + at(-2.0 * h)) / (12.0 * h);
                best = best.min((fd - slope).abs() / slope.abs().max(fd.abs()));
            }
            assert!(
                best <= 1e-7,
                "{act:?} ({n}, {d}, {m}) direction {k}: relative error {best:.3e}"
            );
        }
    }
}

#[test]
fn blocked_scalar_two_layer_fused_pass_equals_separate_passes_and_any_thread_count() {
    // n = 300, m = 512: 64-row blocks in 5 lanes (the last block 44 rows: a ragged tile),
    // m = 85·6 + 2; n·m is large enough for the lanes to run in parallel. Then two shapes
    // of TILED_SHAPES: 246-row blocks in 5 lanes, and 16-row blocks in 7 lanes. Then the
    // small benchmark shape (one block cut into two 128-row lanes) and a ragged split
    // (n = 200: lanes of 128 and 72 rows).
    for (n, d, m) in [
        (300, 7, 512),
        (1000, 9, 133),
        (300, 3, 2048),
        (256, 16, 64),
        (200, 5, 64),
    ] {
        fused_separate_and_threads_check(n, d, m);
    }
}

fn fused_separate_and_threads_check(n: usize, d: usize, m: usize) {
    use std::num::NonZeroUsize;
    let (x, y) = data(n, d, 1, 5, false);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for act in Activation::ALL {
        let (model, p) = blocked_two_layer(act, d, m);
        let mut ws = model.workspace(n);
        let mut fused = vec![0.0; p.len()];
        let l_fused =
            model.loss_and_grad(&p, x.as_ref(), y.as_ref(), Loss::Mse, &mut fused, &mut ws);
        // forward, loss, backward one after the other
        let mut sep = vec![0.0; p.len()];
        model.forward(&p, x.as_ref(), &mut ws);
        let l_sep = Loss::Mse.value_and_grad(ws.out.as_ref(), y.as_ref(), ws.d_out.as_mut());
        model.backward(&p, x.as_ref(), &mut sep, &mut ws);
        assert!(
            fused
                .iter()
                .zip(&sep)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{act:?}: fused and separate gradients differ"
        );
        assert!(
            (l_fused - l_sep).abs() <= 1e-14 * l_sep.abs(),
            "{act:?}: {l_fused} vs {l_sep}"
        );
        // two threads
        let mut par = vec![0.0; p.len()];
        ws.par = faer::Par::Rayon(NonZeroUsize::new(2).unwrap());
        let l_par = pool.install(|| {
            model.loss_and_grad(&p, x.as_ref(), y.as_ref(), Loss::Mse, &mut par, &mut ws)
        });
        assert_eq!(l_par.to_bits(), l_fused.to_bits(), "{act:?}: loss");
        assert!(
            fused
                .iter()
                .zip(&par)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{act:?}: 1 vs 2 threads"
        );
    }
}

/// The tiled kernels compiled for AVX-512, for AVX2 + FMA and portably (whichever this
/// CPU runs) give the same bits: fused loss and gradient, forward outputs, backward
/// gradient, on ragged shapes, with and without biases; and X stored row-major (packed by
/// the kernels) gives the bits of X column-major.
#[test]
fn tiled_two_layer_kernels_give_the_same_bits_on_every_tier_and_layout() {
    use super::two_layer_rows::Pass;
    use super::two_layer_tiles::Tier;
    let tiers: Vec<Tier> = [Tier::Plain, Tier::Fma, Tier::Avx512]
        .into_iter()
        .filter(|t| t.available())
        .collect();
    for (n, d, m) in TILED_SHAPES {
        let (x, y) = data(n, d, 1, 6, false);
        let x_rows = Mat::from_fn(d, n, |k, i| x[(i, k)]);
        let x_rows = x_rows.transpose();
        assert_ne!(x_rows.row_stride(), 1);
        for act in Activation::ALL {
            for bias in [true, false] {
                let model = TwoLayer::new(d, m, 1, act, bias).multipliers(0.8, 1.7 / m as f64);
                let p = normal_vec(&mut stream(4, "tier-init"), model.num_params(), 0.6);
                let mut ws = model.workspace(n);
                let y = y.col(0).try_as_col_major().unwrap().as_slice();
                let mut runs: Vec<(Vec<u64>, Vec<u64>, Vec<u64>)> = Vec::new();
                for &tier in &tiers {
                    // the row-major layout on the fastest tier only (the portable one
                    // may call a library fma and is slow)
                    let layouts = if tier == Tier::detect() { 2 } else { 1 };
                    for xv in [x.as_ref(), x_rows].into_iter().take(layouts) {
                        let mut g = vec![0.0; p.len()];
                        let pass = Pass::MseValueAndGrad { y };
                        let sq = model.scalar_pass_on(tier, &p, xv, pass, &mut g, &mut ws);
                        let mut bits: Vec<u64> = g.iter().map(|v| v.to_bits()).collect();
                        bits.push(sq.to_bits());
                        model.scalar_pass_on(tier, &p, xv, Pass::Forward, &mut [], &mut ws);
                        let out: Vec<u64> =
                            ws.out.col_as_slice(0).iter().map(|v| v.to_bits()).collect();
                        let mut gb = vec![0.0; p.len()];
                        model.scalar_pass_on(tier, &p, xv, Pass::Backward, &mut gb, &mut ws);
                        let back: Vec<u64> = gb.iter().map(|v| v.to_bits()).collect();
                        runs.push((bits, out, back));
                    }
                }
                assert!(runs.len() >= 2);
                for (k, r) in runs.iter().enumerate().skip(1) {
                    assert!(
                        r == &runs[0],
                        "{act:?} bias={bias} ({n}, {d}, {m}): run {k} of tiers {tiers:?} × \
                         layouts differs from the first"
                    );
                }
            }
        }
    }
}

#[test]
fn mlp_gradient_is_bitwise_the_same_on_one_and_two_threads() {
    use std::num::NonZeroUsize;
    // n·width = 1000·130 and 1000·70 elements: the bias, σ and σ' passes of both hidden
    // layers are split over the threads in ragged column ranges
    let (n, d, c) = (1000, 9, 3);
    let (x, y) = data(n, d, c, 11, false);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for act in Activation::ALL {
        for bias in [true, false] {
            let model = mlp::Mlp::new(
                vec![d, 130, 70, c],
                act,
                bias,
                vec![0.3, 0.2, 0.1],
                vec![1.0; 3],
            );
            let mut rng = stream(4, "mlp-threads");
            let p = normal_vec(&mut rng, model.num_params(), 1.0);
            let mut ws = model.workspace(n);
            let mut seq = vec![0.0; p.len()];
            let l_seq =
                model.loss_and_grad(&p, x.as_ref(), y.as_ref(), Loss::Mse, &mut seq, &mut ws);
            ws.par = faer::Par::Rayon(NonZeroUsize::new(2).unwrap());
            let mut par = vec![0.0; p.len()];
            let l_par = pool.install(|| {
                model.loss_and_grad(&p, x.as_ref(), y.as_ref(), Loss::Mse, &mut par, &mut ws)
            });
            assert_eq!(
                l_par.to_bits(),
                l_seq.to_bits(),
                "{act:?} bias {bias}: loss"
            );
            assert!(
                seq.iter()
                    .zip(&par)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{act:?} bias {bias}: 1 vs 2 threads"
            );
            assert!(seq.iter().any(|&g| g != 0.0));
        }
    }
}

/// The exact neuron-subset Hessian of the two-layer ½-MSE loss against central finite
/// differences of the analytic gradient (every smooth activation, multipliers ≠ 1, a
/// subset of neurons in a permuted order, vector and scalar outputs).
#[test]
fn two_layer_neuron_hessian_matches_finite_differences_of_the_gradient() {
    for act in [
        Activation::Quadratic,
        Activation::Tanh,
        Activation::Gelu,
        Activation::Linear,
    ] {
        for c in [1, 3] {
            let (d, m, n) = (4, 5, 17);
            let model = TwoLayer::new(d, m, c, act, false).multipliers(0.7, 1.3);
            let (x, y) = data(n, d, c, 11, false);
            let p = normal_vec(&mut stream(5, "hess-params"), model.num_params(), 0.6);
            let neurons = [3usize, 0, 4];
            let idx: Vec<usize> = neurons
                .iter()
                .flat_map(|&i| NeuronSum::neuron_params(&model, i))
                .collect();
            let k = idx.len();
            let mut h = Mat::zeros(k, k);
            let ok = NeuronSum::neuron_loss_hessian(
                &model,
                &p,
                x.as_ref(),
                y.as_ref(),
                &neurons,
                h.as_mut(),
            )
            .unwrap();
            assert!(ok);
            let mut ws = model.workspace(n);
            let mut gp = vec![0.0; p.len()];
            let mut gm = vec![0.0; p.len()];
            let step = 1e-5;
            let mut worst = 0.0f64;
            let mut hmax = 0.0f64;
            for (col, &j) in idx.iter().enumerate() {
                let mut q = p.clone();
                q[j] = p[j] + step;
                model.loss_and_grad(&q, x.as_ref(), y.as_ref(), Loss::Mse, &mut gp, &mut ws);
                q[j] = p[j] - step;
                model.loss_and_grad(&q, x.as_ref(), y.as_ref(), Loss::Mse, &mut gm, &mut ws);
                for (row, &i) in idx.iter().enumerate() {
                    let fd = (gp[i] - gm[i]) / (2.0 * step);
                    worst = worst.max((fd - h[(row, col)]).abs());
                    hmax = hmax.max(h[(row, col)].abs());
                }
            }
            assert!(
                hmax > 1e-2,
                "{act:?} c={c}: Hessian suspiciously small ({hmax})"
            );
            assert!(
                worst <= 1e-7 * hmax,
                "{act:?} c={c}: max |H − FD| = {worst:e} (max |H| = {hmax:e})"
            );
        }
    }
}

#[test]
fn two_layer_neuron_hessian_rejects_bad_input() {
    let model = TwoLayer::new(3, 2, 2, Activation::Quadratic, false);
    let (x, y) = data(5, 3, 2, 1, false);
    let p = vec![0.1; model.num_params()];
    let mut h = Mat::zeros(5, 5);
    for neurons in [vec![0usize, 0], vec![2]] {
        let k = 5 * neurons.len();
        let mut hk = Mat::zeros(k, k);
        assert!(model
            .neuron_loss_hessian(&p, x.as_ref(), y.as_ref(), &neurons, hk.as_mut())
            .is_err());
    }
    let wrong = Mat::<f64>::zeros(5, 3);
    assert!(model
        .neuron_loss_hessian(&p, x.as_ref(), wrong.as_ref(), &[0], h.as_mut())
        .is_err());
    let biased = TwoLayer::new(3, 2, 2, Activation::Quadratic, true);
    let pb = vec![0.1; biased.num_params()];
    assert!(biased
        .neuron_loss_hessian(&pb, x.as_ref(), y.as_ref(), &[0], h.as_mut())
        .is_err());
}
