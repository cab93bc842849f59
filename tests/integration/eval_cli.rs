//! `awsnet eval`: values users put in papers, file matching, and every bad input refused by case.

use crate::common;
use std::fs;
use std::path::Path;

use crate::common::{awsnet, json};
use awsnet::data::nifti_write::{write_i16, write_labels};
use ndarray::{s, Array3};
use nifti::NiftiHeader;

const SCAR: u16 = 2221;
const EDEMA: u16 = 1220;
const MYO: u16 = 200;

fn header(shape: [usize; 3], spacing: [f32; 3]) -> NiftiHeader {
    let [x, y, z] = shape.map(|n| n as u16);
    NiftiHeader {
        dim: [3, x, y, z, 1, 1, 1, 1],
        pixdim: [1.0, spacing[0], spacing[1], spacing[2], 1.0, 1.0, 1.0, 1.0],
        ..NiftiHeader::default()
    }
}

fn write(path: &Path, labels: &Array3<u16>, spacing: [f32; 3]) {
    let shape = [labels.dim().0, labels.dim().1, labels.dim().2];
    write_labels(path, labels, &header(shape, spacing)).unwrap();
}

/// Reference: a myocardium block holding a scar block and an edema block, 2 slices.
fn reference() -> Array3<u16> {
    let mut gt = Array3::<u16>::zeros((12, 10, 2));
    gt.slice_mut(s![2..10, 2..8, ..]).fill(MYO);
    gt.slice_mut(s![3..6, 3..6, ..]).fill(SCAR);
    gt.slice_mut(s![6..9, 3..6, ..]).fill(EDEMA);
    gt
}

