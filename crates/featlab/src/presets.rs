//! Presets: one TOML file per reproducible figure, under `presets/` in the repository,
//! embedded into the library at build time (so the CLI and the Python bindings carry them).

include!(concat!(env!("OUT_DIR"), "/presets.rs"));

/// The TOML text of preset `name`.
pub fn get(name: &str) -> Option<&'static str> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Preset names, sorted.
pub fn names() -> Vec<&'static str> {
    PRESETS.iter().map(|(n, _)| *n).collect()
}

/// First line of the preset's `description` key (for `featlab list`).
pub fn describe(name: &str) -> String {
    get(name)
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| {
            t.get("description")
                .and_then(|d| d.as_str())
                .map(|s| s.lines().next().unwrap_or("").to_string())
        })
        .unwrap_or_default()
}

/// Load the config table for a preset name or a file path, and the run's label (the
/// preset name or the file stem). A file wins over a preset of the same name; a directory
/// never counts as a config (a run's output directory named like its preset, e.g. after
/// `featlab run staircase --out staircase`, does not shadow the preset). The table is
/// returned as written (its `[quick]` table included: [`crate::config::prepare`] merges or
/// drops it). One loader for the CLI and the Python bindings.
pub fn load(spec: &str) -> crate::Result<(toml::Table, String)> {
    use crate::config::parse_toml;
    use std::path::Path;
    let path = Path::new(spec);
    let is_dir = path.is_dir();
    if !is_dir && (spec.ends_with(".toml") || path.exists()) {
        let text = std::fs::read_to_string(path).map_err(|source| crate::Error::Io {
            action: "cannot read config file",
            path: path.to_path_buf(),
            source,
        })?;
        let table = parse_toml(&text, spec)?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| spec.to_string());
        Ok((table, stem))
    } else if let Some(text) = get(spec) {
        Ok((
            parse_toml(text, &format!("preset `{spec}`"))?,
            spec.to_string(),
        ))
    } else if is_dir {
        Err(crate::Error::Config {
            key: "config".into(),
            msg: format!(
                "`{spec}` is a directory, not a config file or a preset{}. Give a TOML file \
                 (a run directory's config is in its run.json) or one of: {}.",
                if path.join("run.json").is_file() {
                    " (it looks like a run's output directory)"
                } else {
                    ""
                },
                names().join(", ")
            ),
        })
    } else {
        Err(crate::Error::Config {
            key: "config".into(),
            msg: format!(
                "`{spec}` is neither a config file nor a preset. Presets: {}. A config file \
                 path must exist (or end in .toml).",
                names().join(", ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn every_preset_parses_and_resolves() {
        assert!(!PRESETS.is_empty());
        for (name, text) in PRESETS {
            let table = crate::config::parse_toml(text, name).unwrap();
            let table = crate::config::prepare(table, false).unwrap();
            let exp = crate::experiments::select(&table).unwrap_or_else(|e| panic!("{name}: {e}"));
            exp.resolve(&table)
                .unwrap_or_else(|e| panic!("preset {name} does not resolve: {e}"));
            assert!(
                !describe(name).is_empty(),
                "preset {name} has no description"
            );
        }
    }
}
