//! The crate's error type.
//!
//! Every error a user can cause carries what they need to fix it: the file, the case or the field,
//! and what was wrong. The CLI turns an [`Error`] into an exit code through [`Error::exit_code`],
//! the one place where that mapping lives.

use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit code for a failure the user can fix (bad input, bad arguments).
pub const EXIT_USER: u8 = 2;
/// Exit code for a failure of awsnet or its environment.
pub const EXIT_INTERNAL: u8 = 1;

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
            | Error::InvalidArgument { .. }
            | Error::Read { .. } => EXIT_USER,
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
            Error::Internal(_) => EXIT_INTERNAL,
        }
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
