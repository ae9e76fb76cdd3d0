//! `cargo xtask test`: what CI runs, and what a contributor runs before pushing.

use crate::{frontend, run_cmd};

pub fn run() -> anyhow::Result<()> {
    run_cmd("cargo", &["fmt", "--all", "--", "--check"], &[])?;
    run_cmd("cargo", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"], &[])?;
    // The browser test needs the hydrate bundle; build it the same way `xtask up` does.
    println!("\n== building the chat-app client (wasm)");
    let site = frontend::build(false)?;
    run_cmd("cargo", &["test", "--workspace", "--no-fail-fast"], &site.env())?;
    // The short soak (about 40 s): the services as `cargo test --workspace` just built them,
    // under load and one of each fault. `cargo xtask soak` runs the full one.
    println!("\n== the short soak");
    crate::soak::soak(&crate::soak::Options::short(), &site.env(), &crate::target_dir().join("debug"))?;
    println!("\nall checks passed");
    Ok(())
}
