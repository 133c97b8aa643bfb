//! Config documents: TOML parsing with located errors, `--set key=value` overrides, and
//! typed deserialisation that names the offending key.
//!
//! A run config is a TOML table with a top-level `experiment` key (default `"train"`)
//! selecting the experiment, a `seed`, and the experiment's own tables. Every table
//! rejects unknown keys.

use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Parse TOML text; errors carry the origin (file name or preset) and line/column.
pub fn parse_toml(text: &str, origin: &str) -> Result<toml::Table> {
    text.parse::<toml::Table>().map_err(|e| Error::Toml {
        origin: origin.to_string(),
        msg: e.to_string().trim_end().to_string(),
    })
}

/// Parse the value of a `--set` override: a TOML value (`3`, `1e-3`, `true`,
/// `[1, 2]`, `"relu"`), or a bare string when it is not valid TOML (`relu`).
pub fn parse_value(text: &str) -> toml::Value {
    match format!("v = {text}").parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or(toml::Value::String(text.to_string())),
        Err(_) => toml::Value::String(text.to_string()),
    }
}

/// Apply one `key.path=value` override to a table. Intermediate tables must exist (an
/// override cannot invent a section); whether the final key is allowed is decided when the
/// table is deserialised (unknown keys are rejected there, naming the key).
pub fn apply_set(table: &mut toml::Table, assignment: &str) -> Result<()> {
    let (key, value) = assignment.split_once('=').ok_or_else(|| {
        Error::config(
            assignment,
            "an override must look like `key.path=value`, e.g. `model.width=32`",
        )
    })?;
    let key = key.trim();
    if key.is_empty() {
        return Err(Error::config(assignment, "empty key in override"));
    }
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = table;
    for (i, p) in parts[..parts.len() - 1].iter().enumerate() {
        let path = parts[..=i].join(".");
        cur = match cur.get_mut(*p) {
            Some(toml::Value::Table(t)) => t,
            Some(_) => return Err(Error::config(path, "is not a table, cannot set a key inside it")),
            None => {
                return Err(Error::config(
                    path.clone(),
                    format!("no such section in this config (cannot set `{key}`); see the resolved config in run.json for the available keys"),
                ))
            }
        };
    }
    cur.insert(
        parts[parts.len() - 1].to_string(),
        parse_value(value.trim()),
    );
    Ok(())
}

/// The top-level table of a preset holding its quick settings (`featlab run --quick`,
/// `featlab gallery --quick`, the per-study tests): a partial config merged over the
/// preset, e.g. `[quick.train] t_max = 50`. It is never part of a resolved config.
pub const QUICK_KEY: &str = "quick";

/// Remove the `[quick]` table from a config; returns it (None if absent). A `quick` key
/// that is not a table is a config error.
pub fn take_quick(table: &mut toml::Table) -> Result<Option<toml::Table>> {
    match table.remove(QUICK_KEY) {
        None => Ok(None),
        Some(toml::Value::Table(t)) => Ok(Some(t)),
        Some(v) => Err(Error::config(
            QUICK_KEY,
            format!("must be a table of config keys (e.g. `[quick.train] t_max = 50`), got {v}"),
        )),
    }
}

