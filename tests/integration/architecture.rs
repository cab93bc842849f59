//! The one-way boundaries between rooms that `docs/reference.md` ("Layout") promises and code
//! review alone would not keep.
//!
//! Each rule names a room of `src/` (a directory or a file) and what its code may not mention.
//! Comments are skipped, so a doc may still say why a boundary exists.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    for entry in fs::read_dir(path).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code, without `//` comments.
fn code(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

const BURN: [&str; 2] = ["burn::", "use burn"];

/// (room under src/, what it must not mention, why)
const RULES: &[(&str, &[&str], &str)] = &[
    (
        "eval",
        &[
            "burn::",
            "use burn",
            "crate::model",
            "crate::train",
            "crate::infer",
        ],
        "evaluating predictions never needs the model stack",
    ),
    (
        "report",
        &[
            "burn::",
            "use burn",
            "crate::model",
            "crate::train",
            "crate::infer",
        ],
        "reports render results; they compute no model output",
    ),
    (
        "das",
        &[
            "burn::",
            "use burn",
            "Tensor",
            "crate::model",
            "crate::train",
            "crate::data",
        ],
        "the controller and searches hold numbers only, so a reducer can run them anywhere",
    ),
    (
        "data",
        &[
            "burn::",
            "use burn",
            "crate::model",
            "crate::train",
            "crate::report",
            "crate::infer",
            "png::",
        ],
        "data reads and writes cases; it knows no models and draws no pictures",
    ),
    (
        "train/config.rs",
        &["burn::", "use burn", "crate::model"],
        "what a run is must be readable without the model stack",
    ),
    (
        "train/run_dir.rs",
        &["burn::", "use burn", "crate::model"],
        "where a run lives must be readable without the model stack",
    ),
    (
        "train/samples.rs",
        &["burn::", "use burn", "crate::model"],
        "the config layer builds on samples, so they stay burn-free too",
    ),
    (
        "train",
        &["crate::infer", "awsnet::infer"],
        "training never depends on inference: CASN regions come in through train::samples::LoadCasns",
    ),
    (
        "infer",
        &[
            "train::run::",
            "train::steps",
            "train::epoch",
            "train::loss",
            "crate::das",
        ],
        "inference reads a run through the config layer and its checkpoints, never training code",
    ),
    (
        "grid",
        &["burn::", "use burn", "Tensor", "crate::model"],
        "the grid plans and runs tasks; model code stays in model and train",
    ),
    (
        "grid/stages",
        &[
            "super::das",
            "super::evaluate",
            "super::predict",
            "super::stats",
            "super::report",
            "stages::",
        ],
        "a stage reads its parents' records, never another stage's code",
    ),
    (
        "progress.rs",
        &["burn::", "use burn", "crate::"],
        "the progress seam depends on nothing of ours",
    ),
];

#[test]
fn rooms_keep_to_their_boundaries() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    for (room, forbidden, why) in RULES {
        let mut files = Vec::new();
        rust_files(&root.join(room), &mut files);
        assert!(!files.is_empty(), "no code found for rule {room}");
        for file in files {
            let text = code(&file);
            for word in *forbidden {
                if text.contains(word) {
                    broken.push(format!("{} uses {word}: {why}", file.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The rules see through comments but not through code: a test that the scanner finds what it
/// is told to look for, so a rule cannot pass by never matching.
#[test]
fn the_scanner_finds_what_is_there() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    assert!(code(&root.join("train/steps.rs")).contains("use burn"));
    assert!(BURN
        .iter()
        .any(|b| code(&root.join("model/unet.rs")).contains(b)));
    assert!(code(&root.join("engine.rs")).contains("crate::infer"));
    let doc_only = code(&root.join("das/mod.rs"));
    assert!(!doc_only.contains("tensor"), "comments are skipped");
}
