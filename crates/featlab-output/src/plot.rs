//! Rendering of [`featlab::figure::Figure`] specs to SVG (via `plotters`) and PNG (via `resvg`).
//!
//! # Conventions
//!
//! * **Size.** Every figure is [`DEFAULT_WIDTH`]×[`DEFAULT_HEIGHT`] px (800×500) on a white
//!   background; text sizes are 14 px (ticks), 16 px (axis labels) and 19 px (title).
//!   plotters works in integer pixels, so the drawing is made on a 4× canvas and the SVG's
//!   `viewBox` maps it back to 800×500: geometry is placed to ¼ px (no visible jitter on
//!   straight lines), while `width`/`height` stay 800×500.
//! * **Log axes.** Data are mapped to `log10` space before drawing. Non-positive and
//!   non-finite values are dropped (a line is broken at a dropped point rather than joined
//!   across it). Ticks sit on decades and are labelled `10ᵏ`; when the axis spans many
//!   decades only every n-th decade is labelled (at most ~8 labels) and when it spans less
//!   than two decades, 1-2-5 ticks labelled with compact numbers (`2e-6`, `0.5`) are used.
//! * **Linear axes.** "Nice" 1-2-2.5-5 ticks; labels use 3 significant digits and switch to
//!   `1.5e-4` notation when the axis magnitude is `< 1e-3` or `≥ 1e5`.
//! * **Ranges.** The data range (including reference lines) padded by 4 %; a constant
//!   series is padded by ±10 % of its value (±1 at zero, ±½ decade on log axes); a figure
//!   with no finite data gets a default range and a "no finite data" notice.
//! * **Styles.** Colours cycle through the colour-blind-safe Okabe–Ito palette.
//!   [`Style::Dashed`] is dashed, [`Style::Step`] is drawn as a staircase (`y[i]` holds on
//!   `[x[i], x[i+1])`, the last value extends to the right edge of the plot),
//!   [`Style::Points`] as filled circles. Reference lines are thin grey dashed lines with
//!   their label written along them (labels that would overlap a previous label are skipped).
//!   Series without any drawable point still get a legend entry marked "(no finite data)".
//! * **Legend.** Placed in whichever of eight candidate positions (corners and edge
//!   midpoints of the plot area) covers the fewest drawn data samples.
//! * **Decimation.** Polylines longer than [`DECIMATE_ABOVE`] points are reduced in pixel
//!   space: when `x` is monotone, each pixel column keeps its first, minimum, maximum and last
//!   point (in original order), which preserves the visual envelope exactly (≤ 4 points per
//!   column, so a 10⁵-point series becomes ≤ ~2 800 points); otherwise consecutive points
//!   closer than 0.5 px to the last kept point are dropped. Marker series keep one marker
//!   per 1.5 px cell.
//! * **Heatmaps.** `x`/`y` are cell centres; cell edges are midpoints between neighbours (in
//!   log space on log axes). Colours use viridis. If every finite `z` is positive and
//!   `max/min > 1e3` the colour scale is logarithmic (the colourbar is then labelled in
//!   decades and its label gets a "(log scale)" suffix). Non-finite cells are grey (and a
//!   "grey = NaN" note appears under the colourbar). Horizontally adjacent cells with the same
//!   (256-level) colour are merged into one rectangle to keep the SVG small. Overlays are
//!   clipped to the heatmap area and drawn with a dark halo so they stay visible on any colour.
//! * **Fonts (PNG).** System fonts are loaded once with `fontdb` (falling back to
//!   `/usr/share/fonts/truetype/dejavu`); `sans-serif` maps to DejaVu Sans, Liberation Sans,
//!   Arial or Helvetica, whichever exists. Without any font the PNG is still produced without
//!   text and a warning is returned by [`svg_to_png_with_warnings`].

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::{anyhow, Context, Result};
use featlab::figure::{Figure, FigureKind, Heatmap, LinePlot, RefLine, Scale, Series, Style};
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::element::{DashedPathElement, MultiLineText};
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use resvg::{tiny_skia, usvg};

/// Default figure width in px (the PNG is `scale` times larger).
pub const DEFAULT_WIDTH: u32 = 800;
/// Default figure height in px.
pub const DEFAULT_HEIGHT: u32 = 500;
/// Polylines with more points than this are decimated (see the module docs).
pub const DECIMATE_ABOVE: usize = 2000;

/// Okabe–Ito palette (yellow omitted: unreadable on white), in cycling order.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0x00, 0x00, 0x00), // black
];
/// Overlay colours on heatmaps (drawn over a dark halo).
const OVERLAY_PALETTE: [RGBColor; 4] = [
    RGBColor(0xFF, 0xFF, 0xFF),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0xCC, 0x79, 0xA7),
];
const NAN_GREY: RGBColor = RGBColor(0xB0, 0xB0, 0xB0);
const REF_GREY: RGBColor = RGBColor(0x80, 0x80, 0x80);
const GRID: RGBColor = RGBColor(0xE4, 0xE4, 0xE4);
const GRID_LIGHT: RGBColor = RGBColor(0xF3, 0xF3, 0xF3);
const FONT: &str = "sans-serif";

/// Sub-pixel factor: plotters only has integer backend coordinates, so figures are drawn on
/// a canvas `SS` times larger and the SVG's `viewBox` maps it back to 800×500 (lines are
/// placed to 1/4 px instead of being snapped to whole pixels).
const SS: i32 = 4;

/// A length of `px` output pixels in backend units.
fn u(px: i32) -> i32 {
    px * SS
}

/// A length of `px` output pixels in backend units (float).
fn uf(px: f64) -> f64 {
    px * SS as f64
}

/// plotters' SVG backend writes `font-size = size / 1.24`; convert a wanted px size.
fn fs(px: f64) -> f64 {
    uf(px) * 1.24
}

type Coord = Cartesian2d<Axis, Axis>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Coord>;
type Pt = (f64, f64);

// ---------------------------------------------------------------------------------------
// Number formatting
// ---------------------------------------------------------------------------------------

