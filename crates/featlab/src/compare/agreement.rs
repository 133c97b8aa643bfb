//! The `agreement` section of run.json: one row per quantity that a study computes both
//! from theory and from the experiment.
//!
//! A row is `{quantity, theory, experiment, rel_error, tolerance, holds}` (the output
//! contract of `../shared/design.md`), plus two optional keys: `relative_to` (the scale the
//! error is divided by when it is not |theory|, e.g. ℓ₀ for a loss level that theory puts at
//! zero) and `note` (the setting in a few words, e.g. "seed 0, α = 1e-5").
//!
//! Conventions, in one place:
//! * `rel_error = |experiment − theory| / scale` with `scale = relative_to` if given, else
//!   `|theory|` ([`AgreementRow::relative`], [`AgreementRow::relative_to`]);
//! * a quantity the experiment never produced (a drop GF did not reach, a NaN) has
//!   `experiment = null`, `rel_error = null` and does not hold;
//! * `holds = rel_error ≤ tolerance`. The tolerance is the study's stated claim at its
//!   preset's settings (documented in its docs page), never a number fitted to the result;
//!   a row that does not hold is a finding, reported, not an error (`featlab run --check`
//!   turns it into exit status 3 for CI use).

use serde::{Deserialize, Serialize};

/// One compared quantity: theory vs experiment, the relative error, the tolerance the
/// study claims and whether it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementRow {
    /// What is compared, in words a reader of the paper recognises
    /// (e.g. "drop 2 time (AGF vs GF)", "UC-NFC layer 1").
    pub quantity: String,
    /// The theory's value (`None`: theory gives none at these settings).
    pub theory: Option<f64>,
    /// The experiment's value (`None`: the experiment never produced it).
    pub experiment: Option<f64>,
    /// |experiment − theory| / scale, scale = `relative_to` or |theory|.
    pub rel_error: Option<f64>,
    /// The largest `rel_error` the study claims at these settings.
    pub tolerance: f64,
    /// `rel_error ≤ tolerance`.
    pub holds: bool,
    /// The scale of `rel_error` when it is not |theory|.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_to: Option<f64>,
    /// The setting in a few words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl AgreementRow {
    /// rel_error = |experiment − theory| / |theory|.
    pub fn relative(
        quantity: impl Into<String>,
        theory: f64,
        experiment: f64,
        tolerance: f64,
    ) -> Self {
        Self::build(
            quantity.into(),
            theory,
            experiment,
            theory.abs(),
            None,
            tolerance,
        )
    }

    /// rel_error = |experiment − theory| / scale, for quantities whose theory value is zero
    /// or not the natural scale (a loss level measured against ℓ₀).
    pub fn relative_to(
        quantity: impl Into<String>,
        theory: f64,
        experiment: f64,
        scale: f64,
        tolerance: f64,
    ) -> Self {
        Self::build(
            quantity.into(),
            theory,
            experiment,
            scale.abs(),
            Some(scale.abs()),
            tolerance,
        )
    }

    /// A quantity the experiment may not have produced (`None`: the row does not hold).
    pub fn relative_opt(
        quantity: impl Into<String>,
        theory: f64,
        experiment: Option<f64>,
        tolerance: f64,
    ) -> Self {
        match experiment {
            Some(e) => Self::relative(quantity, theory, e, tolerance),
            None => Self::build(
                quantity.into(),
                theory,
                f64::NAN,
                theory.abs(),
                None,
                tolerance,
            ),
        }
    }

    /// Attach a short description of the setting.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    fn build(
        quantity: String,
        theory: f64,
        experiment: f64,
        scale: f64,
        relative_to: Option<f64>,
        tolerance: f64,
    ) -> Self {
        let finite = |v: f64| v.is_finite().then_some(v);
        let rel_error = match (finite(theory), finite(experiment)) {
            (Some(t), Some(e)) if scale > 0.0 && scale.is_finite() => Some((e - t).abs() / scale),
            (Some(t), Some(e)) if e == t => Some(0.0),
            _ => None,
        };
        Self {
            quantity,
            theory: finite(theory),
            experiment: finite(experiment),
            rel_error,
            tolerance,
            holds: rel_error.is_some_and(|r| r <= tolerance),
            relative_to,
            note: None,
        }
    }

    /// rel_error / tolerance (∞ for a row without an error): how close to failing a row
    /// is; the report's "worst row".
    pub fn severity(&self) -> f64 {
        match self.rel_error {
            Some(r) if self.tolerance > 0.0 => r / self.tolerance,
            Some(0.0) => 0.0,
            _ => f64::INFINITY,
        }
    }
}

/// Rows that do not hold.
pub fn failing(rows: &[AgreementRow]) -> Vec<&AgreementRow> {
    rows.iter().filter(|r| !r.holds).collect()
}

