//! `cargo xtask`: the developer and operator entry points.
//!
//! - `cargo xtask up`     build everything and run the whole stack locally (offline)
//! - `cargo xtask test`   formatting, lints, and every test (what CI runs)
//! - `cargo xtask bench`  every benchmark, then one table of results against their targets
//! - `cargo xtask verify` check a running deployment end to end

mod bench;
mod frontend;
mod stack;
mod test;
mod up;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

  up       build the client and run emulator, orders-api, orders-mcp and chat-app locally
  client   build only chat-app's browser bundle ([--release]); the Dockerfile uses it
  test     cargo fmt --check, clippy -D warnings, build the wasm client, run every test
  bench    run every benchmark and print the results against their targets
  verify   check a running deployment end to end:
             --local (default)      the stack of `xtask up` or docker compose
             --azd | --env-file F   the deployment of the current azd environment
             --url URL [--mcp-url URL]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("up") => up::run(&args[1..]),
        Some("test") => test::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("verify") => verify::run(&args[1..]),
        Some("client") => client(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn client(args: &[String]) -> anyhow::Result<()> {
    let release = match args.first().map(String::as_str) {
        None => false,
        Some("--release") => true,
        Some(other) => anyhow::bail!("unknown option {other:?} (only --release)"),
    };
    let site = frontend::build(release)?;
    println!("browser bundle: {}", site.root.display());
    Ok(())
}

/// The workspace root (xtask lives in `scripts/`).
pub fn root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map(PathBuf::from).unwrap_or(manifest_dir)
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
