//! Rendering tests: every figure kind and style renders to SVG that usvg parses and to a PNG
//! of the right size with visible content; odd data never panics.

use featlab::figure::{Figure, FigureKind, Heatmap, LinePlot, RefLine, Scale, Series, Style};
use featlab_output::plot::{render_svg, svg_to_png, svg_to_png_with_fontdb, write_figure};
use resvg::{tiny_skia::Pixmap, usvg};
use std::sync::Arc;

mod common;
use common::{heatmap_figure, staircase_figure};

fn line_fig(name: &str, xs: Scale, ys: Scale, series: Vec<Series>) -> Figure {
    let mut p = LinePlot::new(format!("{name} <test> & co"), "x", "y").scales(xs, ys);
    p.series = series;
    p.figure(name, "caption")
}

/// Parse with usvg, rasterise at 1×, check the size and count non-white pixels inside the
/// central region (the plot area, away from title/labels).
fn check_renders(fig: &Figure) -> (String, usize) {
    let svg = render_svg(fig).unwrap_or_else(|e| panic!("{}: {e:#}", fig.name));
    usvg::Tree::from_str(&svg, &usvg::Options::default()).expect("usvg parses the SVG");
    let png = svg_to_png(&svg, 1.0).unwrap();
    let pm = Pixmap::decode_png(&png).expect("PNG decodes");
    assert_eq!((pm.width(), pm.height()), (800, 500));
    let mut dark = 0;
    for y in 120..400 {
        for x in 200..600 {
            let p = pm.pixel(x, y).unwrap();
            if p.red() < 200 || p.green() < 200 || p.blue() < 200 {
                dark += 1;
            }
        }
    }
    (svg, dark)
}

#[test]
fn every_style_renders_and_is_visible() {
    let x: Vec<f64> = (0..50).map(|i| i as f64).collect();
    let y: Vec<f64> = x.iter().map(|v| (v / 5.0).sin()).collect();
    for style in [Style::Line, Style::Dashed, Style::Step, Style::Points] {
        let s = Series {
            label: format!("{style:?}"),
            x: x.clone(),
            y: y.clone(),
            style,
        };
        let fig = line_fig(
            &format!("style_{style:?}"),
            Scale::Linear,
            Scale::Linear,
            vec![s],
        );
        let (svg, dark) = check_renders(&fig);
        assert!(
            dark > 200,
            "{style:?}: only {dark} non-white pixels in the plot area"
        );
        // Legend carries the label; title text is escaped.
        assert!(svg.contains(&format!("{style:?}")));
        assert!(svg.contains("&lt;test&gt; &amp; co"));
    }
}

#[test]
fn png_scale_two_gives_double_size() {
    let svg = render_svg(&staircase_figure(300)).unwrap();
    let pm = Pixmap::decode_png(&svg_to_png(&svg, 2.0).unwrap()).unwrap();
    assert_eq!((pm.width(), pm.height()), (1600, 1000));
}

#[test]
fn staircase_and_heatmap_render() {
    let (svg, dark) = check_renders(&staircase_figure(2000));
    assert!(dark > 500);
    // Decade tick labels on both log axes.
    assert!(
        svg.contains("10⁻³") && svg.contains("10⁴"),
        "decade labels missing"
    );
    assert!(svg.contains("t*1 predicted") && svg.contains("noise floor"));
    let (svg, dark) = check_renders(&heatmap_figure());
    assert!(
        dark > 50_000,
        "heatmap cells should fill the plot area, got {dark}"
    );
    assert!(svg.contains("P(feature learned)") && svg.contains("theory boundary"));
    assert!(svg.contains("NaN"), "NaN swatch expected");
}

