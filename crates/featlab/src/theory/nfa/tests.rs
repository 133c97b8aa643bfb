//! Tests of the NFA metrics: Jacobians and PTKs against finite differences, the identity
//! G_l = m_l² W_lᵀK_lW_l, batching/centring, fast power correlations, the deep-linear
//! theorems on short runs, the early-time prediction, RFM gradients, SLO and probes.

use super::agop::{forward_from, forward_from_preactivation, input_jacobians, layer_gradients, AgopOptions};
use super::metrics::*;
use crate::linalg::matmul;
use crate::model::config::{DeepLinearConfig, InitKind, MlpConfig, TwoLayerConfig};
use crate::model::{Activation, Model, ModelConfig, Parametrization};
use crate::rng::{normal_vec, stream};
use faer::{Accum, Mat, MatRef, Par};

fn randn(seed: u64, r: usize, c: usize) -> Mat<f64> {
    let v = normal_vec(&mut stream(seed, "nfa-test"), r * c, 1.0);
    Mat::from_fn(r, c, |i, j| v[i * c + j])
}

fn models() -> Vec<(String, Box<dyn Model>, Vec<f64>)> {
    let (d, c) = (5, 3);
    let mut out = Vec::new();
    let mut cfgs: Vec<(String, ModelConfig)> = Vec::new();
    for act in [Activation::Tanh, Activation::Gelu, Activation::Relu] {
        cfgs.push((
            format!("mlp {act:?}"),
            ModelConfig::Mlp(MlpConfig { hidden: vec![6, 4], activation: act, bias: true, output_scale: 0.8, parametrization: Parametrization::Ntk, init_scale: 1.0, init_std: None, multipliers: None, lr_layers: None }),
        ));
    }
    cfgs.push((
        "two_layer tanh bias".into(),
        ModelConfig::TwoLayer(TwoLayerConfig { width: 7, activation: Activation::Tanh, bias: true, output_scale: 1.3, parametrization: Parametrization::MeanField, init_scale: 1.0, init_std: None, multipliers: None, lr_layers: None }),
    ));
    cfgs.push((
        "deep_linear".into(),
        ModelConfig::DeepLinear(DeepLinearConfig { hidden: vec![4, 6], output_scale: 1.0, parametrization: Parametrization::Ntk, init_scale: 1.0, init: InitKind::Gaussian, init_std: None, multipliers: None, lr_layers: None }),
    ));
    for (i, (name, cfg)) in cfgs.into_iter().enumerate() {
        let (m, mut p) = cfg.build(d, c, &mut stream(i as u64, "init")).unwrap();
        // non-zero biases so they are exercised
        for b in m.blocks().iter().filter(|b| b.name.starts_with('b')) {
            for (k, v) in p[b.range()].iter_mut().enumerate() {
                *v = 0.1 * (k as f64 - 1.5);
            }
        }
        out.push((name, m, p));
    }
    out
}

