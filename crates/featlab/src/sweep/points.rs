//! Expansion of a sweep into points: configs, stable ids, deterministic seeds.
//!
//! **Id** (contract: it names `points/<id>/` and decides what a resumed sweep skips):
//! `<readable prefix>-<12 hex digits>`. The prefix lists the varied values
//! (`init_scale=1e-4_width=8_seed=0`, cut to 60 characters, characters outside
//! `[A-Za-z0-9._+=-]` replaced by `_`); the hex digits are the top 48 bits of
//! [`hash_text`] of the point's full config in canonical form ([`super::table::canonical_table`],
//! `seed` left out when it is derived) followed by `sweep_seed = <seed>` when the seed is
//! derived. Any change to the point's config — base, `[set]`, `unset`, its varied values,
//! the sweep seed — gives a new id, hence a new point; reordering the sweep file does not.
//!
//! **Seed**: if the point's config sets `seed` explicitly (a varied `seed` axis, or `seed`
//! under `[set]`), that value; otherwise `rng::derive_seed(sweep_seed, id) >> 1` (63 bits, so
//! it fits a TOML integer). Either way it depends on nothing but the spec, so results do
//! not depend on `--jobs`, sharding or the order in which points run.

use super::spec::{Axis, SweepSpec};
use super::table::{canonical_table, set_path, short_value};
use crate::rng::{derive_seed, splitmix64};
use crate::{Error, Result};

/// One point of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Position in expansion order (the first axis varies slowest); rows of `results.csv`
    /// follow it and shards are assigned by it.
    pub index: usize,
    /// Stable id (see the module docs).
    pub id: String,
    /// The varied values of this point, `(dotted key, value)`, in axis order.
    pub overrides: Vec<(String, toml::Value)>,
    /// The run seed.
    pub seed: u64,
    /// Whether `seed` was derived from the sweep seed (false: set explicitly).
    pub seed_derived: bool,
    /// The full config of the run (base + `[set]` + overrides + seed).
    pub config: toml::Table,
}

/// 64-bit hash of a text: SplitMix64 chained over 8-byte little-endian chunks (zero-padded),
/// then mixed with the length. Stable across platforms and featlab versions.
pub fn hash_text(s: &str) -> u64 {
    let b = s.as_bytes();
    let mut h = splitmix64(0x243F_6A88_85A3_08D3 ^ b.len() as u64);
    for chunk in b.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        h = splitmix64(h ^ u64::from_le_bytes(w));
    }
    splitmix64(h ^ b.len() as u64)
}

/// Readable id prefix from the varied values.
fn prefix(overrides: &[(String, toml::Value)]) -> String {
    if overrides.is_empty() {
        return "point".into();
    }
    let last: Vec<&str> = overrides
        .iter()
        .map(|(k, _)| k.rsplit('.').next().unwrap_or(k))
        .collect();
    let parts: Vec<String> = overrides
        .iter()
        .zip(&last)
        .map(|((k, v), l)| {
            // Use the full key when two varied keys share their last segment.
            let name = if last.iter().filter(|x| *x == l).count() > 1 {
                k.replace('.', "_")
            } else {
                l.to_string()
            };
            format!("{name}={}", short_value(v))
        })
        .collect();
    let mut s: String = parts
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+=-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.len() > 60 {
        s.truncate(60);
    }
    s
}

fn explicit_seed(config: &toml::Table) -> Result<Option<u64>> {
    match config.get("seed") {
        None => Ok(None),
        Some(toml::Value::Integer(i)) if *i >= 0 => Ok(Some(*i as u64)),
        Some(v) => Err(Error::config(
            "seed",
            format!("a run seed must be an integer ≥ 0, got {v}"),
        )),
    }
}

