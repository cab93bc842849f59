//! Paper-style tables from evaluation and statistics results, as Markdown, CSV or LaTeX.
//!
//! Two shapes, after the AWSnet paper:
//! - **mean ± std** (its Tables 1 and 4): one row per method, columns grouped by target
//!   (Scar, Scar + Edema, …), one column per metric (Dice ↑, JC ↑, HD (mm) ↓, ASD (mm) ↓). Cells
//!   come from the `mean` and `std` of `awsnet eval` JSON; overlap metrics get 3 decimals,
//!   distances 2.
//! - **p-values** (its Tables 2 and 5): one row per comparison, columns grouped the same way,
//!   cells `p<0.001`, `p<0.05` or `p=0.42` as the paper prints them (or every p to 3 significant
//!   digits). When every comparison has the same first method, rows are named by the second
//!   (Table 5: "U-Net", "nnU-Net" against ours); otherwise "A vs. B" (Table 2).
//!
//! Rendering never computes a metric: values missing from the input print as "–".

use serde_json::Value;

use crate::data::labels::Target;
use crate::error::{Error, Result};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Markdown,
    Csv,
    Latex,
}

/// A table with one level of column groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Header of the row-label column.
    pub corner: String,
    /// Column groups: a name and the columns under it.
    pub groups: Vec<(String, Vec<String>)>,
    /// Row label and one cell per column, groups concatenated.
    pub rows: Vec<(String, Vec<String>)>,
}

/// A method's evaluation, by display name.
pub struct MethodEval<'a> {
    pub name: String,
    /// The JSON document `awsnet eval` writes.
    pub eval: &'a Value,
}

/// The paper's column title for a metric.
pub fn metric_title(metric: &str) -> String {
    match metric {
        "dice" => "Dice ↑".into(),
        "jaccard" => "JC ↑".into(),
        "hd" => "HD (mm) ↓".into(),
        "hd95" => "HD95 (mm) ↓".into(),
        "assd" => "ASD (mm) ↓".into(),
        other => other.into(),
    }
}

/// The paper's group title for a target.
pub fn target_title(target: Target) -> &'static str {
    match target {
        Target::Scar => "Scar",
        Target::ScarEdema => "Scar + Edema",
        Target::Myo => "Myocardium",
        Target::Lv => "LV",
        Target::LvRegion => "LV region",
    }
}

fn decimals(metric: &str) -> usize {
    if matches!(metric, "dice" | "jaccard") {
        3
    } else {
        2
    }
}

/// Methods × (targets × metrics), each cell "mean±std".
pub fn mean_std_table(
    methods: &[MethodEval<'_>],
    targets: &[Target],
    metrics: &[&str],
) -> Result<Table> {
    let groups = targets
        .iter()
        .map(|&t| {
            let cols = metrics.iter().map(|m| metric_title(m)).collect();
            (target_title(t).to_string(), cols)
        })
        .collect();
    let mut rows = Vec::new();
    for method in methods {
        if method.eval.get("mean").is_none() {
            return Err(Error::invalid(
                "--method",
                format!("{}: not an `awsnet eval` result (no \"mean\")", method.name),
            ));
        }
        let mut cells = Vec::new();
        for &target in targets {
            for &metric in metrics {
                let get = |stat: &str| {
                    method.eval[stat][target.name()][metric]
                        .as_f64()
                        .filter(|v| v.is_finite())
                };
                let d = decimals(metric);
                cells.push(match (get("mean"), get("std")) {
                    (Some(m), Some(s)) => format!("{m:.d$}±{s:.d$}"),
                    (Some(m), None) => format!("{m:.d$}"),
                    _ => "–".into(),
                });
            }
        }
        rows.push((method.name.clone(), cells));
    }
    Ok(Table {
        corner: "Method".into(),
        groups,
        rows,
    })
}

/// Which p-value of a comparison a p-value table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PValue {
    /// Paired t-test (the paper's tables).
    T,
    /// Paired t-test, Holm-corrected across the family.
    THolm,
    Wilcoxon,
    WilcoxonHolm,
}

