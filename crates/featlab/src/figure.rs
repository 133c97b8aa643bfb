//! Figure specifications: what to plot, not how.
//!
//! The library describes every figure of a run as data (series, axes, scales, markers);
//! the CLI renders them to SVG/PNG and embeds them in `report.html`. Keeping plotting out
//! of the library means the Python bindings and the sweep report reuse the same specs.

use serde::{Deserialize, Serialize};

/// Axis scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    #[default]
    Linear,
    /// Base-10 logarithmic; non-positive values are dropped from the plot.
    Log,
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// Solid line through the points.
    #[default]
    Line,
    /// Dashed line (used for theory curves).
    Dashed,
    /// Piecewise-constant step function: value `y[i]` holds on `[x[i], x[i+1])`.
    Step,
    /// Markers only.
    Points,
}

/// One curve of a line plot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Series {
    pub label: String,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub style: Style,
}

impl Series {
    /// A solid line.
    pub fn line(label: impl Into<String>, x: Vec<f64>, y: Vec<f64>) -> Self {
        Series {
            label: label.into(),
            x,
            y,
            style: Style::Line,
        }
    }
    /// A dashed line (theory).
    pub fn dashed(label: impl Into<String>, x: Vec<f64>, y: Vec<f64>) -> Self {
        Series {
            label: label.into(),
            x,
            y,
            style: Style::Dashed,
        }
    }
    /// A step function.
    pub fn step(label: impl Into<String>, x: Vec<f64>, y: Vec<f64>) -> Self {
        Series {
            label: label.into(),
            x,
            y,
            style: Style::Step,
        }
    }
    /// Markers only.
    pub fn points(label: impl Into<String>, x: Vec<f64>, y: Vec<f64>) -> Self {
        Series {
            label: label.into(),
            x,
            y,
            style: Style::Points,
        }
    }
}

/// A vertical or horizontal reference line (e.g. a predicted jump time or loss level).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefLine {
    pub label: String,
    /// `true`: vertical line at x = `value`; `false`: horizontal line at y = `value`.
    pub vertical: bool,
    pub value: f64,
}

/// A 2-D line plot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinePlot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_scale: Scale,
    pub y_scale: Scale,
    pub series: Vec<Series>,
    pub ref_lines: Vec<RefLine>,
}

/// A heatmap of `z[row][col]` over a grid (`x` = column coordinates, `y` = row
/// coordinates), optionally with curves drawn on top (e.g. a theoretical phase boundary).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heatmap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub z_label: String,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    /// Row-major values: `z[i][j]` at (`x[j]`, `y[i]`). Non-finite cells are drawn grey.
    pub z: Vec<Vec<f64>>,
    pub x_scale: Scale,
    pub y_scale: Scale,
    /// Curves overlaid on the heatmap, in the same coordinates.
    pub overlays: Vec<Series>,
}

/// Any figure of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FigureKind {
    Line(LinePlot),
    Heatmap(Heatmap),
}

/// A named figure; `name` becomes the file stem under `plots/` (`plots/<name>.svg`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figure {
    pub name: String,
    /// One-sentence caption shown under the figure in the report.
    pub caption: String,
    pub kind: FigureKind,
}

impl LinePlot {
    /// An empty plot with the given title and axis labels, linear scales.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        LinePlot {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            series: Vec::new(),
            ref_lines: Vec::new(),
        }
    }
    /// Set both axis scales.
    pub fn scales(mut self, x: Scale, y: Scale) -> Self {
        self.x_scale = x;
        self.y_scale = y;
        self
    }
    /// Add a series.
    pub fn with(mut self, s: Series) -> Self {
        self.series.push(s);
        self
    }
    /// Wrap into a named [`Figure`].
    pub fn figure(self, name: impl Into<String>, caption: impl Into<String>) -> Figure {
        Figure {
            name: name.into(),
            caption: caption.into(),
            kind: FigureKind::Line(self),
        }
    }
}
