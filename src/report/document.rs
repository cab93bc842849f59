//! `RUN/results/report.md` and what it links: the paper's tables (Markdown, CSV, LaTeX under
//! `results/tables/`) and figures (PNG and SVG under `results/figures/`).
//!
//! Everything is rendered in memory first and written afterwards, each file atomically and
//! `report.md` last, so a report that fails to render leaves the previous one whole.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::data::{MethodData, Replicates, ReportData, Variant};
use super::figures::boxplot::{Panel as BoxPanel, ScoreBoxes};
use super::figures::lines::{Corner, Panel, Panels, Series, Style};
use super::figures::{overlay, render, Rendered};
use super::orderings;
use super::tables::{mean_std_table, p_value_table, render as render_table, target_title};
use super::tables::{Format, MethodEval, PValue, Table};
use crate::atomic;
use crate::error::{Error, Result};

/// The metrics of the accuracy tables, as the paper's Table 1.
const METRICS: [&str; 4] = ["dice", "jaccard", "hd", "assd"];

/// Files of a report, relative to `results/`, with their bytes.
#[derive(Default)]
struct Files {
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl Files {
    fn add(&mut self, path: impl Into<PathBuf>, bytes: impl Into<Vec<u8>>) {
        self.files.push((path.into(), bytes.into()));
    }

    fn figure(&mut self, name: &str, rendered: Rendered) -> String {
        self.add(format!("figures/{name}.svg"), rendered.svg);
        self.add(format!("figures/{name}.png"), rendered.png);
        format!("figures/{name}.png")
    }

    /// A table in the three formats; its Markdown for the report.
    fn table(&mut self, name: &str, table: &Table) -> String {
        let md = render_table(table, Format::Markdown);
        self.add(format!("tables/{name}.md"), md.clone());
        self.add(
            format!("tables/{name}.csv"),
            render_table(table, Format::Csv),
        );
        self.add(
            format!("tables/{name}.tex"),
            render_table(table, Format::Latex),
        );
        format!(
            "{md}\n<sub>also as [CSV](tables/{name}.csv) and [LaTeX](tables/{name}.tex)</sub>\n"
        )
    }
}

/// Render the report of `data` into `results` (`RUN/results`); the path of `report.md`.
pub fn write_report(data: &ReportData, results: &Path) -> Result<PathBuf> {
    let mut files = Files::default();
    let text = compose(data, &mut files)?;
    for (path, bytes) in &files.files {
        let path = results.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
        }
        atomic::write_bytes(&path, bytes)?;
    }
    let report = results.join("report.md");
    atomic::write_bytes(&report, text.as_bytes())?;
    Ok(report)
}

fn compose(data: &ReportData, files: &mut Files) -> Result<String> {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# {} — results\n\nRun `{}` (seed {}), {} test cases, {} methods. Written by {}.\n",
        data.job,
        data.run,
        data.seed,
        data.test_cases,
        data.methods.len(),
        data.provenance
    );
    if let Some(boxes) = dice_boxes(data) {
        let png = files.figure("dice", render(&boxes)?);
        let _ = writeln!(
            md,
            "![Per-case Dice of each method]({png})\n\n*Dice per test case (points) with \
             quartiles, median and 1.5 IQR whiskers.*\n"
        );
    }
    health(data, &mut md);
    accuracy_tables(data, files, &mut md)?;
    lesion_cases(data, &mut md);
    vote_vs_members(data, &mut md);
    across_seeds(data, &mut md);
    significance(data, files, &mut md)?;
    paper_orderings(data, &mut md);
    against_previous(data, &mut md);
    deployed(data, &mut md);
    compute(data, &mut md);
    if !data.slices.is_empty() {
        files.add("figures/slices.png", overlay::render_png(&data.slices)?);
        let _ = writeln!(
            md,
            "## Test slices\n\n![Test slices: ground truth and each method's contours]\
             (figures/slices.png)\n\n*The test slices with the most scar + edema, LGE \
             windowed per slice; ground truth, then each method's prediction{}.*\n",
            if data.slices[0].agreement.is_empty() {
                ""
            } else {
                ", then each ensemble's agreement with its vote"
            }
        );
    }
    training(data, files, &mut md)?;
    searches(data, files, &mut md)?;
    Ok(md)
}

