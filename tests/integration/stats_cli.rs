//! `awsnet stats` and `awsnet table`: pairing by case, published test values, degenerate inputs,
//! bad files, and the tables built from the results.

use crate::common;
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{awsnet, json};

/// Student's sleep data as two CSV files, B listing the cases in reverse order.
fn sleep_csvs(dir: &Path) -> (PathBuf, PathBuf) {
    let g1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0];
    let g2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4];
    let mut a = String::from("case,extra,other\n");
    for (i, v) in g1.iter().enumerate() {
        a += &format!("p{i},{v},1\n");
    }
    let mut b = String::from("case,extra\n");
    for (i, v) in g2.iter().enumerate().rev() {
        b += &format!("p{i},{v}\n");
    }
    let (pa, pb) = (dir.join("drug1.csv"), dir.join("drug2.csv"));
    fs::write(&pa, a).unwrap();
    fs::write(&pb, b).unwrap();
    (pa, pb)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `awsnet stats --a A --b B --metric METRIC` and `extra`.
fn stats(a: &str, b: &str, metric: &str, extra: &[&str]) -> common::Run {
    let mut args = vec!["stats", "--a", a, "--b", b, "--metric", metric];
    args.extend_from_slice(extra);
    awsnet(&args)
}

#[test]
fn pairs_by_case_and_matches_published_values() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = sleep_csvs(tmp.path());
    let out = tmp.path().join("cmp.json");
    let run = stats(s(&a), s(&b), "extra", &["--json", s(&out)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_stdout_has(&["extra — drug1 vs. drug2 (n = 10)", "paired t"]);
    let c = json(&fs::read_to_string(&out).unwrap());
    assert_eq!(c["n"], 10);
    assert_eq!(
        (c["a"].as_str(), c["b"].as_str()),
        (Some("drug1"), Some("drug2"))
    );
    // R: t.test(extra ~ group, data = sleep, paired = TRUE) → t = -4.0621, df = 9,
    // p-value = 0.002833, mean difference -1.58.
    assert!((c["t"].as_f64().unwrap() + 4.0621).abs() < 5e-5);
    assert_eq!(c["df"], 9.0);
    assert!((c["p_t"].as_f64().unwrap() - 0.002833).abs() < 5e-7);
    assert!((c["mean_diff"].as_f64().unwrap() + 1.58).abs() < 1e-12);
    // SciPy 1.17: wilcoxon(g1, g2) → statistic 0.0, p 0.00390625 (permutation: ties, a zero).
    assert_eq!(c["wilcoxon_w"], 0.0);
    assert_eq!(c["p_wilcoxon"], 0.00390625);
    assert_eq!(c["wilcoxon_method"], "permutation");
    let (lo, hi) = (
        c["ci_low"].as_f64().unwrap(),
        c["ci_high"].as_f64().unwrap(),
    );
    assert!(lo < -1.58 && -1.58 < hi && hi < 0.0, "{lo} {hi}");
    // Seeded: a rerun gives the same bytes.
    let first = fs::read(&out).unwrap();
    let run = stats(s(&a), s(&b), "extra", &["--json", s(&out)]);
    assert_eq!(run.code, 0);
    assert_eq!(first, fs::read(&out).unwrap());
}

#[test]
fn unmatched_cases_fail_unless_intersected() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.csv");
    let b = tmp.path().join("b.csv");
    fs::write(&a, "case,dice\nc1,0.8\nc2,0.7\nc3,0.9\nc4,0.6\n").unwrap();
    fs::write(&b, "case,dice\nc4,0.5\nc2,0.72\nc1,0.6\nc9,0.1\n").unwrap();
    let run = stats(s(&a), s(&b), "dice", &[]);
    run.assert_user_error(&["only in", "c3", "c9", "--intersect"]);

    let out = tmp.path().join("o.json");
    let run = stats(s(&a), s(&b), "dice", &["--intersect", "--json", s(&out)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let c = json(&fs::read_to_string(&out).unwrap());
    assert_eq!(c["n"], 3);
    assert_eq!(c["cases_only_in_a"], serde_json::json!(["c3"]));
    assert_eq!(c["cases_only_in_b"], serde_json::json!(["c9"]));
    // Pairs (0.8, 0.6), (0.7, 0.72), (0.6, 0.5): mean difference 0.28 / 3.
    assert!((c["mean_diff"].as_f64().unwrap() - 0.28 / 3.0).abs() < 1e-12);
}

#[test]
fn degenerate_inputs_give_null_with_a_note() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.csv");
    let one = tmp.path().join("one.csv");
    fs::write(&a, "case,dice\nc1,0.8\nc2,0.7\nc3,0.9\n").unwrap();
    fs::write(&one, "case,dice\nc1,0.8\n").unwrap();
    let table: [(&Path, &Path, &str); 2] = [
        (&a, &a, "all differences are zero"),
        (&one, &one, "at least 2"),
    ];
    for (x, y, note) in table {
        let out = tmp.path().join("o.json");
        let run = stats(s(x), s(y), "dice", &["--json", s(&out)]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let text = fs::read_to_string(&out).unwrap();
        assert!(!text.to_lowercase().contains("nan"), "{text}");
        let c = json(&text);
        for k in ["t", "p_t", "wilcoxon_w", "p_wilcoxon"] {
            assert!(c[k].is_null(), "{k} in {text}");
        }
        assert!(c["note"].as_str().unwrap().contains(note), "{text}");
    }
}

#[test]
fn bad_files_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.csv");
    fs::write(&good, "case,dice\nc1,0.8\nc2,0.7\n").unwrap();
    let files = [
        (
            "nan.csv",
            "case,dice\nc1,NaN\nc2,0.7\n",
            &["nan.csv", "line 2", "not a finite number"][..],
        ),
        (
            "header.csv",
            "id,dice\nc1,0.8\n",
            &["header.csv", "first column must be \"case\""],
        ),
        (
            "nometric.csv",
            "case,hd\nc1,3\n",
            &["nometric.csv", "no column dice", "hd"],
        ),
        (
            "twice.csv",
            "case,dice\nc1,0.8\nc1,0.7\n",
            &["twice.csv", "c1 is listed twice"],
        ),
        (
            "bad.json",
            "{\"metric_per_case\": [",
            &["bad.json", "not valid JSON"],
        ),
        (
            "other.json",
            "{\"cases\": []}",
            &["other.json", "metric_per_case"],
        ),
    ];
    for (name, content, fragments) in files {
        let path = tmp.path().join(name);
        fs::write(&path, content).unwrap();
        let run = stats(s(&path), s(&good), "dice", &[]);
        run.assert_user_error(fragments);
    }
    let missing = tmp.path().join("missing.json");
    let run = stats(s(&missing), s(&good), "dice", &[]);
    run.assert_user_error(&["cannot read", "missing.json"]);
}

/// Two methods evaluated by `awsnet eval`, compared by `awsnet stats` on eval metric names, and
/// rendered by `awsnet table`.
#[test]
fn eval_results_feed_stats_and_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let gt = dir.join("gt");
    let run = awsnet(&[
        "phantom",
        "--out",
        s(&gt),
        "--cases",
        "4",
        "--size",
        "48",
        "48",
        "--slices",
        "2",
        "3",
        "--seed",
        "2",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Method "good" predicts the reference; "bad" is the reference shifted two voxels in x.
    let (good, bad) = (dir.join("good"), dir.join("bad"));
    fs::create_dir_all(&good).unwrap();
    fs::create_dir_all(&bad).unwrap();
    for entry in fs::read_dir(&gt).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with("_gd.nii.gz") {
            fs::copy(gt.join(&name), good.join(&name)).unwrap();
            let v = awsnet::data::nifti_read::read_nifti(&gt.join(&name)).unwrap();
            let labels = awsnet::data::nifti_read::into_volume3(v.data)
                .unwrap()
                .mapv(|x| x as u16);
            let mut shifted = ndarray::Array3::<u16>::zeros(labels.raw_dim());
            shifted
                .slice_mut(ndarray::s![2.., .., ..])
                .assign(&labels.slice(ndarray::s![..-2, .., ..]));
            awsnet::data::nifti_write::write_labels(&bad.join(&name), &shifted, &v.header).unwrap();
        }
    }
    let eval = |pred: &Path, out: &Path| {
        let run = awsnet(&["eval", "--pred", s(pred), "--gt", s(&gt), "--json", s(out)]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    };
    let (e_good, e_bad) = (dir.join("good.json"), dir.join("bad.json"));
    eval(&good, &e_good);
    eval(&bad, &e_bad);

    let cmp = dir.join("cmp.json");
    let a = format!("Ours={}", s(&e_good));
    let b = format!("Shifted={}", s(&e_bad));
    let run = stats(
        &a,
        &b,
        "myo_dice,myo_hd,scar_edema_dice",
        &["--json", s(&cmp)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = json(&fs::read_to_string(&cmp).unwrap());
    let comps = doc["comparisons"].as_array().unwrap();
    assert_eq!(comps.len(), 3);
    assert_eq!(comps[0]["metric"], "myo_dice");
    assert_eq!(comps[0]["mean_a"], 1.0);
    assert!(comps[0]["mean_diff"].as_f64().unwrap() > 0.0);
    // Holm over the family of 3: each adjusted p is at least the raw one.
    for c in comps {
        if let (Some(p), Some(h)) = (c["p_t"].as_f64(), c["p_t_holm"].as_f64()) {
            assert!(h >= p, "{c}");
        }
    }
    let run = stats(s(&e_good), s(&e_bad), "scar_dcie", &[]);
    run.assert_user_error(&["no metric scar_dcie", "scar_dice"]);

    let ours = format!("Ours={}", s(&e_good));
    let shifted = format!("Shifted={}", s(&e_bad));
    let run = awsnet(&["table", "--method", &ours, "--method", &shifted]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_stdout_has(&[
        "| Method | Scar Dice ↑ | Scar JC ↑ | Scar HD (mm) ↓ | Scar ASD (mm) ↓ | Scar + Edema Dice ↑",
        "| Ours | 1.000±0.000 | 1.000±0.000 | 0.00±0.00 | 0.00±0.00 |",
        "| Shifted |",
    ]);
    let run = awsnet(&["table", "--stats", s(&cmp), "--format", "latex"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_stdout_has(&[
        "\\multicolumn{2}{c}{Myocardium} & \\multicolumn{1}{c}{Scar + Edema}",
        "vs. Ours & Dice & HD & Dice",
        "Shifted & ",
    ]);
    let run = awsnet(&["table", "--stats", s(&cmp), "--format", "csv", "--exact-p"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_stdout_has(&[
        "vs. Ours,Myocardium Dice,Myocardium HD,Scar + Edema Dice\nShifted,p=",
    ]);
    let run = awsnet(&["table", "--stats", s(&cmp), "--stats", s(&cmp)]);
    run.assert_user_error(&["Ours vs. Shifted on myo_dice is also in", "cmp.json"]);
}