struct Dirs {
    _tmp: tempfile::TempDir,
    pred: std::path::PathBuf,
    gt: std::path::PathBuf,
    root: std::path::PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let (pred, gt) = (root.join("pred"), root.join("gt"));
    fs::create_dir_all(&pred).unwrap();
    fs::create_dir_all(&gt).unwrap();
    Dirs {
        _tmp: tmp,
        pred,
        gt,
        root,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `awsnet eval --pred <d.pred> --gt <d.gt>` and `extra`.
fn eval(d: &Dirs, extra: &[&str]) -> common::Run {
    let mut args = vec!["eval", "--pred", s(&d.pred), "--gt", s(&d.gt)];
    args.extend_from_slice(extra);
    awsnet(&args)
}

#[test]
fn metrics_per_case_and_summary_are_what_the_definitions_give() {
    let d = dirs();
    let gt = reference();
    // Case a: a perfect prediction. Case b: the scar block one voxel further along x (6 of 9
    // voxels per slice overlap: Dice 2/3, HD 1.5 mm on a 1.5 mm grid) and no edema, so scar+edema
    // loses the edema block. Case c: no scar in reference or prediction.
    let mut b = gt.clone();
    b.slice_mut(s![3..7, 3..6, ..]).fill(MYO);
    b.slice_mut(s![4..7, 3..6, ..]).fill(SCAR);
    b.slice_mut(s![6..9, 3..6, ..])
        .mapv_inplace(|v| if v == EDEMA { MYO } else { v });
    let mut c = gt.clone();
    c.mapv_inplace(|v| if v == SCAR { MYO } else { v });
    for (id, gtv, pred) in [("a", &gt, &gt), ("b", &gt, &b), ("c", &c, &c)] {
        write(&d.gt.join(format!("{id}_gd.nii.gz")), gtv, [1.5, 1.5, 10.0]);
        write(
            &d.pred.join(format!("{id}_pred.nii")),
            pred,
            [1.5, 1.5, 10.0],
        );
    }
    let (out_json, out_csv) = (d.root.join("e.json"), d.root.join("e.csv"));
    let run = eval(
        &d,
        &[
            "--json",
            s(&out_json),
            "--csv",
            s(&out_csv),
            "--targets",
            "scar,scar_edema",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_stdout_has(&["3 cases", "scar", "scar_edema"]);

    let doc = json(&fs::read_to_string(&out_json).unwrap());
    assert_eq!(doc["n"], 3);
    assert_eq!(doc["targets"], serde_json::json!(["scar", "scar_edema"]));
    let cases = doc["metric_per_case"].as_array().unwrap();
    let ids: Vec<&str> = cases.iter().map(|c| c["case"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    let b_scar = &cases[1]["scar"];
    assert!((b_scar["dice"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert!((b_scar["jaccard"].as_f64().unwrap() - 0.5).abs() < 1e-12);
    assert!((b_scar["hd"].as_f64().unwrap() - 1.5).abs() < 1e-6);
    assert_eq!(b_scar["pred_voxels"], 18);
    assert_eq!(b_scar["intersection_voxels"], 12);
    // Case c: both scar masks empty → Dice 1, HD 0, flagged.
    assert_eq!(cases[2]["scar"]["dice"], 1.0);
    assert_eq!(cases[2]["scar"]["hd"], 0.0);
    assert_eq!(cases[2]["scar"]["pred_empty"], true);
    assert_eq!(
        doc["empty_masks"]["scar"]["both_empty"],
        serde_json::json!(["c"])
    );
    // Means: Dice of scar over 1, 2/3, 1; HD over 0, 1.5, 0.
    let mean_dice = doc["mean"]["scar"]["dice"].as_f64().unwrap();
    assert!((mean_dice - (1.0 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-12);
    assert!((doc["mean"]["scar"]["hd"].as_f64().unwrap() - 0.5).abs() < 1e-6);
    assert!(doc["median"]["scar"]["dice"].as_f64().unwrap() == 1.0);
    assert_eq!(doc["n_per_metric"]["scar"]["hd"], 3);

    let csv = fs::read_to_string(&out_csv).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "case");
    assert!(header.contains(&"scar_edema_hd95"));
    assert_eq!(lines.count(), 3);
}

#[test]
fn a_case_with_one_empty_mask_is_left_out_of_distance_means_and_never_nan() {
    let d = dirs();
    let gt = reference();
    let mut no_scar = gt.clone();
    no_scar.mapv_inplace(|v| if v == SCAR { MYO } else { v });
    write(&d.gt.join("x_gd.nii.gz"), &gt, [1.0, 1.0, 8.0]);
    write(&d.pred.join("x.nii.gz"), &no_scar, [1.0, 1.0, 8.0]);
    write(&d.gt.join("y_gd.nii.gz"), &gt, [1.0, 1.0, 8.0]);
    write(&d.pred.join("y.nii.gz"), &gt, [1.0, 1.0, 8.0]);
    let out = d.root.join("e.json");
    let run = eval(&d, &["--json", s(&out)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = fs::read_to_string(&out).unwrap();
    assert!(!text.contains("NaN") && !text.contains("nan"), "{text}");
    let doc = json(&text);
    let x = &doc["metric_per_case"][0]["scar"];
    assert_eq!(x["dice"], 0.0);
    assert!(x["hd"].is_null() && x["hd95"].is_null() && x["assd"].is_null());
    assert_eq!(doc["n_per_metric"]["scar"]["hd"], 1);
    assert_eq!(doc["n_per_metric"]["scar"]["dice"], 2);
    assert_eq!(doc["mean"]["scar"]["hd"], 0.0);
    assert_eq!(doc["mean"]["scar"]["dice"], 0.5);
    let empty = &doc["empty_masks"]["scar"];
    assert_eq!(empty["prediction_empty_only"], serde_json::json!(["x"]));
    assert_eq!(empty["left_out_of_distances"], 1);
}

/// Every bad input: exit 2, the case or file named, no panic, and no output file left.
#[test]
fn bad_inputs_are_refused_by_name_without_output() {
    type Setup = fn(&Dirs);
    let gt = |d: &Dirs| write(&d.gt.join("case1_gd.nii.gz"), &reference(), [1.0, 1.0, 8.0]);
    let table: [(&str, Setup, &[&str]); 7] = [
        (
            "unmatched",
            |d| {
                write(&d.gt.join("case1_gd.nii.gz"), &reference(), [1.0, 1.0, 8.0]);
                write(&d.gt.join("case2_gd.nii.gz"), &reference(), [1.0, 1.0, 8.0]);
                write(&d.pred.join("case1.nii.gz"), &reference(), [1.0, 1.0, 8.0]);
                write(&d.pred.join("case9.nii.gz"), &reference(), [1.0, 1.0, 8.0]);
            },
            &[
                "without a reference",
                "case9",
                "without a prediction",
                "case2",
            ],
        ),
        (
            "non-label volume",
            |d| {
                write(&d.gt.join("case1_gd.nii.gz"), &reference(), [1.0, 1.0, 8.0]);
                let mut img = Array3::<i16>::zeros((12, 10, 2));
                img[[1, 1, 1]] = 37;
                let h = header([12, 10, 2], [1.0, 1.0, 8.0]);
                write_i16(&d.pred.join("case1.nii.gz"), &img, &h).unwrap();
            },
            &[
                "case case1",
                "prediction",
                "case1.nii.gz",
                "unknown label values 37",
            ],
        ),
        (
            "shape mismatch",
            |d| {
                write(&d.gt.join("case1_gd.nii.gz"), &reference(), [1.0, 1.0, 8.0]);
                let small = reference().slice(s![..11, .., ..]).to_owned();
                write(&d.pred.join("case1.nii.gz"), &small, [1.0, 1.0, 8.0]);
            },
            &["case case1", "shapes differ", "[11, 10, 2]", "[12, 10, 2]"],
        ),
        (
            "spacing mismatch",
            |d| {
                write(&d.gt.join("case1_gd.nii.gz"), &reference(), [1.0, 1.0, 8.0]);
                write(&d.pred.join("case1.nii.gz"), &reference(), [1.0, 1.0, 10.0]);
            },
            &["case case1", "voxel spacing differs"],
        ),
        (
            "truncated prediction",
            |d| {
                write(&d.gt.join("case1_gd.nii.gz"), &reference(), [1.0, 1.0, 8.0]);
                let p = d.pred.join("case1.nii");
                write(&p, &reference(), [1.0, 1.0, 8.0]);
                let bytes = fs::read(&p).unwrap();
                fs::write(&p, &bytes[..bytes.len() - 50]).unwrap();
            },
            &["case case1", "case1.nii", "truncated"],
        ),
        (
            "two files for one case",
            |d| {
                write(&d.gt.join("case1_gd.nii.gz"), &reference(), [1.0, 1.0, 8.0]);
                write(&d.pred.join("case1.nii.gz"), &reference(), [1.0, 1.0, 8.0]);
                write(
                    &d.pred.join("case1_pred.nii"),
                    &reference(),
                    [1.0, 1.0, 8.0],
                );
            },
            &["two prediction files for case case1"],
        ),
        (
            "empty prediction directory",
            |_| {},
            &["no prediction label volumes"],
        ),
    ];
    for (what, setup, fragments) in table {
        let d = dirs();
        gt(&d);
        setup(&d);
        let (out_json, out_csv) = (d.root.join("e.json"), d.root.join("e.csv"));
        let run = eval(&d, &["--json", s(&out_json), "--csv", s(&out_csv)]);
        eprintln!("{what}: {}", run.stderr.trim());
        run.assert_user_error(fragments);
        assert!(
            !out_json.exists() && !out_csv.exists(),
            "{what}: output left behind"
        );
        let leftovers: Vec<_> = fs::read_dir(&d.root)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".awsnet-tmp"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "{what}: temp files left: {leftovers:?}"
        );
    }
}

#[test]
fn a_flat_myops_folder_serves_as_reference() {
    let d = dirs();
    let run = awsnet(&[
        "phantom",
        "--out",
        s(&d.gt),
        "--cases",
        "2",
        "--size",
        "48",
        "48",
        "--slices",
        "2",
        "2",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for entry in fs::read_dir(&d.gt).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix("_gd.nii.gz") {
            fs::copy(d.gt.join(&name), d.pred.join(format!("{id}_seg.nii.gz"))).unwrap();
        }
    }
    let eval_targets = |targets: &str| eval(&d, &["--targets", targets]);
    let run = eval_targets("myo");
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_stdout_has(&["2 cases", "myo", "1.000 ± 0.000"]);
    eval_targets("scar,rv").assert_user_error(&["unknown target \"rv\""]);
    eval_targets("scar,scar").assert_user_error(&["scar is listed twice"]);
}
