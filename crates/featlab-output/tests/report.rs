//! Report tests: content, tables, escaping and well-formedness of `report.html`.

use featlab_output::plot::render_svg;
use featlab_output::report::{render_report, ReportInput};
use resvg::usvg::roxmltree;
use serde_json::json;

mod common;
use common::{heatmap_figure, staircase_figure};

/// Parse the page as XML (the report is XHTML-compatible by design).
fn parse(html: &str) -> Result<roxmltree::Document<'_>, roxmltree::Error> {
    let opt = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(html, opt)
}

fn sample_report() -> (String, Vec<String>) {
    let summary = json!({
        "final_loss": 0.000123456789,
        "steps": 12345678,
        "converged": true,
        "label": "saddle <2>",
        "missing": null,
        "losses_head": [1.0, 0.5, 0.25],
        "drops": [
            {"t_agf": 30.0, "t_gf": 31.234567891, "level": 0.3},
            {"t_agf": 300.0, "t_gf": 305.5, "level": 0.05},
            {"t_agf": 3000.0, "t_gf": null, "level": 0.001, "note": "late"}
        ],
        "theory": {"alpha": 0.5, "fit": {"slope": -1.000001, "r2": 0.99}},
        "long_series": (0..30).map(|i| i as f64 * 0.5).collect::<Vec<_>>(),
        "matrix": [[1, 2], [3, 4]],
        "agreement": [
            {"quantity": "drop 1 time", "theory": 30.0, "experiment": 31.2, "rel_error": 0.04,
             "tolerance": 0.05, "holds": true},
            {"quantity": "drop 3 time", "theory": 3000.0, "experiment": null, "rel_error": null,
             "tolerance": 0.05, "holds": false, "note": "GF never reached it"}
        ]
    });
    let config = json!({
        "name": "staircase",
        "model": {"width": 64, "activation": "<script>alert('x')</script>"},
        "train": {"lr": 0.01, "steps": 100000}
    });
    let figs = vec![staircase_figure(500), heatmap_figure()];
    let figures: Vec<_> = figs
        .into_iter()
        .map(|f| {
            let svg = render_svg(&f).unwrap();
            (f, svg)
        })
        .collect();
    let svgs = figures.iter().map(|(_, s)| s.clone()).collect();
    let input = ReportInput {
        title: "featlab run: staircase & <friends>".into(),
        subtitle: "featlab 0.1.0 · 2025-01-01 · 12.3 s · seed 7".into(),
        summary: &summary,
        config: &config,
        figures,
        tables: vec![(
            "Jump times".into(),
            vec!["k".into(), "t* (theory)".into(), "t (measured)".into()],
            vec![
                vec!["1".into(), "30".into(), "31.2".into()],
                vec!["2".into(), "300".into()],
            ],
        )],
        notes: vec!["Theory and experiment disagree on jump 3 by > 10% <b>!</b>".into()],
        description: "A two-layer linear net learns a teacher one mode at a time.".into(),
        agreement: Some(featlab::compare::agreement::from_summary(&summary)),
        headline: Some(0),
    };
    (render_report(&input), svgs)
}

#[test]
fn report_contains_figures_captions_and_tables() {
    let (html, svgs) = sample_report();
    for svg in &svgs {
        let start = svg.find("<svg").unwrap();
        assert!(
            html.contains(svg[start..].trim_end()),
            "figure SVG not embedded verbatim"
        );
    }
    assert!(html.contains("Loss of a two-layer net under gradient flow vs the AGF staircase."));
    assert!(html.contains("the line is the predicted boundary."));
    assert_eq!(html.matches("<figure ").count(), 2);
    // Drops table: one column per key (union, first-seen order), one row per drop.
    let doc = parse(&html).expect("report is well-formed");
    let tables: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("table"))
        .collect();
    let drops = tables
        .iter()
        .find(|t| {
            let heads: Vec<_> = t
                .descendants()
                .filter(|n| n.has_tag_name("th"))
                .filter_map(|n| n.text())
                .collect();
            heads == ["level", "t_agf", "t_gf", "note"]
        })
        .expect("drops table with columns level, t_agf, t_gf, note");
    let rows: Vec<Vec<String>> = drops
        .descendants()
        .filter(|n| n.has_tag_name("tr"))
        .skip(1)
        .map(|r| {
            r.children()
                .filter(|c| c.has_tag_name("td"))
                .map(|c| c.text().unwrap_or("").to_string())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0], ["0.3", "30", "31.2346", ""]);
    assert_eq!(rows[2], ["0.001", "3000", "—", "late"]);
    // Scalars: 6 significant digits, integers exact, null as dash, strings escaped.
    assert!(html.contains(">0.000123457<"));
    assert!(html.contains(">12345678<"));
    assert!(html.contains(">saddle &lt;2&gt;<"));
    assert!(html.contains(">1, 0.5, 0.25<"));
    // Nested objects, long arrays and matrices get collapsible sections with tables.
    assert!(html.contains("<summary><b>theory</b>") && html.contains("<summary><b>fit</b>"));
    assert!(html.contains("<summary><b>long_series</b> <span class=\"count\">(30 values)</span>"));
    assert!(html.contains("<th>[1]</th>"), "matrix columns");
    assert!(!html.contains("[1, 2]"), "no Python-style lists");
    assert!(
        html.contains(">-1<"),
        "slope -1.000001 at 6 significant digits"
    );
    // Extra table and notes.
    assert!(html.contains("<summary><b>Jump times</b>") && html.contains("<th>t* (theory)</th>"));
    assert!(html.contains("by &gt; 10% &lt;b&gt;!&lt;/b&gt;"));
}

