//! One driver per run directory: `RUN/lock` holds the pid, host and start time of the process
//! running it (a local run, or a Slurm submission while it queues).
//!
//! A second `awsnet run`, `resume` or submission on the same directory is refused while that
//! process lives. The lock is taken by hard-linking a file into place, which is atomic on NFS
//! and Lustre too, so no file locks are relied on across nodes. A lock left by a dead process
//! of this host is taken over; one held by another host is refused with its host named, since
//! its process cannot be checked from here. The start time (where `/proc` has it) tells the
//! holder from a later process that was given the same pid after the holder died, so neither a
//! stale lock nor `awsnet cancel` mistakes an unrelated process for the driver.

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
        let pid = std::process::id() as i32;
        let start = start_time(pid).map_or(String::new(), |t| format!(" {t}"));
        writeln!(file, "{pid} {}{start}", host()).map_err(|e| Error::write(&ours, e))?;
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
                    let holder = Holder::read(&path);
                    if let Some(other) = holder.as_ref().and_then(Holder::elsewhere) {
                        return Err(Error::invalid(
                            "--run",
                            format!(
                                "{} is being run from host {other} (process {}; its lock: {}); \
                                 if that process is gone, remove the lock",
                                run.display(),
                                holder.as_ref().map_or(0, |h| h.pid),
                                path.display()
                            ),
                        ));
                    }
                    if let Some(h) = holder.as_ref().filter(|h| h.running()) {
                        return Err(Error::invalid(
                            "--run",
                            format!(
                                "{} is being run by process {} (its lock: {}); wait for it, \
                                 `awsnet cancel` it, or choose another run directory",
                                run.display(),
                                h.pid,
                                path.display()
                            ),
                        ));
                    }
                    // The holder died without releasing the lock. Remove it only if it still
                    // names that holder, so a lock another driver just took survives.
                    if Holder::read(&path) == holder {
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

/// The process a lock file names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: i32,
    /// Locks of older versions name no host.
    pub host: Option<String>,
    /// The process's start time (clock ticks after boot, `/proc/<pid>/stat`), where known.
    pub start: Option<u64>,
}

impl Holder {
    /// The holder `path` names, if it reads as a lock.
    pub fn read(path: &Path) -> Option<Holder> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut fields = text.split_whitespace();
        Some(Holder {
            pid: fields.next()?.parse().ok()?,
            host: fields.next().map(str::to_string),
            start: fields.next().and_then(|t| t.parse().ok()),
        })
    }

    /// The other host it runs on, if not this one.
    pub fn elsewhere(&self) -> Option<&str> {
        self.host.as_deref().filter(|h| *h != host())
    }

    /// Whether the holder is still running on this host: its pid lives, has not exited
    /// (a killed driver stays a zombie until its parent reaps it) and, where both start times
    /// are known, is the same process (not a later one given the same pid).
    pub fn running(&self) -> bool {
        self.elsewhere().is_none()
            && alive(self.pid)
            && !exited(self.pid)
            && match (self.start, start_time(self.pid)) {
                (Some(recorded), Some(now)) => recorded == now,
                _ => true,
            }
    }
}

/// Whether process `pid` has exited and waits only to be reaped (state `Z` or `X` in
/// `/proc/<pid>/stat`).
fn exited(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|f| matches!(f.first().map(String::as_str), Some("Z" | "X")))
}

/// The fields of `/proc/<pid>/stat` after the command name (from field 3, the state).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    Some(after_name.split_whitespace().map(str::to_string).collect())
}

/// The start time of process `pid` in clock ticks after boot (field 22 of `/proc/<pid>/stat`),
/// where the system has `/proc`.
fn start_time(pid: i32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
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
fn alive(pid: i32) -> bool {
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
        let ours = Holder::read(&tmp.path().join("lock")).unwrap();
        assert_eq!(ours.pid, std::process::id() as i32);
        assert!(ours.running());
        drop(taken);
        // Our pid, but another start time: a process that reused the pid of a dead driver.
        if let Some(start) = ours.start {
            let reused = format!("{} {} {}\n", ours.pid, host(), start + 1);
            std::fs::write(tmp.path().join("lock"), reused).unwrap();
            assert!(!Holder::read(&tmp.path().join("lock")).unwrap().running());
            drop(RunLock::acquire(tmp.path()).unwrap());
        }
        // Held from another node: its pid means nothing here, so it is not taken over.
        std::fs::write(tmp.path().join("lock"), "1 login-node-7\n").unwrap();
        let err = RunLock::acquire(tmp.path()).err().unwrap().to_string();
        assert!(err.contains("from host login-node-7"), "{err}");
    }

    #[test]
    fn a_killed_driver_not_yet_reaped_holds_nothing() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let holder = Holder {
            pid,
            host: Some(host()),
            start: start_time(pid),
        };
        assert!(holder.running());
        child.kill().unwrap();
        // Killed, not waited for: a zombie, whose pid still answers kill(pid, 0).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !exited(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(alive(pid) && !holder.running());
        child.wait().unwrap();
    }
}