fn dice_boxes(data: &ReportData) -> Option<ScoreBoxes> {
    let panels: Vec<BoxPanel> = data
        .targets
        .iter()
        .map(|&target| BoxPanel {
            title: target_title(target).to_string(),
            methods: data
                .methods
                .iter()
                .map(|m| (m.name.clone(), per_case(&m.eval, target.name(), "dice")))
                .collect(),
        })
        .collect();
    let any = panels
        .iter()
        .any(|p| p.methods.iter().any(|(_, v)| !v.is_empty()));
    any.then(|| ScoreBoxes {
        y_label: "Dice".into(),
        panels,
    })
}

/// A metric of every case of an `awsnet eval` document (cases without a value: NaN).
fn per_case(eval: &serde_json::Value, target: &str, metric: &str) -> Vec<f64> {
    eval["metric_per_case"]
        .as_array()
        .map(|cases| {
            cases
                .iter()
                .map(|c| c[target][metric].as_f64().unwrap_or(f64::NAN))
                .collect()
        })
        .unwrap_or_default()
}

/// The paper's tables the grid's methods allow: each a subset of the methods.
fn table_groups(methods: &[MethodData]) -> Vec<(&'static str, &'static str, Vec<&MethodData>)> {
    fn weighting(v: &Variant) -> Option<&str> {
        v.weighting.as_deref()
    }
    let comparator = |v: &Variant| {
        matches!(
            weighting(v),
            Some("fixed" | "decay" | "norl" | "genetic" | "gradient")
        )
    };
    let ablation: Vec<&MethodData> = methods
        .iter()
        .filter(|m| m.variant.default_sequences && !comparator(&m.variant))
        .collect();
    let sequences: Vec<&MethodData> = methods
        .iter()
        .filter(|m| {
            let v = &m.variant;
            weighting(v) == Some("das") && !v.ensemble && v.pam && v.deep_supervision && v.dcl
        })
        .collect();
    let comparators: Vec<&MethodData> = methods
        .iter()
        .filter(|m| {
            let v = &m.variant;
            v.default_sequences && !v.ensemble && v.deep_supervision && weighting(v).is_some()
        })
        .collect();
    let mut groups = vec![("ablation", "Ablation (the paper's Table 1)", ablation)];
    if sequences.iter().any(|m| !m.variant.default_sequences) && sequences.len() > 1 {
        groups.push(("sequences", "Input sequences (Table 3)", sequences));
    }
    if comparators.iter().any(|m| comparator(&m.variant)) && comparators.len() > 1 {
        groups.push((
            "weighting",
            "Deep-supervision weighting (Tables 7 and 8)",
            comparators,
        ));
    }
    groups.retain(|(_, _, ms)| !ms.is_empty());
    groups
}

fn accuracy_tables(data: &ReportData, files: &mut Files, md: &mut String) -> Result<()> {
    for (name, title, methods) in table_groups(&data.methods) {
        let evals: Vec<MethodEval<'_>> = methods
            .iter()
            .map(|m| MethodEval {
                name: if name == "sequences" {
                    format!("{} ({})", m.name, m.variant.sequences)
                } else {
                    m.name.clone()
                },
                eval: &m.eval,
            })
            .collect();
        let table = mean_std_table(&evals, &data.targets, &METRICS)?;
        let _ = writeln!(
            md,
            "## {title}\n\nMean ± std over the {} test cases (distances in mm; a case whose \
             prediction or reference is empty has no distance).\n",
            data.test_cases
        );
        let _ = writeln!(md, "{}", files.table(name, &table));
    }
    Ok(())
}