#[test]
fn heatmap_log_colour_scale_and_odd_grids() {
    let mk = |x: Vec<f64>, y: Vec<f64>, z: Vec<Vec<f64>>| Figure {
        name: "h".into(),
        caption: String::new(),
        kind: FigureKind::Heatmap(Heatmap {
            title: "h".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            z_label: "z".into(),
            x,
            y,
            z,
            x_scale: Scale::Log,
            y_scale: Scale::Linear,
            overlays: vec![Series::line("far away", vec![1e9, 1e10], vec![1e9, 1e10])],
        }),
    };
    // z spanning 1e-8..1 → log colour scale.
    let z: Vec<Vec<f64>> = (0..5)
        .map(|i| (0..6).map(|j| 10f64.powi(-(i + j))).collect())
        .collect();
    let (svg, dark) = check_renders(&mk(
        vec![1., 2., 4., 8., 16., 32.],
        (0..5).map(f64::from).collect(),
        z,
    ));
    assert!(svg.contains("(log scale)"));
    assert!(dark > 50_000);
    // Single cell, ragged z, all-NaN, empty grid, zero coordinate on a log axis.
    for (x, y, z) in [
        (vec![1.0], vec![1.0], vec![vec![3.0]]),
        (vec![1., 2., 3.], vec![0., 1.], vec![vec![1.0]]),
        (vec![1., 2.], vec![0., 1.], vec![vec![f64::NAN; 2]; 2]),
        (vec![], vec![], vec![]),
        (
            vec![0.0, 1.0, 10.0],
            vec![0.0, 1.0],
            vec![vec![1.0, 2.0, 3.0]; 2],
        ),
    ] {
        check_renders(&mk(x, y, z));
    }
}

#[test]
fn odd_data_does_not_panic() {
    let nan = f64::NAN;
    let cases: Vec<(&str, Scale, Vec<Series>)> = vec![
        ("empty", Scale::Linear, vec![]),
        (
            "empty_series",
            Scale::Log,
            vec![Series::line("e", vec![], vec![])],
        ),
        (
            "all_nan",
            Scale::Linear,
            vec![Series::line("nan", vec![nan; 10], vec![nan; 10])],
        ),
        (
            "single",
            Scale::Log,
            vec![Series::line("one", vec![3.0], vec![2.0])],
        ),
        (
            "constant",
            Scale::Linear,
            vec![Series::line("c", vec![0., 1., 2.], vec![5.0; 3])],
        ),
        (
            "constant_zero",
            Scale::Linear,
            vec![Series::step("z", vec![0., 1.], vec![0.0; 2])],
        ),
        (
            "mismatched",
            Scale::Linear,
            vec![Series::points("m", vec![1., 2., 3.], vec![1.0])],
        ),
        (
            "log_nonpositive",
            Scale::Log,
            vec![Series::line(
                "neg",
                vec![-1., 0., 1., 2., 3., 4.],
                vec![1., 2., 0., -3., 1e-3, 5.],
            )],
        ),
        (
            "huge_range",
            Scale::Log,
            vec![Series::line(
                "r",
                (1..=34).map(f64::from).collect(),
                (0..34).map(|k| 10f64.powi(k - 30)).collect(),
            )],
        ),
        (
            "infinite",
            Scale::Linear,
            vec![Series::dashed(
                "inf",
                vec![0., 1., 2.],
                vec![f64::INFINITY, 1.0, 2.0],
            )],
        ),
        (
            "extreme",
            Scale::Linear,
            vec![Series::line("x", vec![-1e308, 1e308], vec![-1e308, 1e308])],
        ),
    ];
    for (name, scale, series) in cases {
        let mut fig = line_fig(name, scale, scale, series);
        if let FigureKind::Line(p) = &mut fig.kind {
            p.ref_lines.push(RefLine {
                label: "ref".into(),
                vertical: true,
                value: -1.0,
            });
        }
        let (svg, _) = check_renders(&fig);
        if name == "all_nan" {
            assert!(svg.contains("no finite data"));
        }
    }
}

#[test]
fn log_axis_drops_nonpositive_and_keeps_finite_range() {
    let fig = line_fig(
        "lognz",
        Scale::Log,
        Scale::Log,
        vec![Series::line(
            "l",
            vec![0.0, 1.0, 10.0, 100.0],
            vec![-1.0, 1e-6, 1e-3, 0.0],
        )],
    );
    let (svg, dark) = check_renders(&fig);
    assert!(dark > 50);
    // Range comes from the positive points only: decades between 1e-6 and 1e-3 are labelled.
    assert!(
        svg.contains("10⁻⁶") && svg.contains("10⁻³"),
        "expected decade labels"
    );
    assert!(!svg.contains("NaN") && !svg.contains("inf"));
}

