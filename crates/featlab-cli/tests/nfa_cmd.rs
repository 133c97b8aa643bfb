//! `featlab nfa` on a small MLP whose weights the test writes with the safetensors crate:
//! the run's per-layer metrics equal the library's `TrainedNetwork::measure` (the code behind
//! `featlab.nfa.measure`) to 1e-12, and bad networks are clear errors naming the layer.

use faer::Mat;
use featlab::model::Activation;
use featlab::theory::nfa::{NfaOptions, TrainedNetwork};
use featlab::NdArray;
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("featlab-nfa-cmd-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn featlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_featlab"))
        .args(args)
        .output()
        .expect("binary runs")
}

/// Deterministic pseudo-random numbers in [-1, 1) (a 64-bit LCG; no RNG crate needed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
    fn mat(&mut self, r: usize, c: usize, scale: f64) -> Mat<f64> {
        Mat::from_fn(r, c, |_, _| scale * self.next())
    }
}

fn row_major(m: &Mat<f64>) -> Vec<f64> {
    NdArray::from_mat(m.as_ref()).data
}

/// Write `tensors` (name, shape, values) as an F64 safetensors file.
fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f64>)]) {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, s, _), b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F64, s.clone(), b).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// An nn.Sequential-style state dict: `0.weight`, `0.bias`, `2.weight`, `2.bias`, `4.weight`.
fn state_dict(ws: &[Mat<f64>], bs: &[Option<Vec<f64>>]) -> Vec<(String, Vec<usize>, Vec<f64>)> {
    let mut out = Vec::new();
    for (l, w) in ws.iter().enumerate() {
        out.push((
            format!("{}.weight", 2 * l),
            vec![w.nrows(), w.ncols()],
            row_major(w),
        ));
        if let Some(b) = &bs[l] {
            out.push((format!("{}.bias", 2 * l), vec![b.len()], b.clone()));
        }
    }
    out
}

#[test]
fn nfa_on_a_safetensors_mlp_matches_the_library() {
    let dir = tmpdir("match");
    let mut rng = Lcg(7);
    let dims = [5usize, 8, 6, 3];
    let w0: Vec<Mat<f64>> = (0..3)
        .map(|l| rng.mat(dims[l + 1], dims[l], 1.0 / (dims[l] as f64).sqrt()))
        .collect();
    // "trained" = initial + a structured update, so ΔW ≠ 0 and the C-NFC is defined
    let w: Vec<Mat<f64>> = w0
        .iter()
        .map(|m| {
            let d = rng.mat(m.nrows(), m.ncols(), 0.3);
            m + &d
        })
        .collect();
    let b: Vec<Option<Vec<f64>>> = vec![
        Some((0..8).map(|_| 0.1 * rng.next()).collect()),
        Some((0..6).map(|_| 0.1 * rng.next()).collect()),
        None,
    ];
    let x = rng.mat(40, 5, 1.0);
    let wpath = dir.join("model.safetensors");
    let ipath = dir.join("init.safetensors");
    let xpath = dir.join("x.npy");
    write_safetensors(&wpath, &state_dict(&w, &b));
    let b0 = vec![Some(vec![0.0; 8]), Some(vec![0.0; 6]), None];
    write_safetensors(&ipath, &state_dict(&w0, &b0));
    featlab::data::io::write_npy(&xpath, &NdArray::from_mat(x.as_ref())).unwrap();
    let out_dir = dir.join("run");
    let out = featlab(&[
        "nfa",
        "--weights",
        wpath.to_str().unwrap(),
        "--x",
        xpath.to_str().unwrap(),
        "--activation",
        "relu",
        "--init",
        ipath.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--no-png",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "featlab nfa failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in [
        "`0.weight`",
        "`2.weight`",
        "`4.weight`",
        "`0.bias`",
        "UC-NFC",
    ] {
        assert!(stdout.contains(name), "stdout lacks {name}:\n{stdout}");
    }
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("run.json")).unwrap()).unwrap();
    let net = TrainedNetwork::new(None, w.clone(), Some(b), None, Activation::Relu).unwrap();
    let lib = net
        .measure(
            Some(&w0),
            x.as_ref(),
            &NfaOptions::default(),
            faer::Par::Seq,
        )
        .unwrap();
    let layers = doc["summary"]["layers"].as_array().expect("summary.layers");
    assert_eq!(layers.len(), 3);
    for (l, m) in lib.layers.iter().enumerate() {
        for (key, want) in [
            ("uc_nfc", m.uc_nfc),
            ("c_nfc", m.c_nfc),
            ("nfm_agop_corr", m.nfm_agop_corr),
            ("alpha_fit", m.alpha_fit),
            ("rel_change", m.rel_change),
        ] {
            let got = layers[l][key].as_f64().unwrap_or(f64::NAN);
            assert!(want.is_finite(), "layer {} {key} not finite", l + 1);
            assert!(
                (got - want).abs() <= 1e-12,
                "layer {} {key}: CLI {got} vs library {want}",
                l + 1
            );
        }
        // the metrics are correlations of real matrices, not placeholders
        assert!(m.rel_change > 0.1 && m.uc_nfc.abs() <= 1.0 && m.c_nfc.abs() <= 1.0);
    }
    assert_eq!(layers[1]["name"], "2");
    assert_eq!(layers[0]["fan_in"], 5);
    for f in [
        "report.html",
        "layers.csv",
        "nfa/agop_1.npy",
        "nfa/nfm_3.npy",
        "plots/nfc_by_layer.svg",
        "plots/nfa_corr_vs_alpha.svg",
    ] {
        assert!(out_dir.join(f).is_file(), "missing {f}");
    }
    // the AGOP written equals the library's
    let g = featlab::data::io::read_npy(&out_dir.join("nfa/agop_2.npy")).unwrap();
    assert_eq!(g, NdArray::from_mat(lib.grads.agop[1].as_ref()));
}

