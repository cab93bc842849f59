//! `awsnet vote`: the majority label per voxel, written whole or not at all, and every bad input
//! refused with exit 2 naming the case or file.

use crate::common;
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::awsnet;
use awsnet::data::nifti_read::read_nifti;
use awsnet::data::nifti_write::write_i16;
use ndarray::{array, Array3};
use nifti::writer::WriterOptions;
use nifti::NiftiHeader;

fn header(shape: (usize, usize, usize), spacing: [f32; 3]) -> NiftiHeader {
    NiftiHeader {
        dim: [
            3,
            shape.0 as u16,
            shape.1 as u16,
            shape.2 as u16,
            1,
            1,
            1,
            1,
        ],
        pixdim: [1.0, spacing[0], spacing[1], spacing[2], 1.0, 1.0, 1.0, 1.0],
        ..NiftiHeader::default()
    }
}

/// Write `labels` as `dir/name` (creating `dir`) with the given spacing.
fn write(dir: &Path, name: &str, labels: &Array3<i16>, spacing: [f32; 3]) {
    fs::create_dir_all(dir).unwrap();
    write_i16(&dir.join(name), labels, &header(labels.dim(), spacing)).unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `awsnet vote --inputs <inputs> --out <out> --rule plurality` (the labels here are not MyoPS
/// codes).
fn vote(inputs: &[PathBuf], out: &Path) -> common::Run {
    let mut args = vec!["vote", "--inputs"];
    args.extend(inputs.iter().map(|p| s(p)));
    args.extend(["--out", s(out), "--rule", "plurality"]);
    awsnet(&args)
}

/// Every entry under `dir`, hidden ones included (an aborted vote must leave no temp files).
fn entries(dir: &Path) -> Vec<String> {
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = read
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Three models' predictions of two cases, each under its own file naming; labels are not
/// MyoPS codes. Returns the input directories (in vote order).
fn three_models(root: &Path) -> Vec<PathBuf> {
    let dirs: Vec<PathBuf> = ["m1", "m2", "m3"].map(|d| root.join(d)).into();
    // Per voxel of case c1 (one row of four voxels): all agree; m2 and m3 outvote m1; a 3-way
    // tie, which m1 wins; m1 and m3 outvote m2.
    let c1 = [
        array![[[7i16], [1], [1], [4]]],
        array![[[7i16], [2], [2], [5]]],
        array![[[7i16], [2], [3], [4]]],
    ];
    // Within the 0.1 % tolerance of each other, so the output's spacing shows whose header it has.
    let spacings = [
        [0.8, 0.8, 9.0],
        [0.8005, 0.8005, 9.0],
        [0.8005, 0.8005, 9.0],
    ];
    let names = [
        ["c1_pred.nii.gz", "c2_pred.nii.gz"],
        ["c1_seg.nii", "c2_seg.nii"],
        ["c1.nii.gz", "c2_gd.nii.gz"],
    ];
    for (((dir, labels), [n1, n2]), spacing) in dirs.iter().zip(&c1).zip(names).zip(spacings) {
        write(dir, n1, labels, spacing);
        write(dir, n2, &Array3::from_elem((2, 2, 2), -1), spacing);
    }
    dirs
}

#[test]
fn each_voxel_gets_the_majority_label_and_ties_go_to_the_first_input() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = three_models(tmp.path());
    let out = tmp.path().join("out");
    let run = vote(&inputs, &out);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_stdout_has(&["voted 2 cases from 3 inputs"]);
    assert_eq!(entries(&out), ["c1_pred.nii.gz", "c2_pred.nii.gz"]);

    let c1 = read_nifti(&out.join("c1_pred.nii.gz")).unwrap();
    let voxels: Vec<f64> = (0..4).map(|y| c1.data[[0, y, 0]]).collect();
    assert_eq!(voxels, [7.0, 2.0, 1.0, 4.0]);
    assert_eq!(
        c1.header.pixdim[1..4],
        [0.8, 0.8, 9.0],
        "the first input's header"
    );
    let c2 = read_nifti(&out.join("c2_pred.nii.gz")).unwrap();
    assert!(c2.data.iter().all(|&v| v == -1.0));
}

#[test]
fn volumes_of_different_shapes_are_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = three_models(tmp.path());
    // c1 is voted first and would be staged; c2 then fails.
    let odd = inputs[1].join("c2_seg.nii");
    fs::remove_file(&odd).unwrap();
    write(
        &inputs[1],
        "c2_seg.nii",
        &Array3::zeros((3, 2, 2)),
        [0.8, 0.8, 9.0],
    );
    let out = tmp.path().join("out");
    let run = vote(&inputs, &out);
    let first = inputs[0].join("c2_pred.nii.gz");
    run.assert_user_error(&["case c2", "shapes differ", s(&first), s(&odd)]);
    assert!(entries(&out).is_empty(), "{:?}", entries(&out));

    // An existing output directory keeps what it had, and gains nothing.
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("keep.txt"), "x").unwrap();
    vote(&inputs, &out).assert_user_error(&["shapes differ"]);
    assert_eq!(entries(&out), ["keep.txt"]);
}

