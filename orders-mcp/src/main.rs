use std::process::ExitCode;

use clap::{Parser, Subcommand};
use orders_mcp::bridge::{self, BridgeArgs};
use orders_mcp::configuration::Settings;
use orders_mcp::startup::Application;
use service_kit::settings::Env;

// Requests allocate many small, short-lived buffers (JSON, headers, futures): mimalloc
// serves them at a fraction of glibc malloc's cost.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The orders MCP server, and a stdio bridge to Entra-protected MCP servers.
#[derive(Parser)]
#[command(name = "orders-mcp", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over Streamable HTTP at /mcp (the default; configured by environment variables).
    Serve,
    /// Serve MCP over stdio, forwarding to a remote Entra-protected MCP server with a bearer token.
    Bridge(Box<BridgeArgs>),
    /// Exit 0 if the local server answers /healthz (container health checks; no shell needed).
    Healthcheck,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck) = cli.command {
        return service_kit::probe::healthcheck("ORDERS_MCP_ADDR", 3001);
    }
    // Logs go to stderr: in bridge mode stdout carries the MCP stream only.
    let _telemetry = service_kit::telemetry::init("orders-mcp");
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Bridge(args) => bridge::run(*args).await,
        Command::Healthcheck => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orders-mcp: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    let app = Application::build(Settings::from_env(Env::from_process())?).await?;
    app.run_until_stopped(service_kit::serve::shutdown_signal()).await?;
    Ok(())
}
