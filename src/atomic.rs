//! Crash-safe file output.
//!
//! Readers must never see a half-written file: a crash, a full disk or a Slurm preemption in the
//! middle of a write leaves either the old file or none. Every output goes to a temporary name in
//! the destination directory, is fsynced, and is renamed over the final name (rename is atomic
//! within one filesystem); the directory is fsynced so the rename itself survives a crash.
//!
//! [`StagedDir`] extends this to a set of files that should appear together or not at all (the
//! four volumes of a case, a whole phantom dataset): files are written into a hidden staging
//! directory and moved into place only by [`StagedDir::commit`]; dropping it uncommitted removes
//! everything it wrote.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary sibling of `path` that keeps its file name as a suffix, so that writers which pick
/// a format from the extension (`.nii.gz` → gzip) still see it.
fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".awsnet-tmp-{}-{n}-{name}", std::process::id()))
}

/// Write `path` atomically: `write` fills a temporary file, which is then fsynced and renamed.
pub fn write_with<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&Path) -> io::Result<()>,
{
    let tmp = temp_sibling(path);
    let result = write(&tmp)
        .and_then(|()| File::open(&tmp)?.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::write(path, e));
    }
    sync_parent(path)
}

/// Write `bytes` to `path` atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |tmp| {
        let mut f = File::create(tmp)?;
        f.write_all(bytes)?;
        f.flush()
    })
}

/// Fsync the directory holding `path`, making a rename into it durable.
fn sync_parent(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Opening a directory to fsync it is not possible on every platform; where it is not, the
    // rename is still atomic, only its durability across a power loss is weaker.
    if let Ok(d) = File::open(dir) {
        d.sync_all().map_err(|e| Error::write(dir, e))?;
    }
    Ok(())
}

/// A set of output files that appear in `dest` together on [`commit`](Self::commit), or not at all.
pub struct StagedDir {
    dest: PathBuf,
    staging: PathBuf,
    files: Vec<String>,
    committed: bool,
}

impl StagedDir {
    /// Prepare to write into `dest` (created if missing).
    pub fn new(dest: &Path) -> Result<Self> {
        fs::create_dir_all(dest).map_err(|e| Error::write(dest, e))?;
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let staging = dest.join(format!(".awsnet-staging-{}-{n}", std::process::id()));
        fs::create_dir(&staging).map_err(|e| Error::write(&staging, e))?;
        Ok(StagedDir {
            dest: dest.to_path_buf(),
            staging,
            files: Vec::new(),
            committed: false,
        })
    }

    /// Where to write the file that will become `dest/name`; the caller writes it there.
    pub fn file(&mut self, name: &str) -> PathBuf {
        self.files.push(name.to_string());
        self.staging.join(name)
    }

    /// Fsync every staged file, move them all into `dest`, and fsync `dest`.
    pub fn commit(mut self) -> Result<Vec<PathBuf>> {
        for name in &self.files {
            let p = self.staging.join(name);
            File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::write(&p, e))?;
        }
        let mut finals = Vec::with_capacity(self.files.len());
        for name in &self.files {
            let to = self.dest.join(name);
            fs::rename(self.staging.join(name), &to).map_err(|e| Error::write(&to, e))?;
            finals.push(to);
        }
        self.committed = true;
        let _ = fs::remove_dir(&self.staging);
        sync_parent(&self.dest.join("x"))?;
        Ok(finals)
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_bytes_replaces_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_bytes(&p, b"one").unwrap();
        write_bytes(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_bytes(&p, b"old").unwrap();
        let err = write_with(&p, |tmp| {
            fs::write(tmp, b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("a.json"), "{err}");
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn staged_files_appear_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        {
            let mut staged = StagedDir::new(&out).unwrap();
            fs::write(staged.file("x.txt"), b"x").unwrap();
            // dropped without commit
        }
        assert_eq!(fs::read_dir(&out).unwrap().count(), 0);

        let mut staged = StagedDir::new(&out).unwrap();
        fs::write(staged.file("x.txt"), b"x").unwrap();
        fs::write(staged.file("y.txt"), b"y").unwrap();
        let finals = staged.commit().unwrap();
        assert_eq!(finals.len(), 2);
        let mut names: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["x.txt", "y.txt"]);
    }
}
