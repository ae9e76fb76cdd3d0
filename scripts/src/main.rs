//! The `cargo xtask` command line (see the library for what each command does).

use std::process::ExitCode;

use xtask::{bench, frontend, test, up, verify};

const USAGE: &str = "\
usage: cargo xtask <command>

  up       build the client and run emulator, orders-api, orders-mcp and chat-app locally
  client   build only chat-app's browser bundle ([--release]); the Dockerfile uses it
  test     cargo fmt --check, clippy -D warnings, build the wasm client, run every test
  bench    run every benchmark and print the results against their targets
  verify   check a running deployment end to end:
             --local (default)      the stack of `xtask up` or docker compose
                                    [--url U --mcp-url U --api-url U --authority U: other ports]
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
