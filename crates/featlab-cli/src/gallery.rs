//! `featlab gallery`: every preset's reproduction on one static site.
//!
//! ```text
//! OUT/index.html            one card per preset, grouped by paper
//! OUT/paper-<slug>.html     a paper's presets, agreement tables side by side
//! OUT/runs/<preset>/        the run directory (`featlab run` files + card.json)
//! OUT/runs/.tmp-<preset>-<pid>/   a run being written (renamed when complete)
//! ```
//!
//! A run is written into a temporary directory and renamed to `runs/<preset>` when
//! complete, so `runs/<preset>/run.json` exists exactly when the run finished: a killed
//! build continues with the presets that lack it (a finished run made with the other
//! `--quick` setting is redone). `--from DIR…` copies existing run directories (their
//! run.json, report.html and plots/) instead of running. Runs go in parallel on `--jobs`
//! worker threads, each run single-threaded. A preset that fails to run gets a card
//! saying why; the command then exits with an error after writing the site.

use crate::report::{agreement_html, escape_html};
use anyhow::{Context, Result};
use featlab::compare::agreement::{failing, format_value, from_summary, worst};
use featlab::compare::AgreementRow;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `featlab gallery`.
#[derive(clap::Args, Debug, Clone)]
pub struct GalleryArgs {
    /// Presets to include (default: every preset; see `featlab list`).
    pub presets: Vec<String>,
    /// Output directory of the site (index.html, paper-*.html, runs/<preset>/).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Run each preset with its quick settings (its `[quick]` table); a preset without
    /// one runs in full and its card says "no quick settings".
    #[arg(long)]
    pub quick: bool,
    /// Runs in parallel (each run single-threaded).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Build the site from existing run directories (each with run.json) instead of running.
    #[arg(long, num_args = 1.., conflicts_with_all = ["presets", "quick"])]
    pub from: Vec<PathBuf>,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// A paper of the project: its page's file stem and its title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paper {
    pub slug: &'static str,
    pub title: &'static str,
}

/// The papers in the order the index shows them (the last one collects anything else).
pub const PAPERS: [Paper; 7] = [
    Paper {
        slug: "agf",
        title: "Alternating Gradient Flows (Kunin et al. 2025)",
    },
    Paper {
        slug: "exact-linear-1d",
        title: "Exact finite-width linear 1-D solution (Xu & Ziyin 2024)",
    },
    Paper {
        slug: "nfa-alignment",
        title:
            "Feature learning as alignment — the NFA (Beaglehole, Mitliagkas & Agarwala 2024; RFM)",
    },
    Paper {
        slug: "nfa-deep-linear",
        title: "NFA in deep linear networks (Tansley, Massart & Cartis 2025)",
    },
    Paper {
        slug: "unlearning",
        title: "Feature unlearning (Imai, Nishiyama & Imaizumi 2026)",
    },
    Paper {
        slug: "group-agf",
        title: "Sequential group composition: AGF on finite groups (Marchetti et al. 2026)",
    },
    Paper {
        slug: "other",
        title: "Other studies",
    },
];

/// The paper a run reproduces, from its experiment kind and preset name (the one place
/// that maps studies to papers): `agf*` and the `train` staircase → AGF; `exact_*` → the
/// exact 1-D solution; `nfa` presets on deep linear nets (`*deep-linear*`,
/// `*unbalanced*`) → Tansley et al.; other `nfa` and `rfm` → NFA as alignment;
/// `unlearning` → feature unlearning; `group_agf`, `group_rnn` → group composition.
pub fn paper_of(experiment: &str, preset: &str) -> Paper {
    let i = match experiment {
        e if e.starts_with("agf") || e == "train" => 0,
        e if e.starts_with("exact") => 1,
        "nfa" if preset.contains("deep-linear") || preset.contains("unbalanced") => 3,
        "nfa" | "rfm" => 2,
        "unlearning" => 4,
        "group_agf" | "group_rnn" => 5,
        _ => 6,
    };
    PAPERS[i]
}

/// File name of the gallery's record in a run directory: `{"quick", "quick_missing",
/// "wall_seconds", "source"}`.
const CARD_JSON: &str = "card.json";