/// Merge `overlay` into `base`, recursively: tables are merged key by key, any other value
/// in `overlay` replaces the one in `base` (arrays are replaced whole).
pub fn merge_overlay(base: &mut toml::Table, overlay: &toml::Table) {
    for (k, v) in overlay {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_overlay(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The config to resolve: `[quick]` removed, and merged over the rest when `quick` is set.
/// `--quick` without a `[quick]` table is an error (the preset documents no quick settings).
pub fn prepare(mut table: toml::Table, quick: bool) -> Result<toml::Table> {
    let overlay = take_quick(&mut table)?;
    if quick {
        let overlay = overlay.ok_or_else(|| {
            Error::config(
                QUICK_KEY,
                "--quick asks for the config's quick settings, but it has no [quick] table",
            )
        })?;
        merge_overlay(&mut table, &overlay);
    }
    Ok(table)
}

/// Marker around a nested key path inside a serde error message (see [`tagged_variant`]).
const PATH_MARK: char = '\u{1F}';

/// Deserialise a typed config from a table; the error names the key path
/// (e.g. `model.width: invalid type: string "x", expected usize`).
pub fn from_table<T: DeserializeOwned>(table: &toml::Table) -> Result<T> {
    let value = toml::Value::Table(table.clone());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut path = e.path().to_string();
        let mut inner = e.into_inner().to_string().trim_end().to_string();
        // errors from inside a tagged enum carry their own sub-path between markers
        while let Some(rest) = inner.strip_prefix(PATH_MARK) {
            if let Some((sub, msg)) = rest.split_once(PATH_MARK) {
                if !sub.is_empty() && sub != "." {
                    path = if path.is_empty() || path == "." {
                        sub.to_string()
                    } else {
                        format!("{path}.{sub}")
                    };
                }
                inner = msg.trim_start_matches(": ").to_string();
            } else {
                break;
            }
        }
        let path = unknown_field_path(table, &path, &inner).unwrap_or(path);
        Error::config(
            if path == "." || path.is_empty() {
                "(top level)".to_string()
            } else {
                path
            },
            strip_context(&inner),
        )
    })
}

/// The full dotted path of an unknown key that serde reports against an enclosing table
/// (a tagged enum nested in a tagged enum, e.g. `data.teacher`, loses the inner part of the
/// path): for a message "unknown field `k`", the one place below `path` where the user's
/// table has a key `k`, if `path` itself has none and there is exactly one.
fn unknown_field_path(table: &toml::Table, path: &str, msg: &str) -> Option<String> {
    let key = msg.strip_prefix("unknown field `")?.split('`').next()?;
    let mut at = table;
    let mut prefix = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        match at.get(part) {
            Some(toml::Value::Table(t)) => {
                at = t;
                prefix.push(part.to_string());
            }
            _ => return None, // `path` already ends at the key (or is not a table)
        }
    }
    if at.contains_key(key) {
        return None;
    }
    fn find(t: &toml::Table, key: &str, here: &mut Vec<String>, found: &mut Vec<String>) {
        for (k, v) in t {
            if let toml::Value::Table(sub) = v {
                here.push(k.clone());
                if sub.contains_key(key) {
                    found.push(format!("{}.{key}", here.join(".")));
                }
                find(sub, key, here, found);
                here.pop();
            }
        }
    }
    let mut found = Vec::new();
    find(at, key, &mut prefix, &mut found);
    (found.len() == 1).then(|| found.remove(0))
}

/// Drop the "in `key`" context lines that the toml deserialiser appends (the key path is
/// already reported).
fn strip_context(msg: &str) -> String {
    msg.lines()
        .filter(|l| !(l.trim().is_empty() || l.starts_with("in `") && l.ends_with('`')))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Deserialise the variant struct of an internally tagged enum (`kind = "..."`) from the
/// rest of its table, keeping the path of a nested error (serde's buffered tagged-enum
/// support loses it). Used by the hand-written `Deserialize` of tagged config enums.
pub fn tagged_variant<T: DeserializeOwned, E: serde::de::Error>(
    table: toml::Table,
) -> std::result::Result<T, E> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let p = e.path().to_string();
        E::custom(format!(
            "{PATH_MARK}{p}{PATH_MARK}: {}",
            strip_context(&e.into_inner().to_string())
        ))
    })
}

/// Implement `Deserialize` for an internally tagged config enum (`kind = "name"`) whose
/// variants are newtypes over structs (or unit-like struct variants via a struct), so that
/// errors inside a variant name their full key path.
#[macro_export]
macro_rules! tagged_config_enum {
    ($enum:ident, $what:literal, { $($tag:literal => $variant:ident($inner:ty)),+ $(,)? }) => {
        impl<'de> serde::Deserialize<'de> for $enum {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                use serde::de::Error as _;
                let mut t = toml::Table::deserialize(d)?;
                let kind = match t.remove("kind") {
                    Some(toml::Value::String(s)) => s,
                    Some(v) => return Err(D::Error::custom(format!("`kind` of the {} must be a string, got {v}", $what))),
                    None => return Err(D::Error::custom(format!("missing `kind` of the {} (one of: {})", $what, [$($tag),+].join(", ")))),
                };
                match kind.as_str() {
                    $($tag => $crate::config::tagged_variant::<$inner, D::Error>(t).map($enum::$variant),)+
                    other => Err(D::Error::custom(format!("unknown {} kind `{other}`; known: {}", $what, [$($tag),+].join(", ")))),
                }
            }
        }
    };
}

