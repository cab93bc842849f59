//! The run's content-addressed checkpoint store, `RUN/store/<key>/`.
//!
//! A checkpoint (`train::checkpoint`) is a directory whose `manifest.json` holds the sha256 of
//! each of its other files, so the sha256 of that manifest names the whole checkpoint: it is
//! the checkpoint's key here. Tasks that continue from, or deploy, a checkpoint another task
//! wrote name it `store/<key>`, never by the writer's task directory. An object never changes
//! once stored: a rerun that clears a task's directory (a requeue racing the task's end, a
//! resume of a damaged task) cannot pull a checkpoint from under the tasks that read it, and a
//! record that names an object names its content.
//!
//! Objects are hard links to the writing task's files (a copy where the file system refuses
//! links), so storing one costs a few links, not a copy. Loading a checkpoint verifies every
//! file against its manifest (`train::checkpoint`); the task that stored an object lists it in
//! its own `done.json`, and [`verify`] is part of deciding whether that task is done.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::atomic;
use crate::error::{Error, Result};

/// The store's directory under the run directory.
pub const STORE: &str = "store";
/// A checkpoint's manifest: the sha256 of each of its other files.
const MANIFEST: &str = "manifest.json";
/// Present in every checkpoint directory beside the manifest (the network and training state).
const DESCRIPTION: &str = "checkpoint.json";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

#[derive(Deserialize)]
struct CheckpointManifest {
    sha256: BTreeMap<String, String>,
}

/// Whether `dir` holds a checkpoint (its manifest and description).
pub fn is_checkpoint(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file() && dir.join(DESCRIPTION).is_file()
}

/// The path of object `key`, relative to the run directory.
pub fn object_path(key: &str) -> PathBuf {
    Path::new(STORE).join(key)
}

/// Store the checkpoint in `dir` under the run directory `root`; its key.
///
/// Storing the same checkpoint again is a no-op, and repairs the object if it was damaged
/// since. Only the small manifest is hashed here: the files it names are verified whenever the
/// checkpoint is loaded, and by the writing task's manifest (the object shares their inodes).
pub fn keep(root: &Path, dir: &Path) -> Result<String> {
    let (key, manifest) = read_manifest(dir)?;
    let store = root.join(STORE);
    let object = store.join(&key);
    if object.exists() {
        match verify(root, &key, Some(dir)) {
            Ok(()) => return Ok(key),
            Err(problem) => tracing::warn!("{}: {problem}; storing it again", object.display()),
        }
    }
    fs::create_dir_all(&store).map_err(|e| Error::write(&store, e))?;
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let staging = store.join(format!(".tmp-{key}-{}-{n}", std::process::id()));
    let built = build(&staging, dir, &manifest).and_then(|()| publish(&staging, &object));
    if built.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    built?;
    atomic::fsync_dir(&store)?;
    Ok(key)
}

/// Whether object `key` is intact: its manifest hashes to the key, and each file it names to
/// the manifest's hash. A file that is the same inode as its namesake in `source` (files known
/// good: the writing task's verified outputs) is taken as verified without hashing it again.
pub fn verify(root: &Path, key: &str, source: Option<&Path>) -> std::result::Result<(), String> {
    let object = root.join(STORE).join(key);
    let (actual, manifest) = read_manifest(&object).map_err(|e| e.to_string())?;
    if actual != key {
        return Err(format!("its manifest hashes to {actual}, not to its name"));
    }
    for (name, want) in &manifest.sha256 {
        let path = object.join(name);
        if source.is_some_and(|s| same_file(&path, &s.join(name))) {
            continue;
        }
        let bytes = fs::read(&path).map_err(|e| format!("{name}: {e}"))?;
        if format!("{:x}", Sha256::digest(&bytes)) != *want {
            return Err(format!("{name}: sha256 differs from its manifest"));
        }
    }
    Ok(())
}

fn read_manifest(dir: &Path) -> Result<(String, CheckpointManifest)> {
    let path = dir.join(MANIFEST);
    let bytes = fs::read(&path).map_err(|e| Error::read(&path, e))?;
    let manifest: CheckpointManifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::input(&path, format!("not a checkpoint manifest: {e}")))?;
    if let Some(name) = manifest.sha256.keys().find(|n| !plain_name(n)) {
        return Err(Error::input(
            &path,
            format!("names {name:?}, which is not a file of the checkpoint's directory"),
        ));
    }
    Ok((format!("{:x}", Sha256::digest(&bytes)), manifest))
}

fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\'])
}

