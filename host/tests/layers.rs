//! The layers of `host/src`, checked: every `crate::` path in a concern's
//! code names a concern of a lower layer (or itself). `docs/architecture.md`
//! explains the map; this test keeps it true.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each concern and its layer; a concern may use only lower layers.
const LAYERS: &[(&str, u8)] = &[
    ("model", 0),
    ("exec", 1),
    ("plan", 1),
    ("policy", 1),
    ("store", 1),
    ("engine", 2),
    ("front", 3),
    ("csi", 4),
    ("http", 4),
    ("kube", 4),
    ("cli", 5),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The concerns a file's code names as `crate::NAME`, comments left out.
fn uses(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push((number + 1, name));
        }
    }
    found
}

#[test]
fn every_crate_path_points_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layer: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (concern, rank) in LAYERS {
        let mut files = Vec::new();
        let single = src.join(format!("{concern}.rs"));
        if single.exists() {
            files.push(single);
        }
        let dir = src.join(concern);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        }
        assert!(!files.is_empty(), "no source for concern {concern}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (line, used) in uses(&text) {
                checked += 1;
                if used == *concern {
                    continue;
                }
                match layer.get(used.as_str()) {
                    Some(r) if r < rank => {}
                    Some(r) => wrong.push(format!(
                        "{}:{line}: {concern} (layer {rank}) uses {used} (layer {r})",
                        file.strip_prefix(&src).unwrap().display()
                    )),
                    None => wrong.push(format!(
                        "{}:{line}: crate::{used} is not a concern in LAYERS",
                        file.strip_prefix(&src).unwrap().display()
                    )),
                }
            }
        }
    }
    // Every top-level source is a concern of the map (or the crate root).
    for entry in std::fs::read_dir(&src).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stem = name.trim_end_matches(".rs");
        if !["lib", "main"].contains(&stem) {
            assert!(
                layer.contains_key(stem),
                "host/src/{name} is in no layer of LAYERS"
            );
        }
    }
    assert!(
        checked > 100,
        "only {checked} crate paths found: the scan is broken"
    );
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_scan_sees_paths_in_code_and_skips_comments() {
    let text = "use crate::engine::Engine;\n// crate::cli in a comment\nlet x = crate::model::Id::new(); // crate::http\n";
    let names: Vec<String> = uses(text).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["engine", "model"]);
}
