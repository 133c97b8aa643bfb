//! The sweep file: base config, fixed overrides, varied axes, sweep seed, report defaults.
//!
//! Axes, in expansion order (the first varies slowest): every `[grid]` key in the order
//! written in the file, then each `[zip]` group (one axis whose values are tuples), then the
//! `[random]` block (one axis of `samples` draws). Points are the cartesian product.

use super::table::{leaves, remove_path, set_path, split_key};
use crate::config::parse_toml;
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How one `[random]` key is drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    /// `{ uniform = [a, b] }`: a + (b − a)·u, u ~ U[0, 1).
    Uniform(f64, f64),
    /// `{ log_uniform = [a, b] }`: exp(ln a + (ln b − ln a)·u), 0 < a < b.
    LogUniform(f64, f64),
    /// `{ int_uniform = [a, b] }`: an integer uniform on a..=b.
    IntUniform(i64, i64),
    /// `{ choice = [v1, v2, …] }`: one of the values, uniformly.
    Choice(Vec<toml::Value>),
}

impl Distribution {
    /// One draw.
    pub fn sample(&self, rng: &mut crate::rng::Rng) -> toml::Value {
        use crate::rng::{index, uniform};
        match self {
            Distribution::Uniform(a, b) => toml::Value::Float(a + (b - a) * uniform(rng)),
            Distribution::LogUniform(a, b) => {
                toml::Value::Float((a.ln() + (b.ln() - a.ln()) * uniform(rng)).exp())
            }
            Distribution::IntUniform(a, b) => {
                toml::Value::Integer(a + index(rng, (b - a + 1) as usize) as i64)
            }
            Distribution::Choice(v) => v[index(rng, v.len())].clone(),
        }
    }
}

/// One varied axis.
#[derive(Debug, Clone, PartialEq)]
pub enum Axis {
    /// A `[grid]` key and its values.
    Grid {
        key: String,
        values: Vec<toml::Value>,
    },
    /// A `[zip]` group: `values[i][k]` is the i-th value of `keys[k]`.
    Zip {
        keys: Vec<String>,
        values: Vec<Vec<toml::Value>>,
    },
    /// The `[random]` block: `samples` draws of every key.
    Random {
        samples: usize,
        keys: Vec<(String, Distribution)>,
    },
}

impl Axis {
    /// The keys this axis varies.
    pub fn keys(&self) -> Vec<String> {
        match self {
            Axis::Grid { key, .. } => vec![key.clone()],
            Axis::Zip { keys, .. } => keys.clone(),
            Axis::Random { keys, .. } => keys.iter().map(|(k, _)| k.clone()).collect(),
        }
    }
    /// Number of values along the axis.
    pub fn len(&self) -> usize {
        match self {
            Axis::Grid { values, .. } => values.len(),
            Axis::Zip { values, .. } => values.len(),
            Axis::Random { samples, .. } => *samples,
        }
    }
    /// Whether the axis has no values (never true for a parsed spec).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Defaults for `featlab report` on this sweep (`[report]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportDefaults {
    /// Summary fields to plot (`z = "final_loss"` or a list).
    pub z: Vec<String>,
    /// Varied key on the horizontal axis.
    pub x: Option<String>,
    /// Varied key on the vertical axis (heatmaps) / the series key (line plots).
    pub y: Option<String>,
    /// The law fitted to the line plots (`fit = "log" | "power" | "linear"`; default power).
    pub fit: Option<FitKind>,
}

/// The law a sweep report fits to a field against a varied key `x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FitKind {
    /// `z ≈ a + b·log(1/x)`: plateau lengths against the initialisation scale (AGF).
    Log,
    /// `z ≈ c·x^b` (log–log least squares).
    Power,
    /// `z ≈ a + b·x`.
    Linear,
}

impl FitKind {
    /// `"log"`, `"power"` or `"linear"`.
    pub fn parse(s: &str) -> Option<FitKind> {
        match s {
            "log" => Some(FitKind::Log),
            "power" => Some(FitKind::Power),
            "linear" => Some(FitKind::Linear),
            _ => None,
        }
    }
}

/// A parsed sweep file.
#[derive(Debug, Clone)]
pub struct SweepSpec {
    /// Where it came from (a path or a label), for messages.
    pub origin: String,
    /// The file's text, stored in `sweep.json`.
    pub text: String,
    /// Free text.
    pub description: String,
    /// The base preset name or base file stem (recorded as each run's `preset`).
    pub base_name: String,
    /// The base config after `unset` and `[set]`.
    pub base: toml::Table,
    /// The sweep seed.
    pub seed: u64,
    /// Removed keys.
    pub unset: Vec<String>,
    /// Fixed overrides `(dotted key, value)`.
    pub set: Vec<(String, toml::Value)>,
    /// Varied axes, in expansion order.
    pub axes: Vec<Axis>,
    /// Report defaults.
    pub report: ReportDefaults,
    /// What each point keeps (`[save]`, defaults filled in).
    pub save: super::save::SaveSpec,
}