/// Format `v` with `sig` significant digits, `%g`-style: plain notation for exponents in
/// `-4..sig`, otherwise compact scientific (`1.5e-7`, no `+`, no padding); trailing zeros
/// are trimmed. Non-finite values give `NaN`, `∞`, `-∞`.
pub fn format_number(v: f64, sig: usize) -> String {
    let sig = sig.max(1);
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "∞".into() } else { "-∞".into() };
    }
    if v == 0.0 {
        return "0".into();
    }
    let s = format!("{:.*e}", sig - 1, v);
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = exp.parse().unwrap_or(0);
    if e < -4 || e >= sig as i32 {
        format!("{}e{}", trim_zeros(mant), e)
    } else {
        let d = (sig as i32 - 1 - e).max(0) as usize;
        trim_zeros(&format!("{:.*}", d, v)).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn superscript(k: i64) -> String {
    k.to_string()
        .chars()
        .map(|c| match c {
            '-' => '⁻',
            '0' => '⁰',
            '1' => '¹',
            '2' => '²',
            '3' => '³',
            '4' => '⁴',
            '5' => '⁵',
            '6' => '⁶',
            '7' => '⁷',
            '8' => '⁸',
            '9' => '⁹',
            c => c,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Axes: transform, range, ticks
// ---------------------------------------------------------------------------------------

/// Map a data value into drawing space (`log10` on log axes); `None` if not drawable.
fn tf(scale: Scale, v: f64) -> Option<f64> {
    match scale {
        Scale::Linear => v.is_finite().then_some(v),
        Scale::Log => (v.is_finite() && v > 0.0).then(|| v.log10()),
    }
}

/// One axis in drawing space.
#[derive(Debug, Clone)]
struct Axis {
    scale: Scale,
    lo: f64,
    hi: f64,
    major: Vec<f64>,
    minor: Vec<f64>,
    step: f64,
}

impl Axis {
    /// Axis spanning `vals` (already in drawing space), padded by `pad` of the span.
    fn from_values(scale: Scale, vals: impl Iterator<Item = f64>, pad: f64) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in vals.filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        let (lo, hi) = if lo > hi {
            (0.0, 1.0)
        } else {
            let span = hi - lo;
            let scale_mag = lo.abs().max(hi.abs());
            if !span.is_finite() {
                (lo, hi)
            } else if span <= 1e-12 * scale_mag || span == 0.0 {
                let p = match scale {
                    Scale::Log => 0.5,
                    Scale::Linear if lo == 0.0 => 1.0,
                    Scale::Linear => 0.1 * lo.abs(),
                };
                (lo - p, hi + p)
            } else {
                (lo - pad * span, hi + pad * span)
            }
        };
        Self::new(scale, lo.max(-f64::MAX), hi.min(f64::MAX))
    }

    /// Axis with exact bounds (drawing space).
    fn new(scale: Scale, lo: f64, hi: f64) -> Self {
        let mut a = Axis {
            scale,
            lo,
            hi,
            major: vec![],
            minor: vec![],
            step: f64::NAN,
        };
        match scale {
            Scale::Linear => a.linear_ticks(),
            Scale::Log => a.log_ticks(),
        }
        a
    }

    fn linear_ticks(&mut self) {
        let (lo, hi) = (self.lo, self.hi);
        let span = hi - lo;
        self.major = vec![lo, hi];
        if !(span.is_finite() && span > 0.0) {
            return;
        }
        let raw = span / 6.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw * (1.0 - 1e-9))
            .unwrap_or(10.0 * mag);
        if !(step.is_finite() && step > 0.0) {
            return;
        }
        let (k0, k1) = ((lo / step).ceil(), (hi / step).floor());
        if !(k0.is_finite() && k1.is_finite()) || k1 - k0 > 100.0 {
            return;
        }
        let mut ticks = Vec::new();
        let mut k = k0;
        while k <= k1 && ticks.len() < 100 {
            let t = k * step;
            ticks.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
            k += 1.0;
        }
        if !ticks.is_empty() {
            self.major = ticks;
            self.step = step;
        }
    }

    fn log_ticks(&mut self) {
        let (lo, hi) = (self.lo, self.hi);
        let (k0, k1) = (lo.ceil(), hi.floor());
        let n = k1 - k0 + 1.0;
        let inr = |t: f64| t >= lo - 1e-9 && t <= hi + 1e-9;
        if n >= 2.0 && n.is_finite() {
            let stride = (n / 8.0).ceil().max(1.0) as i64;
            let mut k = k0 as i64;
            while k as f64 <= k1 {
                if k.rem_euclid(stride) == 0 {
                    self.major.push(k as f64);
                } else {
                    self.minor.push(k as f64);
                }
                k += 1;
            }
            if stride == 1 && hi - lo <= 12.0 {
                for k in (lo.floor() as i64)..=(hi.ceil() as i64) {
                    for m in 2..=9 {
                        let t = k as f64 + (m as f64).log10();
                        if inr(t) {
                            self.minor.push(t);
                        }
                    }
                }
            }
        } else if (hi - lo).is_finite() {
            let decades = (lo.floor() as i64 - 1)..=(hi.ceil() as i64);
            let pick = |ms: &[u32]| -> Vec<f64> {
                decades
                    .clone()
                    .flat_map(|k| ms.iter().map(move |m| k as f64 + (*m as f64).log10()))
                    .filter(|t| inr(*t))
                    .collect()
            };
            let mut major = pick(&[1, 2, 5]);
            if major.len() < 3 {
                major = pick(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
            }
            if major.len() < 2 {
                major = vec![lo, hi];
            }
            self.minor = pick(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
            self.major = major;
        } else {
            self.major = vec![lo, hi];
        }
    }

    /// Tick label for drawing-space value `t`.
    fn label(&self, t: f64) -> String {
        match self.scale {
            Scale::Log => {
                let k = t.round();
                if (t - k).abs() < 1e-9 && k.abs() < 1e6 {
                    format!("10{}", superscript(k as i64))
                } else {
                    format_number(10f64.powf(t), 3)
                }
            }
            Scale::Linear => linear_label(t, self.step, self.lo.abs().max(self.hi.abs())),
        }
    }
}

/// Our own 1-D coordinate: linear in drawing space with explicit major/minor ticks.
impl Ranged for Axis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let u = (v - self.lo) / (self.hi - self.lo);
        let len = (limit.1 - limit.0) as f64;
        if !u.is_finite() {
            return if u > 0.0 { limit.1 } else { limit.0 };
        }
        (limit.0 as f64 + (len * u + 1e-3).floor()).clamp(-1e7, 1e7) as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.minor.clone()
        } else {
            self.major.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for Axis {
    fn format_ext(&self, v: &f64) -> String {
        self.label(*v)
    }
}

fn linear_label(v: f64, step: f64, maxabs: f64) -> String {
    if !(step.is_finite() && step > 0.0) {
        return format_number(v, 3);
    }
    let e_step = step.log10().floor();
    let mant = step / 10f64.powf(e_step);
    let extra = if (mant - 2.5).abs() < 1e-6 { 1.0 } else { 0.0 };
    if !(1e-3..1e5).contains(&maxabs) {
        if v == 0.0 {
            return "0".into();
        }
        let e = v.abs().log10().floor();
        let d = (e - e_step + extra).clamp(0.0, 3.0) as usize;
        let s = format!("{:.*e}", d, v);
        match s.split_once('e') {
            Some((m, e)) => format!("{}e{}", trim_zeros(m), e),
            None => s,
        }
    } else {
        let d = (-e_step + extra).clamp(0.0, 10.0) as usize;
        format!("{:.*}", d, v)
    }
}

// ---------------------------------------------------------------------------------------
// Geometry helpers: polylines, clipping, decimation
// ---------------------------------------------------------------------------------------

/// Drawable geometry of one series in drawing space.
#[derive(Debug, Default)]
struct Geometry {
    lines: Vec<Vec<Pt>>,
    points: Vec<Pt>,
}

impl Geometry {
    fn is_empty(&self) -> bool {
        self.points.is_empty() && self.lines.iter().all(|l| l.is_empty())
    }
}

fn valid_point(s: &Series, i: usize, xs: Scale, ys: Scale) -> Option<Pt> {
    Some((tf(xs, *s.x.get(i)?)?, tf(ys, *s.y.get(i)?)?))
}

/// All drawable points of a series (used for ranges).
fn valid_points(s: &Series, xs: Scale, ys: Scale) -> impl Iterator<Item = Pt> + '_ {
    (0..s.x.len().min(s.y.len())).filter_map(move |i| valid_point(s, i, xs, ys))
}

/// Build polylines / markers for a series; `x_end` is the right edge used to extend the
/// last level of a step series.
fn geometry(s: &Series, xs: Scale, ys: Scale, x_end: f64) -> Geometry {
    let n = s.x.len().min(s.y.len());
    let mut g = Geometry::default();
    match s.style {
        Style::Points => g.points = valid_points(s, xs, ys).collect(),
        Style::Line | Style::Dashed => {
            let mut cur = Vec::new();
            for i in 0..n {
                match valid_point(s, i, xs, ys) {
                    Some(p) => cur.push(p),
                    None if !cur.is_empty() => g.lines.push(std::mem::take(&mut cur)),
                    None => {}
                }
            }
            if !cur.is_empty() {
                g.lines.push(cur);
            }
        }
        Style::Step => {
            let mut cur: Vec<Pt> = Vec::new();
            for i in 0..n {
                let Some((x, y)) = valid_point(s, i, xs, ys) else {
                    if !cur.is_empty() {
                        g.lines.push(std::mem::take(&mut cur));
                    }
                    continue;
                };
                let next_x = if i + 1 < n {
                    tf(xs, s.x[i + 1])
                } else {
                    Some(x_end.max(x))
                };
                cur.push((x, y));
                if let Some(nx) = next_x {
                    cur.push((nx, y));
                } else {
                    g.lines.push(std::mem::take(&mut cur));
                }
            }
            if !cur.is_empty() {
                g.lines.push(cur);
            }
        }
    }
    // A single isolated point of a line would be invisible: show it as a marker.
    let (singles, lines): (Vec<_>, Vec<_>) = g.lines.into_iter().partition(|l| l.len() == 1);
    g.lines = lines;
    g.points.extend(singles.into_iter().flatten());
    g
}

/// Liang–Barsky clip of segment `a→b` to the box; returns the clipped endpoints.
fn clip_segment(a: Pt, b: Pt, bx: (f64, f64, f64, f64)) -> Option<(Pt, Pt)> {
    let (x0, x1, y0, y1) = bx;
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - x0),
        (dx, x1 - a.0),
        (-dy, a.1 - y0),
        (dy, y1 - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    if t0 > t1 {
        return None;
    }
    Some((
        (a.0 + t0 * dx, a.1 + t0 * dy),
        (a.0 + t1 * dx, a.1 + t1 * dy),
    ))
}

/// Clip polylines to the axis box, splitting where they leave it.
fn clip_lines(lines: Vec<Vec<Pt>>, xa: &Axis, ya: &Axis) -> Vec<Vec<Pt>> {
    let bx = (xa.lo, xa.hi, ya.lo, ya.hi);
    let inside = |p: Pt| p.0 >= bx.0 && p.0 <= bx.1 && p.1 >= bx.2 && p.1 <= bx.3;
    let mut out = Vec::new();
    for line in lines {
        if line.iter().all(|p| inside(*p)) {
            out.push(line);
            continue;
        }
        let mut cur: Vec<Pt> = Vec::new();
        for w in line.windows(2) {
            match clip_segment(w[0], w[1], bx) {
                Some((a, b)) => {
                    if cur.last() != Some(&a) {
                        if cur.len() > 1 {
                            out.push(std::mem::take(&mut cur));
                        }
                        cur.clear();
                        cur.push(a);
                    }
                    cur.push(b);
                }
                None => {
                    if cur.len() > 1 {
                        out.push(std::mem::take(&mut cur));
                    }
                    cur.clear();
                }
            }
        }
        if cur.len() > 1 {
            out.push(cur);
        }
    }
    out
}

/// Pixel mapping of the plot area (drawing space → px relative to the plot's top-left).
#[derive(Clone, Copy)]
struct PxMap {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    w: f64,
    h: f64,
}

impl PxMap {
    fn new(xa: &Axis, ya: &Axis, (w, h): (u32, u32)) -> Self {
        PxMap {
            x0: xa.lo,
            x1: xa.hi,
            y0: ya.lo,
            y1: ya.hi,
            w: w as f64,
            h: h as f64,
        }
    }
    fn px(&self, p: Pt) -> Pt {
        (
            (p.0 - self.x0) / (self.x1 - self.x0) * self.w,
            (self.y1 - p.1) / (self.y1 - self.y0) * self.h,
        )
    }
}

/// Reduce a polyline to what is visible at pixel resolution (see module docs).
fn decimate(line: Vec<Pt>, m: &PxMap) -> Vec<Pt> {
    if line.len() <= DECIMATE_ABOVE {
        return line;
    }
    let inc = line.windows(2).all(|w| w[1].0 >= w[0].0);
    let dec = line.windows(2).all(|w| w[1].0 <= w[0].0);
    let mut out = Vec::new();
    if inc || dec {
        let mut i = 0;
        while i < line.len() {
            let col = (m.px(line[i]).0 / uf(1.0)).floor();
            let mut j = i;
            let (mut imin, mut imax) = (i, i);
            while j < line.len() && (m.px(line[j]).0 / uf(1.0)).floor() == col {
                if line[j].1 < line[imin].1 {
                    imin = j;
                }
                if line[j].1 > line[imax].1 {
                    imax = j;
                }
                j += 1;
            }
            let mut keep = [i, imin, imax, j - 1];
            keep.sort_unstable();
            let mut last = usize::MAX;
            for k in keep {
                if k != last {
                    out.push(line[k]);
                    last = k;
                }
            }
            i = j;
        }
    } else {
        let mut last = m.px(line[0]);
        out.push(line[0]);
        for (k, p) in line.iter().enumerate().skip(1) {
            let q = m.px(*p);
            if (q.0 - last.0).hypot(q.1 - last.1) >= uf(0.5) || k == line.len() - 1 {
                out.push(*p);
                last = q;
            }
        }
    }
    out
}

/// Keep one marker per 1.5 px cell.
fn dedup_points(points: Vec<Pt>, m: &PxMap) -> Vec<Pt> {
    let mut seen = HashSet::new();
    points
        .into_iter()
        .filter(|p| {
            let q = m.px(*p);
            seen.insert((
                (q.0 / uf(1.5)).floor() as i64,
                (q.1 / uf(1.5)).floor() as i64,
            ))
        })
        .collect()
}

/// Pixel samples of drawn geometry (for legend placement), at most every ~6 px.
fn samples(geoms: &[Geometry], m: &PxMap) -> Vec<Pt> {
    let mut out = Vec::new();
    for g in geoms {
        out.extend(g.points.iter().map(|p| m.px(*p)));
        for l in &g.lines {
            for w in l.windows(2) {
                let (a, b) = (m.px(w[0]), m.px(w[1]));
                let n = ((b.0 - a.0).hypot(b.1 - a.1) / uf(6.0))
                    .ceil()
                    .clamp(1.0, 400.0) as usize;
                for k in 0..n {
                    let t = k as f64 / n as f64;
                    out.push((a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1)));
                }
            }
            if let Some(p) = l.last() {
                out.push(m.px(*p));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------------------

fn to_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotters drawing error: {e:?}")
}

fn tick_style() -> TextStyle<'static> {
    (FONT, fs(14.0))
        .into_font()
        .color(&RGBColor(0x33, 0x33, 0x33))
}

/// Build a chart with our mesh on `area`.
fn build_chart<'a, 'b>(
    area: &DrawingArea<SVGBackend<'b>, Shift>,
    xa: &'a Axis,
    ya: &'a Axis,
    x_label: &str,
    y_label: &str,
) -> Result<Chart<'a, 'b>> {
    let ylab_w = ya
        .major
        .iter()
        .map(|t| ya.label(*t).chars().count())
        .max()
        .unwrap_or(1);
    let y_area = uf((ylab_w as f64 * 8.5 + 38.0).clamp(60.0, 140.0)) as u32;
    let mut chart = ChartBuilder::on(area)
        .margin_top(u(8))
        .margin_right(u(22))
        .margin_left(u(6))
        .margin_bottom(u(4))
        .x_label_area_size(u(52))
        .y_label_area_size(y_area)
        .build_cartesian_2d(xa.clone(), ya.clone())
        .map_err(to_err)?;
    let xf = |v: &f64| xa.label(*v);
    let yf = |v: &f64| ya.label(*v);
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .axis_desc_style((FONT, fs(16.0)))
        .label_style(tick_style())
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .bold_line_style(GRID.stroke_width(SS as u32))
        .light_line_style(GRID_LIGHT.stroke_width(SS as u32))
        .axis_style(RGBColor(0x44, 0x44, 0x44).stroke_width(SS as u32))
        .set_all_tick_mark_size(u(5))
        .draw()
        .map_err(to_err)?;
    Ok(chart)
}

fn draw_frame(chart: &Chart) -> Result<()> {
    let area = chart.plotting_area().strip_coord_spec();
    let (w, h) = area.dim_in_pixel();
    area.draw(&Rectangle::new(
        [(0, 0), (w as i32 - 1, h as i32 - 1)],
        RGBColor(0x44, 0x44, 0x44).stroke_width(SS as u32),
    ))
    .map_err(to_err)
}

/// Draw one series' geometry with label/legend.
fn draw_geometry<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    g: Geometry,
    style: Style,
    color: RGBColor,
    label: &str,
    halo: bool,
) -> Result<()> {
    let width = 2 * SS as u32;
    let line_style = color.stroke_width(width);
    let halo_style = RGBColor(0x20, 0x20, 0x20)
        .mix(0.75)
        .stroke_width(width + 3 * SS as u32);
    let dashed = style == Style::Dashed;
    let (dash, gap) = (u(9), u(5));
    if halo {
        for l in &g.lines {
            if dashed {
                chart
                    .draw_series(DashedLineSeries::new(
                        l.iter().copied(),
                        dash,
                        gap,
                        halo_style,
                    ))
                    .map_err(to_err)?;
            } else {
                chart
                    .draw_series(std::iter::once(PathElement::new(l.clone(), halo_style)))
                    .map_err(to_err)?;
            }
        }
    }
    let mut elems: Vec<DynElement<'static, SVGBackend<'b>, Pt>> = Vec::new();
    for l in g.lines {
        if dashed {
            for e in DashedLineSeries::new(l, dash, gap, line_style) {
                elems.push(e.into_dyn());
            }
        } else {
            elems.push(PathElement::new(l, line_style).into_dyn());
        }
    }
    let r = if halo { u(4) } else { u(3) };
    for p in g.points {
        if halo {
            elems.push(Circle::new(p, r + SS, RGBColor(0x20, 0x20, 0x20).filled()).into_dyn());
        }
        elems.push(Circle::new(p, r, color.filled()).into_dyn());
    }
    let anno = chart.draw_series(elems).map_err(to_err)?;
    if !label.is_empty() {
        anno.label(label.to_string()).legend(
            move |(x, y)| -> DynElement<'static, SVGBackend<'b>, (i32, i32)> {
                match style {
                    Style::Points => Circle::new((x + u(10), y), u(4), color.filled()).into_dyn(),
                    Style::Dashed => {
                        DashedPathElement::new(vec![(x, y), (x + u(22), y)], u(7), u(4), line_style)
                            .into_dyn()
                    }
                    Style::Step => PathElement::new(
                        vec![
                            (x, y + u(4)),
                            (x + u(11), y + u(4)),
                            (x + u(11), y - u(4)),
                            (x + u(22), y - u(4)),
                        ],
                        line_style,
                    )
                    .into_dyn(),
                    Style::Line => {
                        PathElement::new(vec![(x, y), (x + u(22), y)], line_style).into_dyn()
                    }
                }
            },
        );
    }
    Ok(())
}

/// Pixel box `(x0, y0, x1, y1)` in the plotting area.
type PxBox = (f64, f64, f64, f64);

/// Draw the legend where it covers no reference-line label (`avoid`, if it can) and hides
/// the fewest samples.
fn draw_legend<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    labels: &[String],
    samples: &[Pt],
    avoid: &[PxBox],
) -> Result<()> {
    if labels.is_empty() {
        return Ok(());
    }
    let font: TextStyle = (FONT, fs(14.0)).into_font().into();
    let mut text = MultiLineText::<_, &str>::new((0, 0), &font);
    for l in labels {
        text.push_line(l.as_str());
    }
    let (tw, th) = text
        .estimate_dimension()
        .unwrap_or((u(120), u(20) * labels.len() as i32));
    let (margin, legend_area) = (u(6), u(30));
    let (w, h) = (tw + legend_area + 2 * margin, th + 2 * margin);
    let (aw, ah) = chart.plotting_area().dim_in_pixel();
    let best = legend_position((w, h), (aw as i32, ah as i32), samples, avoid);
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::Coordinate(best.0, best.1))
        .margin(margin)
        .legend_area_size(legend_area)
        .label_font(font.clone())
        .background_style(WHITE.mix(0.88))
        .border_style(RGBColor(0xBB, 0xBB, 0xBB).stroke_width(SS as u32))
        .draw()
        .map_err(to_err)
}

/// Top-left corner (plotting-area pixels) for a `w × h` legend in an `aw × ah` area: the
/// first candidate (corners, edge midpoints, then a 20 px grid) covering no box of `avoid`
/// (reference-line labels) and hiding the fewest `samples`; covering a label costs more than
/// hiding every sample.
fn legend_position(
    (w, h): (i32, i32),
    (aw, ah): (i32, i32),
    samples: &[Pt],
    avoid: &[PxBox],
) -> (i32, i32) {
    let pad = u(8);
    let (xl, xm, xr) = (pad, (aw - w) / 2, aw - w - pad);
    let (yt, ym, yb) = (pad, (ah - h) / 2, ah - h - pad);
    // Corners first (preferred on ties), then edge midpoints, then a 20 px grid.
    let mut candidates = vec![
        (xr, yt),
        (xl, yt),
        (xr, yb),
        (xl, yb),
        (xm, yt),
        (xr, ym),
        (xl, ym),
        (xm, yb),
    ];
    for y in (yt..=yb.max(yt)).step_by(u(20) as usize) {
        for x in (xl..=xr.max(xl)).step_by(u(20) as usize) {
            candidates.push((x, y));
        }
    }
    let cost = |(x, y): (i32, i32)| {
        let (x0, y0, x1, y1) = (
            (x - u(4)) as f64,
            (y - u(4)) as f64,
            (x + w + u(4)) as f64,
            (y + h + u(4)) as f64,
        );
        let covered_labels = avoid
            .iter()
            .filter(|b| b.0 < x1 && b.2 > x0 && b.1 < y1 && b.3 > y0)
            .count();
        let hidden = samples
            .iter()
            .filter(|p| p.0 >= x0 && p.0 <= x1 && p.1 >= y0 && p.1 <= y1)
            .count();
        covered_labels * (samples.len() + 1) + hidden
    };
    let mut best = (xr, yt);
    let mut best_cost = usize::MAX;
    for c in candidates {
        let k = cost(c);
        if k < best_cost {
            best = c;
            best_cost = k;
        }
        if k == 0 {
            break;
        }
    }
    best
}

/// Pixel positions (x of vertical lines, y of horizontal ones) and labels of reference lines.
#[derive(Default)]
struct RefLabels {
    verticals: Vec<(f64, String)>,
    horizontals: Vec<(f64, String)>,
}

/// Grey dashed reference lines (drawn under the data); returns their labels, which are drawn
/// on top of the data by [`draw_ref_labels`].
fn draw_ref_lines<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    refs: &[RefLine],
    xa: &Axis,
    ya: &Axis,
) -> Result<RefLabels> {
    let style = REF_GREY.stroke_width(SS as u32);
    let m = PxMap::new(xa, ya, chart.plotting_area().dim_in_pixel());
    let mut verticals = Vec::new();
    let mut horizontals = Vec::new();
    for r in refs {
        let (scale, lo, hi) = if r.vertical {
            (xa.scale, xa.lo, xa.hi)
        } else {
            (ya.scale, ya.lo, ya.hi)
        };
        let Some(v) = tf(scale, r.value) else {
            continue;
        };
        if v < lo || v > hi {
            continue;
        }
        let pts = if r.vertical {
            vec![(v, ya.lo), (v, ya.hi)]
        } else {
            vec![(xa.lo, v), (xa.hi, v)]
        };
        chart
            .draw_series(DashedLineSeries::new(pts, u(6), u(4), style))
            .map_err(to_err)?;
        if r.vertical {
            verticals.push((m.px((v, ya.lo)).0, r.label.clone()));
        } else {
            horizontals.push((m.px((xa.lo, v)).1, r.label.clone()));
        }
    }
    Ok(RefLabels {
        verticals,
        horizontals,
    })
}