#[test]
fn hundred_thousand_points_stay_small() {
    // 1e5 noisy points; the SVG must stay below 200 kB thanks to per-pixel-column min/max.
    let fig = staircase_figure(100_000);
    let (svg, dark) = check_renders(&fig);
    assert!(svg.len() < 200_000, "SVG is {} bytes", svg.len());
    assert!(dark > 500);
    // Non-monotone x (a parametric curve) is thinned too.
    let n = 100_000;
    let th: Vec<f64> = (0..n).map(|i| i as f64 / n as f64 * 20.0).collect();
    let fig = line_fig(
        "spiral",
        Scale::Linear,
        Scale::Linear,
        vec![Series::line(
            "s",
            th.iter().map(|t| t * t.cos()).collect(),
            th.iter().map(|t| t * t.sin()).collect(),
        )],
    );
    let (svg, _) = check_renders(&fig);
    assert!(svg.len() < 400_000, "spiral SVG is {} bytes", svg.len());
}

#[test]
fn no_fonts_still_produces_png() {
    let svg = render_svg(&staircase_figure(100)).unwrap();
    let empty = Arc::new(usvg::fontdb::Database::new());
    let (png, warnings) = svg_to_png_with_fontdb(&svg, 1.0, empty).unwrap();
    assert!(warnings.iter().any(|w| w.contains("no fonts")));
    let pm = Pixmap::decode_png(&png).unwrap();
    assert_eq!(pm.width(), 800);
}

#[test]
fn write_figure_writes_both_files() {
    let dir = std::env::temp_dir().join(format!("featlab-plot-test-{}", std::process::id()));
    let fig = heatmap_figure();
    let svg = write_figure(&dir, &fig).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("phase.svg")).unwrap(), svg);
    let pm = Pixmap::decode_png(&std::fs::read(dir.join("phase.png")).unwrap()).unwrap();
    assert_eq!((pm.width(), pm.height()), (1600, 1000));
    // No temp files left behind.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let mut bad = fig.clone();
    bad.name = "../escape".into();
    assert!(write_figure(&dir, &bad).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

/// Writes sample PNGs to `$TMPDIR/featlab-plot-samples/` for eyeballing.
#[test]
fn write_samples_for_inspection() {
    let dir = std::env::temp_dir().join("featlab-plot-samples");
    write_figure(&dir, &staircase_figure(20_000)).unwrap();
    write_figure(&dir, &heatmap_figure()).unwrap();
    let x: Vec<f64> = (0..40).map(|i| i as f64 * 0.25).collect();
    let fig = line_fig(
        "styles",
        Scale::Linear,
        Scale::Linear,
        vec![
            Series::line("line", x.clone(), x.iter().map(|v| v.sin()).collect()),
            Series::dashed("dashed", x.clone(), x.iter().map(|v| v.cos()).collect()),
            Series::step(
                "step",
                x.clone(),
                x.iter().map(|v| (v / 2.0).floor() * 0.2 - 1.0).collect(),
            ),
            Series::points(
                "points",
                x.clone(),
                x.iter().map(|v| 0.5 * (v * 0.7).sin() + 0.2).collect(),
            ),
        ],
    );
    write_figure(&dir, &fig).unwrap();
    let k: Vec<f64> = (0..200).map(|i| 1.0 + i as f64).collect();
    let huge = line_fig(
        "huge",
        Scale::Linear,
        Scale::Log,
        vec![
            Series::line(
                "residual",
                k.clone(),
                k.iter().map(|v| 1e3 * (-v * 0.38).exp()).collect(),
            ),
            Series::points("probe", vec![10.0, 50.0, 0.0], vec![1e-5, 0.0, -1.0]),
        ],
    );
    write_figure(&dir, &huge).unwrap();
    write_figure(
        &dir,
        &line_fig(
            "allnan",
            Scale::Log,
            Scale::Log,
            vec![Series::line("nan", vec![f64::NAN], vec![f64::NAN])],
        ),
    )
    .unwrap();
}