const TOP_KEYS: &[&str] = &[
    "description",
    "base",
    "base_file",
    "seed",
    "unset",
    "set",
    "grid",
    "zip",
    "random",
    "report",
    "save",
];

impl SweepSpec {
    /// Read and parse a sweep file; `base_file` is resolved relative to its directory.
    pub fn from_file(path: &Path) -> Result<SweepSpec> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io("read sweep file", path, e))?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        SweepSpec::parse(&text, &path.display().to_string(), &dir)
    }

    /// Parse a sweep file's text; `dir` is where `base_file` paths are resolved from.
    pub fn parse(text: &str, origin: &str, dir: &Path) -> Result<SweepSpec> {
        let doc = parse_toml(text, origin)?;
        let order = source_positions(text);
        for k in doc.keys() {
            if !TOP_KEYS.contains(&k.as_str()) {
                return Err(Error::config(
                    k.clone(),
                    format!(
                        "unknown key in sweep file {origin}; known: {}",
                        TOP_KEYS.join(", ")
                    ),
                ));
            }
        }
        let str_of = |key: &str| -> Result<Option<String>> {
            match doc.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(Error::config(key, format!("must be a string, got {v}"))),
            }
        };
        let description = str_of("description")?.unwrap_or_default();
        let (base_name, mut base) = match (str_of("base")?, str_of("base_file")?) {
            (Some(p), None) => {
                let text = crate::presets::get(&p).ok_or_else(|| {
                    Error::config("base", format!("no preset named `{p}` (known: {}); use base_file = \"path.toml\" for a file", crate::presets::names().join(", ")))
                })?;
                (p.clone(), parse_toml(text, &format!("preset `{p}`"))?)
            }
            (None, Some(f)) => {
                let path = dir.join(&f);
                let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read base_file", &path, e))?;
                let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or(f.clone());
                (stem, parse_toml(&text, &path.display().to_string())?)
            }
            (Some(_), Some(_)) => return Err(Error::config("base", "give either `base` (a preset) or `base_file` (a path), not both")),
            (None, None) => return Err(Error::config("base", "missing: name a preset (`base = \"staircase\"`) or a file (`base_file = \"my.toml\"`)")),
        };
        // a base's [quick] table is not part of the config its points run
        crate::config::take_quick(&mut base)?;
        let seed = match doc.get("seed") {
            None => 0,
            Some(toml::Value::Integer(i)) if *i >= 0 => *i as u64,
            Some(v) => {
                return Err(Error::config(
                    "seed",
                    format!("the sweep seed must be an integer ≥ 0, got {v}"),
                ))
            }
        };
        let unset: Vec<String> = match doc.get("unset") {
            None => Vec::new(),
            Some(toml::Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        Error::config(
                            "unset",
                            format!("must be a list of key paths (strings), got {v}"),
                        )
                    })
                })
                .collect::<Result<_>>()?,
            Some(v) => {
                return Err(Error::config(
                    "unset",
                    format!("must be a list of key paths, e.g. [\"reference\"], got {v}"),
                ))
            }
        };
        for k in &unset {
            remove_path(&mut base, k)?;
        }
        let mut set = Vec::new();
        if let Some(v) = doc.get("set") {
            let t = v.as_table().ok_or_else(|| {
                Error::config("set", "must be a table of `key = value` overrides")
            })?;
            leaves(t, "", &mut set);
        }
        for (k, v) in &set {
            set_path(&mut base, k, v.clone())
                .map_err(|e| Error::config(format!("set.{k}"), e.to_string()))?;
        }

        let mut axes = Vec::new();
        if let Some(v) = doc.get("grid") {
            let t = v
                .as_table()
                .ok_or_else(|| Error::config("grid", "must be a table of `key = [values]`"))?;
            let mut items = Vec::new();
            leaves(t, "", &mut items);
            items.sort_by_key(|(k, _)| {
                order
                    .get(&format!("grid.{k}"))
                    .copied()
                    .unwrap_or(usize::MAX)
            });
            for (key, v) in items {
                let values = nonempty_list(&format!("grid.{key}"), &v)?;
                split_key(&key)?;
                axes.push(Axis::Grid { key, values });
            }
        }
        match doc.get("zip") {
            None => {}
            Some(toml::Value::Table(t)) => axes.push(zip_group("zip", t, &order)?),
            Some(toml::Value::Array(groups)) => {
                for (i, g) in groups.iter().enumerate() {
                    let t = g.as_table().ok_or_else(|| {
                        Error::config(format!("zip[{i}]"), "each [[zip]] group must be a table")
                    })?;
                    axes.push(zip_group(&format!("zip[{i}]"), t, &order)?);
                }
            }
            Some(v) => {
                return Err(Error::config(
                    "zip",
                    format!("must be a table (or [[zip]] groups), got {v}"),
                ))
            }
        }
        if let Some(v) = doc.get("random") {
            let t = v.as_table().ok_or_else(|| {
                Error::config(
                    "random",
                    "must be a table with `samples` and one distribution per key",
                )
            })?;
            axes.push(random_block(t, &order)?);
        }

        let mut seen: HashMap<String, &str> = set.iter().map(|(k, _)| (k.clone(), "set")).collect();
        for a in &axes {
            let section = match a {
                Axis::Grid { .. } => "grid",
                Axis::Zip { .. } => "zip",
                Axis::Random { .. } => "random",
            };
            for k in a.keys() {
                if let Some(prev) = seen.insert(k.clone(), section) {
                    return Err(Error::config(
                        format!("{section}.{k}"),
                        format!(
                            "this key is also given in [{prev}]; a key can be fixed or varied once"
                        ),
                    ));
                }
            }
        }

        let report = match doc.get("report") {
            None => ReportDefaults::default(),
            Some(toml::Value::Table(t)) => report_defaults(t)?,
            Some(v) => return Err(Error::config("report", format!("must be a table, got {v}"))),
        };
        let size = axes.iter().map(Axis::len).product();
        let varied: Vec<String> = axes.iter().flat_map(Axis::keys).collect();
        let save = super::save::SaveSpec::parse(doc.get("save"), size, &varied)?;
        Ok(SweepSpec {
            origin: origin.to_string(),
            text: text.to_string(),
            description,
            base_name,
            base,
            seed,
            unset,
            set,
            axes,
            report,
            save,
        })
    }

    /// Every varied key, in axis order.
    pub fn varied_keys(&self) -> Vec<String> {
        self.axes.iter().flat_map(Axis::keys).collect()
    }

    /// Number of points before de-duplication (product of the axis lengths).
    pub fn size(&self) -> usize {
        self.axes.iter().map(Axis::len).product()
    }
}