/// Labels of reference lines, written along the lines on a translucent white box; a label
/// closer than 16 px to the previous one is skipped. Returns the boxes drawn (for the legend
/// to avoid).
fn draw_ref_labels(chart: &Chart, labels: RefLabels) -> Result<Vec<PxBox>> {
    let mut boxes = Vec::new();
    let RefLabels {
        mut verticals,
        mut horizontals,
    } = labels;
    let area = chart.plotting_area().strip_coord_spec();
    let (aw, _) = area.dim_in_pixel();
    let label_font = (FONT, fs(13.0))
        .into_font()
        .color(&RGBColor(0x55, 0x55, 0x55));
    verticals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut last = f64::NEG_INFINITY;
    for (px, label) in verticals {
        if label.is_empty() || px - last < uf(16.0) {
            continue;
        }
        last = px;
        // Reads bottom-to-top, ending 6 px below the top, just right of the line.
        let (x, right) = if px + uf(20.0) < aw as f64 {
            (px as i32 + u(3), true)
        } else {
            (px as i32 - u(3), false)
        };
        let st = label_font
            .clone()
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(
                HPos::Right,
                if right { VPos::Top } else { VPos::Bottom },
            ));
        let (tw, _) = area
            .estimate_text_size(&label, &label_font)
            .unwrap_or((0, 0));
        let th = u(16);
        let (bx0, bx1) = if right { (x, x + th) } else { (x - th, x) };
        let (c0, c1) = ((bx0, u(4)), (bx1, u(8) + tw as i32));
        boxes.push((c0.0 as f64, c0.1 as f64, c1.0 as f64, c1.1 as f64));
        area.draw(&Rectangle::new([c0, c1], WHITE.mix(0.75).filled()))
            .map_err(to_err)?;
        area.draw_text(&label, &st, (x, u(6))).map_err(to_err)?;
    }
    horizontals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut last = f64::NEG_INFINITY;
    for (py, label) in horizontals {
        if label.is_empty() || py - last < uf(16.0) {
            continue;
        }
        last = py;
        let st = label_font.clone().pos(Pos::new(HPos::Right, VPos::Bottom));
        let (tw, _) = area
            .estimate_text_size(&label, &label_font)
            .unwrap_or((0, 0));
        let (x1, y1) = (aw as i32 - u(4), py as i32 - u(2));
        let c0 = (x1 - tw as i32 - u(4), y1 - u(16));
        boxes.push((c0.0 as f64, c0.1 as f64, x1 as f64, y1 as f64));
        area.draw(&Rectangle::new([c0, (x1, y1)], WHITE.mix(0.75).filled()))
            .map_err(to_err)?;
        area.draw_text(&label, &st, (aw as i32 - u(6), py as i32 - u(3)))
            .map_err(to_err)?;
    }
    Ok(boxes)
}

