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

/// A hidden temporary sibling of `path` with the same extension (`.nii.gz` kept whole), so that
/// writers which choose a format from the name still see the right one, and nothing else in the
/// name can confuse them.
fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let suffix = if name.ends_with(".nii.gz") {
        ".nii.gz".to_string()
    } else {
        path.extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default()
    };
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".awsnet-tmp-{}-{n}{suffix}", std::process::id()))
}

/// A file written and fsynced under a temporary name, waiting to be renamed into place by
/// [`commit`](Self::commit). Dropping it uncommitted removes the temporary file.
pub struct PreparedFile {
    tmp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl PreparedFile {
    /// Write `dest`'s future content: `write` fills a temporary file, which is then fsynced.
    pub fn prepare<F>(dest: &Path, write: F) -> Result<Self>
    where
        F: FnOnce(&Path) -> io::Result<()>,
    {
        let prepared = PreparedFile {
            tmp: temp_sibling(dest),
            dest: dest.to_path_buf(),
            committed: false,
        };
        write(&prepared.tmp)
            .and_then(|()| File::open(&prepared.tmp)?.sync_all())
            .map_err(|e| Error::write(dest, e))?;
        Ok(prepared)
    }

    /// Rename the file into place and make the rename durable.
    pub fn commit(mut self) -> Result<()> {
        fs::rename(&self.tmp, &self.dest).map_err(|e| Error::write(&self.dest, e))?;
        self.committed = true;
        fsync_dir(parent_dir(&self.dest))
    }
}

impl Drop for PreparedFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Write `path` atomically: `write` fills a temporary file, which is then fsynced and renamed.
pub fn write_with<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&Path) -> io::Result<()>,
{
    PreparedFile::prepare(path, write)?.commit()
}

/// Write `bytes` to `path` atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |tmp| {
        let mut f = File::create(tmp)?;
        f.write_all(bytes)?;
        f.flush()
    })
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Fsync a directory, making renames into it durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
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
    /// `dest` did not exist before: remove it again if nothing is committed.
    created_dest: bool,
    committed: bool,
}

impl StagedDir {
    /// Prepare to write into `dest` (created if missing).
    pub fn new(dest: &Path) -> Result<Self> {
        let created_dest = !dest.exists();
        fs::create_dir_all(dest).map_err(|e| Error::write(dest, e))?;
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let staging = dest.join(format!(".awsnet-staging-{}-{n}", std::process::id()));
        fs::create_dir(&staging).map_err(|e| Error::write(&staging, e))?;
        Ok(StagedDir {
            dest: dest.to_path_buf(),
            staging,
            files: Vec::new(),
            created_dest,
            committed: false,
        })
    }

    /// Where to write the file that will become `dest/name`; the caller writes it there.
    pub fn file(&mut self, name: &str) -> PathBuf {
        self.files.push(name.to_string());
        self.staging.join(name)
    }

    /// Fsync every staged file, move them all into `dest`, and fsync `dest`. If a move fails,
    /// the files already moved are removed again, so `dest` never holds part of the set.
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
            if let Err(e) = fs::rename(self.staging.join(name), &to) {
                for done in &finals {
                    let _ = fs::remove_file(done);
                }
                return Err(Error::write(&to, e));
            }
            finals.push(to);
        }
        self.committed = true;
        let _ = fs::remove_dir(&self.staging);
        fsync_dir(&self.dest)?;
        Ok(finals)
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.staging);
            if self.created_dest {
                // Only succeeds if empty: never removes anything that was there before.
                let _ = fs::remove_dir(&self.dest);
            }
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
    fn temp_names_keep_the_extension_and_nothing_else() {
        let t = temp_sibling(Path::new("/d/case.v2.NII.GZ"));
        let name = t.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(".awsnet-tmp-") && name.ends_with(".nii.gz"),
            "{name}"
        );
        assert_eq!(name.matches('.').count(), 3, "{name}");
        let t = temp_sibling(Path::new("summary.json"));
        assert!(t.to_string_lossy().ends_with(".json"));
    }

    #[test]
    fn an_uncommitted_prepared_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        let prepared = PreparedFile::prepare(&p, |tmp| fs::write(tmp, b"png")).unwrap();
        assert!(!p.exists());
        drop(prepared);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        PreparedFile::prepare(&p, |tmp| fs::write(tmp, b"png"))
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"png");
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
        assert!(
            !out.exists(),
            "a directory created for nothing is removed again"
        );

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
