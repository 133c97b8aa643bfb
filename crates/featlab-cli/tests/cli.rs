//! End-to-end tests of the `featlab` binary: the output contract, determinism across
//! thread counts, and clear errors for bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn featlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_featlab"))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("featlab-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Output {
    featlab().args(args).output().expect("binary runs")
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// A failed run: exit code 1, one clear message on stderr, no panic.
fn assert_clean_error(out: &Output, must_contain: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1, got {:?}; stderr:\n{stderr}",
        out.status.code()
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "panic instead of an error:\n{stderr}"
    );
    assert!(
        stderr.starts_with("error: "),
        "stderr should start with `error: `:\n{stderr}"
    );
    for s in must_contain {
        assert!(stderr.contains(s), "stderr lacks `{s}`:\n{stderr}");
    }
}

#[test]
fn staircase_writes_every_contract_file() {
    let dir = tmpdir("contract");
    let out = run(&[
        "run",
        "staircase",
        "--out",
        dir.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "run.json",
        "trajectory.csv",
        "data/x.npy",
        "data/y.npy",
        "params/init/W1.npy",
        "params/init/W2.npy",
        "params/final/W1.npy",
        "params/final/W2.npy",
        "plots/loss.svg",
        "plots/loss.png",
        "report.html",
    ] {
        let p = dir.join(f);
        assert!(
            p.exists() && std::fs::metadata(&p).unwrap().len() > 0,
            "missing {f}"
        );
    }
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    for k in [
        "featlab_version",
        "preset",
        "config",
        "seed",
        "wall_seconds",
        "summary",
    ] {
        assert!(doc.get(k).is_some(), "run.json lacks {k}");
    }
    assert_eq!(doc["preset"], "staircase");
    assert!(
        doc["config"]["train"]["rtol"].is_number(),
        "config is not fully resolved"
    );
    // the trajectory: finite loss with ≥ 3 plateaus and drops
    let csv = std::fs::read_to_string(dir.join("trajectory.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "t");
    let li = header.iter().position(|c| *c == "loss").unwrap();
    let loss: Vec<f64> = lines
        .map(|l| l.split(',').nth(li).unwrap().parse().unwrap())
        .collect();
    assert!(loss.iter().all(|v| v.is_finite()));
    let drops = doc["summary"]["drops_observed"].as_u64().unwrap();
    assert!(drops >= 3, "only {drops} drops");
    // plateaus: the loss sits within 1% of each of the first three theory levels for a stretch of rows
    let levels: Vec<f64> = serde_json::from_value(doc["summary"]["levels_theory"].clone()).unwrap();
    for lv in &levels[..4] {
        let on = loss
            .iter()
            .filter(|l| ((*l - lv) / lv).abs() < 0.01)
            .count();
        assert!(on >= 20, "no plateau at level {lv} ({on} rows)");
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("staircase"));
}

#[test]
fn outputs_are_byte_identical_across_thread_counts() {
    let cfg = fixture("mlp-par.toml");
    let a = tmpdir("thr1");
    let b = tmpdir("thr2");
    for (dir, thr) in [(&a, "1"), (&b, "2")] {
        let out = run(&[
            "run",
            &cfg,
            "--out",
            dir.to_str().unwrap(),
            "--threads",
            thr,
            "--quiet",
            "--no-png",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for f in [
        "trajectory.csv",
        "data/x.npy",
        "data/y.npy",
        "params/init/W1.npy",
        "params/final/W1.npy",
        "params/final/W2.npy",
        "params/final/W3.npy",
    ] {
        let x = std::fs::read(a.join(f)).unwrap();
        let y = std::fs::read(b.join(f)).unwrap();
        assert!(x == y, "{f} differs between --threads 1 and --threads 2");
    }
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let a = tmpdir("seed-a");
    let b = tmpdir("seed-b");
    let c = tmpdir("seed-c");
    for (d, s) in [(&a, "5"), (&b, "5"), (&c, "6")] {
        let out = run(&[
            "run",
            "staircase",
            "--out",
            d.to_str().unwrap(),
            "--seed",
            s,
            "--quiet",
            "--no-png",
            "--set",
            "train.t_max=3",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rd = |d: &PathBuf| std::fs::read(d.join("trajectory.csv")).unwrap();
    assert_eq!(rd(&a), rd(&b));
    assert_ne!(rd(&a), rd(&c));
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = tmpdir("bad");
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let out_dir = dir.join("out").display().to_string();
    // malformed TOML
    let p = write("malformed.toml", "[model\nkind = \"two_layer\"\n");
    assert_clean_error(
        &run(&["run", &p, "--out", &out_dir, "--quiet"]),
        &["malformed.toml", "line"],
    );
    // unknown key
    let base = featlab::presets::get("staircase").unwrap();
    let p = write(
        "unknown.toml",
        &base.replace("width = 16", "width = 16\nwidht = 3"),
    );
    assert_clean_error(
        &run(&["run", &p, "--out", &out_dir, "--quiet"]),
        &["model", "widht"],
    );
    // --set of a missing key, a missing section, a wrong type
    assert_clean_error(
        &run(&[
            "run",
            "staircase",
            "--out",
            &out_dir,
            "--quiet",
            "--set",
            "model.depthh=3",
        ]),
        &["depthh"],
    );
    assert_clean_error(
        &run(&[
            "run",
            "staircase",
            "--out",
            &out_dir,
            "--quiet",
            "--set",
            "optimizer.lr=3",
        ]),
        &["optimizer"],
    );
    assert_clean_error(
        &run(&[
            "run",
            "staircase",
            "--out",
            &out_dir,
            "--quiet",
            "--set",
            "model.width=wide",
        ]),
        &["model.width"],
    );
    // negative width
    assert_clean_error(
        &run(&[
            "run",
            "staircase",
            "--out",
            &out_dir,
            "--quiet",
            "--set",
            "model.width=-4",
        ]),
        &["model.width"],
    );
    // shape mismatch between x and y files, corrupt and missing npy
    let npy = |name: &str, shape: &[usize]| {
        let n: usize = shape.iter().product();
        let a = featlab::NdArray::new(shape.to_vec(), (0..n).map(|i| i as f64 * 0.01).collect());
        let p = dir.join(name);
        featlab::data::io::write_npy(&p, &a).unwrap();
        p.display().to_string()
    };
    let x = npy("x.npy", &[10, 3]);
    let y = npy("y.npy", &[9, 1]);
    let files_cfg = |x: &str, y: &str| {
        format!(
            "experiment = \"train\"\n[model]\nkind = \"two_layer\"\nwidth = 4\nactivation = \"relu\"\n[data]\nkind = \"files\"\nx = \"{x}\"\ny = \"{y}\"\n[train]\nt_max = 1.0\n"
        )
    };
    let p = write("shape.toml", &files_cfg(&x, &y));
    assert_clean_error(
        &run(&["run", &p, "--out", &out_dir, "--quiet"]),
        &["10", "9"],
    );
    let corrupt = dir.join("corrupt.npy");
    std::fs::write(&corrupt, b"\x93NUMPY\x01\x00garbage").unwrap();
    let p = write("corrupt.toml", &files_cfg(corrupt.to_str().unwrap(), &y));
    assert_clean_error(
        &run(&["run", &p, "--out", &out_dir, "--quiet"]),
        &["corrupt.npy"],
    );
    let p = write(
        "missing.toml",
        &files_cfg(dir.join("nope.npy").to_str().unwrap(), &y),
    );
    assert_clean_error(
        &run(&["run", &p, "--out", &out_dir, "--quiet"]),
        &["nope.npy"],
    );
    // a learning rate that diverges: says which step and what to try
    let out = run(&[
        "run",
        "staircase",
        "--out",
        &out_dir,
        "--quiet",
        "--set",
        "train.method=gd",
        "--set",
        "train.lr=50",
        "--set",
        "train.t_max=5000",
        "--set",
        "model.init_scale=1.0",
    ]);
    assert_clean_error(&out, &["diverged at step", "smaller learning rate"]);
    // an unknown preset
    assert_clean_error(
        &run(&["run", "no-such-preset", "--out", &out_dir]),
        &["no-such-preset", "staircase"],
    );
}

#[test]
fn a_directory_named_like_a_preset_does_not_shadow_it() {
    // `featlab run exact-1d --out exact-1d`, then the same command again from that directory
    let cwd = tmpdir("shadow");
    std::fs::create_dir_all(cwd.join("exact-1d")).unwrap();
    std::fs::write(cwd.join("exact-1d/run.json"), "{}").unwrap();
    let out = featlab()
        .current_dir(&cwd)
        .args(["run", "exact-1d", "--out", "out", "--quiet", "--no-png"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = std::fs::read_to_string(cwd.join("out/run.json")).unwrap();
    assert!(json.contains("\"preset\":\"exact-1d\"") || json.contains("\"preset\": \"exact-1d\""));
    // a directory that is no preset is a clear error
    std::fs::create_dir_all(cwd.join("my-run")).unwrap();
    std::fs::write(cwd.join("my-run/run.json"), "{}").unwrap();
    let out = featlab()
        .current_dir(&cwd)
        .args(["run", "my-run", "--out", "out2"])
        .output()
        .unwrap();
    assert_clean_error(&out, &["`my-run` is a directory", "run's output directory"]);
}

#[test]
fn list_and_help_work() {
    let out = run(&["list"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.starts_with("staircase")), "{text}");
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["bench", "--help"],
        vec!["list", "--help"],
    ] {
        let out = run(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(!out.stdout.is_empty());
    }
    // usage errors exit with 2
    assert_eq!(run(&["run"]).status.code(), Some(2));
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
}

/// Every `featlab bench` case runs on tiny sizes and prints one JSON line with the fields
/// its documentation promises (a smoke test of the benchmarks, not a timing).
#[test]
fn bench_cases_print_json_lines() {
    let json_line = |args: &[&str]| -> serde_json::Value {
        let out = run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.lines().count(), 1, "{args:?}: {stdout}");
        serde_json::from_str(&stdout).unwrap()
    };
    let positive = |v: &serde_json::Value, k: &str| {
        let x = v[k].as_f64().unwrap_or_else(|| panic!("no {k} in {v}"));
        assert!(x.is_finite() && x > 0.0, "{k} = {x} in {v}");
        x
    };
    for act in ["relu", "quadratic", "linear"] {
        let g = json_line(&["bench", "gd", "--steps", "5", "--act", act]);
        positive(&g, "steps_per_sec");
        // 4·n·d·m + 4·n·m for the default n = 256, d = 16, m = 64
        assert_eq!(
            positive(&g, "flops_per_step"),
            4.0 * (256 * 16 * 64 + 256 * 64) as f64
        );
        positive(&g, "gflops");
    }
    let small = [
        "--n", "64", "--d", "8", "--width", "16", "--depth", "3", "--steps", "4", "--rounds", "2",
    ];
    for case in ["deep-linear", "mlp"] {
        let mut args = vec!["bench", case];
        args.extend(small);
        let v = json_line(&args);
        assert_eq!(v["bench"], case);
        for k in [
            "steps_per_sec",
            "gemm_steps_per_sec",
            "ratio",
            "gemm_gflops",
        ] {
            positive(&v, k);
        }
        // GD at a small learning rate lowers the loss
        assert!(
            positive(&v, "final_loss") < positive(&v, "initial_loss"),
            "{v}"
        );
    }
    let f = json_line(&["bench", "flow-vs-gd"]);
    assert!(positive(&f, "grad_eval_ratio") >= 20.0, "{f}");
    assert!(f["max_drop_time_rel_diff"].as_f64().unwrap() < 0.01, "{f}");
    assert_eq!(f["gd"]["grad_evals"], 25000);
    // usage errors
    assert_eq!(run(&["bench"]).status.code(), Some(2));
    assert_eq!(run(&["bench", "nope"]).status.code(), Some(2));
    assert_clean_error(&run(&["bench", "gd", "--act", "sigmoid"]), &["sigmoid"]);
    assert_clean_error(&run(&["bench", "mlp", "--depth", "0"]), &["--depth"]);
}

mod random_configs {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
        /// Random overrides of the staircase preset never crash the binary: every run
        /// either succeeds (exit 0) or fails with a clean error (exit 1).
        #[test]
        fn random_overrides_never_panic(
            width in prop::sample::select(vec!["0", "1", "3", "-1", "2.5", "\"x\"", "[1]"]),
            t_max in prop::sample::select(vec!["0", "-1", "0.5", "nan", "inf", "1e-300", "\"a\""]),
            method in prop::sample::select(vec!["flow", "gd", "sgd", "adam", "momentum", "bogus"]),
            lr in prop::sample::select(vec!["1e-3", "0", "-1", "1e6", "nan"]),
            n in prop::sample::select(vec!["1", "4", "0", "300"]),
            act in prop::sample::select(vec!["relu", "tanh", "gelu", "quadratic", "linear", "sigmoid"]),
        ) {
            let dir = tmpdir("prop");
            let out = run(&[
                "run", "staircase", "--out", dir.to_str().unwrap(), "--quiet", "--no-png",
                "--set", &format!("model.width={width}"), "--set", &format!("train.t_max={t_max}"),
                "--set", &format!("train.method={method}"), "--set", &format!("train.lr={lr}"),
                "--set", &format!("data.n={n}"), "--set", &format!("model.activation={act}"),
                "--set", "train.batch_size=2",
            ]);
            let code = out.status.code();
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            prop_assert!(code == Some(0) || code == Some(1), "exit {:?}: {}", code, stderr);
            prop_assert!(!stderr.contains("panicked"), "panic: {}", stderr);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
