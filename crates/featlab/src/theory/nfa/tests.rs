//! Tests of the NFA metrics: Jacobians and PTKs against finite differences, the identity
//! G_l = m_l² W_lᵀK_lW_l, batching/centring, fast power correlations, the deep-linear
//! theorems on short runs, the early-time prediction, RFM gradients, SLO and probes.

use super::agop::{
    forward_from, forward_from_preactivation, input_jacobians, layer_gradients, AgopOptions,
};
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
            ModelConfig::Mlp(MlpConfig {
                hidden: vec![6, 4],
                activation: act,
                bias: true,
                output_scale: 0.8,
                parametrization: Parametrization::Ntk,
                init_scale: 1.0,
                init_std: None,
                multipliers: None,
                lr_layers: None,
            }),
        ));
    }
    cfgs.push((
        "two_layer tanh bias".into(),
        ModelConfig::TwoLayer(TwoLayerConfig {
            width: 7,
            activation: Activation::Tanh,
            bias: true,
            output_scale: 1.3,
            parametrization: Parametrization::MeanField,
            init_scale: 1.0,
            init_std: None,
            multipliers: None,
            lr_layers: None,
        }),
    ));
    cfgs.push((
        "deep_linear".into(),
        ModelConfig::DeepLinear(DeepLinearConfig {
            hidden: vec![4, 6],
            output_scale: 1.0,
            parametrization: Parametrization::Ntk,
            init_scale: 1.0,
            init: InitKind::Gaussian,
            init_std: None,
            multipliers: None,
            lr_layers: None,
        }),
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
fn fd(
    f: &dyn Fn(MatRef<'_, f64>) -> Mat<f64>,
    x: &Mat<f64>,
    i: usize,
    j: usize,
    h: f64,
) -> Mat<f64> {
    let mut xp = x.clone();
    xp[(i, j)] += h;
    let mut xm = x.clone();
    xm[(i, j)] -= h;
    let (fp, fm) = (f(xp.as_ref()), f(xm.as_ref()));
    Mat::from_fn(fp.nrows(), fp.ncols(), |a, b| {
        (fp[(a, b)] - fm[(a, b)]) / (2.0 * h)
    })
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
                    assert!(
                        (a - b).abs() < 1e-7 * (1.0 + a.abs()),
                        "{name}: layer 1 J[{i}][{o},{k}] = {a} vs fd {b}"
                    );
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
                        assert!(
                            (a - b).abs() < 1e-7 * (1.0 + a.abs()),
                            "{name}: layer {} J = {a} vs fd {b}",
                            l + 1
                        );
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
        let jc = if center {
            Mat::from_fn(c, d, |o, k| j[(o, k)] - mean[(o, k)])
        } else {
            j.clone()
        };
        matmul(
            g.as_mut(),
            Accum::Add,
            jc.transpose(),
            jc.as_ref(),
            1.0 / n,
            Par::Seq,
        );
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
            let g = layer_gradients(
                &stack,
                x.as_ref(),
                &AgopOptions {
                    batch: 4,
                    center,
                    par: Par::Seq,
                },
            )
            .unwrap();
            let g_one = layer_gradients(
                &stack,
                x.as_ref(),
                &AgopOptions {
                    batch: 100,
                    center,
                    par: Par::Seq,
                },
            )
            .unwrap();
            let fc = forward_from(&stack, 0, x.as_ref(), Par::Seq);
            for l in 0..stack.depth() {
                let js = input_jacobians(&stack, l, fc.inputs[l].as_ref());
                let direct = outer_mean(&js, center);
                let scale = direct.norm_l2();
                assert!(
                    max_abs_diff(g.agop[l].as_ref(), direct.as_ref()) < 1e-12 * (1.0 + scale),
                    "{name} layer {} center={center}: batched AGOP differs",
                    l + 1
                );
                assert!(
                    max_abs_diff(g.agop[l].as_ref(), g_one.agop[l].as_ref())
                        < 1e-12 * (1.0 + scale),
                    "{name}: batch size changes the AGOP"
                );
                // identity G_l = m_l² W_lᵀ K_l W_l
                let m2 = stack.mults[l] * stack.mults[l];
                let s = sandwich(stack.weights[l], g.ptk[l].as_ref());
                let s = Mat::from_fn(s.nrows(), s.ncols(), |i, j| m2 * s[(i, j)]);
                assert!(
                    max_abs_diff(g.agop[l].as_ref(), s.as_ref()) < 1e-12 * (1.0 + scale),
                    "{name} layer {}: G ≠ m²WᵀKW",
                    l + 1
                );
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
            matmul(
                h.as_mut(),
                Accum::Replace,
                fc.inputs[l].as_ref(),
                w.transpose(),
                stack.mults[l],
                Par::Seq,
            );
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
            assert!(
                err < 1e-6 * (1.0 + kfd.norm_l2()),
                "{name} layer {}: PTK vs fd error {err}",
                l + 1
            );
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
            assert!(
                (cor.corr(alpha) - direct).abs() < 1e-12,
                "{kind:?} α={alpha}: fast {} vs direct {direct}",
                cor.corr(alpha)
            );
        }
        let (a, r) = cor.argmax(0.02, 2.0);
        assert!(
            (a - 0.3).abs() < 1e-6 && (r - 1.0).abs() < 1e-12,
            "{kind:?}: argmax α = {a}, ρ = {r}"
        );
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
    let dl =
        crate::model::deep_linear::DeepLinear::new(vec![4, 6, 6, 3], vec![1.0; 3], vec![1.0; 3]);
    let im = imbalance(&dl.layer_weights(&p));
    assert!(im.iter().all(|v| *v < 1e-12), "{im:?}");
    let q = normal_vec(&mut rng, p.len(), 0.5);
    assert!(imbalance(&dl.layer_weights(&q)).iter().all(|v| *v > 0.1));
}

#[test]
fn rfm_agop_matches_finite_difference_gradients_of_the_predictor() {
    use super::rfm::{fit, Kernel, RfmConfig};
    let x = randn(21, 9, 3);
    let y = randn(22, 9, 2);
    for kernel in [Kernel::Gaussian, Kernel::Laplace] {
        for center in [false, true] {
            let cfg = RfmConfig {
                kernel,
                bandwidth: 2.0,
                iters: 0,
                reg: 1e-2,
                diag: false,
                center,
                batch: 4,
                ..Default::default()
            };
            let (mut rfm, _) = fit(
                x.as_ref(),
                y.as_ref(),
                x.as_ref(),
                y.as_ref(),
                &[],
                &cfg,
                Par::Seq,
            )
            .unwrap();
            // a non-identity SPD metric
            let a = randn(23, 3, 3);
            let mut m = nfm(a.as_ref());
            for i in 0..3 {
                m[(i, i)] += 0.5;
            }
            rfm.m = m;
            let g = rfm.agop();
            // FD gradient of f at x_i, excluding the self term (the package sets it to 0:
            // the Laplace kernel is not differentiable at distance 0)
            let mut grads: Vec<Mat<f64>> = Vec::new();
            for i in 0..9 {
                let mut coef = rfm.coef.clone();
                for c in 0..2 {
                    coef[(i, c)] = 0.0;
                }
                let r2 = super::rfm::Rfm {
                    m: rfm.m.clone(),
                    x: rfm.x.clone(),
                    coef,
                    cfg: cfg.clone(),
                    par: Par::Seq,
                };
                let xi = x.as_ref().subrows(i, 1).to_owned();
                let f = |xx: MatRef<'_, f64>| r2.predict(xx);
                let mut gi = Mat::zeros(2, 3);
                for k in 0..3 {
                    let d = fd(&f, &xi, 0, k, 1e-6);
                    for c in 0..2 {
                        gi[(c, k)] = d[(0, c)];
                    }
                }
                grads.push(gi);
            }
            let want = outer_mean(&grads, center);
            let err = max_abs_diff(g.as_ref(), want.as_ref());
            assert!(
                err < 1e-7 * (1.0 + want.norm_l2()),
                "{kernel:?} center={center}: RFM AGOP error {err}"
            );
        }
    }
}

#[test]
fn ptf_cosine_identity_of_the_alignment_view() {
    // cos(NFM, AGOP) = Σ_j s_j⁴ u_jᵀKu_j / (‖S²‖_F ‖S UᵀKU S‖_F) (Beaglehole et al. §2.2)
    let w = randn(31, 7, 5);
    let a = randn(32, 7, 7);
    let k = nfm(a.as_ref());
    let lhs = correlation(
        nfm(w.as_ref()).as_ref(),
        sandwich(w.as_ref(), k.as_ref()).as_ref(),
        Correlation::Cosine,
    );
    let (u, s, _) = crate::linalg::thin_svd(w.as_ref()).unwrap();
    let r = s.len();
    let utku = sandwich(u.as_ref(), k.as_ref());
    let num: f64 = (0..r).map(|j| s[j].powi(4) * utku[(j, j)]).sum();
    let n1: f64 = s.iter().map(|v| v.powi(4)).sum::<f64>().sqrt();
    let n2: f64 = (0..r)
        .flat_map(|i| (0..r).map(move |j| (i, j)))
        .map(|(i, j)| (s[i] * utku[(i, j)] * s[j]).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(
        (lhs - num / (n1 * n2)).abs() < 1e-12,
        "{lhs} vs {}",
        num / (n1 * n2)
    );
}

#[test]
fn slo_moves_each_weight_matrix_by_lr_times_its_rate() {
    use crate::train::{Problem, Stepper};
    let cfg = ModelConfig::Mlp(MlpConfig {
        hidden: vec![6, 5],
        activation: Activation::Tanh,
        bias: false,
        output_scale: 1.0,
        parametrization: Parametrization::Standard,
        init_scale: 1.0,
        init_std: None,
        multipliers: None,
        lr_layers: None,
    });
    let (model, p) = cfg.build(4, 2, &mut stream(3, "init")).unwrap();
    let data = crate::data::Dataset::new(randn(1, 20, 4), randn(2, 20, 2)).unwrap();
    let mut problem = Problem::new(
        model.as_ref(),
        &data,
        crate::model::Loss::Mse,
        0.0,
        Par::Seq,
    );
    let rates = [0.3, 0.0, 0.05];
    let mut st = crate::train::layer_normalized::LayerNormalizedSgd::new(
        model.as_ref(),
        0.5,
        8,
        &rates,
        p.clone(),
        stream(4, "b"),
    )
    .unwrap();
    st.step(&mut problem, 1.0).unwrap();
    for (bi, r) in model
        .as_layered()
        .unwrap()
        .weight_blocks()
        .into_iter()
        .zip(rates)
    {
        let range = model.blocks()[bi].range();
        let mv: f64 = st.params()[range.clone()]
            .iter()
            .zip(&p[range])
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(
            (mv - 0.5 * r).abs() < 1e-12,
            "block {bi}: moved {mv}, want {}",
            0.5 * r
        );
    }
    assert!((st.t() - 0.5).abs() < 1e-15);
}

#[test]
fn probe_separates_separable_classes_and_digits_load_when_present() {
    let lab = crate::data::labelled::LabelledDataConfig {
        kind: crate::data::labelled::Source::Clusters,
        path: "unused".into(),
        labels: None,
        files: vec![],
        n_train: Some(150),
        n_test: 60,
        label_shift: 0.1,
        standardize: crate::data::labelled::Standardize::Feature,
        n: Some(210),
        d: Some(6),
        classes: Some(crate::data::labelled::ClassSelection::Count(3)),
        separation: Some(12.0),
        ..toml::from_str("kind = \"clusters\"").unwrap()
    };
    let l = lab.build(0).unwrap();
    let acc = super::probe::probe_accuracy(
        l.train.x.as_ref(),
        l.train.y.as_ref(),
        l.test.x.as_ref(),
        &l.test_labels,
        1e-3,
    )
    .unwrap();
    assert!(acc > 0.95, "probe accuracy {acc}");
    // missing file: a config error that tells the user to run the fetch script
    let mut dig = lab.clone();
    dig.kind = crate::data::labelled::Source::Digits;
    dig.path = "/nonexistent/digits.csv.gz".into();
    let e = dig
        .build(0)
        .err()
        .expect("missing file must fail")
        .to_string();
    assert!(
        e.contains("fetch-digits.sh") && e.contains("data.path"),
        "{e}"
    );
    let real =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits/digits.csv.gz");
    if !real.exists() {
        println!(
            "note: {} absent (run scripts/fetch-digits.sh); skipping the real-data check",
            real.display()
        );
        return;
    }
    dig.path = real;
    dig.classes = None;
    dig.n_train = None;
    dig.n_test = 297;
    let d = dig.build(0).unwrap();
    assert_eq!(
        (d.train.n(), d.test.n(), d.train.d(), d.train.c()),
        (1500, 297, 64, 10)
    );
    let acc = super::probe::probe_accuracy(
        d.train.x.as_ref(),
        d.train.y.as_ref(),
        d.test.x.as_ref(),
        &d.test_labels,
        1e-3,
    )
    .unwrap();
    assert!(acc > 0.9, "linear probe on raw digits: {acc}");
}

#[test]
fn early_time_c_nfc_prediction_approaches_the_exact_limit_as_width_grows() {
    use super::early::predict_c_nfc_layer1;
    let (n, d, c) = (24, 8, 3);
    let x = randn(41, n, d);
    let y = randn(42, n, c);
    let neg_y = Mat::from_fn(n, c, |i, j| -y[(i, j)]);
    let pred = predict_c_nfc_layer1(
        x.as_ref(),
        neg_y.as_ref(),
        3,
        Activation::Relu,
        Correlation::Pearson,
    )
    .unwrap();
    let mut errs = Vec::new();
    for width in [32usize, 1024] {
        let mut vals = Vec::new();
        for seed in 0..3 {
            let cfg = ModelConfig::Mlp(MlpConfig {
                hidden: vec![width, width],
                activation: Activation::Relu,
                bias: false,
                output_scale: 1.0,
                parametrization: Parametrization::Standard,
                init_scale: 0.05,
                init_std: None,
                multipliers: None,
                lr_layers: None,
            });
            let (model, p) = cfg.build(d, c, &mut stream(seed, "init")).unwrap();
            let data = crate::data::Dataset::new(x.clone(), y.clone()).unwrap();
            let mut problem = crate::train::Problem::new(
                model.as_ref(),
                &data,
                crate::model::Loss::Mse,
                0.0,
                Par::Seq,
            );
            let mut g = vec![0.0; p.len()];
            problem.loss_grad(&p, &mut g);
            let lm = model.as_layered().unwrap();
            let stack = lm.stack(&p);
            let w0 = super::measure::flatten_weights(&stack);
            let dirs: Vec<Vec<f64>> = lm
                .weight_blocks()
                .iter()
                .map(|&b| g[model.blocks()[b].range()].to_vec())
                .collect();
            let m = super::measure(
                &stack,
                &w0,
                x.as_ref(),
                &super::NfaOptions::default(),
                Par::Seq,
                Some(&dirs),
            )
            .unwrap();
            vals.push(m.layers[0].c_nfc);
        }
        let mean = vals.iter().sum::<f64>() / 3.0;
        errs.push((mean - pred).abs());
        println!("width {width}: exact t→0⁺ C-NFC₁ {vals:?}, prediction {pred}");
    }
    assert!(
        errs[1] < 0.03,
        "wide-network C-NFC differs from the prediction by {}",
        errs[1]
    );
    assert!(errs[1] < errs[0], "no convergence with width: {errs:?}");
}

/// The previous implementation of [`layer_gradients`] (one backward pass per output,
/// full d_l × d_l Grams of the per-sample Jacobians), kept as the reference the blocked
/// GEMM version is checked against.
fn reference_layer_gradients(
    stack: &crate::model::LayerStack<'_>,
    x: MatRef<'_, f64>,
    opts: &AgopOptions,
) -> crate::Result<super::agop::LayerGradients> {
    let depth = stack.depth();
    let n = x.nrows();
    if n == 0 {
        return Err(crate::Error::Shape("AGOP of an empty dataset".into()));
    }
    if opts.batch == 0 {
        return Err(crate::Error::config("nfa.batch", "must be ≥ 1"));
    }
    if x.ncols() != stack.fan_in(0) {
        return Err(crate::Error::Shape(format!(
            "AGOP: inputs have {} columns, the model expects {}",
            x.ncols(),
            stack.fan_in(0)
        )));
    }
    let c = stack.fan_out(depth - 1);
    let mut agop: Vec<Mat<f64>> = (0..depth)
        .map(|l| Mat::zeros(stack.fan_in(l), stack.fan_in(l)))
        .collect();
    let mut ptk: Vec<Mat<f64>> = (0..depth)
        .map(|l| Mat::zeros(stack.fan_out(l), stack.fan_out(l)))
        .collect();
    // sums over samples of J and P per output (for centring): [layer][output] -> vector
    let mut sum_j: Vec<Vec<Vec<f64>>> = (0..depth)
        .map(|l| vec![vec![0.0; stack.fan_in(l)]; c])
        .collect();
    let mut sum_p: Vec<Vec<Vec<f64>>> = (0..depth)
        .map(|l| vec![vec![0.0; stack.fan_out(l)]; c])
        .collect();
    let linear = stack.activation == Activation::Linear;
    let mut start = 0;
    while start < n {
        let b = opts.batch.min(n - start);
        let xb = x.subrows(start, b);
        let fc = forward_from(stack, 0, xb, opts.par);
        for o in 0..c {
            let mut p = Mat::from_fn(b, c, |_, j| if j == o { 1.0 } else { 0.0 });
            for l in (0..depth).rev() {
                let w = stack.weights[l];
                matmul(
                    ptk[l].as_mut(),
                    Accum::Add,
                    p.transpose(),
                    p.as_ref(),
                    1.0,
                    opts.par,
                );
                let mut j = Mat::zeros(b, w.ncols());
                matmul(
                    j.as_mut(),
                    Accum::Replace,
                    p.as_ref(),
                    w,
                    stack.mults[l],
                    opts.par,
                );
                matmul(
                    agop[l].as_mut(),
                    Accum::Add,
                    j.transpose(),
                    j.as_ref(),
                    1.0,
                    opts.par,
                );
                if opts.center {
                    for (col, s) in sum_j[l][o].iter_mut().enumerate() {
                        *s += j.col_as_slice(col).iter().sum::<f64>();
                    }
                    for (col, s) in sum_p[l][o].iter_mut().enumerate() {
                        *s += p.col_as_slice(col).iter().sum::<f64>();
                    }
                }
                if l > 0 {
                    if !linear {
                        let d = &fc.dact[l - 1];
                        for col in 0..j.ncols() {
                            for (v, &dv) in
                                j.col_as_slice_mut(col).iter_mut().zip(d.col_as_slice(col))
                            {
                                *v *= dv;
                            }
                        }
                    }
                    p = j;
                }
            }
        }
        start += b;
    }
    let inv_n = 1.0 / n as f64;
    for l in 0..depth {
        scale_and_center(&mut agop[l], &sum_j[l], inv_n, opts.center);
        scale_and_center(&mut ptk[l], &sum_p[l], inv_n, opts.center);
    }
    Ok(super::agop::LayerGradients { agop, ptk })
}

/// `M ← M/n − Σ_o s̄_o s̄_oᵀ` with `s̄_o = s_o/n` (centring) or `M ← M/n`; symmetrised.
fn scale_and_center(m: &mut Mat<f64>, sums: &[Vec<f64>], inv_n: f64, center: bool) {
    let k = m.nrows();
    for j in 0..k {
        for i in 0..k {
            let mut v = m[(i, j)] * inv_n;
            if center {
                for s in sums {
                    v -= s[i] * inv_n * s[j] * inv_n;
                }
            }
            m[(i, j)] = v;
        }
    }
    for j in 0..k {
        for i in 0..j {
            let v = 0.5 * (m[(i, j)] + m[(j, i)]);
            m[(i, j)] = v;
            m[(j, i)] = v;
        }
    }
}

/// An MLP 4 → 7 → 6 → 5 → 3 with biases (non-zero) and activation `act`.
fn mlp_with(act: Activation, seed: u64) -> (Box<dyn Model>, Vec<f64>) {
    let cfg = ModelConfig::Mlp(MlpConfig {
        hidden: vec![7, 6, 5],
        activation: act,
        bias: true,
        output_scale: 0.8,
        parametrization: Parametrization::Ntk,
        init_scale: 1.0,
        init_std: None,
        multipliers: None,
        lr_layers: None,
    });
    let (m, mut p) = cfg.build(4, 3, &mut stream(seed, "init")).unwrap();
    for b in m.blocks().iter().filter(|b| b.name.starts_with('b')) {
        for (k, v) in p[b.range()].iter_mut().enumerate() {
            *v = 0.1 * (k as f64 - 1.5);
        }
    }
    (m, p)
}

const ALL_ACTIVATIONS: [Activation; 5] = [
    Activation::Linear,
    Activation::Relu,
    Activation::Tanh,
    Activation::Quadratic,
    Activation::Gelu,
];

fn rel_diff(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    max_abs_diff(a, b) / b.norm_l2().max(f64::MIN_POSITIVE)
}

#[test]
fn blocked_agop_matches_the_reference_implementation() {
    let mut cases: Vec<(String, Box<dyn Model>, Vec<f64>)> = models();
    for (i, act) in ALL_ACTIVATIONS.into_iter().enumerate() {
        let (m, p) = mlp_with(act, 20 + i as u64);
        cases.push((format!("mlp 3 hidden {act:?}"), m, p));
    }
    // 203 samples: several blocks, the last one shorter
    let x = randn(21, 203, 5);
    for (name, model, p) in &cases {
        let stack = model.as_layered().unwrap().stack(p);
        let x = x.as_ref().subcols(0, stack.fan_in(0));
        for center in [false, true] {
            for batch in [50, 512] {
                let opts = AgopOptions {
                    batch,
                    center,
                    par: Par::Seq,
                };
                let new = layer_gradients(&stack, x, &opts).unwrap();
                let old = reference_layer_gradients(&stack, x, &opts).unwrap();
                // centring cancels (exactly, for the last layer): errors are relative to
                // the uncentred second moment, the scale of what is subtracted
                let raw = reference_layer_gradients(
                    &stack,
                    x,
                    &AgopOptions {
                        center: false,
                        ..opts
                    },
                )
                .unwrap();
                for l in 0..stack.depth() {
                    for (what, a, b, scale) in [
                        ("AGOP", &new.agop[l], &old.agop[l], &raw.agop[l]),
                        ("PTK", &new.ptk[l], &old.ptk[l], &raw.ptk[l]),
                    ] {
                        let e = max_abs_diff(a.as_ref(), b.as_ref()) / scale.norm_l2();
                        assert!(
                            e < 1e-12,
                            "{name} layer {} {what} center={center} batch={batch}: {e:e}",
                            l + 1
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn agop_is_bitwise_identical_for_any_thread_count() {
    let (model, p) = mlp_with(Activation::Gelu, 3);
    let stack = model.as_layered().unwrap().stack(&p);
    let x = randn(4, 517, 4);
    for center in [false, true] {
        let opts = |par| AgopOptions {
            batch: 40,
            center,
            par,
        };
        let seq = layer_gradients(&stack, x.as_ref(), &opts(Par::Seq)).unwrap();
        for threads in [2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let par = pool
                .install(|| layer_gradients(&stack, x.as_ref(), &opts(Par::rayon(threads))))
                .unwrap();
            for l in 0..stack.depth() {
                for (a, b) in [(&seq.agop[l], &par.agop[l]), (&seq.ptk[l], &par.ptk[l])] {
                    for j in 0..a.ncols() {
                        for i in 0..a.nrows() {
                            assert_eq!(
                                a[(i, j)].to_bits(),
                                b[(i, j)].to_bits(),
                                "layer {} entry ({i}, {j}) differs on {threads} threads",
                                l + 1
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn agop_of_one_sample_matches_finite_differences_of_the_output() {
    for act in ALL_ACTIVATIONS {
        let (model, p) = mlp_with(act, 9);
        let stack = model.as_layered().unwrap().stack(&p);
        let x = randn(8, 1, 4);
        let g = layer_gradients(&stack, x.as_ref(), &AgopOptions::default()).unwrap();
        let fc = forward_from(&stack, 0, x.as_ref(), Par::Seq);
        for l in 0..stack.depth() {
            // J_l (c × d_l) by central differences of the output w.r.t. the layer input
            let xl = fc.inputs[l].clone();
            let f = |xx: MatRef<'_, f64>| forward_from(&stack, l, xx, Par::Seq).out;
            let d = xl.ncols();
            let jac = Mat::from_fn(3, d, |o, j| fd(&f, &xl, 0, j, 1e-5)[(0, o)]);
            let mut want = Mat::zeros(d, d);
            matmul(
                want.as_mut(),
                Accum::Replace,
                jac.transpose(),
                jac.as_ref(),
                1.0,
                Par::Seq,
            );
            let e = rel_diff(g.agop[l].as_ref(), want.as_ref());
            assert!(e < 1e-7, "{act:?} layer {}: AGOP vs fd error {e:e}", l + 1);
        }
    }
}

#[test]
fn gram_lower_is_the_lower_triangle_of_the_product() {
    let a = randn(12, 150, 140);
    let mut full = Mat::zeros(140, 140);
    matmul(
        full.as_mut(),
        Accum::Replace,
        a.transpose(),
        a.as_ref(),
        2.0,
        Par::Seq,
    );
    let mut low = Mat::from_fn(140, 140, |i, j| (i + j) as f64);
    crate::linalg::gram_lower(low.as_mut(), a.as_ref(), 2.0);
    for j in 0..140 {
        for i in j..140 {
            let want = full[(i, j)] + (i + j) as f64;
            assert!((low[(i, j)] - want).abs() < 1e-12 * (1.0 + want.abs()));
        }
    }
}

/// `xMzᵀ`-based squared Mahalanobis distances (the previous implementation's).
fn reference_sq_dists(a: MatRef<'_, f64>, b: MatRef<'_, f64>, m: MatRef<'_, f64>) -> Mat<f64> {
    let d = a.ncols();
    let mut bm = Mat::zeros(b.nrows(), d);
    matmul(bm.as_mut(), Accum::Replace, b, m, 1.0, Par::Seq);
    let mut am = Mat::zeros(a.nrows(), d);
    matmul(am.as_mut(), Accum::Replace, a, m, 1.0, Par::Seq);
    let mut cross = Mat::zeros(a.nrows(), b.nrows());
    matmul(
        cross.as_mut(),
        Accum::Replace,
        a,
        bm.transpose(),
        1.0,
        Par::Seq,
    );
    let na: Vec<f64> = (0..a.nrows())
        .map(|i| (0..d).map(|k| a[(i, k)] * am[(i, k)]).sum())
        .collect();
    let nb: Vec<f64> = (0..b.nrows())
        .map(|i| (0..d).map(|k| b[(i, k)] * bm[(i, k)]).sum())
        .collect();
    Mat::from_fn(a.nrows(), b.nrows(), |i, j| {
        (na[i] + nb[j] - 2.0 * cross[(i, j)]).max(0.0)
    })
}

/// The previous RFM AGOP (per-output dense weight matrices), kept as the reference the
/// blocked GEMM version is checked against.
fn reference_rfm_agop(r: &super::rfm::Rfm) -> Mat<f64> {
    let (n, d) = (r.x.nrows(), r.x.ncols());
    let c = r.coef.ncols();
    let l = r.cfg.bandwidth;
    let mut g = Mat::<f64>::zeros(d, d);
    let mut sums = vec![vec![0.0; d]; c];
    let mut start = 0;
    while start < n {
        let b = r.cfg.batch.min(n - start);
        let xb = r.x.as_ref().subrows(start, b);
        let d2 = reference_sq_dists(xb, r.x.as_ref(), r.m.as_ref());
        let w = Mat::from_fn(b, n, |i, j| {
            if start + i == j {
                // the self pair's term is 0 (as in the blocked version, exactly)
                return 0.0;
            }
            let dist = d2[(i, j)].sqrt();
            match r.cfg.kernel {
                super::rfm::Kernel::Laplace => {
                    if dist < 1e-10 {
                        0.0
                    } else {
                        (-dist / l).exp() / (l * dist)
                    }
                }
                super::rfm::Kernel::Gaussian => (-d2[(i, j)] / (2.0 * l * l)).exp() / (l * l),
            }
        });
        for (o, sums_o) in sums.iter_mut().enumerate() {
            // A = w ⊙ a_oᵀ (b × n); u = Σ_j A_ij (x_i − x_j) = rowsum(A) x_i − A X
            let a = Mat::from_fn(b, n, |i, j| w[(i, j)] * r.coef[(j, o)]);
            let mut ax = Mat::zeros(b, d);
            matmul(
                ax.as_mut(),
                Accum::Replace,
                a.as_ref(),
                r.x.as_ref(),
                1.0,
                Par::Seq,
            );
            let u = Mat::from_fn(b, d, |i, k| {
                let rs: f64 = (0..n).map(|j| a[(i, j)]).sum();
                rs * xb[(i, k)] - ax[(i, k)]
            });
            // gradients: −u M (rows)
            let mut gr = Mat::zeros(b, d);
            matmul(
                gr.as_mut(),
                Accum::Replace,
                u.as_ref(),
                r.m.as_ref(),
                -1.0,
                Par::Seq,
            );
            if r.cfg.diag {
                for k in 0..d {
                    g[(k, k)] += (0..b).map(|i| gr[(i, k)] * gr[(i, k)]).sum::<f64>();
                }
            } else {
                matmul(
                    g.as_mut(),
                    Accum::Add,
                    gr.transpose(),
                    gr.as_ref(),
                    1.0,
                    Par::Seq,
                );
            }
            for (k, s) in sums_o.iter_mut().enumerate() {
                *s += (0..b).map(|i| gr[(i, k)]).sum::<f64>();
            }
        }
        start += b;
    }
    let inv = 1.0 / n as f64;
    Mat::from_fn(d, d, |i, j| {
        if r.cfg.diag && i != j {
            return 0.0;
        }
        let mut v = g[(i, j)] * inv;
        if r.cfg.center {
            for s in &sums {
                v -= s[i] * inv * s[j] * inv;
            }
        }
        v
    })
}

#[test]
fn blocked_rfm_agop_matches_the_reference_implementation() {
    use super::rfm::{Kernel, Rfm, RfmConfig};
    let (n, d, c) = (301, 6, 3);
    let x = randn(41, n, d);
    let a = randn(42, d, d);
    let mut m = nfm(a.as_ref());
    for i in 0..d {
        m[(i, i)] += 0.5;
    }
    for kernel in [Kernel::Gaussian, Kernel::Laplace] {
        for (center, diag) in [(false, false), (true, false), (false, true)] {
            let cfg = RfmConfig {
                kernel,
                bandwidth: 3.0,
                center,
                diag,
                batch: 64,
                ..Default::default()
            };
            let mut r = Rfm::new(x.as_ref(), &cfg, Par::Seq);
            r.m = if diag {
                Mat::from_fn(d, d, |i, j| if i == j { m[(i, i)] } else { 0.0 })
            } else {
                m.clone()
            };
            r.coef = randn(43, n, c);
            let want = reference_rfm_agop(&r);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            let got = r.agop();
            r.par = Par::rayon(2);
            let got2 = pool.install(|| r.agop());
            let e = max_abs_diff(got.as_ref(), want.as_ref()) / want.norm_l2();
            assert!(e < 1e-12, "{kernel:?} center={center} diag={diag}: {e:e}");
            for j in 0..d {
                for i in 0..d {
                    assert_eq!(got[(i, j)].to_bits(), got2[(i, j)].to_bits());
                }
            }
        }
    }
}

/// A small RFM problem: n points in d dimensions, c outputs, a non-identity SPD metric.
fn rfm_problem(seed: u64, n: usize, d: usize, c: usize) -> (Mat<f64>, Mat<f64>, Mat<f64>) {
    let x = randn(seed, n, d);
    let y = randn(seed + 1, n, c);
    let a = randn(seed + 2, d, d);
    let mut m = nfm(a.as_ref());
    for i in 0..d {
        m[(i, i)] += 0.5;
    }
    (x, y, m)
}

#[test]
fn rfm_cg_solve_matches_the_dense_cholesky_solve() {
    use super::rfm::{Kernel, Rfm, RfmConfig, Solver};
    let (n, d, c) = (240, 5, 3);
    let (x, y, m) = rfm_problem(51, n, d, c);
    for kernel in [Kernel::Gaussian, Kernel::Laplace] {
        for rank in [30, 240] {
            let cfg = RfmConfig {
                kernel,
                bandwidth: 3.0,
                reg: 1e-2,
                cg_tol: 1e-13,
                cg_rank: rank,
                ..Default::default()
            };
            let mut dense = Rfm::new(x.as_ref(), &cfg, Par::Seq);
            dense.m = m.clone();
            let di = dense.solve_dense(y.as_ref()).unwrap();
            assert_eq!(di.solver, Solver::Cholesky);
            let mut cg = Rfm::new(x.as_ref(), &cfg, Par::Seq);
            cg.m = m.clone();
            let ci = cg.solve_cg(y.as_ref()).unwrap();
            assert_eq!(ci.solver, Solver::Cg);
            assert!(ci.rel_residual <= 1e-13, "{ci:?}");
            // the exact Nyström factor (r = n) makes P = K + reg·I: one or two steps
            if rank == n {
                assert!(ci.iterations <= 3, "{kernel:?}: {ci:?}");
            } else {
                assert!(
                    ci.iterations > 3 && ci.iterations < 200,
                    "{kernel:?}: {ci:?}"
                );
            }
            let e = max_abs_diff(cg.coef.as_ref(), dense.coef.as_ref()) / dense.coef.norm_max();
            assert!(
                e < 1e-10,
                "{kernel:?} rank {rank}: CG vs Cholesky {e:e} ({ci:?})"
            );
        }
    }
    // auto picks the Cholesky below dense_max_gib, CG above
    let small = RfmConfig::default();
    assert_eq!(Rfm::solver_for(&small, 20_000), Solver::Cholesky);
    assert_eq!(Rfm::solver_for(&small, 24_000), Solver::Cg);
    let tiny = RfmConfig {
        dense_max_gib: 0.0,
        ..Default::default()
    };
    assert_eq!(Rfm::solver_for(&tiny, 10), Solver::Cg);
    // a CG that cannot converge in time says so, naming the key
    let cfg = RfmConfig {
        cg_max_iters: 1,
        cg_rank: 2,
        cg_tol: 1e-14,
        solver: Solver::Cg,
        ..Default::default()
    };
    let mut r = Rfm::new(x.as_ref(), &cfg, Par::Seq);
    let err = r.solve(y.as_ref()).unwrap_err().to_string();
    assert!(err.contains("rfm.cg_max_iters"), "{err}");
}

#[test]
fn rfm_fit_is_bitwise_identical_for_any_thread_count() {
    use super::rfm::{fit, Kernel, RfmConfig, Solver};
    let (n, d, c) = (700, 8, 3);
    let (x, y, _) = rfm_problem(61, n, d, c);
    let (xt, yt, _) = rfm_problem(71, 50, d, c);
    for (kernel, solver) in [
        (Kernel::Laplace, Solver::Cholesky),
        (Kernel::Gaussian, Solver::Cholesky),
        (Kernel::Laplace, Solver::Cg),
    ] {
        let cfg = RfmConfig {
            kernel,
            bandwidth: 4.0,
            iters: 2,
            reg: 1e-2,
            solver,
            cg_rank: 100,
            ..Default::default()
        };
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let par = if threads == 1 {
                Par::Seq
            } else {
                Par::rayon(threads)
            };
            pool.install(|| {
                fit(
                    x.as_ref(),
                    y.as_ref(),
                    xt.as_ref(),
                    yt.as_ref(),
                    &[],
                    &cfg,
                    par,
                )
            })
            .unwrap()
        };
        let (r1, h1) = run(1);
        for threads in [2, 3] {
            let (r2, h2) = run(threads);
            for j in 0..d {
                for i in 0..d {
                    assert_eq!(
                        r1.m[(i, j)].to_bits(),
                        r2.m[(i, j)].to_bits(),
                        "{kernel:?} {solver:?}"
                    );
                }
            }
            for (a, b) in h1.iter().zip(&h2) {
                assert_eq!(a.train_mse.to_bits(), b.train_mse.to_bits());
                assert_eq!(a.test_mse.to_bits(), b.test_mse.to_bits());
            }
        }
    }
}
