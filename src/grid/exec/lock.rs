//! One driver per run directory: `RUN/lock` holds the pid and host of the process running it
//! (a local run, or a Slurm submission while it queues).
//!
//! A second `awsnet run`, `resume` or submission on the same directory is refused while that
//! process lives. The lock is taken by hard-linking a file into place, which is atomic on NFS
//! and Lustre too, so no file locks are relied on across nodes. A lock left by a dead process
//! of this host is taken over; one held by another host is refused with its host named, since
//! its process cannot be checked from here.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Held while this process drives the run; released on drop.
pub struct RunLock {
    path: PathBuf,
}

impl RunLock {
    pub fn acquire(run: &Path) -> Result<RunLock> {
        let path = run.join("lock");
        // The lock appears with its pid already in it (written aside, then hard-linked into
        // place, which fails if a lock exists): no reader ever sees an empty lock.
        let ours = run.join(format!(".lock.{}", std::process::id()));
        let mut file = std::fs::File::create(&ours).map_err(|e| Error::write(&ours, e))?;
        writeln!(file, "{} {}", std::process::id(), host()).map_err(|e| Error::write(&ours, e))?;
        drop(file);
        let taken = Self::link(run, &path, &ours);
        let _ = std::fs::remove_file(&ours);
        taken
    }

    fn link(run: &Path, path: &Path, ours: &Path) -> Result<RunLock> {
        let path = path.to_path_buf();
        for _ in 0..2 {
            match std::fs::hard_link(ours, &path) {
                Ok(()) => return Ok(RunLock { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if let Some(other) = holder_host(&path).filter(|h| *h != host()) {
                        return Err(Error::invalid(
                            "--run",
                            format!(
                                "{} is being run from host {other} (process {}; its lock: {}); \
                                 if that process is gone, remove the lock",
                                run.display(),
                                holder(&path).map_or("?".into(), |p| p.to_string()),
                                path.display()
                            ),
                        ));
                    }
                    let holder = holder(&path);
                    if let Some(pid) = holder.filter(|&pid| alive(pid)) {
                        return Err(Error::invalid(
                            "--run",
                            format!(
                                "{} is being run by process {pid} (its lock: {}); wait for it, \
                                 `awsnet cancel` it, or choose another run directory",
                                run.display(),
                                path.display()
                            ),
                        ));
                    }
                    // The holder died without releasing the lock. Remove it only if it still
                    // names that holder, so a lock another driver just took survives.
                    if super::lock::holder(&path) == holder {
                        std::fs::remove_file(&path).map_err(|e| Error::write(&path, e))?;
                    }
                }
                Err(e) => return Err(Error::write(&path, e)),
            }
        }
        Err(Error::Internal(format!(
            "could not take {}",
            path.display()
        )))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The pid a lock file names.
pub fn holder(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The host a lock file names (locks of older versions name none).
fn holder_host(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.split_whitespace().nth(1).map(str::to_string)
}

/// This machine's name.
fn host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if ok && end > 0 {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "unknown-host".into()
    }
}

/// Whether process `pid` exists (signal 0 checks without sending anything).
pub fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it only asks whether the pid exists.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_driver_is_refused_and_a_dead_ones_lock_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(tmp.path()).unwrap();
        let err = RunLock::acquire(tmp.path()).err().unwrap();
        assert!(err.to_string().contains("is being run by process"), "{err}");
        drop(first);
        assert!(!tmp.path().join("lock").exists());
        // A pid that cannot exist: the lock is stale.
        std::fs::write(tmp.path().join("lock"), "2147483646\n").unwrap();
        let taken = RunLock::acquire(tmp.path()).unwrap();
        assert_eq!(
            holder(&tmp.path().join("lock")),
            Some(std::process::id() as i32)
        );
        drop(taken);
        // Held from another node: its pid means nothing here, so it is not taken over.
        std::fs::write(tmp.path().join("lock"), "1 login-node-7\n").unwrap();
        let err = RunLock::acquire(tmp.path()).err().unwrap().to_string();
        assert!(err.contains("from host login-node-7"), "{err}");
    }
}