fn draw_notice(chart: &Chart, msg: &str) -> Result<()> {
    let area = chart.plotting_area().strip_coord_spec();
    let (w, h) = area.dim_in_pixel();
    let st = (FONT, fs(16.0))
        .into_font()
        .color(&RGBColor(0x88, 0x88, 0x88))
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw_text(msg, &st, (w as i32 / 2, h as i32 / 2))
        .map_err(to_err)
}

fn series_label(s: &Series, g: &Geometry) -> String {
    if g.is_empty() && !s.label.is_empty() {
        format!("{} (no finite data)", s.label)
    } else {
        s.label.clone()
    }
}

fn draw_line_plot(root: &DrawingArea<SVGBackend, Shift>, p: &LinePlot) -> Result<()> {
    let (xs, ys) = (p.x_scale, p.y_scale);
    let xvals = p
        .series
        .iter()
        .flat_map(|s| valid_points(s, xs, ys).map(|q| q.0))
        .chain(
            p.ref_lines
                .iter()
                .filter(|r| r.vertical)
                .filter_map(|r| tf(xs, r.value)),
        );
    let xa = Axis::from_values(xs, xvals, 0.03);
    let yvals = p
        .series
        .iter()
        .flat_map(|s| valid_points(s, xs, ys).map(|q| q.1))
        .chain(
            p.ref_lines
                .iter()
                .filter(|r| !r.vertical)
                .filter_map(|r| tf(ys, r.value)),
        );
    let ya = Axis::from_values(ys, yvals, 0.04);

    let mut chart = build_chart(root, &xa, &ya, &p.x_label, &p.y_label)?;
    let m = PxMap::new(&xa, &ya, chart.plotting_area().dim_in_pixel());
    let ref_labels = draw_ref_lines(&mut chart, &p.ref_lines, &xa, &ya)?;

    let mut geoms = Vec::new();
    for s in &p.series {
        let mut g = geometry(s, xs, ys, xa.hi);
        g.lines = clip_lines(g.lines, &xa, &ya)
            .into_iter()
            .map(|l| decimate(l, &m))
            .collect();
        g.points = dedup_points(g.points, &m);
        geoms.push(g);
    }
    let samp = samples(&geoms, &m);
    let any = geoms.iter().any(|g| !g.is_empty());
    let mut labels = Vec::new();
    for (i, (s, g)) in p.series.iter().zip(geoms).enumerate() {
        let label = series_label(s, &g);
        if !label.is_empty() {
            labels.push(label.clone());
        }
        draw_geometry(
            &mut chart,
            g,
            s.style,
            PALETTE[i % PALETTE.len()],
            &label,
            false,
        )?;
    }
    let label_boxes = draw_ref_labels(&chart, ref_labels)?;
    draw_frame(&chart)?;
    if !any {
        draw_notice(
            &chart,
            if p.series.is_empty() {
                "no data"
            } else {
                "no finite data"
            },
        )?;
    }
    draw_legend(&mut chart, &labels, &samp, &label_boxes)
}