fn nonempty_list(key: &str, v: &toml::Value) -> Result<Vec<toml::Value>> {
    match v {
        toml::Value::Array(a) if !a.is_empty() => Ok(a.clone()),
        toml::Value::Array(_) => Err(Error::config(key, "the list of values is empty")),
        other => Err(Error::config(key, format!("must be a list of values (e.g. [1, 2, 3]), got {other}; put fixed values under [set]"))),
    }
}

fn zip_group(section: &str, t: &toml::Table, order: &HashMap<String, usize>) -> Result<Axis> {
    let mut items = Vec::new();
    leaves(t, "", &mut items);
    if items.is_empty() {
        return Err(Error::config(
            section,
            "a zip group needs at least one `key = [values]`",
        ));
    }
    items.sort_by_key(|(k, _)| {
        order
            .get(&format!("zip.{k}"))
            .copied()
            .unwrap_or(usize::MAX)
    });
    let mut keys = Vec::new();
    let mut cols = Vec::new();
    for (k, v) in items {
        split_key(&k)?;
        cols.push(nonempty_list(&format!("{section}.{k}"), &v)?);
        keys.push(k);
    }
    let n = cols[0].len();
    if let Some((k, c)) = keys.iter().zip(&cols).find(|(_, c)| c.len() != n) {
        return Err(Error::config(
            format!("{section}.{k}"),
            format!(
                "zipped lists must have equal length: `{}` has {n} values, `{k}` has {}",
                keys[0],
                c.len()
            ),
        ));
    }
    let values = (0..n)
        .map(|i| cols.iter().map(|c| c[i].clone()).collect())
        .collect();
    Ok(Axis::Zip { keys, values })
}

const DISTS: &[&str] = &["uniform", "log_uniform", "int_uniform", "choice"];

fn random_block(t: &toml::Table, order: &HashMap<String, usize>) -> Result<Axis> {
    let samples = match t.get("samples") {
        Some(toml::Value::Integer(i)) if *i >= 1 => *i as usize,
        Some(v) => {
            return Err(Error::config(
                "random.samples",
                format!("must be an integer ≥ 1, got {v}"),
            ))
        }
        None => {
            return Err(Error::config(
                "random.samples",
                "missing: how many random points to draw",
            ))
        }
    };
    let mut keys = Vec::new();
    collect_dists(t, "", &mut keys)?;
    if keys.is_empty() {
        return Err(Error::config(
            "random",
            "no keys to draw: add e.g. `\"train.lr\" = { log_uniform = [1e-4, 1e-1] }`",
        ));
    }
    keys.sort_by_key(|(k, _)| {
        order
            .get(&format!("random.{k}"))
            .copied()
            .unwrap_or(usize::MAX)
    });
    Ok(Axis::Random { samples, keys })
}

