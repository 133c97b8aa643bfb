//! The `[save]` table of a sweep file: what each point keeps besides its summary.
//!
//! ```toml
//! [save]
//! trajectory = true                   # the recorded trajectory (and extra tables)
//! params = { every = 100 }            # initial/final parameters of every 100th point
//! data = { "model.width" = [8, 16] }  # the training set of the points with these values
//! plots = false                       # the run's figures (SVG)
//! ```
//!
//! Each of `trajectory`, `params`, `data`, `plots` is `true`, `false` or a filter table:
//! `every = N` keeps the points whose expansion index is a multiple of N; a varied key with
//! a list of values keeps the points whose value of that key is in the list; several entries
//! must all hold. `summary` is always kept (`summary = true` is accepted, `false` refused).
//!
//! Defaults (any key not given): a sweep of at most [`FULL_SAVE_LIMIT`] points keeps
//! everything but plots (as `featlab run` would, minus the figures); a larger sweep keeps
//! the summary and the trajectory only.

use super::points::Point;
use super::table::canonical_value;
use crate::{Error, Result};

/// Largest sweep (points before de-duplication) whose default `[save]` keeps params and data.
pub const FULL_SAVE_LIMIT: usize = 1000;

/// Which points keep one kind of artifact.
#[derive(Debug, Clone, PartialEq)]
pub enum Keep {
    /// Every point (`true`).
    All,
    /// No point (`false`).
    Nothing,
    /// The points passing every condition of a filter table.
    Filter {
        /// `every = N`: expansion index a multiple of N.
        every: Option<usize>,
        /// `"key" = [values]`: the point's value of `key` is one of `values`.
        values: Vec<(String, Vec<toml::Value>)>,
    },
}

impl Keep {
    /// Whether point `p` keeps this artifact.
    pub fn keeps(&self, p: &Point) -> bool {
        match self {
            Keep::All => true,
            Keep::Nothing => false,
            Keep::Filter { every, values } => {
                every.is_none_or(|n| p.index.is_multiple_of(n))
                    && values.iter().all(|(k, allowed)| {
                        p.overrides.iter().any(|(ok, v)| {
                            ok == k
                                && allowed
                                    .iter()
                                    .any(|a| canonical_value(a) == canonical_value(v))
                        })
                    })
            }
        }
    }
}

/// The parsed `[save]` table (defaults filled in).
#[derive(Debug, Clone, PartialEq)]
pub struct SaveSpec {
    pub trajectory: Keep,
    pub params: Keep,
    pub data: Keep,
    pub plots: Keep,
}

/// What one point keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Kept {
    pub trajectory: bool,
    pub params: bool,
    pub data: bool,
    pub plots: bool,
}

const SAVE_KEYS: &[&str] = &["summary", "trajectory", "params", "data", "plots"];

impl SaveSpec {
    /// The default for a sweep of `size` points (see the module docs).
    pub fn default_for(size: usize) -> SaveSpec {
        let heavy = if size <= FULL_SAVE_LIMIT {
            Keep::All
        } else {
            Keep::Nothing
        };
        SaveSpec {
            trajectory: Keep::All,
            params: heavy.clone(),
            data: heavy,
            plots: Keep::Nothing,
        }
    }

    /// Parse `[save]` (`None`: absent) for a sweep of `size` points varying `varied` keys.
    pub fn parse(t: Option<&toml::Value>, size: usize, varied: &[String]) -> Result<SaveSpec> {
        let mut s = SaveSpec::default_for(size);
        let Some(t) = t else { return Ok(s) };
        let t = t.as_table().ok_or_else(|| {
            Error::config(
                "save",
                "must be a table, e.g. [save] with params = false, trajectory = true",
            )
        })?;
        for (k, v) in t {
            let key = format!("save.{k}");
            let keep = match k.as_str() {
                "summary" => {
                    if v.as_bool() != Some(true) {
                        return Err(Error::config(
                            key,
                            "the summary is always kept; only `summary = true` is accepted",
                        ));
                    }
                    continue;
                }
                "trajectory" | "params" | "data" | "plots" => keep(&key, v, varied)?,
                _ => {
                    return Err(Error::config(
                        key,
                        format!("unknown key in [save]; known: {}", SAVE_KEYS.join(", ")),
                    ))
                }
            };
            match k.as_str() {
                "trajectory" => s.trajectory = keep,
                "params" => s.params = keep,
                "data" => s.data = keep,
                _ => s.plots = keep,
            }
        }
        Ok(s)
    }