#[test]
fn report_escapes_and_is_well_formed() {
    let (html, _) = sample_report();
    assert!(
        !html.contains("<script"),
        "config string injected a script tag"
    );
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(html.contains("<title>featlab run: staircase &amp; &lt;friends&gt;</title>"));
    let doc = parse(&html).expect("report parses as XML");
    let root = doc.root_element();
    assert!(root.has_tag_name("html"));
    let names: Vec<_> = root
        .children()
        .filter(|n| n.is_element())
        .map(|n| n.tag_name().name())
        .collect();
    assert_eq!(names, ["head", "body"]);
    // Config is collapsible and in TOML form.
    let details = doc
        .descendants()
        .filter(|n| n.has_tag_name("details"))
        .find(|n| {
            n.descendants().any(|c| {
                c.text()
                    .is_some_and(|t| t.contains("resolved configuration"))
            })
        })
        .expect("<details> of the configuration");
    let pre = details
        .descendants()
        .find(|n| n.has_tag_name("pre"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        pre.contains("[model]") && pre.contains("lr = 0.01"),
        "{pre}"
    );
    // Self-contained: no external references.
    assert!(!html.contains(" src=") && !html.contains("<link"));
    std::fs::write(
        std::env::temp_dir().join("featlab-report-sample.html"),
        &html,
    )
    .unwrap();
}

#[test]
fn report_with_odd_inputs() {
    let null = serde_json::Value::Null;
    let cfg = json!({"a": null, "b": [1, {"c": 2}]}); // no TOML form → JSON
    let html = render_report(&ReportInput {
        title: String::new(),
        subtitle: String::new(),
        summary: &null,
        config: &cfg,
        figures: vec![(staircase_figure(10), "not an svg".into())],
        tables: vec![("empty".into(), vec![], vec![vec!["x".into(), "y".into()]])],
        notes: vec![],
        description: String::new(),
        agreement: None,
        headline: None,
    });
    parse(&html).expect("well-formed");
    assert!(html.contains("No summary."));
    assert!(html.contains("configuration (JSON)"));
    assert!(html.contains("could not be rendered"));
}

#[test]
fn verdict_comes_first() {
    let (html, _) = sample_report();
    let doc = parse(&html).expect("well-formed");
    let pos = |pat: &str| {
        html.find(pat)
            .unwrap_or_else(|| panic!("`{pat}` missing from the report"))
    };
    // title < description < headline figure < agreement table < other figures < summary.
    let order = [
        "<h1>",
        "<p class=\"description\">A two-layer",
        "<figure id=\"fig-staircase\" class=\"headline\">",
        "<table class=\"agreement\">",
        "<section id=\"figures\">",
        "<section id=\"summary\">",
    ];
    for w in order.windows(2) {
        assert!(
            pos(w[0]) < pos(w[1]),
            "`{}` should come before `{}`",
            w[0],
            w[1]
        );
    }
    assert!(html.contains("1 of 2 rows hold"));
    let table = doc
        .descendants()
        .find(|n| n.has_tag_name("table") && n.attribute("class") == Some("agreement"))
        .unwrap();
    let rows: Vec<_> = table
        .descendants()
        .filter(|n| n.has_tag_name("tr"))
        .skip(1)
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].attribute("class"), None);
    assert_eq!(rows[1].attribute("class"), Some("fails"));
    let cells: Vec<String> = rows[1]
        .children()
        .filter(|c| c.has_tag_name("td"))
        .map(|c| c.text().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        cells,
        [
            "drop 3 time",
            "3000",
            "—",
            "—",
            "0.05000",
            "✗",
            "GF never reached it"
        ]
    );
    // The agreement rows are not repeated in the summary.
    assert_eq!(html.matches("drop 3 time").count(), 1);
}
