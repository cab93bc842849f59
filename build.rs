//! Records the git commit awsnet is built from (`AWSNET_COMMIT`), for the provenance a grid's
//! summary.json carries. Outside a git checkout (a crate tarball) it is "unknown".

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=AWSNET_COMMIT={commit}");
    // A new commit moves the branch's ref (or HEAD itself when detached).
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        println!("cargo:rerun-if-changed={path}");
    }
}
