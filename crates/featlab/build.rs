//! Embeds every `presets/*.toml` of the workspace into the library (`featlab::presets`).
use std::fmt::Write;
use std::path::Path;

fn main() {
    // read at run time: `env!` would bake in the directory the build script was compiled in,
    // and a build script reused from another checkout (shared target dir) would then embed
    // that checkout's presets
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest_dir).join("../../presets");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<(String, String)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) == Some("toml") {
                println!("cargo:rerun-if-changed={}", p.display());
                let name = p.file_stem().unwrap().to_string_lossy().to_string();
                entries.push((name, p.canonicalize().unwrap().display().to_string()));
            }
        }
    }
    entries.sort();
    let mut code = String::from("/// (name, TOML text) of every embedded preset, sorted by name.\npub static PRESETS: &[(&str, &str)] = &[\n");
    for (name, path) in &entries {
        writeln!(code, "    ({name:?}, include_str!({path:?})),").unwrap();
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("presets.rs");
    std::fs::write(out, code).unwrap();
}
