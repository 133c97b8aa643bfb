//! Dotted-path edits of TOML tables and their canonical text (what point ids hash).

use crate::{Error, Result};

/// Split a dotted key (`"model.width"`) into its parts; empty parts are an error.
pub fn split_key(key: &str) -> Result<Vec<&str>> {
    let parts: Vec<&str> = key.split('.').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Error::config(
            key,
            "a key path must look like `section.key` with no empty parts",
        ));
    }
    Ok(parts)
}

/// Set `key` (dotted path) to `value`, replacing whatever was there (tables included) and
/// creating missing intermediate tables. Whether the key is allowed is decided later, when
/// the experiment resolves the config (unknown keys are rejected there, by name).
pub fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    let parts = split_key(key)?;
    let mut cur = table;
    for (i, p) in parts[..parts.len() - 1].iter().enumerate() {
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(Error::config(
                    parts[..=i].join("."),
                    format!("is not a table, cannot set `{key}` inside it"),
                ))
            }
        };
    }
    cur.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

/// Remove `key` (dotted path); an error if it does not exist (a typo would otherwise be silent).
pub fn remove_path(table: &mut toml::Table, key: &str) -> Result<toml::Value> {
    let parts = split_key(key)?;
    let mut cur = table;
    for p in &parts[..parts.len() - 1] {
        cur = match cur.get_mut(*p) {
            Some(toml::Value::Table(t)) => t,
            _ => {
                return Err(Error::config(
                    format!("unset: {key}"),
                    "no such key in the base config",
                ))
            }
        };
    }
    cur.remove(parts[parts.len() - 1])
        .ok_or_else(|| Error::config(format!("unset: {key}"), "no such key in the base config"))
}

/// Leaves of a table as `(dotted path, value)`, recursing into sub-tables; quoted keys with
/// dots (`"model.width" = 3`) and nested tables (`model.width = 3`) give the same path.
/// Arrays are leaves (a grid axis is an array).
pub fn leaves(table: &toml::Table, prefix: &str, out: &mut Vec<(String, toml::Value)>) {
    for (k, v) in table {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => leaves(t, &path, out),
            other => out.push((path, other.clone())),
        }
    }
}

/// Canonical one-line text of a TOML value: integers in decimal, floats in Rust's shortest
/// round-trip form (`1.0`, `1e-6`, always distinguishable from integers), strings JSON-quoted,
/// arrays `[a, b]`, tables `{k = v, …}` with keys sorted.
pub fn canonical_value(v: &toml::Value) -> String {
    match v {
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => format!("{f:?}"),
        toml::Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical_value).collect::<Vec<_>>().join(", ")
        ),
        toml::Value::Table(t) => {
            let mut keys: Vec<&String> = t.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{} = {}",
                        serde_json::to_string(k).unwrap_or_default(),
                        canonical_value(&t[*k])
                    )
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// Canonical text of a whole config: one `path = value` line per leaf, sorted by path.
pub fn canonical_table(t: &toml::Table) -> String {
    let mut items = Vec::new();
    leaves(t, "", &mut items);
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let mut s = String::new();
    for (k, v) in items {
        s.push_str(&k);
        s.push_str(" = ");
        s.push_str(&canonical_value(&v));
        s.push('\n');
    }
    s
}

/// A value shortened for a readable id or label: integers exactly, floats with ≤ 4
/// significant digits (`1e-6`, `0.5`, `3`), strings as is.
pub fn short_value(v: &toml::Value) -> String {
    match v {
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => {
            if *f == 0.0 || !f.is_finite() {
                return format!("{f}");
            }
            let e = f.abs().log10().floor() as i32;
            if (-3..=4).contains(&e) {
                let s = format!("{:.*}", (3 - e).max(0) as usize, f);
                let s = if s.contains('.') {
                    s.trim_end_matches('0').trim_end_matches('.').to_string()
                } else {
                    s
                };
                s
            } else {
                let m = f / 10f64.powi(e);
                let ms = format!("{m:.3}");
                let ms = ms.trim_end_matches('0').trim_end_matches('.');
                format!("{ms}e{e}")
            }
        }
        toml::Value::String(s) => s.clone(),
        toml::Value::Boolean(b) => b.to_string(),
        other => canonical_value(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_toml;

    #[test]
    fn set_remove_and_canonical_text() {
        let mut t =
            parse_toml("seed = 1\n[model]\nwidth = 3\n[reference]\nlr = 0.1\n", "t").unwrap();
        set_path(&mut t, "model.width", toml::Value::Integer(8)).unwrap();
        set_path(&mut t, "train.record.points", toml::Value::Integer(5)).unwrap();
        assert_eq!(t["train"]["record"]["points"].as_integer(), Some(5));
        assert!(set_path(&mut t, "seed.x", toml::Value::Integer(1)).is_err());
        assert!(set_path(&mut t, "a..b", toml::Value::Integer(1)).is_err());
        remove_path(&mut t, "reference").unwrap();
        assert!(remove_path(&mut t, "reference").is_err());
        assert!(remove_path(&mut t, "model.nope").is_err());
        let c = canonical_table(&t);
        assert_eq!(c, "model.width = 8\nseed = 1\ntrain.record.points = 5\n");
        assert_eq!(canonical_value(&toml::Value::Float(1.0)), "1.0");
        assert_eq!(canonical_value(&toml::Value::Float(1e-6)), "1e-6");
        assert_eq!(canonical_value(&toml::Value::Integer(1)), "1");
        assert_eq!(
            canonical_value(&toml::Value::String("a\"b".into())),
            "\"a\\\"b\""
        );
    }

    #[test]
    fn short_values() {
        let f = |x: f64| short_value(&toml::Value::Float(x));
        assert_eq!(f(1e-6), "1e-6");
        assert_eq!(f(0.5), "0.5");
        assert_eq!(f(3.0), "3");
        assert_eq!(f(0.012345678), "0.01235");
        assert_eq!(f(123456.0), "1.235e5");
        assert_eq!(f(-2.5e-7), "-2.5e-7");
        assert_eq!(short_value(&toml::Value::Integer(-4)), "-4");
    }
}