fn assert_clean_error(out: &Output, must: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for s in must {
        assert!(stderr.contains(s), "stderr lacks `{s}`:\n{stderr}");
    }
}

#[test]
fn bad_networks_are_clear_errors_naming_the_layer() {
    let dir = tmpdir("errors");
    let mut rng = Lcg(3);
    let xpath = dir.join("x.npy");
    featlab::data::io::write_npy(&xpath, &NdArray::from_mat(rng.mat(10, 4, 1.0).as_ref())).unwrap();
    let x = xpath.to_str().unwrap();
    let good = [rng.mat(6, 4, 0.5), rng.mat(2, 6, 0.5)];
    let ok = dir.join("ok.safetensors");
    write_safetensors(&ok, &state_dict(&good, &[None, None]));
    // fc2 expects 7 inputs but fc1 has 6 outputs
    let bad = dir.join("bad.safetensors");
    write_safetensors(
        &bad,
        &[
            ("fc1.weight".into(), vec![6, 4], row_major(&good[0])),
            ("fc2.weight".into(), vec![2, 7], vec![0.1; 14]),
        ],
    );
    let out = featlab(&[
        "nfa",
        "--weights",
        bad.to_str().unwrap(),
        "--x",
        x,
        "--activation",
        "relu",
        "--out",
        dir.join("o1").to_str().unwrap(),
    ]);
    assert_clean_error(&out, &["layer 2 (`fc2`)", "2×7", "6 outputs"]);
    let out = featlab(&[
        "nfa",
        "--weights",
        ok.to_str().unwrap(),
        "--x",
        x,
        "--activation",
        "swish",
        "--out",
        dir.join("o2").to_str().unwrap(),
    ]);
    assert_clean_error(&out, &["--activation", "unknown activation `swish`"]);
    // inputs with the wrong width name the first layer
    let x5 = dir.join("x5.npy");
    featlab::data::io::write_npy(&x5, &NdArray::from_mat(rng.mat(10, 5, 1.0).as_ref())).unwrap();
    let out = featlab(&[
        "nfa",
        "--weights",
        ok.to_str().unwrap(),
        "--x",
        x5.to_str().unwrap(),
        "--activation",
        "relu",
        "--out",
        dir.join("o3").to_str().unwrap(),
    ]);
    assert_clean_error(&out, &["layer 1 (`0`)", "fan-in 4", "5 columns"]);
    // an init of another shape names the layer
    let init = dir.join("init.safetensors");
    write_safetensors(
        &init,
        &[
            ("0.weight".into(), vec![6, 4], vec![0.0; 24]),
            ("2.weight".into(), vec![3, 6], vec![0.0; 18]),
        ],
    );
    let out = featlab(&[
        "nfa",
        "--weights",
        ok.to_str().unwrap(),
        "--x",
        x,
        "--activation",
        "relu",
        "--init",
        init.to_str().unwrap(),
        "--out",
        dir.join("o4").to_str().unwrap(),
    ]);
    assert_clean_error(&out, &["initial weight of layer 2 (`2`)", "3×6"]);
    // a missing file names it
    let out = featlab(&[
        "nfa",
        "--weights",
        dir.join("nope.safetensors").to_str().unwrap(),
        "--x",
        x,
        "--activation",
        "relu",
    ]);
    assert_clean_error(&out, &["nope.safetensors"]);
}
