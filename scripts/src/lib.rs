//! `cargo xtask`: the developer and operator entry points.
//!
//! - `cargo xtask up`     build everything and run the whole stack locally (offline)
//! - `cargo xtask test`   formatting, lints, and every test (what CI runs)
//! - `cargo xtask bench`  every benchmark, then one table of results against their targets
//! - `cargo xtask verify` check a running deployment end to end
//! - `cargo xtask soak`   the stack under load and faults: nothing hangs, nothing is lost
//!
//! A library too, so that tests can start the stack and verify it the way the commands do.

pub mod bench;
pub mod frontend;
pub mod soak;
pub mod stack;
pub mod test;
pub mod up;
pub mod verify;

use std::path::PathBuf;

/// The workspace root (xtask lives in `scripts/`).
pub fn root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map(PathBuf::from).unwrap_or(manifest_dir)
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, else `target/` in the workspace).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Runs a command from the workspace root, echoing it, and fails if it fails.
pub fn run_cmd(program: &str, args: &[&str], env: &[(&str, String)]) -> anyhow::Result<()> {
    println!("\n$ {program} {}", args.join(" "));
    let status = std::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.to_string(), v.clone())))
        .current_dir(root())
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run {program}: {e}"))?;
    if !status.success() {
        anyhow::bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