/// Dice over the cases whose reference shows the lesion, and the lesion-free cases' false
/// positives (`eval.json`'s `lesion_cases`, `lesion_free_cases`): a lesion-free case scores 0 or
/// 1 on its own and weighs a whole case in the means above.
fn lesion_cases(data: &ReportData, md: &mut String) {
    let has = |m: &MethodData| m.eval.get("lesion_cases").is_some();
    if !data.methods.iter().any(has) {
        return;
    }
    let _ = writeln!(
        md,
        "## Cases with the lesion\n\nDice mean ± std over the test cases whose reference shows \
         the target (n beside it), and of the cases without it, how many got a false positive \
         (any predicted voxel).\n"
    );
    let mut header = "| method |".to_string();
    let mut rule = "|---|".to_string();
    for target in &data.targets {
        let title = target_title(*target);
        let _ = write!(header, " {title} Dice (n) | {title} false positives |");
        rule.push_str("---:|---:|");
    }
    let _ = writeln!(md, "{header}\n{rule}");
    for m in data.methods.iter().filter(|m| has(m)) {
        let mut row = format!("| {} |", m.name);
        for target in &data.targets {
            let with = &m.eval["lesion_cases"][target.name()];
            let free = &m.eval["lesion_free_cases"][target.name()];
            let dice = match (with["mean"]["dice"].as_f64(), with["std"]["dice"].as_f64()) {
                (Some(mean), Some(sd)) => format!("{mean:.3}±{sd:.3}"),
                _ => "–".into(),
            };
            let fp = free["false_positive"].as_array().map_or(0, Vec::len);
            let _ = write!(
                row,
                " {dice} ({}) | {fp} of {} |",
                with["n"].as_u64().unwrap_or(0),
                free["n"].as_u64().unwrap_or(0)
            );
        }
        let _ = writeln!(md, "{row}");
    }
    md.push('\n');
}

/// Each ensemble's vote beside its members alone, and the paired test against the best one.
fn vote_vs_members(data: &ReportData, md: &mut String) {
    let ensembles: Vec<&MethodData> = data
        .methods
        .iter()
        .filter(|m| !m.vote_vs_members.is_empty())
        .collect();
    if ensembles.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Did voting help?\n\nEach ensemble's vote against its members, each evaluated \
         alone on the same test cases; the difference is vote − the member with the best mean, \
         with its two-sided paired t-test.\n\n| method | metric | members | vote | vote − best \
         member | p |\n|---|---|---|---:|---:|---:|"
    );
    let num = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.3}"));
    for m in ensembles {
        for v in &m.vote_vs_members {
            let members: Vec<String> = v.members.iter().map(|&x| num(x)).collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} (member {}) | {} |",
                m.name,
                v.metric,
                members.join(", "),
                num(v.vote),
                v.mean_diff.map_or("–".into(), |d| format!("{d:+.3}")),
                v.best_member,
                v.p_t.map_or("–".into(), |p| format!("{p:.3}"))
            );
        }
    }
    md.push('\n');
}