/// Serialise a typed config back to a TOML table (the resolved config written to run.json).
pub fn to_table<T: Serialize>(value: &T) -> Result<toml::Table> {
    match toml::Value::try_from(value) {
        Ok(toml::Value::Table(t)) => Ok(t),
        Ok(_) => Err(Error::Numerical(
            "config did not serialise to a table".into(),
        )),
        Err(e) => Err(Error::Numerical(format!(
            "config serialisation failed: {e}"
        ))),
    }
}

/// A TOML table as JSON (for run.json).
pub fn table_to_json(t: &toml::Table) -> serde_json::Value {
    serde_json::to_value(t).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_table_is_removed_and_merged_on_request() {
        let text = "seed = 1\n[train]\nlr = 0.1\nt_max = 100.0\n[quick.train]\nt_max = 5.0\n[quick.model]\nwidth = 3\n";
        let t = parse_toml(text, "t").unwrap();
        let plain = prepare(t.clone(), false).unwrap();
        assert!(plain.get(QUICK_KEY).is_none());
        assert_eq!(plain["train"]["t_max"].as_float(), Some(100.0));
        let quick = prepare(t, true).unwrap();
        assert!(quick.get(QUICK_KEY).is_none());
        assert_eq!(quick["train"]["t_max"].as_float(), Some(5.0));
        assert_eq!(quick["train"]["lr"].as_float(), Some(0.1));
        assert_eq!(quick["model"]["width"].as_integer(), Some(3));
        let e = prepare(parse_toml("seed = 1", "t").unwrap(), true).unwrap_err();
        assert!(e.to_string().contains("no [quick] table"), "{e}");
        let e = prepare(parse_toml("quick = 3", "t").unwrap(), false).unwrap_err();
        assert!(e.to_string().contains("`quick`"), "{e}");
    }

    #[test]
    fn unknown_keys_in_nested_tagged_enums_get_their_full_path() {
        let t = parse_toml(
            "[data]\nkind = \"gaussian\"\n[data.teacher]\nkind = \"linear\"\nsingular_valuez = [1.0]\n",
            "test",
        )
        .unwrap();
        let (path, msg) = (
            "data",
            "unknown field `singular_valuez`, expected `singular_values`",
        );
        assert_eq!(
            unknown_field_path(&t, path, msg).as_deref(),
            Some("data.teacher.singular_valuez")
        );
        // the reported path already names the key, another message, or an ambiguous key
        assert_eq!(
            unknown_field_path(&t, "data.teacher.singular_valuez", msg),
            None
        );
        assert_eq!(unknown_field_path(&t, "data", "invalid type: string"), None);
        let two = parse_toml("[a.b]\nk = 1\n[a.c]\nk = 2\n", "test").unwrap();
        assert_eq!(unknown_field_path(&two, "a", "unknown field `k`"), None);
    }
    #[test]
    fn set_parses_values_and_rejects_missing_sections() {
        let mut t = parse_toml("[model]\nwidth = 3\n", "test").unwrap();
        apply_set(&mut t, "model.width=7").unwrap();
        apply_set(&mut t, "model.activation=relu").unwrap();
        apply_set(&mut t, "model.lr_layers=[1, 2.5]").unwrap();
        assert_eq!(t["model"]["width"].as_integer(), Some(7));
        assert_eq!(t["model"]["activation"].as_str(), Some("relu"));
        assert!(apply_set(&mut t, "nosuch.key=1").is_err());
        assert!(apply_set(&mut t, "model.width.x=1").is_err());
        assert!(apply_set(&mut t, "model.width").is_err());
        let e = parse_toml("[model\nwidth = 3", "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.toml") && e.contains("line"), "{e}");
    }
}