/// One card of the index: what the gallery knows about a preset's run.
#[derive(Debug, Clone)]
struct Card {
    name: String,
    experiment: String,
    description: String,
    /// Run directory relative to the site root (`runs/<name>`), when the run exists.
    dir: Option<String>,
    /// Thumbnail path relative to the site root.
    thumb: Option<String>,
    rows: Vec<AgreementRow>,
    wall: Option<f64>,
    /// How the run was made: "quick settings", "full run", "no quick settings (full run)", …
    mode: String,
    error: Option<String>,
}

/// Execute `featlab gallery`; returns the path of index.html.
pub fn gallery_command(args: &GalleryArgs) -> Result<PathBuf> {
    if args.jobs == 0 {
        anyhow::bail!("--jobs must be ≥ 1");
    }
    let runs = args.out.join("runs");
    std::fs::create_dir_all(&runs)
        .with_context(|| format!("cannot create `{}`", runs.display()))?;
    let start = Instant::now();
    let cards = if args.from.is_empty() {
        run_presets(args, &runs)?
    } else {
        args.from
            .iter()
            .map(|d| import_run(d, &runs))
            .collect::<Result<Vec<_>>>()?
    };
    let elapsed = start.elapsed().as_secs_f64();
    write_site(&args.out, &cards, args.quick, elapsed)?;
    let index = args.out.join("index.html");
    let failed: Vec<&Card> = cards.iter().filter(|c| c.error.is_some()).collect();
    if !args.quiet {
        println!(
            "featlab gallery: {} presets in {elapsed:.1} s; wrote {}",
            cards.len(),
            index.display()
        );
    }
    if !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|c| c.name.as_str()).collect();
        anyhow::bail!(
            "{} of {} presets failed to run ({}); their cards in `{}` say why",
            failed.len(),
            cards.len(),
            names.join(", "),
            index.display()
        );
    }
    Ok(index)
}

/// Whether a preset's TOML has a `[quick]` table.
fn has_quick(preset: &str) -> bool {
    featlab::presets::get(preset)
        .and_then(|t| t.parse::<toml::Table>().ok())
        .is_some_and(|t| t.contains_key(featlab::config::QUICK_KEY))
}

/// Run (or reuse) every requested preset in parallel; one card each, in preset order.
fn run_presets(args: &GalleryArgs, runs: &Path) -> Result<Vec<Card>> {
    let names: Vec<String> = if args.presets.is_empty() {
        featlab::presets::names()
            .into_iter()
            .map(String::from)
            .collect()
    } else {
        for p in &args.presets {
            if featlab::presets::get(p).is_none() {
                anyhow::bail!(
                    "no preset named `{p}`; presets: {}",
                    featlab::presets::names().join(", ")
                );
            }
        }
        args.presets.clone()
    };
    // `--jobs` plain worker threads taking presets from a shared counter. (Not a rayon
    // pool: each run installs its own one-thread rayon pool, and a rayon worker waiting on
    // another pool steals the next preset onto its stack, so runs would nest and finish in
    // pairs, their wall times inflated.)
    let bar = crate::progress::count_bar(names.len() as u64, "gallery", args.quiet);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Card>>> =
        names.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.min(names.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(name) = names.get(i) else { break };
                let card = run_one(name, args.quick, runs);
                let status = match (&card.error, card.wall) {
                    (Some(_), _) => "FAILED".to_string(),
                    (None, Some(w)) => format!("{w:.1} s"),
                    _ => String::new(),
                };
                bar.done(&format!("{name} {status}"));
                *slots[i].lock().unwrap() = Some(card);
            });
        }
    });
    let cards: Vec<Card> = slots
        .into_iter()
        .zip(&names)
        .map(|(s, n)| {
            s.into_inner().unwrap().unwrap_or_else(|| {
                let mut c = Card::empty(n);
                c.error = Some("not run (a worker thread panicked)".into());
                c
            })
        })
        .collect();
    bar.finish();
    Ok(cards)
}

/// Run one preset into `runs/<name>` unless a complete run with the same quick setting is
/// there already.
fn run_one(name: &str, quick: bool, runs: &Path) -> Card {
    let dir = runs.join(name);
    let quick_used = quick && has_quick(name);
    let record = read_json(&dir.join(CARD_JSON));
    let done = dir.join("run.json").is_file()
        && record.as_ref().is_some_and(|r| r["quick"] == json!(quick));
    if !done {
        if let Err(e) = fresh_run(name, quick, quick_used, runs) {
            let mut card = Card::empty(name);
            card.error = Some(format!("{e:#}"));
            card.mode = mode_text(quick, quick_used);
            return card;
        }
    }
    card_of(&dir, runs.parent().unwrap_or(runs))
}

