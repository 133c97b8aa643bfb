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

/// Script appended to a copy of a page: after load, it writes what the browser laid out
/// into `<pre id="featlab-probe">` (read back with --dump-dom): broken images, the top of
/// the agreement table (or the verdict line of a run without rows) and of the first card.
const PROBE: &str = r#"<script>
window.addEventListener('load', function () {
  var top = function (sel) { var e = document.querySelector(sel);
    return e ? Math.round(e.getBoundingClientRect().top + window.scrollY) : -1; };
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
    .map(function (i) { return i.getAttribute('src'); });
  var out = document.createElement('pre');
  out.id = 'featlab-probe';
  out.textContent = JSON.stringify({ images: imgs.length, broken: broken,
    agreement_table: top('table.agreement'), agreement_verdict: top('#agreement .verdict'),
    first_card_worst: top('.card .worst') });
  document.body.appendChild(out);
});
</script>"#;

/// Every `href="…"` / `src="…"` of a page.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\""] {
        for (i, m) in html.match_indices(attr) {
            let rest = &html[i + m.len()..];
            out.push(rest[..rest.find('"').unwrap()].replace("&amp;", "&"));
        }
    }
    out
}

/// Load `page` in Chromium (1100 × 900 window) and check it: no console message, every
/// relative link and image resolves, no external request, and — with `agreement` — the
/// agreement table (or, for a run without rows, its verdict line) starts within the first
/// 900 px. Returns the probe's JSON; saves a 1100 × 900 screenshot next to the page.
fn check_page(exe: &Path, root: &Path, page: &Path, agreement: bool) -> serde_json::Value {
    let html = std::fs::read_to_string(page).unwrap();
    let dir = page.parent().unwrap();
    let ids: Vec<&str> = html
        .match_indices(" id=\"")
        .map(|(i, m)| html[i + m.len()..].split('"').next().unwrap())
        .collect();
    for l in links(&html) {
        assert!(
            !l.contains("://"),
            "{}: external reference `{l}` (pages must work offline)",
            page.display()
        );
        if let Some(id) = l.strip_prefix('#') {
            assert!(ids.contains(&id), "{}: broken anchor `{l}`", page.display());
        } else {
            let target = dir.join(l.split('#').next().unwrap());
            assert!(
                target.is_file(),
                "{}: broken link `{l}` ({} does not exist)",
                page.display(),
                target.display()
            );
        }
    }
    let name = page.file_stem().unwrap().to_string_lossy().to_string();
    let probe_page = dir.join(format!("{name}.probe.html"));
    std::fs::write(
        &probe_page,
        html.replace("</body>", &format!("{PROBE}</body>")),
    )
    .unwrap();
    let tag = format!(
        "{}-{name}",
        dir.file_name().unwrap().to_string_lossy().replace('.', "_")
    );
    let (dom, log) = run_chromium(
        exe,
        &root.join(format!("profile-{tag}")),
        &[
            "--window-size=1100,900",
            "--virtual-time-budget=5000",
            "--dump-dom",
            &format!("file://{}", probe_page.display()),
        ],
    );
    std::fs::remove_file(&probe_page).ok();
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "{}: console messages:\n{}",
        page.display(),
        console.join("\n")
    );
    let start = dom
        .find("<pre id=\"featlab-probe\">")
        .unwrap_or_else(|| panic!("{}: the page did not finish loading", page.display()));
    let text = &dom[start + 24..];
    let text = text[..text.find("</pre>").unwrap()].replace("&quot;", "\"");
    let probe: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        probe["broken"],
        serde_json::json!([]),
        "{}: broken images",
        page.display()
    );
    if agreement {
        let table = probe["agreement_table"].as_i64().unwrap();
        let top = if table >= 0 {
            table
        } else {
            probe["agreement_verdict"].as_i64().unwrap()
        };
        assert!(
            (0..900).contains(&top),
            "{}: the agreement table is not in the first 900 px (top at {top} px): {probe}",
            page.display()
        );
    }
    let shot = root.join(format!("{tag}.png"));
    run_chromium(
        exe,
        &root.join(format!("profile-shot-{tag}")),
        &[
            "--hide-scrollbars",
            "--window-size=1100,900",
            "--virtual-time-budget=5000",
            &format!("--screenshot={}", shot.display()),
            &format!("file://{}", page.display()),
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
    if let Ok(keep) = std::env::var("FEATLAB_SCREENSHOTS") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&shot, Path::new(&keep).join(format!("{tag}.png"))).unwrap();
    }
    probe
}

#[test]
fn gallery_and_run_reports_load_in_headless_chromium() {
    let Some(exe) = chromium() else {
        eprintln!("note: chromium not found; skipping the browser test (apt-get install chromium, or set FEATLAB_CHROMIUM)");
        return;
    };
    let root =
        std::env::temp_dir().join(format!("featlab-chromium-gallery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    // Two fast presets, made quicker still.
    let runs = [
        ("exact-1d", vec!["--set", "train.t_max=4.0"]),
        ("staircase", vec!["--set", "train.t_max=20.0"]),
    ];
    for (preset, sets) in &runs {
        let o = Command::new(BIN)
            .args(["run", preset, "--quiet", "--out"])
            .arg(root.join("src").join(preset))
            .args(sets)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{preset}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let site = root.join("site");
    let o = Command::new(BIN)
        .args(["gallery", "--quiet", "--out"])
        .arg(&site)
        .arg("--from")
        .args(runs.iter().map(|(p, _)| root.join("src").join(p)))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let index = check_page(&exe, &root, &site.join("index.html"), false);
    assert_eq!(index["images"], 2, "one thumbnail per card: {index}");
    let first_card = index["first_card_worst"].as_i64().unwrap();
    assert!(
        (0..900).contains(&first_card),
        "the first card's agreement line is not in the first 900 px: {index}"
    );
    for (preset, _) in &runs {
        let probe = check_page(
            &exe,
            &root,
            &site.join("runs").join(preset).join("report.html"),
            true,
        );
        assert_eq!(probe["images"], 0, "report.html embeds its figures as SVG");
    }
    for paper in ["agf", "exact-linear-1d"] {
        check_page(
            &exe,
            &root,
            &site.join(format!("paper-{paper}.html")),
            false,
        );
    }
    std::fs::remove_dir_all(&root).ok();
}
