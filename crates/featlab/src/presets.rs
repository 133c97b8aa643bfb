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
