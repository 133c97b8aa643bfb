//! The sweep report opened in a real browser: headless Chromium loads report.html, every
//! figure is in the rendered DOM as an SVG, and the console stays silent. Skipped (with a
//! note) when no Chromium is installed; `.ci/run` installs Debian's `chromium`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_featlab");

fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("FEATLAB_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in [
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Run Chromium headless with a time limit; returns (stdout, stderr).
fn run_chromium(exe: &Path, profile: &Path, args: &[&str]) -> (String, String) {
    let out_path = profile.with_extension("stdout");
    let err_path = profile.with_extension("stderr");
    let mut child = Command::new(exe)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(Stdio::from(std::fs::File::create(&out_path).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&err_path).unwrap()))
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "chromium exited with {status}: {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
            break;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (
        std::fs::read_to_string(&out_path).unwrap(),
        std::fs::read_to_string(&err_path).unwrap(),
    )
}

#[test]
fn sweep_report_loads_in_headless_chromium_with_every_figure() {
    let Some(exe) = chromium() else {
        eprintln!("note: chromium not found; skipping the browser test (apt-get install chromium, or set FEATLAB_CHROMIUM)");
        return;
    };
    let root = std::env::temp_dir().join(format!("featlab-chromium-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let spec = root.join("small.toml");
    std::fs::write(
        &spec,
        "base = \"staircase\"\nunset = [\"reference\"]\n[set]\n\"train.t_max\" = 20.0\n\"train.record\" = { kind = \"linear\", points = 101 }\n\
         [grid]\n\"model.init_scale\" = [1e-4, 1e-2, 1.0]\n\"model.width\" = [4, 16]\nseed = [0, 1]\n",
    )
    .unwrap();
    let out = root.join("sweep");
    let o = Command::new(BIN)
        .args([
            "sweep",
            spec.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
            "--no-png",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Two fields → 2 × (heatmap + 2 line plots).
    let o = Command::new(BIN)
        .args([
            "report",
            out.to_str().unwrap(),
            "--z",
            "final_loss",
            "--z",
            "drop_times[1]",
            "--no-png",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let figure_ids: Vec<&str> = html
        .match_indices("<figure id=\"")
        .map(|(i, m)| html[i + m.len()..].split('"').next().unwrap())
        .collect();
    assert_eq!(figure_ids.len(), 6, "{figure_ids:?}");

    let url = format!("file://{}", out.join("report.html").display());
    let (dom, log) = run_chromium(&exe, &root.join("profile"), &["--dump-dom", &url]);
    // The browser parsed the page: the DOM has every figure, each with its inline SVG and
    // drawn content.
    assert!(
        dom.contains("<title>featlab sweep: small</title>"),
        "page did not load:\n{}",
        &dom[..dom.len().min(500)]
    );
    for id in &figure_ids {
        let start = dom
            .find(&format!("<figure id=\"{id}\""))
            .unwrap_or_else(|| panic!("figure {id} missing from the rendered DOM"));
        let body = &dom[start..start + dom[start..].find("</figure>").unwrap()];
        assert!(
            body.contains("<svg") && body.contains("</svg>"),
            "figure {id} has no SVG in the DOM"
        );
        assert!(
            body.contains("<path") || body.contains("<polyline") || body.contains("<rect"),
            "figure {id} draws nothing"
        );
    }
    assert_eq!(dom.matches("<svg").count(), figure_ids.len());
    // No console output at all (errors, warnings, failed loads are logged as CONSOLE lines).
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "console messages:\n{}",
        console.join("\n")
    );

    // And a screenshot renders (non-trivial PNG).
    let shot = root.join("shot.png");
    run_chromium(
        &exe,
        &root.join("profile2"),
        &[
            "--hide-scrollbars",
            "--window-size=1100,1600",
            &format!("--screenshot={}", shot.display()),
            &url,
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "screenshot is {} bytes",
        png.len()
    );
    std::fs::remove_dir_all(&root).ok();
}
