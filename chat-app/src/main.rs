//! The chat-app server. Configuration: environment variables (see the README).

use std::process::ExitCode;

use chat_app::configuration::Settings;
use chat_app::startup::Application;
use clap::{Parser, Subcommand};

// Requests allocate many small, short-lived buffers (JSON, HTML, headers, futures): mimalloc
// serves them at a fraction of glibc malloc's cost.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Orders Copilot's web app. Settings come from environment variables (`CHAT_APP_*`,
/// `ENTRA_*`, `MODEL_*`, ...); see the README.
#[derive(Parser)]
#[command(name = "chat-app", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web app (the default).
    Serve,
    /// Exit 0 if the local server answers /healthz (container health checks; no shell needed).
    Healthcheck,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck) = cli.command {
        return service_kit::probe::healthcheck("CHAT_APP_ADDR", 3000);
    }
    let _telemetry = service_kit::telemetry::init("chat-app");
    match serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-app: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    let app = Application::build(Settings::from_env()?).await?;
    app.run_until_stopped(service_kit::serve::shutdown_signal()).await?;
    Ok(())
}