/// Cell edges (drawing space) for centres `c` (entries `None` are dropped cells).
fn cell_edges(c: &[Option<f64>]) -> Vec<Option<(f64, f64)>> {
    let valid: Vec<(usize, f64)> = c
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .collect();
    let mut out = vec![None; c.len()];
    if valid.len() == 1 {
        out[valid[0].0] = Some((valid[0].1 - 0.5, valid[0].1 + 0.5));
        return out;
    }
    for (k, &(i, v)) in valid.iter().enumerate() {
        let left = if k > 0 {
            (valid[k - 1].1 + v) / 2.0
        } else {
            v - (valid[1].1 - v) / 2.0
        };
        let right = if k + 1 < valid.len() {
            (valid[k + 1].1 + v) / 2.0
        } else {
            v + (v - valid[k - 1].1) / 2.0
        };
        let (a, b) = if left <= right {
            (left, right)
        } else {
            (right, left)
        };
        if b > a && a.is_finite() && b.is_finite() {
            out[i] = Some((a, b));
        }
    }
    out
}

/// Colour normalisation for a heatmap.
struct ColorScale {
    log: bool,
    lo: f64,
    hi: f64,
}

impl ColorScale {
    fn new(z: &Heatmap) -> Self {
        let finite: Vec<f64> =
            z.z.iter()
                .flatten()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
        let (mut lo, mut hi) = finite
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        if finite.is_empty() {
            return ColorScale {
                log: false,
                lo: 0.0,
                hi: 1.0,
            };
        }
        let log = lo > 0.0 && hi / lo > 1e3;
        if log {
            lo = lo.log10();
            hi = hi.log10();
        }
        if !(hi - lo > 0.0 && (hi - lo).is_finite()) {
            let p = if lo == 0.0 {
                0.5
            } else {
                (lo.abs() * 0.05).max(1e-300)
            };
            lo -= p;
            hi += p;
        }
        ColorScale { log, lo, hi }
    }
    /// LUT index 0..=255, or None for non-finite.
    fn index(&self, v: f64) -> Option<u8> {
        let t = if self.log {
            v.is_finite().then(|| v.log10())?
        } else {
            v
        };
        if !t.is_finite() {
            return None;
        }
        let u = ((t - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        Some((u * 255.0).round() as u8)
    }
}

fn viridis(i: u8) -> RGBColor {
    ViridisRGB::get_color_normalized(i as f64, 0.0, 255.0)
}

fn draw_heatmap(root: &DrawingArea<SVGBackend, Shift>, h: &Heatmap) -> Result<()> {
    let (xs, ys) = (h.x_scale, h.y_scale);
    let xc: Vec<Option<f64>> = h.x.iter().map(|v| tf(xs, *v)).collect();
    let yc: Vec<Option<f64>> = h.y.iter().map(|v| tf(ys, *v)).collect();
    let xe = cell_edges(&xc);
    let ye = cell_edges(&yc);
    let span = |e: &[Option<(f64, f64)>]| {
        e.iter()
            .flatten()
            .flat_map(|(a, b)| [*a, *b])
            .collect::<Vec<f64>>()
    };
    let (xv, yv) = (span(&xe), span(&ye));
    let (xa, ya) = if xv.is_empty() || yv.is_empty() {
        // No grid: fall back to the overlays' range.
        let pts: Vec<Pt> = h
            .overlays
            .iter()
            .flat_map(|s| valid_points(s, xs, ys))
            .collect();
        (
            Axis::from_values(xs, pts.iter().map(|p| p.0), 0.03),
            Axis::from_values(ys, pts.iter().map(|p| p.1), 0.04),
        )
    } else {
        let mm = |v: &[f64]| {
            v.iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                    (a.min(*x), b.max(*x))
                })
        };
        let ((x0, x1), (y0, y1)) = (mm(&xv), mm(&yv));
        (Axis::new(xs, x0, x1), Axis::new(ys, y0, y1))
    };
    let cs = ColorScale::new(h);

