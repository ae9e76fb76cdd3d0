//! The workspace's binaries for tests that run them as processes.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The services' binaries as `cargo test --workspace` builds them (same features, same profile,
/// same target directory as this test), brought up to date first: a no-op under
/// `cargo xtask test`, a build when this test runs alone.
pub fn workspace_binaries(root: &Path) -> PathBuf {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--workspace", "--no-run", "--quiet"])
        .current_dir(root)
        .status()
        .unwrap();
    assert!(status.success(), "building the workspace failed");
    // This test runs from <target>/<profile>/deps/; the binaries are in <target>/<profile>/.
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}