fn mode_text(quick: bool, quick_used: bool) -> String {
    match (quick, quick_used) {
        (true, true) => "quick settings".into(),
        (true, false) => "no quick settings (full run)".into(),
        _ => "full run".into(),
    }
}

/// Run a preset into a temporary directory, record the card, rename into place.
fn fresh_run(name: &str, quick: bool, quick_used: bool, runs: &Path) -> Result<()> {
    let tmp = runs.join(format!(".tmp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let args = crate::run::RunArgs {
        config: name.to_string(),
        out: tmp.clone(),
        sets: Vec::new(),
        seed: None,
        threads: 1,
        quiet: true,
        no_png: false,
        quick: quick_used,
        check: false,
    };
    let start = Instant::now();
    let result = crate::run::run_command(&args, &featlab::train::NoProgress);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let record = json!({
        "quick": quick,
        "quick_missing": quick && !quick_used,
        "mode": mode_text(quick, quick_used),
        "wall_seconds": start.elapsed().as_secs_f64(),
        "source": "featlab gallery",
    });
    featlab::data::io::write_atomic(
        &tmp.join(CARD_JSON),
        serde_json::to_string_pretty(&record)?.as_bytes(),
    )?;
    let dir = runs.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot replace `{}`", dir.display()))?;
    }
    std::fs::rename(&tmp, &dir)
        .with_context(|| format!("cannot move `{}` to `{}`", tmp.display(), dir.display()))?;
    Ok(())
}

