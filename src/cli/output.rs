//! Writing results: stdout that tolerates a closed pipe, and result files that appear whole or
//! not at all.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use awsnet::atomic::PreparedFile;

/// Write to stdout. A closed pipe (`awsnet cases d | head -1`) is the reader's choice, not a
/// failure, and must not panic the way `println!` would.
pub fn print_out(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("serialising JSON")?;
    print_out(&format!("{text}\n"))
}

/// Pretty JSON with a final newline, as every JSON file awsnet writes.
pub fn json_bytes<T: serde::Serialize>(value: &T) -> anyhow::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value).context("serialising JSON")?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Write several files so that either all of them appear or none: each is prepared under a
/// temporary name first, and only when every one is on disk are they renamed into place.
pub fn write_files(files: &[(PathBuf, Vec<u8>)]) -> anyhow::Result<()> {
    let prepared = files
        .iter()
        .map(|(path, bytes)| prepare(path, bytes))
        .collect::<awsnet::Result<Vec<_>>>()?;
    for p in prepared {
        p.commit()?;
    }
    Ok(())
}

fn prepare(path: &Path, bytes: &[u8]) -> awsnet::Result<PreparedFile> {
    PreparedFile::prepare(path, |tmp| std::fs::write(tmp, bytes))
}