    let (main, cbar) = root.split_horizontally(root.dim_in_pixel().0.saturating_sub(u(125) as u32));
    let mut chart = build_chart(&main, &xa, &ya, &h.x_label, &h.y_label)?;
    let m = PxMap::new(&xa, &ya, chart.plotting_area().dim_in_pixel());

    // Cells, merged along rows when the colour index repeats; edges snapped to whole output
    // pixels and overlapping their neighbour by 1/4 px so no anti-aliasing seams show.
    let dims = chart.plotting_area().dim_in_pixel();
    let (pw, ph) = (dims.0 as i32, dims.1 as i32);
    let snap = |v: f64| ((v / uf(1.0)).round() as i32) * SS;
    let cell_rect = |(a, y0): Pt, (b, y1): Pt, col: RGBColor| {
        let (p0, p1) = (m.px((a, y1)), m.px((b, y0)));
        let (l, t) = (snap(p0.0.min(p1.0)), snap(p0.1.min(p1.1)));
        let (r, btm) = (snap(p0.0.max(p1.0)), snap(p0.1.max(p1.1)));
        Rectangle::new([(l, t), ((r + 1).min(pw), (btm + 1).min(ph))], col.filled())
    };
    let mut rects: Vec<Rectangle<(i32, i32)>> = Vec::new();
    let mut any_nan = false;
    let mut any_cell = false;
    for (i, yi) in ye.iter().enumerate() {
        let Some((y0, y1)) = *yi else { continue };
        let mut run: Option<(f64, f64, Option<u8>)> = None;
        let flush = |run: &mut Option<(f64, f64, Option<u8>)>,
                     rects: &mut Vec<Rectangle<(i32, i32)>>| {
            if let Some((a, b, c)) = run.take() {
                let col = c.map(viridis).unwrap_or(NAN_GREY);
                rects.push(cell_rect((a, y0), (b, y1), col));
            }
        };
        for (j, xj) in xe.iter().enumerate() {
            let Some((x0, x1)) = *xj else {
                flush(&mut run, &mut rects);
                continue;
            };
            let v =
                h.z.get(i)
                    .and_then(|r| r.get(j))
                    .copied()
                    .unwrap_or(f64::NAN);
            let c = cs.index(v);
            any_cell = true;
            any_nan |= c.is_none();
            match &mut run {
                Some((_, b, rc)) if *rc == c && (*b - x0).abs() <= 1e-9 * (1.0 + x0.abs()) => {
                    *b = x1
                }
                _ => {
                    flush(&mut run, &mut rects);
                    run = Some((x0, x1, c));
                }
            }
        }
        flush(&mut run, &mut rects);
    }
    let plot_px = chart.plotting_area().strip_coord_spec();
    for r in &rects {
        plot_px.draw(r).map_err(to_err)?;
    }