impl SweepSpec {
    /// All points, in expansion order, with duplicates (same config) removed — the first
    /// occurrence is kept. See the module docs for ids and seeds.
    pub fn points(&self) -> Result<Vec<Point>> {
        // Each axis as a list of override sets.
        let mut factors: Vec<Vec<Vec<(String, toml::Value)>>> = Vec::new();
        let mut rng = crate::rng::stream(self.seed, "sweep-random");
        for axis in &self.axes {
            factors.push(match axis {
                Axis::Grid { key, values } => values
                    .iter()
                    .map(|v| vec![(key.clone(), v.clone())])
                    .collect(),
                Axis::Zip { keys, values } => values
                    .iter()
                    .map(|row| keys.iter().cloned().zip(row.iter().cloned()).collect())
                    .collect(),
                Axis::Random { samples, keys } => (0..*samples)
                    .map(|_| {
                        keys.iter()
                            .map(|(k, d)| (k.clone(), d.sample(&mut rng)))
                            .collect()
                    })
                    .collect(),
            });
        }
        let seed_fixed = self.set.iter().any(|(k, _)| k == "seed");
        let total: usize = factors.iter().map(Vec::len).product();
        let mut points: Vec<Point> = Vec::with_capacity(total);
        let mut seen = std::collections::HashSet::new();
        let mut digits = vec![0usize; factors.len()];
        for _ in 0..total {
            let overrides: Vec<(String, toml::Value)> = factors
                .iter()
                .zip(&digits)
                .flat_map(|(f, &i)| f[i].iter().cloned())
                .collect();
            // Advance the mixed-radix counter (last axis fastest).
            for a in (0..digits.len()).rev() {
                digits[a] += 1;
                if digits[a] < factors[a].len() {
                    break;
                }
                digits[a] = 0;
            }
            let mut config = self.base.clone();
            for (k, v) in &overrides {
                set_path(&mut config, k, v.clone())?;
            }
            let explicit = seed_fixed || overrides.iter().any(|(k, _)| k == "seed");
            let (id, seed) = if explicit {
                let seed = explicit_seed(&config)?.unwrap_or(0);
                let id = format!(
                    "{}-{:012x}",
                    prefix(&overrides),
                    hash_text(&canonical_table(&config)) >> 16
                );
                (id, seed)
            } else {
                config.remove("seed");
                let text = format!("{}sweep_seed = {}\n", canonical_table(&config), self.seed);
                let id = format!("{}-{:012x}", prefix(&overrides), hash_text(&text) >> 16);
                let seed = derive_seed(self.seed, &id) >> 1;
                config.insert("seed".into(), toml::Value::Integer(seed as i64));
                (id, seed)
            };
            if !seen.insert(id.clone()) {
                continue;
            }
            points.push(Point {
                index: points.len(),
                id,
                overrides,
                seed,
                seed_derived: !explicit,
                config,
            });
        }
        Ok(points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn spec(text: &str) -> SweepSpec {
        SweepSpec::parse(text, "test", Path::new(".")).unwrap()
    }

    #[test]
    fn grid_zip_random_expand_in_order_with_stable_ids() {
        let s = spec(
            "base = \"staircase\"\nseed = 3\nunset = [\"reference\"]\n[set]\n\"train.t_max\" = 5.0\n\
             [grid]\n\"model.width\" = [4, 8]\n\"model.init_scale\" = [1e-4, 1e-2, 1.0]\n\
             [zip]\n\"train.rtol\" = [1e-6, 1e-8]\n\"train.atol\" = [1e-10, 1e-12]\n",
        );
        assert_eq!(
            s.varied_keys(),
            [
                "model.width",
                "model.init_scale",
                "train.rtol",
                "train.atol"
            ]
        );
        let p = s.points().unwrap();
        assert_eq!(p.len(), 2 * 3 * 2);
        assert_eq!(p[0].overrides[0].1.as_integer(), Some(4));
        assert_eq!(p[11].overrides[0].1.as_integer(), Some(8));
        assert_eq!(p[1].overrides[2].1.as_float(), Some(1e-8));
        assert_eq!(p[1].overrides[3].1.as_float(), Some(1e-12));
        assert!(
            p[0].id
                .starts_with("width=4_init_scale=1e-4_rtol=1e-6_atol=1e-10-"),
            "{}",
            p[0].id
        );
        assert!(!p[0].config.contains_key("reference"));
        assert_eq!(p[0].config["train"]["t_max"].as_float(), Some(5.0));
        // Ids and seeds: distinct, deterministic, derived.
        let ids: std::collections::HashSet<_> = p.iter().map(|q| q.id.clone()).collect();
        assert_eq!(ids.len(), p.len());
        assert_eq!(p, s.points().unwrap());
        assert!(p
            .iter()
            .all(|q| q.seed_derived && q.seed == derive_seed(3, &q.id) >> 1));
        assert_eq!(p[0].config["seed"].as_integer(), Some(p[0].seed as i64));
        // Writing the grid keys in another order changes the expansion order, not the ids.
        let s2 = spec(
            "base = \"staircase\"\nseed = 3\nunset = [\"reference\"]\n[set]\n\"train.t_max\" = 5.0\n\
             [grid]\n\"model.init_scale\" = [1e-4, 1e-2, 1.0]\n\"model.width\" = [4, 8]\n\
             [zip]\n\"train.atol\" = [1e-10, 1e-12]\n\"train.rtol\" = [1e-6, 1e-8]\n",
        );
        let hash = |id: &str| id.rsplit('-').next().unwrap().to_string();
        let a: std::collections::BTreeSet<_> = p.iter().map(|q| hash(&q.id)).collect();
        let b: std::collections::BTreeSet<_> =
            s2.points().unwrap().iter().map(|q| hash(&q.id)).collect();
        assert_eq!(a, b);
        // A different sweep seed or a different fixed value gives new ids.
        let s3 = spec("base = \"staircase\"\nseed = 4\n[grid]\n\"model.width\" = [4]\n");
        let s4 = spec("base = \"staircase\"\nseed = 3\n[grid]\n\"model.width\" = [4]\n");
        assert_ne!(s3.points().unwrap()[0].id, s4.points().unwrap()[0].id);
        assert_ne!(s3.points().unwrap()[0].seed, s4.points().unwrap()[0].seed);
    }

    #[test]
    fn explicit_seeds_random_draws_and_duplicates() {
        let s = spec("base = \"staircase\"\n[grid]\nseed = [0, 1, 1]\n");
        let p = s.points().unwrap();
        assert_eq!(p.len(), 2, "duplicate point removed");
        assert_eq!((p[0].seed, p[1].seed), (0, 1));
        assert!(!p[0].seed_derived);
        let r = spec(
            "base = \"staircase\"\nseed = 9\n[random]\nsamples = 50\n\"train.lr\" = { log_uniform = [1e-4, 1e-1] }\n\
             \"model.width\" = { int_uniform = [2, 5] }\n\"model.activation\" = { choice = [\"linear\", \"tanh\"] }\n\
             \"model.init_scale\" = { uniform = [0.5, 1.5] }\n",
        );
        let p = r.points().unwrap();
        assert_eq!(p.len(), 50);
        for q in &p {
            let lr = q.config["train"]["lr"].as_float().unwrap();
            let w = q.config["model"]["width"].as_integer().unwrap();
            let s = q.config["model"]["init_scale"].as_float().unwrap();
            assert!((1e-4..1e-1).contains(&lr) && (2..=5).contains(&w) && (0.5..1.5).contains(&s));
        }
        let widths: std::collections::BTreeSet<i64> = p
            .iter()
            .map(|q| q.config["model"]["width"].as_integer().unwrap())
            .collect();
        assert_eq!(widths.len(), 4, "all of 2..=5 drawn in 50 samples");
        assert_eq!(p, r.points().unwrap());
    }

    #[test]
    fn bad_specs_name_the_key() {
        let err = |t: &str| {
            SweepSpec::parse(t, "test", Path::new("."))
                .unwrap_err()
                .to_string()
        };
        assert!(err("[grid]\nx = [1]\n").contains("base"));
        assert!(err("base = \"nope\"\n").contains("no preset"));
        assert!(err("base = \"staircase\"\ngird = 1\n").contains("gird"));
        assert!(
            err("base = \"staircase\"\n[grid]\n\"model.width\" = 3\n").contains("grid.model.width")
        );
        assert!(err("base = \"staircase\"\n[grid]\n\"model.width\" = []\n").contains("empty"));
        assert!(err("base = \"staircase\"\n[zip]\na = [1, 2]\nb = [1]\n").contains("equal length"));
        assert!(err(
            "base = \"staircase\"\n[set]\n\"model.width\" = 3\n[grid]\n\"model.width\" = [3]\n"
        )
        .contains("also given"));
        assert!(
            err("base = \"staircase\"\n[random]\nsamples = 2\nx = { log_uniform = [0, 1] }\n")
                .contains("0 < low")
        );
        assert!(
            err("base = \"staircase\"\n[random]\nx = { uniform = [0, 1] }\n").contains("samples")
        );
        assert!(err("base = \"staircase\"\nunset = [\"nothere\"]\n").contains("nothere"));
    }

    #[test]
    fn hash_is_stable() {
        // Pinned: ids name directories of existing sweeps, so the hash must never change.
        assert_eq!(hash_text(""), hash_text(""));
        assert_ne!(hash_text("a"), hash_text("a\0"));
        assert_ne!(
            hash_text("model.width = 4\n"),
            hash_text("model.width = 5\n")
        );
        assert_eq!(format!("{:016x}", hash_text("model.width = 4\n")), PINNED);
    }
    const PINNED: &str = "9dcffb5a72d40275";
}
