//! `awsnet cases`: the three MyoPS layouts, and every way a case can be invalid.

use crate::common;
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{awsnet, json, Hdr};
use awsnet::data::nifti_read::read_nifti;
use awsnet::data::nifti_write::write_i16;
use ndarray::{Array3, Ix3};

/// Two small phantom cases in the flat layout.
fn phantoms(dir: &Path) -> PathBuf {
    let out = dir.join("flat");
    let run = awsnet(&[
        "phantom",
        "--out",
        out.to_str().unwrap(),
        "--cases",
        "2",
        "--seed",
        "3",
        "--size",
        "40",
        "36",
        "--spacing",
        "4",
        "4",
        "14",
        "--slices",
        "2",
        "3",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    out
}

fn read_i16(path: &Path) -> (Array3<i16>, nifti::NiftiHeader) {
    let v = read_nifti(path).unwrap();
    let a = v
        .data
        .mapv(|x| x as i16)
        .into_dimensionality::<Ix3>()
        .unwrap();
    (a, v.header)
}

#[test]
fn flat_layout_lists_cases_with_shape_spacing_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let flat = phantoms(dir.path());
    let run = awsnet(&["cases", flat.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json(&run.stdout);
    assert_eq!(v["valid"], 2);
    assert_eq!(v["invalid"], 0);
    let case = &v["cases"][0];
    assert_eq!(case["id"], "myops_training_101");
    let s = &case["summary"];
    assert_eq!(s["shape"][0], 40);
    assert_eq!(s["shape"][1], 36);
    assert_eq!(s["spacing"], serde_json::json!([4.0, 4.0, 14.0]));
    assert_eq!(s["slices"], s["shape"][2]);
    assert_eq!(s["has_labels"], true);
    let present: Vec<&str> = s["labels_present"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    for l in ["myocardium", "lv_blood"] {
        assert!(present.contains(&l), "{present:?}");
    }
    // The table form names every case.
    let table = awsnet(&["cases", flat.to_str().unwrap()]);
    assert_eq!(table.code, 0);
    table.assert_stdout_has(&["myops_training_102", "2 cases: 2 valid, 0 invalid"]);
}

#[test]
fn official_and_myops_plus_plus_layouts_are_discovered() {
    let dir = tempfile::tempdir().unwrap();
    let flat = phantoms(dir.path());
    let root = dir.path().join("MyoPS");
    for sub in ["train25", "train25_myops_gd", "test20"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    for seq in ["C0", "DE", "T2"] {
        let name = format!("myops_training_101_{seq}.nii.gz");
        fs::copy(flat.join(&name), root.join("train25").join(&name)).unwrap();
        // A test case: images only, no labels.
        fs::copy(
            flat.join(format!("myops_training_102_{seq}.nii.gz")),
            root.join("test20")
                .join(format!("myops_test_201_{seq}.nii.gz")),
        )
        .unwrap();
    }
    fs::copy(
        flat.join("myops_training_101_gd.nii.gz"),
        root.join("train25_myops_gd/myops_training_101_gd.nii.gz"),
    )
    .unwrap();
    // MyoPS++: CaseXXXX/CaseXXXX_{C0,LGE,T2,gd}.
    let pp = root.join("Case0007");
    fs::create_dir_all(&pp).unwrap();
    for (from, to) in [("C0", "C0"), ("DE", "LGE"), ("T2", "T2"), ("gd", "gd")] {
        fs::copy(
            flat.join(format!("myops_training_102_{from}.nii.gz")),
            pp.join(format!("Case0007_{to}.nii.gz")),
        )
        .unwrap();
    }

    let run = awsnet(&["cases", root.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let v = json(&run.stdout);
    let ids: Vec<&str> = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["Case0007", "myops_test_201", "myops_training_101"]);
    let labels: Vec<bool> = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["summary"]["has_labels"].as_bool().unwrap())
        .collect();
    assert_eq!(labels, [true, false, true]);
}

/// Each row breaks one thing in a copy of a valid case; `cases` must exit 2, name the case and
/// the file, say what is wrong, and still list the valid case.
#[test]
fn invalid_cases_are_reported_by_name_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let flat = phantoms(dir.path());
    let file = |d: &Path, seq: &str| d.join(format!("myops_training_101_{seq}.nii.gz"));

    type Breaker = fn(&Path, &dyn Fn(&Path, &str) -> PathBuf);
    let table: Vec<(&str, Breaker, Vec<&str>)> = vec![
        (
            "missing sequence",
            |d, f| fs::remove_file(f(d, "T2")).unwrap(),
            vec!["missing sequence T2"],
        ),
        (
            "different shapes",
            |d, f| {
                let (a, mut h) = read_i16(&f(d, "DE"));
                let cut = a.slice(ndarray::s![.., ..30, ..]).to_owned();
                h.dim[2] = 30;
                write_i16(&f(d, "DE"), &cut, &h).unwrap();
            },
            vec!["sequences differ in shape", "myops_training_101_DE.nii.gz"],
        ),
        (
            "spacing differs",
            |d, f| {
                let (a, mut h) = read_i16(&f(d, "T2"));
                h.pixdim[1] = 4.5;
                write_i16(&f(d, "T2"), &a, &h).unwrap();
            },
            vec!["voxel spacing differs", "myops_training_101_T2.nii.gz"],
        ),
        (
            "unknown label code",
            |d, f| {
                let (mut a, h) = read_i16(&f(d, "gd"));
                a[[0, 0, 0]] = 300;
                a[[1, 0, 0]] = 300;
                write_i16(&f(d, "gd"), &a, &h).unwrap();
            },
            vec![
                "unknown label values 300 (2 voxels)",
                "myops_training_101_gd.nii.gz",
            ],
        ),
        (
            "non-finite intensity",
            |d, f| {
                let (a, _) = read_i16(&f(d, "C0"));
                let (x, y, z) = a.dim();
                let mut h = Hdr::new(&[x as i16, y as i16, z as i16], 16, 32);
                h.pixdim = [1.0, 4.0, 4.0, 14.0, 1.0, 1.0, 1.0, 1.0];
                let mut values: Vec<f64> = a.t().iter().map(|&v| v as f64).collect();
                values[5] = f64::NAN;
                fs::write(
                    f(d, "C0"),
                    common::gzip(&h.file(&common::encode(16, &values, false))),
                )
                .unwrap();
            },
            vec![
                "non-finite voxel",
                "myops_training_101_C0.nii.gz",
                "[5, 0, 0]",
            ],
        ),
        (
            "truncated file",
            |d, f| {
                let bytes = fs::read(f(d, "DE")).unwrap();
                fs::write(f(d, "DE"), &bytes[..bytes.len() / 3]).unwrap();
            },
            vec!["myops_training_101_DE.nii.gz", "corrupt gzip stream"],
        ),
    ];
    for (what, breaker, fragments) in table {
        let case_dir = dir.path().join(what.replace(' ', "_"));
        fs::create_dir_all(&case_dir).unwrap();
        for entry in fs::read_dir(&flat).unwrap() {
            let p = entry.unwrap().path();
            fs::copy(&p, case_dir.join(p.file_name().unwrap())).unwrap();
        }
        breaker(&case_dir, &file);
        let run = awsnet(&["cases", case_dir.to_str().unwrap()]);
        run.assert_user_error(&["1 of 2 cases"]);
        run.assert_stdout_has(&fragments);
        run.assert_stdout_has(&[
            "myops_training_101  INVALID: case myops_training_101",
            "1 valid, 1 invalid",
        ]);
        // JSON form: same verdict, machine-readable.
        let v = json(&awsnet(&["cases", case_dir.to_str().unwrap(), "--json"]).stdout);
        assert_eq!(v["invalid"], 1, "{what}");
        assert_eq!(v["cases"][0]["valid"], false, "{what}");
        assert!(
            v["cases"][0]["error"]
                .as_str()
                .unwrap()
                .contains(fragments[0]),
            "{what}"
        );
    }
}

#[test]
fn two_files_for_one_volume_make_only_that_case_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let flat = phantoms(dir.path());
    let (a, h) = read_i16(&flat.join("myops_training_102_T2.nii.gz"));
    write_i16(&flat.join("myops_training_102_T2.nii"), &a, &h).unwrap();
    let run = awsnet(&["cases", flat.to_str().unwrap()]);
    run.assert_user_error(&["1 of 2 cases"]);
    run.assert_stdout_has(&[
        "two files for one volume",
        "myops_training_102_T2.nii and ",
        "1 valid, 1 invalid",
    ]);
}

#[test]
fn a_directory_without_cases_is_a_user_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), "hi").unwrap();
    awsnet(&["cases", dir.path().to_str().unwrap()]).assert_user_error(&["no MyoPS cases found"]);
    awsnet(&["cases", "/no/such/dir"]).assert_user_error(&["cannot read /no/such/dir"]);
}
