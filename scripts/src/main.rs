//! The `cargo xtask` command line (see the library for what each command does).

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use xtask::{bench, frontend, soak, test, up, verify};

/// Developer and operator entry points.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Build the client and run emulator, orders-api, orders-mcp and chat-app locally.
    Up {
        /// Release builds.
        #[arg(long)]
        release: bool,
        /// The emulator serves HTTPS from a local CA (for MSAL, azure-identity and other
        /// clients that accept only an https authority).
        #[arg(long)]
        tls: bool,
        /// Export every service's spans to this OTLP/HTTP endpoint (a trace viewer such as
        /// Jaeger: http://localhost:4318); sets OTEL_EXPORTER_OTLP_ENDPOINT for each.
        #[arg(long, value_name = "URL")]
        otel: Option<url::Url>,
    },
    /// Build only chat-app's browser bundle; the Dockerfile uses it.
    Client {
        /// A release build.
        #[arg(long)]
        release: bool,
    },
    /// cargo fmt --check, clippy -D warnings, build the wasm client, run every test.
    Test,
    /// Run every benchmark and print the results against their targets.
    Bench,
    /// Check a running deployment end to end.
    Verify(Box<verify::Options>),
    /// Run the stack under load and faults for a bounded time; fail when a bound breaks.
    Soak(soak::Options),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Some(Command::Up { release, tls, otel }) => up::run(release, tls, otel.as_ref()),
        Some(Command::Client { release }) => client(release),
        Some(Command::Test) => test::run(),
        Some(Command::Bench) => bench::run(),
        Some(Command::Verify(options)) => verify::run(&options),
        Some(Command::Soak(options)) => soak::run(&options),
        None => Cli::command().print_help().map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn client(release: bool) -> anyhow::Result<()> {
    let site = frontend::build(release)?;
    println!("browser bundle: {}", site.root.display());
    Ok(())
}