impl PValue {
    fn field(self) -> &'static str {
        match self {
            PValue::T => "p_t",
            PValue::THolm => "p_t_holm",
            PValue::Wilcoxon => "p_wilcoxon",
            PValue::WilcoxonHolm => "p_wilcoxon_holm",
        }
    }
}

/// A p-value as the paper prints it: thresholds below 0.05, two decimals above.
pub fn paper_p(p: f64) -> String {
    if p < 0.001 {
        "p<0.001".into()
    } else if p < 0.05 {
        "p<0.05".into()
    } else {
        format!("p={p:.2}")
    }
}

/// Split `scar_edema_hd` into its target and metric.
fn split_metric(name: &str) -> Option<(Target, &str)> {
    // Longest target names first, so `scar_edema_…` is not read as `scar` + `edema_…`.
    let mut targets = Target::ALL;
    targets.sort_by_key(|t| std::cmp::Reverse(t.name().len()));
    targets.into_iter().find_map(|t| {
        name.strip_prefix(t.name())
            .and_then(|rest| rest.strip_prefix('_'))
            .map(|metric| (t, metric))
    })
}

/// Comparisons × metrics of p-values, from `awsnet stats` comparison objects.
pub fn p_value_table(comparisons: &[Value], which: PValue, exact: bool) -> Result<Table> {
    let field = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
    let mut columns: Vec<(Target, String)> = Vec::new();
    let mut rows: Vec<(String, String)> = Vec::new();
    for c in comparisons {
        let (Some(a), Some(b), Some(metric)) = (field(c, "a"), field(c, "b"), field(c, "metric"))
        else {
            return Err(Error::invalid(
                "--stats",
                "a comparison lacks \"a\", \"b\" or \"metric\": not `awsnet stats` output",
            ));
        };
        let (target, m) = split_metric(&metric).ok_or_else(|| {
            Error::invalid(
                "--stats",
                format!("metric {metric} does not start with a target name"),
            )
        })?;
        if !columns.iter().any(|(t, x)| *t == target && x == m) {
            columns.push((target, m.to_string()));
        }
        if !rows.contains(&(a.clone(), b.clone())) {
            rows.push((a, b));
        }
    }
    // Group columns by target, in first-seen target order.
    let mut groups: Vec<(Target, Vec<String>)> = Vec::new();
    for (t, m) in &columns {
        match groups.iter_mut().find(|(g, _)| g == t) {
            Some((_, ms)) => ms.push(m.clone()),
            None => groups.push((*t, vec![m.clone()])),
        }
    }
    let same_a = rows.iter().all(|(a, _)| *a == rows[0].0);
    let corner = if same_a && !rows.is_empty() {
        format!("vs. {}", rows[0].0)
    } else {
        "Comparison".into()
    };
    let mut out_rows = Vec::new();
    for (a, b) in &rows {
        let mut cells = Vec::new();
        for (t, metrics) in &groups {
            for m in metrics {
                let name = format!("{}_{m}", t.name());
                let p = comparisons
                    .iter()
                    .find(|c| {
                        field(c, "a").as_deref() == Some(a)
                            && field(c, "b").as_deref() == Some(b)
                            && field(c, "metric").as_deref() == Some(&name)
                    })
                    .and_then(|c| c.get(which.field()))
                    .and_then(Value::as_f64);
                cells.push(match p {
                    Some(p) if exact => format!("p={}", significant(p, 3)),
                    Some(p) => paper_p(p),
                    None => "–".into(),
                });
            }
        }
        let label = if same_a {
            b.clone()
        } else {
            format!("{a} vs. {b}")
        };
        out_rows.push((label, cells));
    }
    Ok(Table {
        corner,
        groups: groups
            .into_iter()
            .map(|(t, ms)| {
                let titles = ms.iter().map(|m| short_metric_title(m)).collect();
                (target_title(t).to_string(), titles)
            })
            .collect(),
        rows: out_rows,
    })
}

