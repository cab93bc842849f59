//! Rendering a job's sbatch script from the templates in `sbatch/` (built in) or the copies a
//! job spec names (`backend.templates`).

use std::path::{Path, PathBuf};

use super::batch::Job;
use crate::error::{Error, Result};
use crate::grid::backend::SlurmSettings;
use crate::grid::plan::Plan;

const ARRAY: &str = include_str!("../../../../sbatch/array.sbatch");
const REDUCER: &str = include_str!("../../../../sbatch/reducer.sbatch");

/// The two templates.
#[derive(Debug, Clone)]
pub struct Templates {
    array: (PathBuf, String),
    reducer: (PathBuf, String),
}

impl Templates {
    /// The templates in `dir`, or the built-in ones.
    pub fn load(dir: Option<&Path>) -> Result<Templates> {
        let Some(dir) = dir else {
            return Ok(Templates {
                array: ("sbatch/array.sbatch".into(), ARRAY.into()),
                reducer: ("sbatch/reducer.sbatch".into(), REDUCER.into()),
            });
        };
        let read = |name: &str| -> Result<(PathBuf, String)> {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, e))?;
            Ok((path, text))
        };
        Ok(Templates {
            array: read("array.sbatch")?,
            reducer: read("reducer.sbatch")?,
        })
    }
}

/// What every script of a run shares.
pub struct Context<'a> {
    pub plan: &'a Plan,
    pub settings: &'a SlurmSettings,
    /// Absolute.
    pub run_dir: &'a Path,
    pub awsnet: &'a Path,
}

/// How a job is named in file names and `status`: its stage's label, or `<method>/held`
/// (`<method>/seed<r>/held` with replicates) for a search's held workers.
pub fn job_label(plan: &Plan, job: &Job) -> String {
    let stage = &plan.stages[job.stage];
    match (&stage.work, job.held) {
        (crate::grid::plan::Work::Sample { .. }, true) => stage.held_label(),
        _ => stage.label.clone(),
    }
}

/// `awsnet-<run id>`: every job of a run carries it, so one `squeue --name` sees the run.
pub fn job_name(plan: &Plan) -> String {
    format!("awsnet-{}", &plan.run[..plan.run.len().min(12)])
}

/// A stage label as a file name: `das/sample[3]` → `das_sample_3`.
pub fn file_stem(label: &str) -> String {
    label
        .replace(['/', '[', ']'], "_")
        .trim_end_matches('_')
        .to_string()
}

/// The script of `job`, named `<stage>[-<offset>].sbatch` under `RUN/sbatch/`.
pub fn script_path(run_dir: &Path, label: &str, offset: usize) -> PathBuf {
    let stem = file_stem(label);
    let name = if offset == 0 {
        format!("{stem}.sbatch")
    } else {
        format!("{stem}-{offset}.sbatch")
    };
    run_dir.join("sbatch").join(name)
}

/// The log of task `index` of a job whose array starts at task `offset` (the local executor's
/// name where the offset is 0).
pub fn log_path(run_dir: &Path, label: &str, offset: usize, index: usize) -> PathBuf {
    run_dir
        .join("logs")
        .join(log_name(label, offset, &index.to_string()))
}

fn log_name(label: &str, offset: usize, element: &str) -> String {
    if offset == 0 {
        format!("{}-{element}.log", file_stem(label))
    } else {
        format!("{}-{offset}+{element}.log", file_stem(label))
    }
}

/// Render `job`'s script.
pub fn render(templates: &Templates, context: &Context<'_>, job: &Job) -> Result<String> {
    let stage = &context.plan.stages[job.stage];
    let label = job_label(context.plan, job);
    let settings = context.settings;
    let (path, template) = if job.reducer {
        &templates.reducer
    } else {
        &templates.array
    };
    let logs = context.run_dir.join("logs");
    let output = if job.reducer {
        logs.join(log_name(&label, 0, "0"))
    } else {
        logs.join(log_name(&label, job.offset, "%a"))
    };
    let mut array = ranges(job.indices.iter().map(|i| i - job.offset));
    if let Some(throttle) = settings.throttle {
        array += &format!("%{throttle}");
    }
    let device = if settings.uses_gpus() && !job.reducer {
        // Slurm sets CUDA_VISIBLE_DEVICES to the GPU it assigned: it is device 0 in the task.
        "cuda"
    } else {
        "cpu"
    };
    let held = if job.held {
        format!(" --held --stale-seconds {}", settings.held_stale_seconds)
    } else {
        String::new()
    };
    let setup = if settings.setup.is_empty() {
        "# (no setup lines: backend.setup)".to_string()
    } else {
        settings.setup.join("\n")
    };
    let values = [
        ("job_name", job_name(context.plan)),
        ("label", label.clone()),
        ("stage", stage.id.clone()),
        (
            "run_id",
            context.plan.run[..context.plan.run.len().min(12)].to_string(),
        ),
        ("array", array),
        ("offset", job.offset.to_string()),
        ("output", sbatch_path(&output)?),
        ("signal_seconds", settings.signal_seconds.to_string()),
        ("resources", resources(settings, job.reducer)),
        ("setup", setup),
        ("awsnet", shell_word(&context.awsnet.to_string_lossy())),
        ("run_dir", shell_word(&context.run_dir.to_string_lossy())),
        ("device", device.into()),
        ("held", held),
    ];
    fill(path, template, &values)
}