#[test]
fn a_case_missing_from_one_input_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = three_models(tmp.path());
    fs::remove_file(inputs[2].join("c2_gd.nii.gz")).unwrap();
    let out = tmp.path().join("out");
    let run = vote(&inputs, &out);
    let lacks = format!("{} lacks c2", inputs[2].display());
    run.assert_user_error(&["--inputs", &lacks]);
    assert!(!out.exists());
}

#[test]
fn a_non_integer_voxel_is_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = three_models(tmp.path());
    let float_file = inputs[1].join("c2_seg.nii");
    let values = Array3::<f32>::from_elem((2, 2, 2), 0.5);
    WriterOptions::new(&float_file)
        .reference_header(&header((2, 2, 2), [0.8, 0.8, 9.0]))
        .write_nifti(&values)
        .unwrap();
    let out = tmp.path().join("out");
    vote(&inputs, &out).assert_user_error(&[s(&float_file), "holds 0.5: not an integer label"]);
    assert!(!out.exists());
}

#[test]
fn fewer_than_two_inputs_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = three_models(tmp.path());
    let out = tmp.path().join("out");
    vote(&inputs[..1], &out).assert_user_error(&["--inputs", "at least 2 directories, got 1"]);
    assert!(!out.exists());
    // No --inputs at all is clap's usage error, also exit 2.
    let run = awsnet(&["vote", "--out", s(&out)]);
    run.assert_user_error(&["--inputs"]);
}

/// The default rule votes MyoPS regions one inside the other, writes each voxel's agreement on
/// request, and refuses labels that are not MyoPS codes.
#[test]
fn nested_vote_keeps_pathology_and_writes_agreement() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = ["m1", "m2", "m3"].map(|d| tmp.path().join(d)).into();
    // One row of three voxels: normal / scar / edema; all blood; scar, scar, myocardium.
    let labels = [
        array![[[200i16], [500], [2221]]],
        array![[[2221i16], [500], [2221]]],
        array![[[1220i16], [500], [200]]],
    ];
    for (dir, l) in dirs.iter().zip(&labels) {
        write(dir, "c1_pred.nii.gz", l, [1.0, 1.0, 8.0]);
    }
    let out = tmp.path().join("out");
    let agreement = tmp.path().join("agreement");
    let mut args = vec!["vote", "--inputs"];
    args.extend(dirs.iter().map(|p| s(p)));
    args.extend(["--out", s(&out), "--agreement", s(&agreement)]);
    let run = awsnet(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let voted = read_nifti(&out.join("c1_pred.nii.gz")).unwrap();
    let voxels: Vec<f64> = (0..3).map(|y| voted.data[[0, y, 0]]).collect();
    assert_eq!(voxels, [1220.0, 500.0, 2221.0]);
    let agree = read_nifti(&agreement.join("c1_agreement.nii.gz")).unwrap();
    let fractions: Vec<f64> = (0..3).map(|y| agree.data[[0, y, 0]]).collect();
    for (got, want) in fractions.iter().zip([1.0 / 3.0, 1.0, 2.0 / 3.0]) {
        assert!((got - want).abs() < 1e-6, "{fractions:?}");
    }

    let plural = three_models(&tmp.path().join("p"));
    let mut args = vec!["vote", "--inputs"];
    args.extend(plural.iter().map(|p| s(p)));
    let refused = tmp.path().join("refused");
    args.extend(["--out", s(&refused)]);
    awsnet(&args).assert_user_error(&["not a MyoPS code", "plurality"]);
    assert!(!refused.exists());
}