/// The row closest to failing (largest [`AgreementRow::severity`]; failing rows first).
pub fn worst(rows: &[AgreementRow]) -> Option<&AgreementRow> {
    rows.iter().max_by(|a, b| {
        (!a.holds, a.severity())
            .partial_cmp(&(!b.holds, b.severity()))
            .unwrap_or(std::cmp::Ordering::Equal)
    })
}

/// Read the rows back from a run.json `summary` (missing or malformed: empty).
pub fn from_summary(summary: &serde_json::Value) -> Vec<AgreementRow> {
    summary
        .get("agreement")
        .and_then(|a| serde_json::from_value(a.clone()).ok())
        .unwrap_or_default()
}

/// A number as the agreement table prints it: 4 significant digits, `—` for none.
pub fn format_value(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(0.0) => "0".into(),
        Some(x) if (1e-3..1e4).contains(&x.abs()) => {
            let digits = (3 - x.abs().log10().floor() as i32).max(0) as usize;
            format!("{x:.digits$}")
        }
        Some(x) => format!("{x:.3e}"),
    }
}

/// The rows as a plain-text table (what `featlab run` prints at the end).
pub fn render_text(rows: &[AgreementRow]) -> String {
    let header = [
        "quantity",
        "theory",
        "experiment",
        "rel_error",
        "tolerance",
        "holds",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                match &r.note {
                    Some(n) => format!("{} ({n})", r.quantity),
                    None => r.quantity.clone(),
                },
                format_value(r.theory),
                format_value(r.experiment),
                format_value(r.rel_error),
                format_value(Some(r.tolerance)),
                if r.holds { "yes" } else { "NO" }.into(),
            ]
        })
        .collect();
    let mut width = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String]| {
        let mut s = String::new();
        for (j, c) in row.iter().enumerate() {
            let pad = width[j] - c.chars().count();
            if j == 0 {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str("  ");
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(&header.map(String::from));
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_error_and_holds() {
        let r = AgreementRow::relative("t", 2.0, 2.1, 0.06);
        assert!((r.rel_error.unwrap() - 0.05).abs() < 1e-15);
        assert!(r.holds);
        let r = AgreementRow::relative("t", 2.0, 2.2, 0.06);
        assert!((r.rel_error.unwrap() - 0.1).abs() < 1e-15);
        assert!(!r.holds);
    }

    #[test]
    fn zero_theory_needs_a_scale() {
        let r = AgreementRow::relative("level", 0.0, 1e-3, 0.01);
        assert_eq!(r.rel_error, None);
        assert!(!r.holds);
        let r = AgreementRow::relative_to("level", 0.0, 1e-3, 0.5, 0.01);
        assert!((r.rel_error.unwrap() - 2e-3).abs() < 1e-15);
        assert!(r.holds);
        let r = AgreementRow::relative("exact", 0.0, 0.0, 0.0);
        assert_eq!(r.rel_error, Some(0.0));
        assert!(r.holds);
    }

    #[test]
    fn missing_or_non_finite_experiment_does_not_hold() {
        let r = AgreementRow::relative_opt("drop", 1.0, None, 1.0);
        assert!(!r.holds && r.experiment.is_none() && r.rel_error.is_none());
        let r = AgreementRow::relative("drop", 1.0, f64::NAN, 1.0);
        assert!(!r.holds && r.experiment.is_none());
        assert_eq!(r.severity(), f64::INFINITY);
    }

    #[test]
    fn json_round_trip_with_nulls_and_worst_row() {
        let rows = vec![
            AgreementRow::relative("a", 1.0, 1.01, 0.05).with_note("seed 0"),
            AgreementRow::relative("b", 1.0, 1.04, 0.05),
            AgreementRow::relative_opt("c", 1.0, None, 0.05),
        ];
        let v = serde_json::json!({ "agreement": rows });
        let text = serde_json::to_string(&v).unwrap();
        assert!(text.contains("\"experiment\":null"));
        assert!(!text.contains("\"relative_to\""));
        let back = from_summary(&serde_json::from_str(&text).unwrap());
        assert_eq!(back, rows);
        assert_eq!(worst(&back).unwrap().quantity, "c");
        assert_eq!(worst(&back[..2]).unwrap().quantity, "b");
        assert_eq!(failing(&back).len(), 1);
    }

    #[test]
    fn text_table_aligns_columns() {
        let rows = vec![
            AgreementRow::relative("drop 1 time", 12.5, 12.6, 0.05),
            AgreementRow::relative_opt("drop 2 time", 30.0, None, 0.05),
        ];
        let t = render_text(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("quantity"));
        assert!(lines[1].ends_with("yes") && lines[2].ends_with("NO"));
        assert!(lines[1].contains("12.50") && lines[1].contains("0.008000"));
        assert!(lines[2].contains('—'));
    }
}