/// Each replicate's mean Dice and their spread, for the methods trained from several seeds.
fn across_seeds(data: &ReportData, md: &mut String) {
    let with: Vec<(&MethodData, &Replicates)> = data
        .methods
        .iter()
        .filter_map(|m| m.replicates.as_ref().map(|r| (m, r)))
        .collect();
    let Some((_, first)) = with.first() else {
        return;
    };
    let _ = writeln!(
        md,
        "## Across seeds\n\nEach method was trained from {} seeds ({}); the tables above and \
         the tests below use each test case's metric averaged over them. Here: each seed's mean \
         Dice over the test cases, and the mean ± sample standard deviation of those means — \
         how much a single training run's result depends on its seed.\n",
        first.seeds.len(),
        first
            .seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut header = "| method |".to_string();
    let mut rule = "|---|".to_string();
    for (target, _) in &first.dice {
        let _ = write!(
            header,
            " {} Dice per seed | mean ± sd |",
            target_title(*target)
        );
        rule.push_str("---|---:|");
    }
    let _ = writeln!(md, "{header}\n{rule}");
    for (method, replicates) in &with {
        let mut row = format!("| {} |", method.name);
        for (_, each) in &replicates.dice {
            let listed: Vec<String> = each.iter().map(|d| format!("{d:.3}")).collect();
            let (mean, sd) = crate::eval::replicates::spread(each);
            let sd = sd.map_or("–".into(), |s| format!("{s:.3}"));
            let _ = write!(row, " {} | {mean:.3} ± {sd} |", listed.join(", "));
        }
        let _ = writeln!(md, "{row}");
    }
    md.push('\n');
}

fn significance(data: &ReportData, files: &mut Files, md: &mut String) -> Result<()> {
    if data.comparisons.is_empty() {
        return Ok(());
    }
    let raw = p_value_table(&data.comparisons, PValue::T, true)?;
    let holm = p_value_table(&data.comparisons, PValue::THolm, true)?;
    let rows = raw
        .rows
        .iter()
        .zip(&holm.rows)
        .map(|((label, r), (_, h))| {
            let cells = r
                .iter()
                .zip(h)
                .map(|(r, h)| format!("{r} (Holm {h})"))
                .collect();
            (label.clone(), cells)
        })
        .collect();
    let table = Table { rows, ..raw };
    let n: Vec<u64> = data
        .comparisons
        .iter()
        .filter_map(|c| c["n"].as_u64())
        .collect();
    let n_text = match (n.iter().min(), n.iter().max()) {
        (Some(lo), Some(hi)) if lo == hi => format!("n = {lo} paired cases"),
        (Some(lo), Some(hi)) => format!("n = {lo}–{hi} paired cases"),
        _ => "no paired cases".into(),
    };
    let _ = writeln!(
        md,
        "## Significance (the paper's Tables 2 and 5)\n\nTwo-sided paired t-test per metric, \
         {n_text}; beside each p, the Holm-adjusted p over the whole family of {} \
         comparisons. `–`: undefined (e.g. every difference zero). Wilcoxon signed-rank \
         p-values and bootstrap intervals are in `summary.json`.\n",
        data.comparisons.len()
    );
    let _ = writeln!(md, "{}", files.table("p_values", &table));
    Ok(())
}

/// Which of the paper's orderings (Tables 1 and 8) the grid's paired tests reproduce.
fn paper_orderings(data: &ReportData, md: &mut String) {
    let mut metrics: Vec<String> = Vec::new();
    for c in &data.comparisons {
        if let Some(m) = c["metric"].as_str() {
            if !metrics.iter().any(|have| have == m) {
                metrics.push(m.to_string());
            }
        }
    }
    let found = orderings::check(&data.methods, &data.comparisons, &metrics);
    if found.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## The paper's orderings, here\n\nEach claim of the paper's Table 1 (base < PAM < \
         PAM + DS < PAM + DAS < ensemble) and Table 8 (DAS above every other weighting) whose \
         methods this grid has, against its paired tests: **holds** when the difference is in \
         the paper's direction with Holm-adjusted p < {}, otherwise how it stands. Differences \
         are better − worse in the paper's order (for distances, negative is the paper's \
         direction).\n\n| source | claim | metric | here |\n|---|---|---|---|",
        orderings::ALPHA
    );
    for o in &found {
        let _ = writeln!(
            md,
            "| {} | {} < {} | {} | {} |",
            o.source,
            o.worse,
            o.better,
            o.metric,
            o.verdict.describe()
        );
    }
    md.push('\n');
}

/// Networks that failed to learn, before any table: a mean over a collapsed net reads as a
/// weak method otherwise.
fn health(data: &ReportData, md: &mut String) {
    if data.health.is_empty() {
        let _ = writeln!(
            md,
            "Every deployed network learned: none collapsed to predicting nothing on its \
             validation lesions, none stayed at its first epoch's score.\n"
        );
        return;
    }
    let _ = writeln!(
        md,
        "## ⚠ Networks that did not learn\n\nRead the tables below knowing that these \
         deployed networks failed; the methods they belong to score what a broken net \
         scores, not what the method can do.\n"
    );
    for flag in &data.health {
        let _ = writeln!(md, "- ⚠ {flag}");
    }
    md.push('\n');
}

fn deployed(data: &ReportData, md: &mut String) {
    let _ = writeln!(md, "## What was deployed\n");
    for m in &data.methods {
        for member in &m.members {
            let nets: Vec<String> = member
                .nets
                .iter()
                .map(|n| {
                    let alpha: Vec<String> =
                        n.deployed.alpha.iter().map(|a| format!("{a:.3}")).collect();
                    format!(
                        "{} epoch {}, α = ({})",
                        n.net,
                        n.deployed.epoch,
                        alpha.join(", ")
                    )
                })
                .collect();
            let _ = writeln!(
                md,
                "- **{}** member {}: {}",
                m.name,
                member.member + 1,
                nets.join("; ")
            );
        }
    }
    md.push('\n');
}