/// Central difference of `f` (returns b × c outputs) w.r.t. entry (i, j) of `x`.
fn fd(f: &dyn Fn(MatRef<'_, f64>) -> Mat<f64>, x: &Mat<f64>, i: usize, j: usize, h: f64) -> Mat<f64> {
    let mut xp = x.clone();
    xp[(i, j)] += h;
    let mut xm = x.clone();
    xm[(i, j)] -= h;
    let (fp, fm) = (f(xp.as_ref()), f(xm.as_ref()));
    Mat::from_fn(fp.nrows(), fp.ncols(), |a, b| (fp[(a, b)] - fm[(a, b)]) / (2.0 * h))
}

#[test]
fn input_jacobians_match_finite_differences_for_every_layer() {
    for (name, model, p) in models() {
        let stack = model.as_layered().unwrap().stack(&p);
        let x = randn(7, 4, 5);
        // layer 0 against the model's own forward pass (checks the stack description too)
        let j0 = input_jacobians(&stack, 0, x.as_ref());
        let f = |xx: MatRef<'_, f64>| model.predict(&p, xx);
        for i in 0..4 {
            for k in 0..5 {
                let g = fd(&f, &x, i, k, 1e-6);
                for o in 0..3 {
                    let (a, b) = (j0[i][(o, k)], g[(i, o)]);
                    assert!((a - b).abs() < 1e-7 * (1.0 + a.abs()), "{name}: layer 1 J[{i}][{o},{k}] = {a} vs fd {b}");
                }
            }
        }
        // deeper layers against forward_from
        let fc = forward_from(&stack, 0, x.as_ref(), Par::Seq);
        for l in 1..stack.depth() {
            let xl = fc.inputs[l].clone();
            let jl = input_jacobians(&stack, l, xl.as_ref());
            let f = |xx: MatRef<'_, f64>| forward_from(&stack, l, xx, Par::Seq).out;
            for i in 0..4 {
                for k in 0..xl.ncols() {
                    let g = fd(&f, &xl, i, k, 1e-6);
                    for o in 0..3 {
                        let (a, b) = (jl[i][(o, k)], g[(i, o)]);
                        assert!((a - b).abs() < 1e-7 * (1.0 + a.abs()), "{name}: layer {} J = {a} vs fd {b}", l + 1);
                    }
                }
            }
        }
    }
}

fn outer_mean(js: &[Mat<f64>], center: bool) -> Mat<f64> {
    let (c, d) = (js[0].nrows(), js[0].ncols());
    let n = js.len() as f64;
    let mean = Mat::from_fn(c, d, |o, k| js.iter().map(|j| j[(o, k)]).sum::<f64>() / n);
    let mut g = Mat::zeros(d, d);
    for j in js {
        let jc = if center { Mat::from_fn(c, d, |o, k| j[(o, k)] - mean[(o, k)]) } else { j.clone() };
        matmul(g.as_mut(), Accum::Add, jc.transpose(), jc.as_ref(), 1.0 / n, Par::Seq);
    }
    g
}

fn max_abs_diff(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    let mut m = 0.0f64;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            m = m.max((a[(i, j)] - b[(i, j)]).abs());
        }
    }
    m
}

#[test]
fn batched_agop_equals_mean_of_per_sample_outer_products_and_the_ptk_identity_holds() {
    for (name, model, p) in models() {
        let stack = model.as_layered().unwrap().stack(&p);
        let x = randn(11, 13, 5);
        for center in [false, true] {
            let g = layer_gradients(&stack, x.as_ref(), &AgopOptions { batch: 4, center, par: Par::Seq }).unwrap();
            let g_one = layer_gradients(&stack, x.as_ref(), &AgopOptions { batch: 100, center, par: Par::Seq }).unwrap();
            let fc = forward_from(&stack, 0, x.as_ref(), Par::Seq);
            for l in 0..stack.depth() {
                let js = input_jacobians(&stack, l, fc.inputs[l].as_ref());
                let direct = outer_mean(&js, center);
                let scale = direct.norm_l2();
                assert!(max_abs_diff(g.agop[l].as_ref(), direct.as_ref()) < 1e-12 * (1.0 + scale), "{name} layer {} center={center}: batched AGOP differs", l + 1);
                assert!(max_abs_diff(g.agop[l].as_ref(), g_one.agop[l].as_ref()) < 1e-12 * (1.0 + scale), "{name}: batch size changes the AGOP");
                // identity G_l = m_l² W_lᵀ K_l W_l
                let m2 = stack.mults[l] * stack.mults[l];
                let s = sandwich(stack.weights[l], g.ptk[l].as_ref());
                let s = Mat::from_fn(s.nrows(), s.ncols(), |i, j| m2 * s[(i, j)]);
                assert!(max_abs_diff(g.agop[l].as_ref(), s.as_ref()) < 1e-12 * (1.0 + scale), "{name} layer {}: G ≠ m²WᵀKW", l + 1);
            }
        }
    }
}

