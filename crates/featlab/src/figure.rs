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
    #[serde(with = "nonfinite::vec")]
    pub x: Vec<f64>,
    #[serde(with = "nonfinite::vec")]
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
    #[serde(with = "nonfinite::scalar")]
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
    #[serde(with = "nonfinite::vec")]
    pub x: Vec<f64>,
    #[serde(with = "nonfinite::vec")]
    pub y: Vec<f64>,
    /// Row-major values: `z[i][j]` at (`x[j]`, `y[i]`). Non-finite cells are drawn grey.
    #[serde(with = "nonfinite::matrix")]
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

/// Serde of `f64` values that may be non-finite (JSON has no NaN/∞): finite values are
/// numbers, NaN is `null`, ±∞ are the strings `"inf"` / `"-inf"`. Used for the figure specs
/// saved in `plots/figures.json`, so `featlab report` re-renders them exactly.
mod nonfinite {
    use serde::de::{self, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// One value with the non-finite encoding.
    pub struct F(pub f64);

    impl Serialize for F {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let v = self.0;
            if v.is_finite() {
                s.serialize_f64(v)
            } else if v.is_nan() {
                s.serialize_none()
            } else if v > 0.0 {
                s.serialize_str("inf")
            } else {
                s.serialize_str("-inf")
            }
        }
    }

    impl<'de> Deserialize<'de> for F {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<F, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = F;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a number, null, \"inf\" or \"-inf\"")
                }
                fn visit_f64<E: de::Error>(self, v: f64) -> Result<F, E> {
                    Ok(F(v))
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<F, E> {
                    Ok(F(v as f64))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<F, E> {
                    Ok(F(v as f64))
                }
                fn visit_unit<E: de::Error>(self) -> Result<F, E> {
                    Ok(F(f64::NAN))
                }
                fn visit_none<E: de::Error>(self) -> Result<F, E> {
                    Ok(F(f64::NAN))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<F, E> {
                    match v {
                        "inf" | "+inf" => Ok(F(f64::INFINITY)),
                        "-inf" => Ok(F(f64::NEG_INFINITY)),
                        "nan" | "NaN" => Ok(F(f64::NAN)),
                        _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                    }
                }
            }
            d.deserialize_any(V)
        }
    }

    pub mod scalar {
        use super::*;
        pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
            F(*v).serialize(s)
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
            Ok(F::deserialize(d)?.0)
        }
    }

    pub mod vec {
        use super::*;
        pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|x| F(*x)))
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
            Ok(Vec::<F>::deserialize(d)?.into_iter().map(|f| f.0).collect())
        }
    }

    pub mod matrix {
        use super::*;
        struct Row<'a>(&'a [f64]);
        impl Serialize for Row<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                vec::serialize(self.0, s)
            }
        }
        pub fn serialize<S: Serializer>(v: &[Vec<f64>], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|r| Row(r)))
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
            Ok(Vec::<Vec<F>>::deserialize(d)?
                .into_iter()
                .map(|r| r.into_iter().map(|f| f.0).collect())
                .collect())
        }
    }
}

#[cfg(test)]
mod serde_tests {
    use super::*;

    #[test]
    fn figures_round_trip_through_json_with_non_finite_values() {
        let mut p = LinePlot::new("t", "x", "y").with(Series::line(
            "a",
            vec![0.0, 1.5, f64::NAN],
            vec![f64::INFINITY, f64::NEG_INFINITY, 1e-300],
        ));
        p.ref_lines.push(RefLine {
            label: "r".into(),
            vertical: true,
            value: f64::NAN,
        });
        let h = Heatmap {
            title: "h".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            z_label: "z".into(),
            x: vec![1.0, 2.0],
            y: vec![3.0],
            z: vec![vec![f64::NAN, 0.1]],
            x_scale: Scale::Log,
            y_scale: Scale::Linear,
            overlays: vec![],
        };
        let figs = vec![
            p.figure("a", "cap"),
            Figure {
                name: "h".into(),
                caption: "c".into(),
                kind: FigureKind::Heatmap(h),
            },
        ];
        let text = serde_json::to_string(&figs).unwrap();
        let back: Vec<Figure> = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        let FigureKind::Line(l) = &back[0].kind else {
            panic!()
        };
        assert!(
            l.series[0].x[2].is_nan()
                && l.series[0].y[0] == f64::INFINITY
                && l.series[0].y[1] == f64::NEG_INFINITY
        );
        assert_eq!(l.series[0].y[2], 1e-300);
        let FigureKind::Heatmap(h) = &back[1].kind else {
            panic!()
        };
        assert!(h.z[0][0].is_nan() && h.z[0][1] == 0.1);
    }
}