    let mut geoms = Vec::new();
    for s in &h.overlays {
        let mut g = geometry(s, xs, ys, xa.hi);
        g.lines = clip_lines(g.lines, &xa, &ya)
            .into_iter()
            .map(|l| decimate(l, &m))
            .collect();
        g.points
            .retain(|p| p.0 >= xa.lo && p.0 <= xa.hi && p.1 >= ya.lo && p.1 <= ya.hi);
        g.points = dedup_points(g.points, &m);
        geoms.push(g);
    }
    let samp = samples(&geoms, &m);
    let mut labels = Vec::new();
    for (i, (s, g)) in h.overlays.iter().zip(geoms).enumerate() {
        let label = series_label(s, &g);
        if !label.is_empty() {
            labels.push(label.clone());
        }
        draw_geometry(
            &mut chart,
            g,
            s.style,
            OVERLAY_PALETTE[i % OVERLAY_PALETTE.len()],
            &label,
            true,
        )?;
    }
    draw_frame(&chart)?;
    if !any_cell {
        draw_notice(&chart, "no data")?;
    }
    draw_legend(&mut chart, &labels, &samp, &[])?;
    let (_, rows) = chart.plotting_area().get_pixel_range();
    draw_colorbar(
        &cbar,
        rows,
        &cs,
        h,
        any_nan,
        !any_cell || h.z.iter().flatten().all(|v| !v.is_finite()),
    )
}

/// Colourbar drawn in pixel space next to the heatmap, spanning the plot's pixel rows `rows`
/// (absolute backend coordinates).
fn draw_colorbar(
    area: &DrawingArea<SVGBackend, Shift>,
    rows: std::ops::Range<i32>,
    cs: &ColorScale,
    h: &Heatmap,
    any_nan: bool,
    empty: bool,
) -> Result<()> {
    let za = Axis::new(
        if cs.log { Scale::Log } else { Scale::Linear },
        cs.lo,
        cs.hi,
    );
    let base = area.get_base_pixel();
    let (aw, _) = area.dim_in_pixel();
    let (top, bot) = (rows.start - base.1, rows.end - base.1);
    let (x0, x1) = (u(12), u(34));
    let ink = RGBColor(0x44, 0x44, 0x44);
    let hgt = (bot - top).max(1) as f64;
    if !empty {
        let n = 128;
        let rects = (0..n).map(|k| {
            let ya = bot - (k as f64 / n as f64 * hgt).round() as i32;
            let yb = bot - ((k + 1) as f64 / n as f64 * hgt).round() as i32;
            let col = viridis(((k as f64 + 0.5) / n as f64 * 255.0).round() as u8);
            let snap = |v: i32| ((v as f64 / uf(1.0)).round() as i32) * SS;
            let lo = if k == 0 { ya } else { (snap(ya) + 1).min(bot) };
            Rectangle::new([(x0, snap(yb).max(top)), (x1, lo)], col.filled())
        });
        for r in rects {
            area.draw(&r).map_err(to_err)?;
        }
    }
    area.draw(&Rectangle::new(
        [(x0, top), (x1, bot)],
        ink.stroke_width(SS as u32),
    ))
    .map_err(to_err)?;
    let label = tick_style().pos(Pos::new(HPos::Left, VPos::Center));
    for t in za.major.iter().filter(|t| **t >= cs.lo && **t <= cs.hi) {
        let y = bot - ((t - cs.lo) / (cs.hi - cs.lo) * hgt).round() as i32;
        area.draw(&PathElement::new(
            vec![(x1, y), (x1 + u(5), y)],
            ink.stroke_width(SS as u32),
        ))
        .map_err(to_err)?;
        area.draw_text(&za.label(*t), &label, (x1 + u(8), y))
            .map_err(to_err)?;
    }
    let mut desc = h.z_label.clone();
    if cs.log {
        desc.push_str(" (log scale)");
    }
    if empty {
        desc = format!("{desc} (no finite values)");
    }
    let st = (FONT, fs(15.0))
        .into_font()
        .transform(FontTransform::Rotate90)
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    area.draw_text(&desc, &st, (aw as i32 - u(6), (top + bot) / 2))
        .map_err(to_err)?;
    if any_nan {
        let st = (FONT, fs(13.0))
            .into_font()
            .color(&RGBColor(0x55, 0x55, 0x55));
        let y = bot + u(12);
        area.draw(&Rectangle::new(
            [(x0, y), (x0 + u(14), y + u(14))],
            NAN_GREY.filled(),
        ))
        .map_err(to_err)?;
        area.draw_text("NaN", &st, (x0 + u(19), y))
            .map_err(to_err)?;
    }
    Ok(())
}

/// Render a figure spec to an SVG document string (default 800×500 px; heatmaps with a
/// colorbar; legend; log axes with decade ticks labelled `10ᵏ`). See the module docs for
/// the conventions (ranges, decimation, colour scales).
pub fn render_svg(fig: &Figure) -> Result<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(
            &mut buf,
            (DEFAULT_WIDTH * SS as u32, DEFAULT_HEIGHT * SS as u32),
        )
        .into_drawing_area();
        root.fill(&WHITE).map_err(to_err)?;
        let title = match &fig.kind {
            FigureKind::Line(p) => &p.title,
            FigureKind::Heatmap(h) => &h.title,
        };
        let body = if title.is_empty() {
            root.margin(u(10), 0, 0, 0)
        } else {
            root.margin(u(6), 0, 0, 0)
                .titled(
                    title,
                    (FONT, fs(19.0))
                        .into_font()
                        .color(&RGBColor(0x11, 0x11, 0x11)),
                )
                .map_err(to_err)?
        };
        match &fig.kind {
            FigureKind::Line(p) => draw_line_plot(&body, p),
            FigureKind::Heatmap(h) => draw_heatmap(&body, h),
        }
        .with_context(|| format!("rendering figure `{}`", fig.name))?;
        root.present().map_err(to_err)?;
    }
    // Keep the super-sampled viewBox but declare the output size in px.
    let (bw, bh) = (DEFAULT_WIDTH * SS as u32, DEFAULT_HEIGHT * SS as u32);
    let from = format!("width=\"{bw}\" height=\"{bh}\"");
    let to = format!("width=\"{DEFAULT_WIDTH}\" height=\"{DEFAULT_HEIGHT}\"");
    Ok(buf.replacen(&from, &to, 1))
}

// ---------------------------------------------------------------------------------------
// Rasterisation
// ---------------------------------------------------------------------------------------

const SANS_CANDIDATES: [&str; 5] = [
    "DejaVu Sans",
    "Liberation Sans",
    "Arial",
    "Helvetica",
    "Noto Sans",
];
const DEJAVU_DIR: &str = "/usr/share/fonts/truetype/dejavu";

/// Load system fonts once (falling back to the DejaVu directory) and map `sans-serif`.
fn system_fontdb() -> Arc<usvg::fontdb::Database> {
    static DB: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_system_fonts();
        if db.is_empty() && Path::new(DEJAVU_DIR).is_dir() {
            db.load_fonts_dir(DEJAVU_DIR);
        }
        Arc::new(configure_fontdb(db))
    })
    .clone()
}