/// Replace every `{{name}}`; a name not in `values` is refused with the template's path.
fn fill(path: &Path, template: &str, values: &[(&str, String)]) -> Result<String> {
    let mut out = String::with_capacity(template.len() + 512);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| {
            Error::input(path, "a `{{` without its `}}`: placeholders read {{name}}")
        })?;
        let name = after[..end].trim();
        let value = values
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, v)| v)
            .ok_or_else(|| {
                let known: Vec<&str> = values.iter().map(|(k, _)| *k).collect();
                Error::input(
                    path,
                    format!(
                        "unknown placeholder {{{{{name}}}}}; known: {}",
                        known.join(", ")
                    ),
                )
            })?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn resources(settings: &SlurmSettings, reducer: bool) -> String {
    let mut lines = Vec::new();
    let mut add = |option: &str, value: &Option<String>| {
        if let Some(value) = value {
            lines.push(format!("#SBATCH --{option}={value}"));
        }
    };
    add("partition", &settings.partition);
    add("account", &settings.account);
    add("qos", &settings.qos);
    if reducer {
        let r = &settings.reducer;
        lines.push(format!("#SBATCH --cpus-per-task={}", r.cpus));
        lines.push(format!("#SBATCH --mem={}", r.mem));
        lines.push(format!("#SBATCH --time={}", r.time));
    } else {
        if let Some(gres) = &settings.gres {
            lines.push(format!("#SBATCH --gres={gres}"));
        }
        if let Some(gpus) = &settings.gpus {
            lines.push(format!("#SBATCH --gpus={gpus}"));
        }
        lines.push(format!("#SBATCH --cpus-per-task={}", settings.cpus));
        lines.push(format!("#SBATCH --mem={}", settings.mem));
        lines.push(format!("#SBATCH --time={}", settings.time));
    }
    for arg in &settings.sbatch_args {
        lines.push(format!("#SBATCH {arg}"));
    }
    lines.join("\n")
}

/// `0-3,5,7-9` from ascending indices.
pub fn ranges(indices: impl IntoIterator<Item = usize>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut run: Option<(usize, usize)> = None;
    for i in indices {
        run = match run {
            Some((a, b)) if i == b + 1 => Some((a, i)),
            Some((a, b)) => {
                parts.push(range(a, b));
                Some((i, i))
            }
            None => Some((i, i)),
        };
    }
    if let Some((a, b)) = run {
        parts.push(range(a, b));
    }
    parts.join(",")
}

fn range(a: usize, b: usize) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}

/// A path on an `#SBATCH` line, which sbatch splits at white space and never unquotes.
fn sbatch_path(path: &Path) -> Result<String> {
    let text = path.to_string_lossy();
    if text
        .chars()
        .any(|c| c.is_whitespace() || "\"'\\$`".contains(c))
    {
        return Err(Error::invalid(
            "--run",
            format!(
                "{text:?}: Slurm's #SBATCH lines cannot carry white space or quotes in a \
                 path; choose a run directory without them"
            ),
        ));
    }
    Ok(text.into_owned())
}

/// A word for the shell, quoted where it needs to be.
pub fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=,@%".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_indices_compress_to_ranges() {
        let table: [(&[usize], &str); 4] = [
            (&[0], "0"),
            (&[0, 1, 2, 3], "0-3"),
            (&[0, 1, 3, 5, 6, 7], "0-1,3,5-7"),
            (&[], ""),
        ];
        for (indices, text) in table {
            assert_eq!(ranges(indices.iter().copied()), text);
        }
    }

    #[test]
    fn an_unknown_placeholder_is_refused_by_name() {
        let err = fill(
            Path::new("my/array.sbatch"),
            "#SBATCH --x={{job_name}} {{nodes}}",
            &[("job_name", "a".into())],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("my/array.sbatch"), "{err}");
        assert!(err.contains("{{nodes}}"), "{err}");
        assert!(err.contains("known: job_name"), "{err}");
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("/scratch/run-1"), "/scratch/run-1");
        assert_eq!(shell_word("/my runs/it's"), r"'/my runs/it'\''s'");
    }
}
