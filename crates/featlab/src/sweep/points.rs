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
use super::table::{canonical_table, canonical_value, set_path, short_value};
use crate::rng::{derive_seed, splitmix64};
use crate::{Error, Result};

/// One point of a sweep (without its config: [`SweepSpec::config`] builds that when the
/// point runs, so a sweep of 10⁶ points never holds 10⁶ configs).
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

fn explicit_seed(seed: Option<&toml::Value>) -> Result<Option<u64>> {
    match seed {
        None => Ok(None),
        Some(toml::Value::Integer(i)) if *i >= 0 => Ok(Some(*i as u64)),
        Some(v) => Err(Error::config(
            "seed",
            format!("a run seed must be an integer ≥ 0, got {v}"),
        )),
    }
}

/// The axes' values as lists of override sets, one list per axis (random axes drawn here,
/// in axis order, from the sweep seed's `sweep-random` stream).
type Factors = Vec<Vec<Vec<(String, toml::Value)>>>;

/// The points of a sweep, one at a time, in expansion order, duplicates (same id) skipped:
/// memory is the axes' values and 16 bytes per point seen (for the duplicate check), not
/// the points. Built by [`SweepSpec::expansion`]; yields `Err` once (and then stops) when a
/// point's config cannot be built.
pub struct Expansion<'a> {
    spec: &'a SweepSpec,
    factors: Factors,
    digits: Vec<usize>,
    remaining: usize,
    next_index: usize,
    seen: std::collections::HashSet<(u64, u64)>,
    seed_fixed: bool,
    /// The base config's canonical leaves `(path, canonical value)`, sorted by path; `None`
    /// when ids must be computed from a full config (see [`Expansion::canonical_fast`]).
    base_leaves: Option<Vec<(String, String)>>,
}

/// Whether any key of `t` (at any depth) contains a dot (then a leaf path is ambiguous).
fn has_dotted_key(t: &toml::Table) -> bool {
    t.iter()
        .any(|(k, v)| k.contains('.') || matches!(v, toml::Value::Table(s) if has_dotted_key(s)))
}

impl Expansion<'_> {
    /// The canonical text the id hashes ([`canonical_table`] of the point's config, `seed`
    /// left out when derived) and the config's `seed` value, computed from the base's
    /// canonical leaves without building the config. Same result as building it (tested
    /// against [`SweepSpec::config`] + [`canonical_table`]), including the error `set_path`
    /// gives for a key inside a value that is not a table.
    fn canonical_fast(
        &self,
        base_leaves: &[(String, String)],
        overrides: &[(String, toml::Value)],
        derived: bool,
    ) -> Result<(String, Option<toml::Value>)> {
        let mut added: Vec<(String, String)> = Vec::new();
        let mut replaced: Vec<String> = Vec::new();
        let mut seed = self.spec.base.get("seed").cloned();
        for (key, value) in overrides {
            let parts = super::table::split_key(key)?;
            let path = parts.join(".");
            let live = |p: &str| {
                let gone = |q: &String| {
                    p == q
                        || p.strip_prefix(q.as_str())
                            .is_some_and(|r| r.starts_with('.'))
                };
                (base_leaves.iter().any(|(b, _)| b == p) && !replaced.iter().any(gone))
                    || added.iter().any(|(a, _)| a == p)
            };
            for i in 1..parts.len() {
                if live(&parts[..i].join(".")) {
                    return Err(Error::config(
                        parts[..i].join("."),
                        format!("is not a table, cannot set `{key}` inside it"),
                    ));
                }
            }
            let under = |p: &str| {
                p == path
                    || p.strip_prefix(path.as_str())
                        .is_some_and(|r| r.starts_with('.'))
            };
            added.retain(|(a, _)| !under(a));
            replaced.push(path.clone());
            match value {
                toml::Value::Table(t) => {
                    let mut items = Vec::new();
                    super::table::leaves(t, &path, &mut items);
                    added.extend(items.iter().map(|(k, v)| (k.clone(), canonical_value(v))));
                }
                v => added.push((path.clone(), canonical_value(v))),
            }
            if path == "seed" {
                seed = Some(value.clone());
            }
        }
        let is_replaced = |p: &str| {
            replaced.iter().any(|q| {
                p == q
                    || p.strip_prefix(q.as_str())
                        .is_some_and(|r| r.starts_with('.'))
            })
        };
        let is_seed = |p: &str| derived && (p == "seed" || p.starts_with("seed."));
        let mut items: Vec<(&str, &str)> = base_leaves
            .iter()
            .filter(|(p, _)| !is_replaced(p) && !is_seed(p))
            .map(|(p, v)| (p.as_str(), v.as_str()))
            .chain(
                added
                    .iter()
                    .filter(|(p, _)| !is_seed(p))
                    .map(|(p, v)| (p.as_str(), v.as_str())),
            )
            .collect();
        items.sort_by(|a, b| a.0.cmp(b.0));
        let mut text =
            String::with_capacity(items.iter().map(|(p, v)| p.len() + v.len() + 4).sum());
        for (p, v) in items {
            text.push_str(p);
            text.push_str(" = ");
            text.push_str(v);
            text.push('\n');
        }
        Ok((text, seed))
    }

    /// The next combination's point (`None` for a duplicate), advancing the counter.
    fn point(&mut self) -> Result<Option<Point>> {
        let overrides: Vec<(String, toml::Value)> = self
            .factors
            .iter()
            .zip(&self.digits)
            .flat_map(|(f, &i)| f[i].iter().cloned())
            .collect();
        // Advance the mixed-radix counter (last axis fastest).
        for a in (0..self.digits.len()).rev() {
            self.digits[a] += 1;
            if self.digits[a] < self.factors[a].len() {
                break;
            }
            self.digits[a] = 0;
        }
        let explicit = self.seed_fixed || overrides.iter().any(|(k, _)| k == "seed");
        let (canonical, seed_value) = match &self.base_leaves {
            Some(b) => self.canonical_fast(b, &overrides, !explicit)?,
            None => {
                let mut config = self.spec.base.clone();
                for (k, v) in &overrides {
                    set_path(&mut config, k, v.clone())?;
                }
                let seed = config.get("seed").cloned();
                if !explicit {
                    config.remove("seed");
                }
                (canonical_table(&config), seed)
            }
        };
        let (id, seed) = if explicit {
            let seed = explicit_seed(seed_value.as_ref())?.unwrap_or(0);
            let id = format!(
                "{}-{:012x}",
                prefix(&overrides),
                hash_text(&canonical) >> 16
            );
            (id, seed)
        } else {
            let text = format!("{canonical}sweep_seed = {}\n", self.spec.seed);
            let id = format!("{}-{:012x}", prefix(&overrides), hash_text(&text) >> 16);
            let seed = derive_seed(self.spec.seed, &id) >> 1;
            (id, seed)
        };
        if !self.seen.insert(id_key(&id)) {
            return Ok(None);
        }
        let index = self.next_index;
        self.next_index += 1;
        Ok(Some(Point {
            index,
            id,
            overrides,
            seed,
            seed_derived: !explicit,
        }))
    }
}