/// p-value tables name metrics without units or arrows, as the paper does.
fn short_metric_title(metric: &str) -> String {
    match metric {
        "dice" => "Dice".into(),
        "jaccard" => "JC".into(),
        "hd" => "HD".into(),
        "hd95" => "HD95".into(),
        "assd" => "ASD".into(),
        other => other.into(),
    }
}

fn significant(p: f64, digits: i32) -> String {
    if p == 0.0 {
        return "0".into();
    }
    let magnitude = p.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    format!("{p:.decimals$}")
}

/// Render `table` in `format`.
pub fn render(table: &Table, format: Format) -> String {
    match format {
        Format::Markdown => markdown(table),
        Format::Csv => csv(table),
        Format::Latex => latex(table),
    }
}

fn flat_headers(table: &Table) -> Vec<String> {
    table
        .groups
        .iter()
        .flat_map(|(g, cols)| cols.iter().map(move |c| format!("{g} {c}")))
        .collect()
}

fn markdown(table: &Table) -> String {
    let escape = |s: &str| s.replace('|', "\\|");
    let headers = flat_headers(table);
    let mut out = format!("| {} |", escape(&table.corner));
    for h in &headers {
        out.push_str(&format!(" {} |", escape(h)));
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(headers.len()));
    out.push('\n');
    for (label, cells) in &table.rows {
        out.push_str(&format!("| {} |", escape(label)));
        for c in cells {
            out.push_str(&format!(" {} |", escape(c)));
        }
        out.push('\n');
    }
    out
}

fn csv(table: &Table) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec![table.corner.clone()];
    header.extend(flat_headers(table));
    // Writing to a Vec cannot fail.
    let _ = w.write_record(&header);
    for (label, cells) in &table.rows {
        let mut row = vec![label.clone()];
        row.extend(cells.iter().cloned());
        let _ = w.write_record(&row);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn latex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(ch);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '±' => out.push_str("$\\pm$"),
            '↑' => out.push_str("$\\uparrow$"),
            '↓' => out.push_str("$\\downarrow$"),
            '<' => out.push_str("$<$"),
            '>' => out.push_str("$>$"),
            '–' => out.push_str("--"),
            _ => out.push(ch),
        }
    }
    out
}