fn compute(data: &ReportData, md: &mut String) {
    if data.compute.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Compute beside accuracy\n\nWall and CPU seconds of each method's own tasks, as \
         they recorded them (the shared CASN stages are counted once, as `casn`, and \
         out-of-fold CASNs as `casn_folds`); an auto-weighted epoch trains K children.\n"
    );
    let dice = |m: &MethodData, target: &str| {
        m.eval["mean"][target]["dice"]
            .as_f64()
            .map_or("–".into(), |d| format!("{d:.3}"))
    };
    let mut header = "| method | tasks | wall (s) | CPU (s) |".to_string();
    let mut rule = "|---|---:|---:|---:|".to_string();
    for t in &data.targets {
        let _ = write!(header, " {} Dice |", target_title(*t));
        rule.push_str("---:|");
    }
    let _ = writeln!(md, "{header}\n{rule}");
    for (name, cost) in &data.compute {
        let mut row = format!(
            "| {name} | {} | {:.1} | {:.1} |",
            cost.tasks, cost.wall_seconds, cost.cpu_seconds
        );
        let method = data.methods.iter().find(|m| &m.name == name);
        for t in &data.targets {
            let cell = method.map_or("–".into(), |m| dice(m, t.name()));
            let _ = write!(row, " {cell} |");
        }
        let _ = writeln!(md, "{row}");
    }
    md.push('\n');
}

fn training(data: &ReportData, files: &mut Files, md: &mut String) -> Result<()> {
    let mut wrote = false;
    for m in &data.methods {
        let mut loss = Panel {
            title: "training loss".into(),
            x_label: "epoch".into(),
            y_label: "loss".into(),
            legend: Corner::UpperRight,
            ..Panel::default()
        };
        let mut dice = Panel {
            title: "validation Dice (the score) of the model kept".into(),
            x_label: "epoch".into(),
            y_label: "Dice".into(),
            y_range: Some((0.0, 1.0)),
            ..Panel::default()
        };
        let mut k = 0;
        for member in &m.members {
            for net in &member.nets {
                let label = if m.members.len() > 1 {
                    format!("{} m{}", net.net, member.member + 1)
                } else {
                    net.net.clone()
                };
                let points = |f: fn(&super::data::CurvePoint) -> f64| {
                    net.curve.iter().map(|p| (p.epoch as f64, f(p))).collect()
                };
                for (panel, values) in [
                    (&mut loss, points(|p| p.loss)),
                    (&mut dice, points(|p| p.val_dice)),
                ] {
                    panel.series.push(Series {
                        label: label.clone(),
                        colour: k,
                        style: Style::Marked,
                        points: values,
                    });
                }
                k += 1;
                if let Some(from) = net.auto_from {
                    for panel in [&mut loss, &mut dice] {
                        if panel.marks.is_empty() {
                            panel
                                .marks
                                .push((from as f64 - 0.5, " auto-weighted".into()));
                        }
                    }
                }
            }
        }
        if k == 0
            || m.members
                .iter()
                .all(|mm| mm.nets.iter().all(|n| n.curve.is_empty()))
        {
            continue;
        }
        if !wrote {
            let _ = writeln!(md, "## Training\n");
            wrote = true;
        }
        let chart = Panels {
            title: format!("{}: training", m.name),
            columns: 2,
            panels: vec![loss, dice],
        };
        let png = files.figure(&format!("training-{}", m.name), render(&chart)?);
        let _ = writeln!(md, "![{} training curves]({png})\n", m.name);
    }
    Ok(())
}

fn searches(data: &ReportData, files: &mut Files, md: &mut String) -> Result<()> {
    policies(data, files, md)?;
    let mut wrote = false;
    for m in &data.methods {
        for member in &m.members {
            for net in member.nets.iter().filter(|n| !n.search.is_empty()) {
                if !wrote {
                    let _ = writeln!(
                        md,
                        "## The weight search\n\nPer auto-weighted epoch: α of the chosen \
                         child per head (coarse to fine), the controller's policy π per head \
                         (probability of moving β down, keeping it, moving it up), the \
                         policy's entropy (ln 3 ≈ 1.10 is uniform: a policy that stays there \
                         has learnt nothing), and each child's reward with the baseline.\n"
                    );
                    wrote = true;
                }
                let name = format!("das-{}-m{}-{}", m.name, member.member + 1, net.net);
                let chart = search_panels(
                    format!("{} member {}, {} net", m.name, member.member + 1, net.net),
                    &net.search,
                );
                let png = files.figure(&name, render(&chart)?);
                let _ = writeln!(md, "![{name}]({png})\n");
            }
        }
    }
    Ok(())
}