fn configure_fontdb(mut db: usvg::fontdb::Database) -> usvg::fontdb::Database {
    let has = |db: &usvg::fontdb::Database, name: &str| {
        db.faces()
            .any(|f| f.families.iter().any(|(n, _)| n == name))
    };
    let family = SANS_CANDIDATES
        .iter()
        .find(|n| has(&db, n))
        .map(|s| s.to_string())
        .or_else(|| {
            db.faces()
                .next()
                .and_then(|f| f.families.first().map(|(n, _)| n.clone()))
        });
    if let Some(f) = family {
        db.set_sans_serif_family(f.clone());
        db.set_serif_family(f);
    }
    db
}

/// Rasterise with an explicit font database; returns PNG bytes and warnings.
///
/// Exposed so callers (and tests) can render without system fonts; an empty database
/// produces a PNG without text plus a warning.
pub fn svg_to_png_with_fontdb(
    svg: &str,
    scale: f32,
    fontdb: Arc<usvg::fontdb::Database>,
) -> Result<(Vec<u8>, Vec<String>)> {
    if !(scale.is_finite() && scale > 0.0) {
        anyhow::bail!("invalid PNG scale {scale}");
    }
    let mut warnings = Vec::new();
    if fontdb.is_empty() {
        warnings.push(format!(
            "no fonts found (looked in system font directories and {DEJAVU_DIR}); PNG text is missing — install fonts-dejavu-core"
        ));
    }
    let mut opt = usvg::Options {
        fontdb,
        ..Default::default()
    };
    opt.font_family = "sans-serif".into();
    let tree = usvg::Tree::from_str(svg, &opt).context("parsing SVG for rasterisation")?;
    let size = tree.size();
    let (w, h) = (
        (size.width() * scale).ceil() as u32,
        (size.height() * scale).ceil() as u32,
    );
    let mut pixmap = tiny_skia::Pixmap::new(w.max(1), h.max(1))
        .ok_or_else(|| anyhow!("cannot allocate a {w}×{h} pixmap"))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    let png = pixmap.encode_png().context("encoding PNG")?;
    Ok((png, warnings))
}

/// Rasterise an SVG string to PNG bytes at `scale` and return any warnings (e.g. no
/// fonts available, so the PNG has no text).
pub fn svg_to_png_with_warnings(svg: &str, scale: f32) -> Result<(Vec<u8>, Vec<String>)> {
    svg_to_png_with_fontdb(svg, scale, system_fontdb())
}

/// Rasterise an SVG string to PNG bytes at `scale` (2.0 → 1600×1000 for the default size).
///
/// Warnings (missing fonts) are printed once to stderr; use [`svg_to_png_with_warnings`]
/// to collect them instead.
pub fn svg_to_png(svg: &str, scale: f32) -> Result<Vec<u8>> {
    let (png, warnings) = svg_to_png_with_warnings(svg, scale)?;
    report_warnings_once(&warnings);
    Ok(png)
}

fn report_warnings_once(warnings: &[String]) {
    static DONE: OnceLock<()> = OnceLock::new();
    if !warnings.is_empty() && DONE.set(()).is_ok() {
        for w in warnings {
            eprintln!("featlab: warning: {w}");
        }
    }
}

/// Write `bytes` to `path` atomically (temp file in the same directory, then rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let res = (|| -> Result<()> {
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all().ok();
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Like [`write_figure`], but also returns rasterisation warnings instead of printing them.
pub fn write_figure_with_warnings(dir: &Path, fig: &Figure) -> Result<(String, Vec<String>)> {
    if fig.name.is_empty() || fig.name.contains(['/', '\\']) || fig.name.starts_with('.') {
        anyhow::bail!(
            "invalid figure name {:?} (must be a plain file stem)",
            fig.name
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let svg = render_svg(fig)?;
    let (png, warnings) = svg_to_png_with_warnings(&svg, 2.0)
        .with_context(|| format!("rasterising figure `{}`", fig.name))?;
    write_atomic(&dir.join(format!("{}.svg", fig.name)), svg.as_bytes())?;
    write_atomic(&dir.join(format!("{}.png", fig.name)), &png)?;
    Ok((svg, warnings))
}

/// Render and write `dir/<name>.svg` and `dir/<name>.png` (PNG at 2× scale; each file written
/// atomically via temp file + rename); returns the SVG string. `dir` is created if needed.
pub fn write_figure(dir: &Path, fig: &Figure) -> Result<String> {
    let (svg, warnings) = write_figure_with_warnings(dir, fig)?;
    report_warnings_once(&warnings);
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_format() {
        assert_eq!(format_number(1.234567891, 6), "1.23457");
        assert_eq!(format_number(1.5e-7, 6), "1.5e-7");
        assert_eq!(format_number(123456789.0, 6), "1.23457e8");
        assert_eq!(format_number(100.0, 6), "100");
        assert_eq!(format_number(0.0001, 3), "0.0001");
        assert_eq!(format_number(9.9999999, 3), "10");
        assert_eq!(linear_label(0.25, 0.25, 1.0), "0.25");
        assert_eq!(linear_label(1500.0, 500.0, 2000.0), "1500");
        assert_eq!(linear_label(2e5, 1e5, 5e5), "2e5");
        assert_eq!(Axis::new(Scale::Log, -6.5, 0.5).label(-6.0), "10⁻⁶");
    }

    #[test]
    fn log_ticks_many_decades_are_strided() {
        let a = Axis::new(Scale::Log, -30.0, 3.0);
        assert!(a.major.len() <= 9 && a.major.len() >= 4, "{:?}", a.major);
        let b = Axis::new(Scale::Log, 0.1, 0.6);
        assert!(b.major.len() >= 2);
    }

    /// The legend goes to the top-right corner unless a reference-line label is there; then
    /// to the next candidate that covers no label, even if that hides some samples.
    #[test]
    fn legend_avoids_reference_labels() {
        let (size, area) = ((u(100), u(40)), (u(600), u(400)));
        let free = legend_position(size, area, &[], &[]);
        assert_eq!(free, (u(600) - u(100) - u(8), u(8)));
        // a level label's box at the top right, under the preferred corner
        let label = (
            (u(600) - u(80)) as f64,
            u(10) as f64,
            (u(600) - u(4)) as f64,
            u(26) as f64,
        );
        // samples in the top-left corner (the next candidate)
        let samples: Vec<Pt> = (0..5).map(|i| (u(20 + i) as f64, u(20) as f64)).collect();
        let pos = legend_position(size, area, &samples, &[label]);
        let (x0, y0, x1, y1) = (
            pos.0 - u(4),
            pos.1 - u(4),
            pos.0 + size.0 + u(4),
            pos.1 + size.1 + u(4),
        );
        let overlaps = (label.0 as i32) < x1
            && (label.2 as i32) > x0
            && (label.1 as i32) < y1
            && (label.3 as i32) > y0;
        assert!(!overlaps, "legend at {pos:?} covers the label {label:?}");
        // bottom right: the first corner covering neither the label nor a sample
        assert_eq!(pos, (u(600) - u(100) - u(8), u(400) - u(40) - u(8)));
    }

    #[test]
    fn clipping() {
        let bx = (0.0, 1.0, 0.0, 1.0);
        let (a, b) = clip_segment((-1.0, 0.5), (2.0, 0.5), bx).unwrap();
        assert_eq!((a, b), ((0.0, 0.5), (1.0, 0.5)));
        assert!(clip_segment((2.0, 2.0), (3.0, 3.0), bx).is_none());
    }
}