/// Copy an existing run directory (run.json, report.html, card.json, plots/) under
/// `runs/<preset>` and make its card.
fn import_run(src: &Path, runs: &Path) -> Result<Card> {
    let doc = read_json(&src.join("run.json")).ok_or_else(|| {
        anyhow::anyhow!(
            "`{}` is not a run directory (no readable run.json)",
            src.display()
        )
    })?;
    let name = doc["preset"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| src.file_name().map(|n| n.to_string_lossy().to_string()))
        .unwrap_or_else(|| "run".into());
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let dest = runs.join(&slug);
    let same = src.canonicalize().ok() == dest.canonicalize().ok() && dest.exists();
    if !same {
        if dest.exists() {
            std::fs::remove_dir_all(&dest)
                .with_context(|| format!("cannot replace `{}`", dest.display()))?;
        }
        std::fs::create_dir_all(dest.join("plots"))?;
        for f in ["report.html", CARD_JSON] {
            if src.join(f).is_file() {
                std::fs::copy(src.join(f), dest.join(f))
                    .with_context(|| format!("cannot copy `{}`", src.join(f).display()))?;
            }
        }
        if let Ok(entries) = std::fs::read_dir(src.join("plots")) {
            for e in entries.flatten() {
                if e.path().is_file() {
                    std::fs::copy(e.path(), dest.join("plots").join(e.file_name()))?;
                }
            }
        }
        // run.json last: its presence marks a complete copy.
        std::fs::copy(src.join("run.json"), dest.join("run.json"))?;
    }
    let mut card = card_of(&dest, runs.parent().unwrap_or(runs));
    if read_json(&src.join(CARD_JSON)).is_none() {
        card.mode = format!("from {}", src.display());
    }
    Ok(card)
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

impl Card {
    fn empty(name: &str) -> Card {
        let experiment = featlab::presets::get(name)
            .and_then(|t| t.parse::<toml::Table>().ok())
            .and_then(|t| t.get("experiment")?.as_str().map(str::to_string))
            .unwrap_or_else(|| "train".into());
        Card {
            name: name.into(),
            experiment,
            description: featlab::presets::describe(name),
            dir: None,
            thumb: None,
            rows: Vec::new(),
            wall: None,
            mode: String::new(),
            error: None,
        }
    }
}

/// The card of a complete run directory `dir` (under `root/runs/`).
fn card_of(dir: &Path, root: &Path) -> Card {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let Some(doc) = read_json(&dir.join("run.json")) else {
        let mut c = Card::empty(&name);
        c.error = Some(format!("cannot read `{}`", dir.join("run.json").display()));
        return c;
    };
    let preset = doc["preset"].as_str().unwrap_or(&name).to_string();
    let mut card = Card::empty(&preset);
    card.name = name.clone();
    card.experiment = doc["experiment"].as_str().unwrap_or("").to_string();
    let description = crate::write::run_description(&doc);
    card.description = first_sentence(&description);
    let rel = dir
        .strip_prefix(root)
        .unwrap_or(dir)
        .to_string_lossy()
        .replace('\\', "/");
    card.rows = from_summary(&doc["summary"]);
    card.wall = doc["wall_seconds"].as_f64();
    let record = read_json(&dir.join(CARD_JSON));
    card.mode = record
        .as_ref()
        .and_then(|r| r["mode"].as_str().map(str::to_string))
        .unwrap_or_default();
    let figures: Vec<featlab::figure::Figure> =
        std::fs::read_to_string(dir.join("plots").join(crate::write::FIGURES_JSON))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
    if let Some(h) = crate::report::headline_index(&doc["summary"], &figures) {
        let stem = &figures[h].name;
        for ext in ["png", "svg"] {
            if dir.join("plots").join(format!("{stem}.{ext}")).is_file() {
                card.thumb = Some(format!("{rel}/plots/{stem}.{ext}"));
                break;
            }
        }
    }
    if dir.join("report.html").is_file() {
        card.dir = Some(rel);
    }
    card
}

/// The description up to its first sentence end (at most ~240 characters).
fn first_sentence(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // A sentence ends at ". " followed by an upper-case letter ("et al. 2025" does not).
    let cut = flat
        .char_indices()
        .find(|&(i, c)| {
            // `c` is ASCII here, so `i + 1` is a char boundary.
            c == '.' && i > 40 && {
                let rest = &flat[i + 1..];
                rest.starts_with(' ') && rest[1..].chars().next().is_some_and(char::is_uppercase)
            }
        })
        .map(|(i, _)| i + 1);
    let mut s: String = match cut {
        Some(i) => flat[..i].to_string(),
        None => flat.clone(),
    };
    if s.chars().count() > 240 {
        s = s.chars().take(237).collect::<String>() + "…";
    }
    s
}

const CSS: &str = r#"
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: #1b1b1b;
  background: #fff; max-width: 1240px; margin: 0 auto; padding: 20px 24px 60px; line-height: 1.4; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.22em; margin: 28px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 3px; }
h2 a, h3 a, .card a { color: #0072B2; text-decoration: none; }
h2 a:hover, .card a:hover { text-decoration: underline; }
.subtitle { color: #555; margin: 0 0 10px; font-size: 0.95em; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); gap: 14px; }
.card { border: 1px solid #d9d9d9; border-radius: 6px; padding: 10px 12px; font-size: 0.9em;
  display: flex; flex-direction: column; gap: 5px; }
.card.fails { border-color: #e4a59f; }
.card.error { border-color: #b3261e; background: #fdf6f5; }
.card img { width: 100%; height: 150px; object-fit: contain; background: #fff; border: 1px solid #eee; }
.card .noimg { height: 150px; display: flex; align-items: center; justify-content: center;
  color: #999; border: 1px dashed #ddd; }
.card .name { font-weight: 700; font-size: 1.05em; }
.card .desc { color: #444; font-size: 0.92em; }
.card .worst { font-family: "DejaVu Sans Mono", Menlo, monospace; font-size: 0.86em; }
.ok { color: #00704a; font-weight: 600; }
.bad { color: #b3261e; font-weight: 600; }
.meta { color: #666; font-size: 0.88em; }
.tag { display: inline-block; background: #fff3cd; border: 1px solid #e6c96b; border-radius: 3px;
  padding: 0 5px; font-size: 0.85em; }
.side { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 18px; }
.side > div { border: 1px solid #e3e3e3; border-radius: 6px; padding: 8px 12px; overflow-x: auto; }
.side img { max-width: 100%; max-height: 260px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 0.88em; }
th, td { border: 1px solid #d9d9d9; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f6f9; }
td.num { text-align: right; font-variant-numeric: tabular-nums; font-family: "DejaVu Sans Mono", Menlo, monospace; }
td.null { color: #999; text-align: center; }
table.agreement td.holds { text-align: center; font-weight: 700; }
table.agreement td.holds.yes { color: #00704a; }
table.agreement tr.fails td { background: #fdecea; }
table.agreement tr.fails td.holds { color: #b3261e; }
.verdict { font-weight: 600; margin: 6px 0 2px; }
.verdict.ok { color: #00704a; } .verdict.bad { color: #b3261e; }
.verdict.none { color: #555; font-weight: 400; }
pre { white-space: pre-wrap; font-size: 0.85em; }
footer { margin-top: 36px; color: #999; font-size: 0.85em; }
"#;

fn page_head(o: &mut String, title: &str) {
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        escape_html(title)
    );
}

fn page_foot(o: &mut String) {
    let _ = writeln!(
        o,
        "<footer>Generated by featlab {} (<code>featlab gallery</code>).</footer>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    );
}

/// The worst agreement row in one line: quantity, rel. error vs tolerance, ✓/✗.
fn worst_line(rows: &[AgreementRow]) -> String {
    match worst(rows) {
        None => "no agreement rows (nothing compared)".into(),
        Some(r) => format!(
            "worst: {} — rel. error {} (tol. {}) {}",
            r.quantity,
            format_value(r.rel_error),
            format_value(Some(r.tolerance)),
            if r.holds { "✓" } else { "✗" }
        ),
    }
}

fn card_html(o: &mut String, c: &Card) {
    let bad = failing(&c.rows).len();
    let class = if c.error.is_some() {
        "card error"
    } else if bad > 0 {
        "card fails"
    } else {
        "card"
    };
    let _ = writeln!(
        o,
        "<div class=\"{class}\" id=\"card-{}\">",
        escape_html(&c.name)
    );
    let link = c.dir.as_ref().map(|d| format!("{d}/report.html"));
    match (&c.thumb, &link) {
        (Some(t), Some(l)) => {
            let _ = writeln!(
                o,
                "<a href=\"{}\"><img src=\"{}\" alt=\"headline figure of {}\"/></a>",
                escape_html(l),
                escape_html(t),
                escape_html(&c.name)
            );
        }
        _ => o.push_str("<div class=\"noimg\">no figure</div>\n"),
    }
    match &link {
        Some(l) => {
            let _ = writeln!(
                o,
                "<div class=\"name\"><a href=\"{}\">{}</a></div>",
                escape_html(l),
                escape_html(&c.name)
            );
        }
        None => {
            let _ = writeln!(o, "<div class=\"name\">{}</div>", escape_html(&c.name));
        }
    }
    let _ = writeln!(
        o,
        "<div class=\"desc\">{}</div>",
        escape_html(&c.description)
    );
    if let Some(e) = &c.error {
        let _ = writeln!(
            o,
            "<div class=\"bad\">failed to run</div><pre>{}</pre>",
            escape_html(e)
        );
    } else {
        if !c.rows.is_empty() {
            let _ = writeln!(
                o,
                "<div class=\"{}\">{} of {} agreement rows hold</div>",
                if bad == 0 { "ok" } else { "bad" },
                c.rows.len() - bad,
                c.rows.len()
            );
        }
        let _ = writeln!(
            o,
            "<div class=\"worst\">{}</div>",
            escape_html(&worst_line(&c.rows))
        );
    }
    let mut meta = Vec::new();
    if let Some(w) = c.wall {
        meta.push(format!("wall {w:.1} s"));
    }
    meta.push(format!("experiment {}", c.experiment));
    let _ = write!(o, "<div class=\"meta\">{}", escape_html(&meta.join(" · ")));
    if c.mode.starts_with("no quick") {
        let _ = write!(o, " <span class=\"tag\">{}</span>", escape_html(&c.mode));
    } else if !c.mode.is_empty() {
        let _ = write!(o, " · {}", escape_html(&c.mode));
    }
    o.push_str("</div>\n</div>\n");
}

/// Write index.html and one page per paper.
fn write_site(out: &Path, cards: &[Card], quick: bool, elapsed: f64) -> Result<()> {
    let papers: Vec<(Paper, Vec<&Card>)> = PAPERS
        .iter()
        .map(|p| {
            let mine: Vec<&Card> = cards
                .iter()
                .filter(|c| paper_of(&c.experiment, &c.name) == *p)
                .collect();
            (*p, mine)
        })
        .filter(|(_, c)| !c.is_empty())
        .collect();
    let all_hold = cards
        .iter()
        .filter(|c| c.error.is_none() && !c.rows.is_empty() && failing(&c.rows).is_empty())
        .count();
    let some_fail = cards
        .iter()
        .filter(|c| c.error.is_none() && !failing(&c.rows).is_empty())
        .count();
    let no_rows = cards
        .iter()
        .filter(|c| c.error.is_none() && c.rows.is_empty())
        .count();
    let errors = cards.iter().filter(|c| c.error.is_some()).count();

    let mut o = String::new();
    page_head(&mut o, "featlab reproduction gallery");
    o.push_str("<h1>featlab reproduction gallery</h1>\n");
    let _ = writeln!(
        o,
        "<p class=\"subtitle\">{} presets{} · <span class=\"ok\">{all_hold} all rows hold</span> · \
         <span class=\"bad\">{some_fail} with rows that do not hold</span> · {no_rows} without agreement rows{} · \
         built in {elapsed:.1} s by featlab {}</p>",
        cards.len(),
        if quick { " at their quick settings" } else { "" },
        if errors > 0 {
            format!(" · <span class=\"bad\">{errors} failed to run</span>")
        } else {
            String::new()
        },
        env!("CARGO_PKG_VERSION")
    );
    for (p, mine) in &papers {
        let _ = writeln!(
            o,
            "<h2 id=\"{0}\"><a href=\"paper-{0}.html\">{1}</a></h2>\n<div class=\"cards\">",
            p.slug,
            escape_html(p.title)
        );
        for c in mine {
            card_html(&mut o, c);
        }
        o.push_str("</div>\n");
    }
    page_foot(&mut o);
    featlab::data::io::write_atomic(&out.join("index.html"), o.as_bytes())?;

    for (p, mine) in &papers {
        let mut o = String::new();
        page_head(&mut o, p.title);
        let _ = writeln!(
            o,
            "<p class=\"subtitle\"><a href=\"index.html\">← gallery</a></p>\n<h1>{}</h1>\n<div class=\"side\">",
            escape_html(p.title)
        );
        for c in mine {
            o.push_str("<div>\n");
            match &c.dir {
                Some(d) => {
                    let _ = writeln!(
                        o,
                        "<h3><a href=\"{}/report.html\">{}</a></h3>",
                        escape_html(d),
                        escape_html(&c.name)
                    );
                }
                None => {
                    let _ = writeln!(o, "<h3>{}</h3>", escape_html(&c.name));
                }
            }
            let _ = writeln!(o, "<p class=\"meta\">{}</p>", escape_html(&c.description));
            if let Some(t) = &c.thumb {
                let _ = writeln!(
                    o,
                    "<img src=\"{}\" alt=\"headline figure of {}\"/>",
                    escape_html(t),
                    escape_html(&c.name)
                );
            }
            match &c.error {
                Some(e) => {
                    let _ = writeln!(
                        o,
                        "<p class=\"bad\">failed to run</p><pre>{}</pre>",
                        escape_html(e)
                    );
                }
                None => agreement_html(&mut o, &c.rows),
            }
            o.push_str("</div>\n");
        }
        o.push_str("</div>\n");
        page_foot(&mut o);
        featlab::data::io::write_atomic(&out.join(format!("paper-{}.html", p.slug)), o.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_has_a_paper() {
        for name in featlab::presets::names() {
            let exp = featlab::presets::get(name)
                .and_then(|t| t.parse::<toml::Table>().ok())
                .and_then(|t| t.get("experiment")?.as_str().map(str::to_string))
                .unwrap_or_else(|| "train".into());
            assert_ne!(
                paper_of(&exp, name).slug,
                "other",
                "preset {name} ({exp}) maps to no paper"
            );
        }
        assert_eq!(paper_of("nfa", "nfa-deep-linear").slug, "nfa-deep-linear");
        assert_eq!(paper_of("nfa", "nfa-alignment").slug, "nfa-alignment");
        assert_eq!(paper_of("train", "staircase").slug, "agf");
    }

    #[test]
    fn first_sentence_cuts() {
        let s = first_sentence(
            "AGF for a linear net (Kunin et al. 2025, §3.2): modes\nare learned. Then more.",
        );
        assert_eq!(
            s,
            "AGF for a linear net (Kunin et al. 2025, §3.2): modes are learned."
        );
    }
}