    /// What point `p` keeps.
    pub fn kept(&self, p: &Point) -> Kept {
        Kept {
            trajectory: self.trajectory.keeps(p),
            params: self.params.keeps(p),
            data: self.data.keeps(p),
            plots: self.plots.keeps(p),
        }
    }
}

fn keep(key: &str, v: &toml::Value, varied: &[String]) -> Result<Keep> {
    let t = match v {
        toml::Value::Boolean(true) => return Ok(Keep::All),
        toml::Value::Boolean(false) => return Ok(Keep::Nothing),
        toml::Value::Table(t) => t,
        other => {
            return Err(Error::config(
                key,
                format!("must be true, false or a filter table such as {{ every = 100 }} or {{ \"model.width\" = [8, 16] }}, got {other}"),
            ))
        }
    };
    let mut items = Vec::new();
    super::table::leaves(t, "", &mut items);
    if items.is_empty() {
        return Err(Error::config(
            key,
            "an empty filter keeps nothing; write false instead",
        ));
    }
    let mut every = None;
    let mut values = Vec::new();
    for (k, v) in items {
        if k == "every" {
            match v.as_integer() {
                Some(n) if n >= 1 => every = Some(n as usize),
                _ => {
                    return Err(Error::config(
                        format!("{key}.every"),
                        format!("must be an integer ≥ 1, got {v}"),
                    ))
                }
            }
        } else if varied.contains(&k) {
            match v {
                toml::Value::Array(a) if !a.is_empty() => values.push((k, a)),
                other => {
                    return Err(Error::config(
                        format!("{key}.{k}"),
                        format!(
                            "must be a non-empty list of values of this varied key, got {other}"
                        ),
                    ))
                }
            }
        } else {
            return Err(Error::config(
                format!("{key}.{k}"),
                format!(
                    "a filter takes `every = N` or varied keys with lists of values; `{k}` is not varied (varied: {})",
                    varied.join(", ")
                ),
            ));
        }
    }
    Ok(Keep::Filter { every, values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::SweepSpec;
    use std::path::Path;

    fn spec(save: &str) -> Result<SweepSpec> {
        SweepSpec::parse(
            &format!(
                "base = \"staircase\"\n[grid]\n\"model.width\" = [4, 8, 16]\nseed = [0, 1]\n{save}"
            ),
            "test",
            Path::new("."),
        )
    }

    #[test]
    fn defaults_depend_on_the_size() {
        let s = spec("").unwrap();
        assert_eq!(s.save, SaveSpec::default_for(6));
        let p = s.points().unwrap();
        let k = s.save.kept(&p[0]);
        assert!(k.trajectory && k.params && k.data && !k.plots);
        let big = SaveSpec::default_for(FULL_SAVE_LIMIT + 1);
        let k = big.kept(&p[0]);
        assert!(k.trajectory && !k.params && !k.data && !k.plots);
    }

    #[test]
    fn filters_select_points() {
        let s = spec(
            "[save]\nsummary = true\ntrajectory = false\nparams = { every = 2 }\n\
             data = { \"model.width\" = [8, 16], seed = [1] }\nplots = true\n",
        )
        .unwrap();
        let p = s.points().unwrap();
        let kept: Vec<Kept> = p.iter().map(|q| s.save.kept(q)).collect();
        assert!(kept.iter().all(|k| !k.trajectory && k.plots));
        let params: Vec<usize> = (0..6).filter(|&i| kept[i].params).collect();
        assert_eq!(params, [0, 2, 4]);
        // index = 2·width_index + seed: width 8 seed 1 → 3, width 16 seed 1 → 5.
        let data: Vec<usize> = (0..6).filter(|&i| kept[i].data).collect();
        assert_eq!(data, [3, 5]);
    }

    #[test]
    fn bad_save_tables_name_the_key() {
        let err = |t: &str| spec(t).unwrap_err().to_string();
        assert!(err("[save]\nparms = true\n").contains("save.parms"));
        assert!(err("[save]\nparms = true\n").contains("known: summary, trajectory"));
        assert!(err("[save]\nsummary = false\n").contains("always kept"));
        assert!(err("[save]\nparams = 3\n").contains("save.params"));
        assert!(err("[save]\nparams = { every = 0 }\n").contains("save.params.every"));
        assert!(err("[save]\ndata = { \"model.depth\" = [2] }\n").contains("not varied"));
        assert!(err("[save]\ndata = {}\n").contains("empty filter"));
    }
}