#[test]
fn ptk_matches_finite_differences_through_preactivations() {
    for (name, model, p) in models() {
        let stack = model.as_layered().unwrap().stack(&p);
        let x = randn(5, 6, 5);
        let g = layer_gradients(&stack, x.as_ref(), &AgopOptions::default()).unwrap();
        for l in 0..stack.depth() {
            // pre-activations h_l = m_l x_l W_lᵀ + b_l
            let fc = forward_from(&stack, 0, x.as_ref(), Par::Seq);
            let w = stack.weights[l];
            let mut h = Mat::zeros(6, w.nrows());
            matmul(h.as_mut(), Accum::Replace, fc.inputs[l].as_ref(), w.transpose(), stack.mults[l], Par::Seq);
            if let Some(b) = stack.biases[l] {
                for i in 0..6 {
                    for (j, bj) in b.iter().enumerate() {
                        h[(i, j)] += bj;
                    }
                }
            }
            let f = |hh: MatRef<'_, f64>| forward_from_preactivation(&stack, l, hh, Par::Seq);
            let k = w.nrows();
            let mut ptf: Vec<Mat<f64>> = (0..6).map(|_| Mat::zeros(3, k)).collect();
            for i in 0..6 {
                for j in 0..k {
                    let d = fd(&f, &h, i, j, 1e-6);
                    for o in 0..3 {
                        ptf[i][(o, j)] = d[(i, o)];
                    }
                }
            }
            let kfd = outer_mean(&ptf, false);
            let err = max_abs_diff(kfd.as_ref(), g.ptk[l].as_ref());
            assert!(err < 1e-6 * (1.0 + kfd.norm_l2()), "{name} layer {}: PTK vs fd error {err}", l + 1);
        }
    }
}

#[test]
fn correlations_have_their_defining_values() {
    let a = Mat::from_fn(2, 2, |i, j| [[1.0, 2.0], [3.0, 4.0]][i][j]);
    let b = Mat::from_fn(2, 2, |i, j| [[2.0, 4.0], [6.0, 8.0]][i][j] + 5.0);
    assert!((correlation(a.as_ref(), b.as_ref(), Correlation::Pearson) - 1.0).abs() < 1e-15);
    // cosine of [1,2,3,4] and [7,9,11,13] = 110 / (√30 √420)
    let want = 110.0 / (30f64.sqrt() * 420f64.sqrt());
    assert!((correlation(a.as_ref(), b.as_ref(), Correlation::Cosine) - want).abs() < 1e-14);
    let c = Mat::from_fn(2, 2, |i, j| [[4.0, 3.0], [2.0, 1.0]][i][j]);
    assert!((correlation(a.as_ref(), c.as_ref(), Correlation::Pearson) + 1.0).abs() < 1e-15);
}

#[test]
fn fast_power_correlation_and_alpha_fits_recover_the_exponent() {
    let w = randn(3, 9, 6);
    let g = nfm(w.as_ref());
    let pp = PsdPower::new(g.as_ref()).unwrap();
    let target = pp.pow(0.3);
    for kind in [Correlation::Pearson, Correlation::Cosine] {
        let cor = pp.correlator(target.as_ref(), kind);
        for alpha in [0.1, 0.3, 0.5, 1.0, 1.7] {
            let direct = correlation(target.as_ref(), pp.pow(alpha).as_ref(), kind);
            assert!((cor.corr(alpha) - direct).abs() < 1e-12, "{kind:?} α={alpha}: fast {} vs direct {direct}", cor.corr(alpha));
        }
        let (a, r) = cor.argmax(0.02, 2.0);
        assert!((a - 0.3).abs() < 1e-6 && (r - 1.0).abs() < 1e-12, "{kind:?}: argmax α = {a}, ρ = {r}");
    }
    let a = alpha_by_spectrum(target.as_ref(), g.as_ref(), 1e-10).unwrap();
    assert!((a - 0.3).abs() < 1e-9, "spectral α = {a}");
    // psd power agrees with the library's psd_pow on a full-rank matrix
    let lib = crate::linalg::psd_pow(g.as_ref(), 0.3).unwrap();
    assert!(max_abs_diff(lib.as_ref(), target.as_ref()) < 1e-10);
}

#[test]
fn imbalance_is_zero_for_balanced_init_and_not_for_gaussian() {
    let mut rng = stream(1, "init");
    let p = crate::model::config::balanced_init(&[4, 6, 6, 3], 0.7, &mut rng).unwrap();
    let dl = crate::model::deep_linear::DeepLinear::new(vec![4, 6, 6, 3], vec![1.0; 3], vec![1.0; 3]);
    let im = imbalance(&dl.layer_weights(&p));
    assert!(im.iter().all(|v| *v < 1e-12), "{im:?}");
    let q = normal_vec(&mut rng, p.len(), 0.5);
    assert!(imbalance(&dl.layer_weights(&q)).iter().all(|v| *v > 0.1));
}
