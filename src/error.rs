//! The crate's error type.
//!
//! Every error a user can cause carries what they need to fix it: the file, the case or the field,
//! and what was wrong. The CLI turns an [`Error`] into an exit code through [`Error::exit_code`],
//! the one place where that mapping lives. The codes form a taxonomy an executor can act on:
//!
//! | code | kind | what an executor does |
//! |---|---|---|
//! | 0 | success | |
//! | 1 | internal failure (a bug, a full disk) | report it, with the task's log |
//! | 2 | the user's input or usage | stop: rerunning cannot help until the input is fixed |
//! | 3 | training failed (the loss diverged, no sample of an auto-weighted epoch arrived) | report it; a rerun with the same seed fails the same way |
//! | 4 | stopped on request (SIGTERM, SIGUSR2) at a safe point, its progress saved | run it again: it resumes from the save |
//! | 75 | transient I/O on shared storage (timeout, stale NFS handle, busy), or a Slurm controller that did not answer | retry |

use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit code for a failure the user can fix (bad input, bad arguments).
pub const EXIT_USER: u8 = 2;
/// Exit code for a failure of awsnet or its environment.
pub const EXIT_INTERNAL: u8 = 1;
/// Exit code for training that failed on its own terms (diverged, no sample arrived).
pub const EXIT_TRAINING: u8 = 3;
/// Exit code for work stopped on request at a safe point (`crate::stop`): run it again.
pub const EXIT_STOPPED: u8 = 4;
/// Exit code for a storage failure that may pass on retry (`EX_TEMPFAIL` of sysexits.h).
pub const EXIT_TRANSIENT: u8 = 75;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A NIfTI file that cannot be read or is not what it claims to be.
    #[error("{path}: {problem}", path = path.display())]
    Nifti {
        path: PathBuf,
        problem: NiftiProblem,
    },

    /// A MyoPS case whose files are incomplete or inconsistent.
    #[error("case {case}: {problem}")]
    Case { case: String, problem: String },

    /// A directory that holds no usable input.
    #[error("{path}: {problem}", path = path.display())]
    Dataset { path: PathBuf, problem: String },

    /// A results file (JSON, CSV) whose content is malformed or lacks what was asked for.
    #[error("{path}: {problem}", path = path.display())]
    Input { path: PathBuf, problem: String },

    /// A command-line value or configuration field out of its domain.
    #[error("invalid {field}: {problem}")]
    InvalidArgument { field: String, problem: String },

    // The OS error is part of the message rather than a `source`, so that printing the error
    // chain does not say it twice.
    /// Reading an input the user named failed at the OS level.
    #[error("cannot read {path}: {io}", path = path.display())]
    Read { path: PathBuf, io: std::io::Error },

    /// Writing an output failed (disk full, permissions, storage gone).
    #[error("cannot write {path}: {io}", path = path.display())]
    Write { path: PathBuf, io: std::io::Error },

    /// Training that failed on its own terms: a loss that diverged, an auto-weighted epoch
    /// from which no sample arrived. The same seed fails the same way.
    #[error("training failed: {0}")]
    Training(String),

    /// Stopped on request (SIGTERM, SIGUSR2) at a safe point, after saving.
    #[error("stopped on request: {saved}")]
    Stopped { saved: String },

    /// An error inside one task of a grid, with the stage and index it happened in. The inner
    /// error is part of the message, not a `source`: a chain printer (`{:#}`) would say it twice.
    #[error("stage {stage}, task {index}: {error}")]
    InTask {
        stage: String,
        index: usize,
        error: Box<Error>,
    },

    /// A scheduler command (`sbatch`, `squeue`, …) that failed or refused.
    #[error("`{command}` failed: {problem}")]
    Scheduler {
        command: String,
        problem: String,
        /// The controller was busy or failing over: the same call may succeed later.
        transient: bool,
    },

    /// A broken invariant inside awsnet: a bug, never the user's input.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The process exit code this error maps to: 2 for what the user can fix, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Nifti { .. }
            | Error::Case { .. }
            | Error::Dataset { .. }
            | Error::Input { .. }
            | Error::InvalidArgument { .. } => EXIT_USER,
            Error::Read { io, .. } if is_transient(io) => EXIT_TRANSIENT,
            Error::Read { .. } => EXIT_USER,
            Error::Write { io, .. } if is_transient(io) => EXIT_TRANSIENT,
            // An output path the user named that cannot be a file there is theirs to fix; a
            // full disk or a vanished mount is not.
            Error::Write { io, .. } => match io.kind() {
                std::io::ErrorKind::PermissionDenied
                | std::io::ErrorKind::NotADirectory
                | std::io::ErrorKind::IsADirectory
                | std::io::ErrorKind::AlreadyExists
                | std::io::ErrorKind::DirectoryNotEmpty
                | std::io::ErrorKind::ReadOnlyFilesystem
                | std::io::ErrorKind::InvalidFilename => EXIT_USER,
                _ => EXIT_INTERNAL,
            },
            Error::Training(_) => EXIT_TRAINING,
            Error::Stopped { .. } => EXIT_STOPPED,
            Error::InTask { error, .. } => error.exit_code(),
            Error::Scheduler {
                transient: true, ..
            } => EXIT_TRANSIENT,
            // A refused submission (bad partition, account, limits) is the job spec's to fix.
            Error::Scheduler { .. } => EXIT_USER,
            Error::Internal(_) => EXIT_INTERNAL,
        }
    }

    /// Whether running the same task again may succeed without any change (an executor retries
    /// these).
    pub fn is_transient(&self) -> bool {
        self.exit_code() == EXIT_TRANSIENT
    }

    /// This error, placed in a grid task.
    pub fn in_task(self, stage: impl Into<String>, index: usize) -> Self {
        Error::InTask {
            stage: stage.into(),
            index,
            error: Box::new(self),
        }
    }

    pub(crate) fn training(problem: impl Into<String>) -> Self {
        Error::Training(problem.into())
    }

    pub(crate) fn nifti(path: impl Into<PathBuf>, problem: NiftiProblem) -> Self {
        Error::Nifti {
            path: path.into(),
            problem,
        }
    }

    pub(crate) fn case(case: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Case {
            case: case.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn input(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::Input {
            path: path.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn read(path: impl Into<PathBuf>, io: std::io::Error) -> Self {
        Error::Read {
            path: path.into(),
            io,
        }
    }

    pub(crate) fn write(path: impl Into<PathBuf>, io: std::io::Error) -> Self {
        Error::Write {
            path: path.into(),
            io,
        }
    }
}

/// I/O errors that say "try again" rather than "this cannot work": what network file systems
/// (NFS, Lustre) report while a server fails over or a handle goes stale.
fn is_transient(io: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        io.kind(),
        TimedOut | Interrupted | WouldBlock | ResourceBusy | StaleNetworkFileHandle
    )
}

/// What is wrong with a NIfTI file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NiftiProblem {
    #[error("the file is empty")]
    Empty,
    #[error("truncated header: {got} of 348 bytes present")]
    TruncatedHeader { got: usize },
    #[error("not a NIfTI file (no NIfTI-1 header size or magic found)")]
    NotNifti,
    #[error("NIfTI-2 files are not supported; convert to NIfTI-1 (e.g. `nibabel.Nifti1Image`)")]
    Nifti2Unsupported,
    #[error("Analyze 7.5 files are not supported; convert to NIfTI-1")]
    AnalyzeUnsupported,
    #[error(
        "header-only NIfTI-1 (.hdr/.img pair) is not supported; convert to a single .nii[.gz]"
    )]
    HeaderOnly,
    #[error("corrupt gzip stream: {0}")]
    Gzip(String),
    #[error("header field {field}: {problem}")]
    Header {
        field: &'static str,
        problem: String,
    },
    #[error("datatype {name} (code {code}) is not supported: only integer and float voxels are")]
    UnsupportedDatatype { code: i16, name: String },
    #[error("truncated voxel data: the header claims {expected} bytes of voxels after offset {offset}, the file holds {got}")]
    TruncatedData {
        expected: u64,
        got: u64,
        offset: u64,
    },
    #[error("{0}")]
    Volume(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error as Io, ErrorKind};

    /// The taxonomy executors act on, one row per kind.
    #[test]
    fn exit_codes_by_kind() {
        let cases = [
            (Error::invalid("epochs", "must be at least 1"), EXIT_USER),
            (
                Error::read("a.json", Io::from(ErrorKind::NotFound)),
                EXIT_USER,
            ),
            (
                Error::read("a.json", Io::from(ErrorKind::TimedOut)),
                EXIT_TRANSIENT,
            ),
            (
                Error::write("s/x", Io::from(ErrorKind::StaleNetworkFileHandle)),
                EXIT_TRANSIENT,
            ),
            (
                Error::write("s/x", Io::from(ErrorKind::PermissionDenied)),
                EXIT_USER,
            ),
            (
                Error::write("s/x", Io::from(ErrorKind::StorageFull)),
                EXIT_INTERNAL,
            ),
            (Error::training("loss became NaN"), EXIT_TRAINING),
            (Error::Internal("bug".into()), EXIT_INTERNAL),
            (
                Error::Scheduler {
                    command: "sbatch x".into(),
                    problem: "invalid partition".into(),
                    transient: false,
                },
                EXIT_USER,
            ),
            (
                Error::Scheduler {
                    command: "squeue".into(),
                    problem: "Socket timed out".into(),
                    transient: true,
                },
                EXIT_TRANSIENT,
            ),
            (
                Error::training("no sample").in_task("ab12", 3),
                EXIT_TRAINING,
            ),
            (
                Error::read("p", Io::from(ErrorKind::TimedOut)).in_task("ab12", 0),
                EXIT_TRANSIENT,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.exit_code(), code, "{error}");
            assert_eq!(error.is_transient(), code == EXIT_TRANSIENT, "{error}");
        }
    }

    #[test]
    fn task_context_names_stage_and_index() {
        let e = Error::training("every child diverged").in_task("3f9a", 7);
        assert_eq!(
            e.to_string(),
            "stage 3f9a, task 7: training failed: every child diverged"
        );
    }
}