/// A booktabs `tabular`: group titles spanning their columns over the metric titles.
fn latex(table: &Table) -> String {
    let ncols: usize = table.groups.iter().map(|(_, c)| c.len()).sum();
    let mut out = format!("\\begin{{tabular}}{{l{}}}\n\\toprule\n", "c".repeat(ncols));
    let mut group_line = String::new();
    let mut rules = String::new();
    let mut col = 2;
    for (g, cols) in &table.groups {
        group_line.push_str(&format!(
            " & \\multicolumn{{{}}}{{c}}{{{}}}",
            cols.len(),
            latex_escape(g)
        ));
        rules.push_str(&format!(
            "\\cmidrule(lr){{{}-{}}}",
            col,
            col + cols.len() - 1
        ));
        col += cols.len();
    }
    out.push_str(&format!("{group_line} \\\\\n{rules}\n"));
    out.push_str(&latex_escape(&table.corner));
    for (_, cols) in &table.groups {
        for c in cols {
            out.push_str(&format!(" & {}", latex_escape(c)));
        }
    }
    out.push_str(" \\\\\n\\midrule\n");
    for (label, cells) in &table.rows {
        out.push_str(&latex_escape(label));
        for c in cells {
            out.push_str(&format!(" & {}", latex_escape(c)));
        }
        out.push_str(" \\\\\n");
    }
    out.push_str("\\bottomrule\n\\end{tabular}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn p_values_print_as_the_paper_does() {
        let table = [
            (0.0004, "p<0.001"),
            (0.001, "p<0.05"),
            (0.049, "p<0.05"),
            (0.05, "p=0.05"),
            (0.4249, "p=0.42"),
            (1.0, "p=1.00"),
        ];
        for (p, want) in table {
            assert_eq!(paper_p(p), want, "{p}");
        }
        assert_eq!(significant(0.0012345, 3), "0.00123");
        assert_eq!(significant(0.5, 3), "0.500");
    }

    #[test]
    fn metric_names_split_at_the_longest_target() {
        assert_eq!(
            split_metric("scar_edema_hd"),
            Some((Target::ScarEdema, "hd"))
        );
        assert_eq!(split_metric("scar_dice"), Some((Target::Scar, "dice")));
        assert_eq!(
            split_metric("lv_region_assd"),
            Some((Target::LvRegion, "assd"))
        );
        assert_eq!(split_metric("extra"), None);
    }

    fn eval_doc(dice: f64, hd: Option<f64>) -> Value {
        json!({
            "mean": {"scar": {"dice": dice, "hd": hd}},
            "std": {"scar": {"dice": 0.25, "hd": hd.map(|_| 1.5)}},
        })
    }

    #[test]
    fn mean_std_table_in_three_formats() {
        let (a, b) = (eval_doc(0.6364, Some(19.2449)), eval_doc(0.5, None));
        let methods = [
            MethodEval {
                name: "PAM+DAS".into(),
                eval: &a,
            },
            MethodEval {
                name: "Base_1".into(),
                eval: &b,
            },
        ];
        let t = mean_std_table(&methods, &[Target::Scar], &["dice", "hd"]).unwrap();
        assert_eq!(
            render(&t, Format::Markdown),
            "| Method | Scar Dice ↑ | Scar HD (mm) ↓ |\n|---|---:|---:|\n\
             | PAM+DAS | 0.636±0.250 | 19.24±1.50 |\n| Base_1 | 0.500±0.250 | – |\n"
        );
        assert_eq!(
            render(&t, Format::Csv),
            "Method,Scar Dice ↑,Scar HD (mm) ↓\nPAM+DAS,0.636±0.250,19.24±1.50\nBase_1,0.500±0.250,–\n"
        );
        let latex = render(&t, Format::Latex);
        assert!(latex.contains("\\multicolumn{2}{c}{Scar}"), "{latex}");
        assert!(
            latex.contains("Base\\_1 & 0.500$\\pm$0.250 & -- \\\\"),
            "{latex}"
        );
        let not_eval = json!({"cases": []});
        let bad = [MethodEval {
            name: "x".into(),
            eval: &not_eval,
        }];
        assert!(mean_std_table(&bad, &[Target::Scar], &["dice"]).is_err());
    }

    #[test]
    fn p_value_rows_name_the_comparison() {
        let c = |a: &str, b: &str, metric: &str, p: f64| json!({"a": a, "b": b, "metric": metric, "p_t": p, "p_t_holm": (p * 2.0).min(1.0)});
        // Table 5 shape: one method against several.
        let same_a = [
            c("Ours", "U-Net", "scar_dice", 0.01),
            c("Ours", "U-Net", "scar_edema_hd", 0.0002),
            c("Ours", "nnU-Net", "scar_dice", 0.11),
        ];
        let t = p_value_table(&same_a, PValue::T, false).unwrap();
        assert_eq!(t.corner, "vs. Ours");
        assert_eq!(
            t.rows,
            vec![
                (
                    "U-Net".to_string(),
                    vec!["p<0.05".to_string(), "p<0.001".to_string()]
                ),
                (
                    "nnU-Net".to_string(),
                    vec!["p=0.11".to_string(), "–".to_string()]
                ),
            ]
        );
        let holm = p_value_table(&same_a, PValue::THolm, true).unwrap();
        assert_eq!(holm.rows[1].1[0], "p=0.220");
        // Table 2 shape: different pairs.
        let pairs = [
            c("PAM", "Base", "scar_dice", 0.42),
            c("DAS", "Base", "scar_dice", 0.03),
        ];
        let t = p_value_table(&pairs, PValue::T, false).unwrap();
        assert_eq!(t.rows[0].0, "PAM vs. Base");
        assert_eq!(
            t.groups,
            vec![("Scar".to_string(), vec!["Dice".to_string()])]
        );
    }
}