/// The controllers side by side: π per head over the auto-weighted epochs of each searching
/// method's first member (scar + edema net), so DAS can be told from No-RL's uniform policy.
fn policies(data: &ReportData, files: &mut Files, md: &mut String) -> Result<()> {
    let searched: Vec<(&str, &[crate::das::controller::EpochRecord])> = data
        .methods
        .iter()
        .filter_map(|m| {
            let member = m.members.first()?;
            let net = member.nets.iter().rev().find(|n| !n.search.is_empty())?;
            Some((m.name.as_str(), net.search.as_slice()))
        })
        .collect();
    if searched.len() < 2 {
        return Ok(());
    }
    let heads = crate::das::controller::LAYERS;
    let panels = (0..heads)
        .map(|h| {
            let mut series = Vec::new();
            for (colour, (name, search)) in searched.iter().enumerate() {
                // One legend entry per method: π(down) is marked, π(up) the plain line of the
                // same colour (the caption says so), so the legend stays clear of the curves.
                for a in [0, 2] {
                    series.push(Series {
                        label: if a == 0 {
                            name.to_string()
                        } else {
                            String::new()
                        },
                        colour,
                        style: if a == 0 { Style::Marked } else { Style::Line },
                        points: search
                            .iter()
                            .map(|r| (r.epoch as f64, r.policy[h][a]))
                            .collect(),
                    });
                }
            }
            Panel {
                title: format!("head {} (coarse to fine)", h + 1),
                x_label: "epoch".into(),
                y_label: "π".into(),
                series,
                references: vec![(1.0 / 3.0, "uniform".into())],
                // Probabilities on their whole scale: how far a policy moved is seen against it,
                // and the upper half, which policies near 1/3 leave empty, holds the legend.
                y_range: Some((0.0, 1.0)),
                legend: Corner::UpperRight,
                ..Panel::default()
            }
        })
        .collect();
    let chart = Panels {
        title: "Controller policy per head: probability of moving β down and up".into(),
        columns: 2,
        panels,
    };
    let png = files.figure("policies", render(&chart)?);
    let _ = writeln!(
        md,
        "## The controllers compared\n\n![Policy per head of each searching method]({png})\n\n\
         *π(down) (marked) and π(up) (plain line, same colour) per head over the \
         auto-weighted epochs, for each searching method's first member (its scar + edema network where it has one). No-RL keeps the \
         uniform 1/3; a DAS policy that stays near it has not learnt in this many updates, \
         and its result then comes from choosing the best of K children, as No-RL's does.*\n"
    );
    Ok(())
}

fn search_panels(title: String, search: &[crate::das::controller::EpochRecord]) -> Panels {
    let epochs = || search.iter().map(|r| r.epoch as f64);
    let heads = search.first().map_or(0, |r| r.policy.len());
    let per_head = |f: &dyn Fn(&crate::das::controller::EpochRecord, usize) -> f64| {
        (0..heads)
            .map(|h| Series {
                label: format!("head {}", h + 1),
                colour: h,
                style: Style::Marked,
                points: epochs().zip(search.iter().map(|r| f(r, h))).collect(),
            })
            .collect::<Vec<_>>()
    };
    let alpha_of = |r: &crate::das::controller::EpochRecord, h: usize| {
        r.samples
            .iter()
            .find(|s| s.index == r.chosen)
            .map_or(f64::NAN, |s| s.alpha[h])
    };
    let mut policy = Vec::new();
    for h in 0..heads {
        // One colour per head; the middle ("keep") line unmarked.
        for a in 0..3 {
            policy.push(Series {
                label: if a == 2 {
                    format!("head {} (down, keep, up)", h + 1)
                } else {
                    String::new()
                },
                colour: h,
                style: if a == 1 { Style::Line } else { Style::Marked },
                points: epochs()
                    .zip(search.iter().map(|r| r.policy[h][a]))
                    .collect(),
            });
        }
    }
    let rewards: Vec<(f64, f64)> = search
        .iter()
        .flat_map(|r| r.samples.iter().map(move |s| (r.epoch as f64, s.reward)))
        .collect();
    Panels {
        title,
        columns: 2,
        panels: vec![
            Panel {
                title: "α of the chosen child".into(),
                x_label: "auto-weighted epoch".into(),
                y_label: "α".into(),
                series: per_head(&alpha_of),
                ..Panel::default()
            },
            Panel {
                title: "policy π per head".into(),
                x_label: "auto-weighted epoch".into(),
                y_label: "π".into(),
                series: policy,
                ..Panel::default()
            },
            Panel {
                title: "policy entropy".into(),
                x_label: "auto-weighted epoch".into(),
                y_label: "nats".into(),
                series: per_head(&|r, h| r.entropy[h]),
                references: vec![(3f64.ln(), "uniform (ln 3)".into())],
                ..Panel::default()
            },
            Panel {
                title: "rewards and baseline".into(),
                x_label: "auto-weighted epoch".into(),
                y_label: "reward".into(),
                series: vec![
                    Series {
                        label: "child".into(),
                        colour: 6,
                        style: Style::Points,
                        points: rewards,
                    },
                    Series {
                        label: "baseline".into(),
                        colour: 1,
                        style: Style::Marked,
                        points: epochs().zip(search.iter().map(|r| r.baseline)).collect(),
                    },
                ],
                ..Panel::default()
            },
        ],
    }
}