/// 128 bits identifying an id in the duplicate check (two independent 64-bit hashes).
fn id_key(id: &str) -> (u64, u64) {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    (hash_text(id), h.finish())
}

impl Iterator for Expansion<'_> {
    type Item = Result<Point>;
    fn next(&mut self) -> Option<Result<Point>> {
        while self.remaining > 0 {
            self.remaining -= 1;
            match self.point() {
                Ok(Some(p)) => return Some(Ok(p)),
                Ok(None) => continue,
                Err(e) => {
                    self.remaining = 0;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

impl SweepSpec {
    /// The points, one at a time (see [`Expansion`]); the module docs define ids and seeds.
    pub fn expansion(&self) -> Expansion<'_> {
        let mut factors: Factors = Vec::new();
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
        let remaining = factors.iter().map(Vec::len).product();
        let seed_is_table = matches!(self.base.get("seed"), Some(toml::Value::Table(_)));
        let seed_inside = self.axes.iter().flat_map(Axis::keys).any(|k| {
            let mut parts = k.split('.');
            parts.next().is_some_and(|s| s.trim() == "seed") && parts.next().is_some()
        });
        // Ids from canonical leaves unless a leaf path could be ambiguous (a key with a dot
        // inside the base) or `seed` is (or becomes) a table: then from full configs.
        let base_leaves =
            (!has_dotted_key(&self.base) && !seed_is_table && !seed_inside).then(|| {
                let mut items = Vec::new();
                super::table::leaves(&self.base, "", &mut items);
                let mut v: Vec<(String, String)> = items
                    .iter()
                    .map(|(k, v)| (k.clone(), canonical_value(v)))
                    .collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v
            });
        Expansion {
            spec: self,
            digits: vec![0; factors.len()],
            factors,
            remaining,
            next_index: 0,
            seen: std::collections::HashSet::new(),
            seed_fixed: self.set.iter().any(|(k, _)| k == "seed"),
            base_leaves,
        }
    }

    /// All points, in expansion order, with duplicates (same config) removed — the first
    /// occurrence is kept. See the module docs for ids and seeds.
    pub fn points(&self) -> Result<Vec<Point>> {
        self.expansion().collect()
    }

    /// The full config of point `p` (base + `[set]` + its varied values + its seed): what
    /// the point runs. Built on demand, when the point runs.
    pub fn config(&self, p: &Point) -> Result<toml::Table> {
        let mut config = self.base.clone();
        for (k, v) in &p.overrides {
            set_path(&mut config, k, v.clone())?;
        }
        if p.seed_derived {
            config.insert("seed".into(), toml::Value::Integer(p.seed as i64));
        }
        Ok(config)
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
        let c0 = s.config(&p[0]).unwrap();
        assert!(!c0.contains_key("reference"));
        assert_eq!(c0["train"]["t_max"].as_float(), Some(5.0));
        // Ids and seeds: distinct, deterministic, derived.
        let ids: std::collections::HashSet<_> = p.iter().map(|q| q.id.clone()).collect();
        assert_eq!(ids.len(), p.len());
        assert_eq!(p, s.points().unwrap());
        assert!(p
            .iter()
            .all(|q| q.seed_derived && q.seed == derive_seed(3, &q.id) >> 1));
        assert_eq!(c0["seed"].as_integer(), Some(p[0].seed as i64));
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
            let c = r.config(q).unwrap();
            let lr = c["train"]["lr"].as_float().unwrap();
            let w = c["model"]["width"].as_integer().unwrap();
            let s = c["model"]["init_scale"].as_float().unwrap();
            assert!((1e-4..1e-1).contains(&lr) && (2..=5).contains(&w) && (0.5..1.5).contains(&s));
        }
        let widths: std::collections::BTreeSet<i64> = p
            .iter()
            .map(|q| r.config(q).unwrap()["model"]["width"].as_integer().unwrap())
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

    /// Ids and seeds from the base's canonical leaves are those of full configs (the
    /// reference: build every config, hash its canonical text), including tables as
    /// values, keys inside new tables, explicit and derived seeds, and the error for a key
    /// set inside a value that is not a table.
    #[test]
    fn fast_ids_equal_ids_of_full_configs() {
        let specs = [
            "base = \"staircase\"\nseed = 3\nunset = [\"reference\"]\n[set]\n\"train.t_max\" = 5.0\n\
             [grid]\n\"model.width\" = [4, 8]\n\"model.init_scale\" = [1e-4, 1.0]\n",
            "base = \"staircase\"\n[grid]\nseed = [0, 1, 1]\n\"train.record\" = [{ kind = \"linear\", points = 5 }, { kind = \"log\", points = 7 }]\n",
            "base = \"staircase\"\n[set]\nseed = 7\n[grid]\n\"extra.new.key\" = [1, 2]\nmodel = [{ kind = \"two_layer_linear\", width = 3 }]\n",
            "base = \"staircase\"\nseed = 9\n[random]\nsamples = 20\n\"train.lr\" = { log_uniform = [1e-4, 1e-1] }\n\
             \"model.width\" = { int_uniform = [2, 3] }\n",
            "base = \"staircase\"\n[zip]\n\"train\" = [{ t_max = 1.0 }, { t_max = 2.0 }]\n\"train.lr\" = [0.1, 0.2]\n",
        ];
        for text in specs {
            let s = spec(text);
            let fast: Vec<Result<Point>> = s.expansion().collect();
            let mut e = s.expansion();
            assert!(e.base_leaves.is_some(), "the fast path is taken for {text}");
            e.base_leaves = None;
            let slow: Vec<Result<Point>> = e.collect();
            assert_eq!(fast.len(), slow.len(), "{text}");
            for (f, sl) in fast.iter().zip(&slow) {
                match (f, sl) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(a, b, "{text}");
                        // And the id hashes the config the point runs.
                        let mut c = s.config(a).unwrap();
                        let t = if a.seed_derived {
                            c.remove("seed");
                            format!("{}sweep_seed = {}\n", canonical_table(&c), s.seed)
                        } else {
                            canonical_table(&c)
                        };
                        assert!(a.id.ends_with(&format!("{:012x}", hash_text(&t) >> 16)));
                    }
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                    _ => panic!("fast and full expansions disagree for {text}: {f:?} vs {sl:?}"),
                }
            }
        }
        // A key inside a value that is not a table: the same error both ways.
        let s = spec("base = \"staircase\"\n[grid]\n\"seed.x\" = [1]\n");
        assert!(s.expansion().base_leaves.is_none());
        let s = spec("base = \"staircase\"\n[grid]\n\"model.width.x\" = [1]\n");
        let fast = s.points().unwrap_err().to_string();
        let mut e = s.expansion();
        e.base_leaves = None;
        let slow = e.collect::<Result<Vec<Point>>>().unwrap_err().to_string();
        assert_eq!(fast, slow);
        assert!(
            fast.contains("model.width") && fast.contains("not a table"),
            "{fast}"
        );
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