/// Link (or copy) the checkpoint's files into `staging`, and make them durable.
fn build(staging: &Path, dir: &Path, manifest: &CheckpointManifest) -> Result<()> {
    fs::create_dir(staging).map_err(|e| Error::write(staging, e))?;
    for name in manifest.sha256.keys().map(String::as_str).chain([MANIFEST]) {
        let (from, to) = (dir.join(name), staging.join(name));
        if fs::hard_link(&from, &to).is_err() {
            // File systems without hard links (some object-store mounts): a copy, fsynced.
            fs::copy(&from, &to).map_err(|e| Error::write(&to, e))?;
            fs::File::open(&to)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::write(&to, e))?;
        }
    }
    atomic::fsync_dir(staging)
}

/// Move `staging` to `object`, replacing a damaged object there; another process that
/// published the same key first wins, and ours is dropped.
fn publish(staging: &Path, object: &Path) -> Result<()> {
    if object.exists() {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let trash = object.with_file_name(format!(".trash-{}-{n}", std::process::id()));
        fs::rename(object, &trash).map_err(|e| Error::write(object, e))?;
        let _ = fs::remove_dir_all(&trash);
    }
    match fs::rename(staging, object) {
        Ok(()) => Ok(()),
        Err(_) if object.is_dir() => {
            let _ = fs::remove_dir_all(staging);
            Ok(())
        }
        Err(e) => Err(Error::write(object, e)),
    }
}

#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &Path, _: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint-shaped directory: two files and a manifest of their hashes.
    fn checkpoint(dir: &Path, weights: &[u8]) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("model.bin"), weights).unwrap();
        fs::write(dir.join(DESCRIPTION), b"{}").unwrap();
        let hash = |b: &[u8]| format!("{:x}", Sha256::digest(b));
        let manifest = serde_json::json!({ "sha256": {
            "model.bin": hash(weights),
            "checkpoint.json": hash(b"{}"),
        }});
        fs::write(dir.join(MANIFEST), manifest.to_string()).unwrap();
    }

    #[test]
    fn a_checkpoint_is_stored_once_under_the_hash_of_its_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        checkpoint(&a, b"weights");
        checkpoint(&b, b"weights");
        assert!(is_checkpoint(&a));
        let key = keep(tmp.path(), &a).unwrap();
        let manifest = fs::read(a.join(MANIFEST)).unwrap();
        assert_eq!(key, format!("{:x}", Sha256::digest(&manifest)));
        assert_eq!(
            keep(tmp.path(), &b).unwrap(),
            key,
            "same content, same object"
        );
        let object = tmp.path().join(object_path(&key));
        assert_eq!(fs::read(object.join("model.bin")).unwrap(), b"weights");
        let entries = fs::read_dir(tmp.path().join(STORE)).unwrap().count();
        assert_eq!(entries, 1, "one object, no staging left behind");
        assert_eq!(verify(tmp.path(), &key, Some(&a)), Ok(()));

        checkpoint(&b, b"other weights");
        assert_ne!(keep(tmp.path(), &b).unwrap(), key);
    }

    #[test]
    fn an_object_outlives_the_directory_it_came_from() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("stages/x/0/child");
        checkpoint(&dir, b"weights");
        let key = keep(tmp.path(), &dir).unwrap();
        fs::remove_dir_all(tmp.path().join("stages")).unwrap();
        assert_eq!(verify(tmp.path(), &key, None), Ok(()));
    }

    #[test]
    fn a_damaged_object_is_found_and_repaired_by_storing_it_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("child");
        checkpoint(&dir, b"weights");
        let key = keep(tmp.path(), &dir).unwrap();
        let stored = tmp.path().join(object_path(&key)).join("model.bin");
        // Replaced (a new inode), so the writer's own file is still good.
        fs::remove_file(&stored).unwrap();
        fs::write(&stored, b"wrong").unwrap();
        assert_eq!(
            verify(tmp.path(), &key, Some(&dir)),
            Err("model.bin: sha256 differs from its manifest".into())
        );
        assert_eq!(keep(tmp.path(), &dir).unwrap(), key);
        assert_eq!(verify(tmp.path(), &key, None), Ok(()));
        assert_eq!(fs::read(&stored).unwrap(), b"weights");
    }

    #[test]
    fn a_manifest_naming_a_path_outside_its_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("child");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(MANIFEST), r#"{"sha256": {"../x": "00"}}"#).unwrap();
        let err = keep(tmp.path(), &dir).unwrap_err().to_string();
        assert!(
            err.contains("manifest.json") && err.contains("../x"),
            "{err}"
        );
        assert!(
            !tmp.path().join(STORE).exists()
                || fs::read_dir(tmp.path().join(STORE)).unwrap().count() == 0
        );
    }
}
