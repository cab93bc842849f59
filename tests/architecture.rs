//! Boundaries between modules that DESIGN.md promises and code review alone would not keep.

use std::fs;
use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Evaluating predictions must never need the model stack: `eval` (and the tables `report`
/// renders from its results) use no burn type and no model or training code.
#[test]
fn eval_and_report_do_not_depend_on_burn() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root.join("eval"), &mut files);
    rust_files(&root.join("report"), &mut files);
    assert!(files.len() > 5, "found {files:?}");
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for forbidden in ["burn::", "use burn", "crate::model", "crate::train"] {
            assert!(
                !text.contains(forbidden),
                "{} uses {forbidden}",
                file.display()
            );
        }
    }
}
