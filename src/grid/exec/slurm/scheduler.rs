//! The scheduler seam: the four things the Slurm executor asks of Slurm, as a trait, and the
//! implementation that runs Slurm's commands (`sbatch`, `squeue`, `sacct`, `scancel`,
//! `scontrol`) through `std::process`.
//!
//! State is read in batches: one `squeue` per poll for the whole run (by job name), plus one
//! `sacct` for jobs `squeue` has forgotten (it keeps finished jobs for `MinJobAge` only) where
//! the cluster keeps accounting. Never one call per task.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// What the executor needs from a scheduler.
pub trait Scheduler {
    /// Queue `script` (an sbatch script) with the dependency expression `dependency`; the job id.
    fn submit(&self, script: &Path, dependency: Option<&str>) -> Result<String>;
    /// Every job named `name`, array elements one per row, finished ones included while the
    /// scheduler remembers them (`MinJobAge`).
    fn queue(&self, name: &str) -> Result<Vec<QueueRow>>;
    /// What accounting remembers of `jobs` (by id): nothing where the cluster keeps none.
    fn accounting(&self, jobs: &[String]) -> Vec<QueueRow>;
    /// Cancel every job named `name`.
    fn cancel(&self, name: &str) -> Result<()>;
    /// The largest array index plus one (`MaxArraySize`).
    fn max_array_size(&self) -> Result<usize>;
}

/// One job or array element as the scheduler reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRow {
    /// `123` for a job, `123_4` for element 4 of array job 123.
    pub id: String,
    pub state: SlurmState,
    /// Why a pending job waits (`Dependency`, `Priority`, `DependencyNeverSatisfied`, …).
    pub reason: String,
}

/// Slurm's job states, as the executor groups them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlurmState {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
    Timeout,
    OutOfMemory,
    NodeFail,
    Preempted,
    /// A state the executor does not act on by name (e.g. SUSPENDED), kept for display.
    Other(String),
}

impl SlurmState {
    pub fn parse(text: &str) -> SlurmState {
        // sacct writes "CANCELLED by 1000".
        let word = text.split_whitespace().next().unwrap_or("");
        match word {
            "PENDING" | "CONFIGURING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED"
            | "RESV_DEL_HOLD" => SlurmState::Pending,
            "RUNNING" | "COMPLETING" | "STAGE_OUT" | "SIGNALING" | "RESIZING" => {
                SlurmState::Running
            }
            "COMPLETED" => SlurmState::Completed,
            "FAILED" | "BOOT_FAIL" | "DEADLINE" => SlurmState::Failed,
            "CANCELLED" | "REVOKED" => SlurmState::Cancelled,
            "TIMEOUT" => SlurmState::Timeout,
            "OUT_OF_MEMORY" => SlurmState::OutOfMemory,
            "NODE_FAIL" => SlurmState::NodeFail,
            "PREEMPTED" => SlurmState::Preempted,
            other => SlurmState::Other(other.to_string()),
        }
    }

    /// Whether the job may still run (queued, running, or about to be requeued).
    pub fn active(&self) -> bool {
        matches!(
            self,
            SlurmState::Pending | SlurmState::Running | SlurmState::Other(_)
        )
    }

    /// How `awsnet status` names it.
    pub fn name(&self) -> &str {
        match self {
            SlurmState::Pending => "pending",
            SlurmState::Running => "running",
            SlurmState::Completed => "completed",
            SlurmState::Failed => "failed",
            SlurmState::Cancelled => "cancelled",
            SlurmState::Timeout => "timeout",
            SlurmState::OutOfMemory => "out_of_memory",
            SlurmState::NodeFail => "node_fail",
            SlurmState::Preempted => "preempted",
            SlurmState::Other(s) => s,
        }
    }
}

impl QueueRow {
    /// Whether the job waits for something that can no longer happen (a parent failed).
    pub fn never_runs(&self) -> bool {
        self.state == SlurmState::Pending && self.reason == "DependencyNeverSatisfied"
    }
}

/// Parse `squeue -h -r -o '%i|%T|%r'` (or `sacct -n -P -X -o JobID,State`) output.
pub fn parse_rows(text: &str) -> Vec<QueueRow> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.trim().split('|');
            let id = fields.next()?.trim();
            let state = fields.next()?.trim();
            if id.is_empty() || id.contains('[') {
                // sacct's "123_[4-7]" for array elements not started yet: squeue has them.
                return None;
            }
            Some(QueueRow {
                id: id.to_string(),
                state: SlurmState::parse(state),
                reason: fields.next().unwrap_or("").trim().to_string(),
            })
        })
        .collect()
}

/// Slurm's commands, found on PATH.
#[derive(Default)]
pub struct SlurmCli {
    calls: AtomicUsize,
}

