//! AGF on your own data from the CLI: `experiment = "agf"`, `[problem] kind = "files"` with
//! x.npy / y.npy the test writes. The AGF levels equal the closed-form levels computed by
//! the library from the same arrays, and missing or bad files are clear errors.

use faer::Mat;
use featlab::data::Dataset;
use featlab::theory::agf::linear::linear_theory;
use featlab::NdArray;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("featlab-agf-files-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Deterministic numbers in [-1, 1).
fn lcg(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// x (n × 4) and y = x Bᵀ (n × 2) for a rank-2 B with well separated singular directions.
fn linear_data(n: usize) -> (Mat<f64>, Mat<f64>) {
    let mut s = 11;
    let x = Mat::from_fn(n, 4, |_, _| lcg(&mut s));
    let b = [[3.0, 0.5, 0.0, -0.2], [0.0, 0.3, 1.0, 0.1]];
    let y = Mat::from_fn(n, 2, |i, k| (0..4).map(|j| b[k][j] * x[(i, j)]).sum());
    (x, y)
}

fn write(dir: &Path, name: &str, m: &Mat<f64>) -> String {
    let p = dir.join(name);
    featlab::data::io::write_npy(&p, &NdArray::from_mat(m.as_ref())).unwrap();
    p.display().to_string()
}

fn run_config(dir: &Path, toml: &str) -> (Output, PathBuf) {
    let cfg = dir.join("cfg.toml");
    std::fs::write(&cfg, toml).unwrap();
    let out_dir = dir.join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_featlab"))
        .args([
            "run",
            cfg.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--no-png",
            "-q",
        ])
        .output()
        .unwrap();
    (out, out_dir)
}

#[test]
fn agf_linear_on_files_reaches_the_closed_form_levels() {
    let dir = tmpdir("linear");
    let (x, y) = linear_data(40);
    let xp = write(&dir, "x.npy", &x);
    let yp = write(&dir, "y.npy", &y);
    let (out, run) = run_config(
        &dir,
        &format!(
            "experiment = \"agf\"\nseed = 4\n[problem]\nkind = \"files\"\nx = {xp:?}\ny = {yp:?}\nmodel = \"linear\"\nwidth = 2\nalpha = 1e-6\n[gf]\npoints = 801\nt_max = 100.0\n"
        ),
    );
    assert!(
        out.status.success(),
        "featlab run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    let s = &doc["summary"];
    assert_eq!(s["problem"], "files");
    assert_eq!(s["data"]["n"], 40);
    assert_eq!(s["data"]["model"], "linear");
    assert_eq!(doc["config"]["problem"]["alpha"], 1e-6);
    let th = linear_theory(&Dataset::new(x, y).unwrap(), 2).unwrap();
    let rounds = s["agf_rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2, "a rank-2 teacher and width 2: two drops");
    for (k, r) in rounds.iter().enumerate() {
        let got = r["loss"].as_f64().unwrap();
        let want = th.levels[k + 1];
        assert!(
            (got - want).abs() <= 1e-9 * th.levels[0],
            "level {}: AGF {got} vs closed form {want}",
            k + 1
        );
    }
    // gradient flow from the same init shows both drops
    assert_eq!(s["all_drops_found_in_gf"], true);
    assert!(run.join("plots").is_dir() && run.join("report.html").is_file());
}

#[test]
fn agf_files_errors_name_the_key_and_file() {
    let dir = tmpdir("errors");
    let (x, y) = linear_data(10);
    let xp = write(&dir, "x.npy", &x);
    let yp = write(&dir, "y.npy", &y);
    let y9 = write(&dir, "y9.npy", &Mat::from_fn(9, 2, |i, j| (i + j) as f64));
    let cfg = |x: &str, y: &str, extra: &str| {
        format!(
            "experiment = \"agf\"\n[problem]\nkind = \"files\"\nx = {x:?}\ny = {y:?}\n{extra}\n"
        )
    };
    let check = |toml: String, must: &[&str]| {
        let (out, _) = run_config(&dir, &toml);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        for m in must {
            assert!(err.contains(m), "stderr lacks `{m}`:\n{err}");
        }
    };
    let missing = dir.join("nope.npy").display().to_string();
    check(
        cfg(&missing, &yp, "model = \"linear\"\nwidth = 2"),
        &["problem.x", "nope.npy", "cannot load"],
    );
    check(
        cfg(&xp, &y9, "model = \"linear\"\nwidth = 2"),
        &["has 10 rows (samples)", "y9.npy", "has 9"],
    );
    check(
        cfg(&xp, &yp, "model = \"relu\""),
        &["problem.width", "needs `width`"],
    );
    check(
        cfg(&xp, &yp, "model = \"diagonal\""),
        &["diagonal net has one output, y has 2 columns"],
    );
    check(cfg(&xp, &yp, "model = \"mlp\"\nwidth = 2"), &["mlp"]);
}