fn collect_dists(
    t: &toml::Table,
    prefix: &str,
    out: &mut Vec<(String, Distribution)>,
) -> Result<()> {
    for (k, v) in t {
        if prefix.is_empty() && k == "samples" {
            continue;
        }
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let full = format!("random.{path}");
        match v {
            toml::Value::Table(sub) if sub.len() == 1 && DISTS.contains(&sub.keys().next().map(String::as_str).unwrap_or("")) => {
                let (name, arg) = sub.iter().next().expect("one entry");
                out.push((path, distribution(&full, name, arg)?));
            }
            toml::Value::Table(sub) if sub.keys().any(|k| DISTS.contains(&k.as_str())) => {
                return Err(Error::config(full, "give exactly one distribution: uniform, log_uniform, int_uniform or choice"));
            }
            toml::Value::Table(sub) => collect_dists(sub, &path, out)?,
            other => {
                return Err(Error::config(
                    full,
                    format!("must be a distribution such as {{ uniform = [0, 1] }}, {{ log_uniform = [1e-4, 1e-1] }}, {{ int_uniform = [4, 64] }} or {{ choice = [..] }}, got {other}"),
                ))
            }
        }
    }
    Ok(())
}

fn distribution(key: &str, name: &str, arg: &toml::Value) -> Result<Distribution> {
    let list = nonempty_list(key, arg)?;
    if name == "choice" {
        return Ok(Distribution::Choice(list));
    }
    if list.len() != 2 {
        return Err(Error::config(
            key,
            format!("`{name}` takes [low, high], got {} values", list.len()),
        ));
    }
    if name == "int_uniform" {
        let (Some(a), Some(b)) = (list[0].as_integer(), list[1].as_integer()) else {
            return Err(Error::config(key, "int_uniform bounds must be integers"));
        };
        if a > b {
            return Err(Error::config(
                key,
                format!("int_uniform needs low ≤ high, got [{a}, {b}]"),
            ));
        }
        return Ok(Distribution::IntUniform(a, b));
    }
    let num = |v: &toml::Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
    let (Some(a), Some(b)) = (num(&list[0]), num(&list[1])) else {
        return Err(Error::config(
            key,
            format!("`{name}` bounds must be numbers"),
        ));
    };
    if !(a.is_finite() && b.is_finite() && a < b) {
        return Err(Error::config(
            key,
            format!("`{name}` needs finite low < high, got [{a}, {b}]"),
        ));
    }
    if name == "log_uniform" {
        if a <= 0.0 {
            return Err(Error::config(
                key,
                format!("log_uniform needs 0 < low, got {a}"),
            ));
        }
        return Ok(Distribution::LogUniform(a, b));
    }
    Ok(Distribution::Uniform(a, b))
}

fn report_defaults(t: &toml::Table) -> Result<ReportDefaults> {
    let mut r = ReportDefaults::default();
    for (k, v) in t {
        match (k.as_str(), v) {
            ("z", toml::Value::String(s)) => r.z = vec![s.clone()],
            ("z", toml::Value::Array(a)) => {
                r.z = a
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_string).ok_or_else(|| {
                            Error::config("report.z", "must be a field name or a list of names")
                        })
                    })
                    .collect::<Result<_>>()?
            }
            ("x", toml::Value::String(s)) => r.x = Some(s.clone()),
            ("y", toml::Value::String(s)) => r.y = Some(s.clone()),
            ("fit", v) => {
                r.fit = Some(v.as_str().and_then(FitKind::parse).ok_or_else(|| {
                    Error::config(
                        "report.fit",
                        format!("must be \"log\", \"power\" or \"linear\", got {v}"),
                    )
                })?)
            }
            _ => {
                return Err(Error::config(
                    format!("report.{k}"),
                    "known keys: z (field or list of fields), x, y (varied keys), fit (\"log\" | \"power\" | \"linear\")",
                ))
            }
        }
    }
    Ok(r)
}

/// Byte offset of every key (dotted path from the document root) in the source text, so
/// axes keep the order in which they were written (the parsed table sorts keys).
fn source_positions(text: &str) -> HashMap<String, usize> {
    fn walk(t: &toml::de::DeTable<'_>, prefix: &str, out: &mut HashMap<String, usize>) {
        for (k, v) in t.iter() {
            let name: &str = k.get_ref().as_ref();
            let path = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}.{name}")
            };
            out.entry(path.clone()).or_insert(k.span().start);
            if let toml::de::DeValue::Table(sub) = v.get_ref() {
                walk(sub, &path, out);
            }
        }
    }
    let mut out = HashMap::new();
    if let Ok(doc) = toml::de::DeTable::parse(text) {
        walk(doc.get_ref(), "", &mut out);
    }
    out
}
