//! `awsnet phantom`: determinism, the requested geometry, the preview, and argument errors.

use crate::common;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::common::{awsnet, json};

fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read(&p).unwrap(),
            )
        })
        .collect()
}

fn phantom(out: &Path, seed: &str, extra: &[&str]) -> common::Run {
    let mut args = vec![
        "phantom",
        "--out",
        out.to_str().unwrap(),
        "--cases",
        "3",
        "--seed",
        seed,
        "--size",
        "48",
        "40",
        "--spacing",
        "4",
        "4.5",
        "12",
        "--slices",
        "2",
        "4",
    ];
    args.extend_from_slice(extra);
    awsnet(&args)
}

#[test]
fn the_same_seed_writes_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    assert_eq!(phantom(&a, "11", &[]).code, 0);
    assert_eq!(phantom(&b, "11", &[]).code, 0);
    assert_eq!(phantom(&c, "12", &[]).code, 0);
    let (a, b, c) = (contents(&a), contents(&b), contents(&c));
    let names: Vec<&String> = a.keys().collect();
    assert_eq!(names.len(), 12);
    assert!(names
        .iter()
        .all(|n| n.starts_with("myops_training_10") && n.ends_with(".nii.gz")));
    assert_eq!(a, b, "same seed, same bytes");
    assert_ne!(a, c, "another seed, other data");
}

#[test]
fn files_carry_the_requested_geometry_and_int16() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    let run = phantom(&out, "1", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_stdout_has(&["wrote 3 cases"]);
    for seq in ["C0", "DE", "T2", "gd"] {
        let f = out.join(format!("myops_training_102_{seq}.nii.gz"));
        let v = json(&awsnet(&["inspect", f.to_str().unwrap()]).stdout);
        assert_eq!(v["datatype"], "int16", "{seq}");
        assert_eq!(v["shape"][0], 48);
        assert_eq!(v["shape"][1], 40);
        let z = v["shape"][2].as_u64().unwrap();
        assert!((2..=4).contains(&z), "{z}");
        assert_eq!(v["spacing"], serde_json::json!([4.0, 4.5, 12.0]));
        assert_eq!(v["affine"][1][1], 4.5);
        assert_eq!(v["qform_code"], 1);
        assert!(v["max"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn preview_is_a_png_with_a_row_per_slice() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    let png = dir.path().join("sheet.png");
    let run = phantom(&out, "2", &["--preview", png.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let bytes = fs::read(&png).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    // Four tiles of the 48-pixel x axis side by side.
    assert!(
        info.width >= 4 * 48 && info.width < 4 * 48 + 20,
        "{}",
        info.width
    );
    // At least two slices per case, three cases, 40 px tall each.
    assert!(info.height >= 6 * 40, "{}", info.height);
}

#[test]
fn bad_arguments_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let table: [(&[&str], &str); 6] = [
        (&["--cases", "0"], "--cases"),
        (&["--size", "4", "64"], "--size"),
        (&["--slices", "5", "2"], "--slices"),
        (&["--spacing", "1", "0", "1"], "--spacing"),
        (&["--difficulty", "1.5"], "--difficulty"),
        (&["--difficulty", "NaN"], "--difficulty"),
    ];
    for (args, flag) in table {
        let mut full = vec!["phantom", "--out", out.to_str().unwrap()];
        full.extend_from_slice(args);
        awsnet(&full).assert_user_error(&[flag]);
        assert!(!out.exists(), "{flag}: nothing may be written");
    }
    // Missing --out is a usage error from the parser.
    assert_eq!(awsnet(&["phantom"]).code, 2);
}

#[test]
fn a_failed_preview_leaves_no_dataset_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    // A preview path that is an existing, non-empty directory cannot be written.
    let png = dir.path().join("sheet.png");
    fs::create_dir_all(png.join("occupied")).unwrap();
    let run = phantom(&out, "2", &["--preview", png.to_str().unwrap()]);
    run.assert_user_error(&["sheet.png", "is a directory"]);
    assert!(
        !out.exists(),
        "the output directory was created for nothing and must be gone"
    );
}

#[test]
fn files_awsnet_did_not_write_are_only_replaced_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    // Rerunning into the same folder replaces earlier phantoms without fuss.
    assert_eq!(phantom(&out, "4", &[]).code, 0);
    assert_eq!(phantom(&out, "5", &[]).code, 0);
    // A "real" scan under a phantom's name: a NIfTI without the phantom description.
    let real = out.join("myops_training_102_DE.nii.gz");
    let h = common::Hdr::new(&[2, 2, 1], 4, 16);
    let bytes = common::gzip(&h.file(&common::encode(4, &[1.0, 2.0, 3.0, 4.0], false)));
    fs::write(&real, &bytes).unwrap();
    let before = contents(&out);
    phantom(&out, "6", &[]).assert_user_error(&["myops_training_102_DE.nii.gz", "--force"]);
    assert_eq!(contents(&out), before, "nothing was touched");
    assert_eq!(phantom(&out, "6", &["--force"]).code, 0);
    assert_ne!(fs::read(&real).unwrap(), bytes);
}