fn against_previous(data: &ReportData, md: &mut String) {
    let Some(previous) = &data.previous else {
        return;
    };
    let worse: Vec<String> = previous
        .rows
        .iter()
        .filter(|r| r.worse)
        .map(|r| format!("{} {}", r.method, r.metric))
        .collect();
    let verdict = if worse.is_empty() {
        "Nothing is significantly worse.".to_string()
    } else {
        format!("**Worse tonight (p < 0.05): {}.**", worse.join(", "))
    };
    let _ = writeln!(
        md,
        "## Tonight against the previous run

Against run `{}`, on the test cases both          evaluated: mean of each, and the two-sided paired t-test. {verdict}

         | method | metric | n | previous | tonight | p | |\n|---|---|---:|---:|---:|---:|---|",
        &previous.run[..previous.run.len().min(12)]
    );
    let number = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.3}"));
    for r in &previous.rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.method,
            r.metric,
            r.n,
            number(r.before),
            number(r.now),
            number(r.p),
            if r.worse { "⚠ worse" } else { "" }
        );
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(
        name: &str,
        weighting: Option<&str>,
        sequences: Option<&str>,
        ensemble: bool,
    ) -> MethodData {
        MethodData {
            name: name.into(),
            variant: Variant {
                pam: true,
                deep_supervision: weighting.is_some(),
                dcl: true,
                weighting: weighting.map(str::to_string),
                ensemble,
                sequences: sequences.unwrap_or("LGE + T2").into(),
                default_sequences: sequences.is_none(),
            },
            eval: serde_json::Value::Null,
            members: Vec::new(),
            replicates: None,
            vote_vs_members: Vec::new(),
        }
    }

    fn names(group: &[&MethodData]) -> Vec<String> {
        group.iter().map(|m| m.name.clone()).collect()
    }

    #[test]
    fn methods_fall_into_the_paper_tables_they_belong_to() {
        let methods = [
            method("base", None, None, false),
            method("pam_ds", Some("equal"), None, false),
            method("pam_das", Some("das"), None, false),
            method("ensemble", Some("das"), None, true),
            method("norl", Some("norl"), None, false),
            method("lge", Some("das"), Some("LGE"), false),
        ];
        let groups = table_groups(&methods);
        let find = |name: &str| {
            groups
                .iter()
                .find(|(n, _, _)| *n == name)
                .map(|(_, _, ms)| names(ms))
        };
        assert_eq!(
            find("ablation").unwrap(),
            ["base", "pam_ds", "pam_das", "ensemble"]
        );
        assert_eq!(find("sequences").unwrap(), ["pam_das", "lge"]);
        assert_eq!(find("weighting").unwrap(), ["pam_ds", "pam_das", "norl"]);
        // Only Table 1's kind of methods: no sequence or comparator table.
        let groups = table_groups(&methods[..3]);
        assert_eq!(groups.len(), 1);
    }
}
