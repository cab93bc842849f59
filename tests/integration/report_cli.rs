//! `awsnet report`: the report a finished grid writes (and `awsnet report RUN` writes again) —
//! the paper's tables in three formats, the figures as PNG and SVG, what each member deployed —
//! and a clear refusal for a run that has no results yet.

use std::fs;
use std::path::Path;

use crate::common::awsnet;

fn png_size(path: &Path) -> (u32, u32) {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (reader.info().width, reader.info().height)
}

/// What the grid test's run (base and pam_das, one member, 2 test cases) must hold.
pub fn check_report(run: &Path) {
    let results = run.join("results");
    let report = fs::read_to_string(results.join("report.md")).expect("the grid wrote its report");
    for fragment in [
        "## Ablation (the paper's Table 1)",
        "Mean ± std over the 2 test cases",
        "| pam_das |",
        "paired t-test per metric, n = 2 paired cases",
        "(Holm ",
        "## What was deployed",
        "- **pam_das** member 1: scar epoch 3, α = (",
        "- **base** member 1: scar epoch",
        "## Compute beside accuracy",
        "![Per-case Dice of each method](figures/dice.png)",
        "(figures/slices.png)",
        "(figures/training-pam_das.png)",
        "(figures/das-pam_das-m1-scar.png)",
        "## The paper's orderings, here",
        "| Table 1 | base < pam_das | scar_dice |",
    ] {
        assert!(report.contains(fragment), "{fragment:?} not in\n{report}");
    }
    for table in ["ablation", "p_values"] {
        for ext in ["md", "csv", "tex"] {
            let path = results.join(format!("tables/{table}.{ext}"));
            assert!(path.exists(), "{}", path.display());
        }
    }
    let tex = fs::read_to_string(results.join("tables/ablation.tex")).unwrap();
    assert!(
        tex.contains("\\begin{tabular}") && tex.contains("pam\\_das"),
        "{tex}"
    );
    // Every figure the report links is a PNG a viewer opens, with an SVG beside the charts.
    for name in [
        "dice",
        "training-base",
        "training-pam_das",
        "das-pam_das-m1-scar",
    ] {
        let (w, h) = png_size(&results.join(format!("figures/{name}.png")));
        assert!(w >= 400 && h >= 300, "{name}: {w}×{h}");
        let svg = fs::read_to_string(results.join(format!("figures/{name}.svg"))).unwrap();
        assert!(svg.starts_with("<svg"), "{name}.svg");
    }
    let (w, h) = png_size(&results.join("figures/slices.png"));
    assert!(w > 600 && h > 200, "slices: {w}×{h}");

    // Rendered again from the same run: the same bytes.
    let before = fs::read(results.join("figures/dice.png")).unwrap();
    let again = awsnet(&["report", run.to_str().unwrap()]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    again.assert_stdout_has(&["report.md"]);
    assert_eq!(
        fs::read_to_string(results.join("report.md")).unwrap(),
        report
    );
    assert_eq!(fs::read(results.join("figures/dice.png")).unwrap(), before);
}

#[test]
fn a_run_without_results_is_refused_naming_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = awsnet(&["report", tmp.path().to_str().unwrap()]);
    out.assert_user_error(&["plan.json"]);
    // No report was started.
    assert!(!tmp.path().join("results").exists());
}