impl SlurmCli {
    /// How many Slurm commands this has run (for the figures in `awsnet status --json`).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<String> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let command = format!("{program} {}", args.join(" "));
        let output = Command::new(program).args(args).output().map_err(|e| {
            let problem = if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{program} is not on PATH: run on a Slurm login node, or use `--backend local`"
                )
            } else {
                e.to_string()
            };
            Error::Scheduler {
                command: command.clone(),
                problem,
                transient: false,
            }
        })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
            return Err(Error::Scheduler {
                transient: is_transient(&stderr),
                command,
                problem: if stderr.is_empty() {
                    format!("exited with {}", output.status)
                } else {
                    stderr
                },
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// Errors Slurm's clients print when the controller is busy or failing over.
fn is_transient(stderr: &str) -> bool {
    [
        "Socket timed out",
        "Unable to contact slurm controller",
        "temporarily unavailable",
        "Resource temporarily",
        "Slurm temporarily unable",
    ]
    .iter()
    .any(|s| stderr.contains(s))
}

impl Scheduler for SlurmCli {
    fn submit(&self, script: &Path, dependency: Option<&str>) -> Result<String> {
        let dependency = dependency.map(|d| format!("--dependency={d}"));
        let script = script.to_string_lossy();
        let mut args = vec!["--parsable"];
        if let Some(d) = &dependency {
            args.push(d);
        }
        args.push(&script);
        let out = self.run("sbatch", &args)?;
        // "123" or "123;cluster".
        let id = out.trim().split(';').next().unwrap_or("").to_string();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::Scheduler {
                command: format!("sbatch {}", args.join(" ")),
                problem: format!("printed {:?}, not a job id", out.trim()),
                transient: false,
            });
        }
        Ok(id)
    }

    fn queue(&self, name: &str) -> Result<Vec<QueueRow>> {
        let text = self.run(
            "squeue",
            &["-h", "-r", "-t", "all", "--name", name, "-o", "%i|%T|%r"],
        )?;
        Ok(parse_rows(&text))
    }

    fn accounting(&self, jobs: &[String]) -> Vec<QueueRow> {
        // Without accounting (no slurmdbd) sacct fails: squeue and the manifests are all
        // there is, and a forgotten job counts as ended.
        let jobs = jobs.join(",");
        self.run(
            "sacct",
            &["-n", "-P", "-X", "-j", &jobs, "-o", "JobID,State"],
        )
        .map(|text| parse_rows(&text))
        .unwrap_or_default()
    }

    fn cancel(&self, name: &str) -> Result<()> {
        self.run("scancel", &["--name", name]).map(drop)
    }

    fn max_array_size(&self) -> Result<usize> {
        let text = self.run("scontrol", &["show", "config"])?;
        Ok(parse_max_array_size(&text))
    }
}

/// `MaxArraySize` from `scontrol show config` (Slurm's default, 1001, if it is not there).
pub fn parse_max_array_size(text: &str) -> usize {
    text.lines()
        .find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "MaxArraySize").then(|| value.trim().parse().ok())?
        })
        .unwrap_or(1001)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_from_squeue_and_sacct() {
        let squeue =
            "12_0|COMPLETED|None\n12_1|PENDING|DependencyNeverSatisfied\n13|RUNNING|None\n";
        let rows = parse_rows(squeue);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].state, SlurmState::Completed);
        assert!(rows[1].never_runs());
        assert_eq!(rows[2].id, "13");
        let sacct = "14_0|CANCELLED by 0\n14_[1-3]|PENDING\n15|OUT_OF_MEMORY\n";
        let rows = parse_rows(sacct);
        assert_eq!(
            rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["14_0", "15"]
        );
        assert_eq!(rows[0].state, SlurmState::Cancelled);
        assert_eq!(rows[1].state, SlurmState::OutOfMemory);
    }

    #[test]
    fn states_map_to_what_the_executor_does() {
        let table = [
            ("PENDING", true),
            ("REQUEUED", true),
            ("RUNNING", true),
            ("COMPLETING", true),
            ("COMPLETED", false),
            ("FAILED", false),
            ("CANCELLED", false),
            ("TIMEOUT", false),
            ("OUT_OF_MEMORY", false),
            ("NODE_FAIL", false),
            ("PREEMPTED", false),
            ("SUSPENDED", true),
        ];
        for (text, active) in table {
            assert_eq!(SlurmState::parse(text).active(), active, "{text}");
        }
    }

    #[test]
    fn max_array_size_is_read_from_the_config() {
        let text = "MaxArraySize            = 40001\nMaxJobCount = 10000\n";
        assert_eq!(parse_max_array_size(text), 40001);
        assert_eq!(parse_max_array_size("nothing"), 1001);
    }
}
