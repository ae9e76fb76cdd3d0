//! The orders-api binary: settings from the environment, then serve (or `reset`, or `healthcheck`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use orders_api::configuration::Settings;
use orders_api::database::Database;
use orders_api::seed;
use orders_api::startup::Application;
use service_kit::settings::Env;

// Requests allocate many small, short-lived buffers (JSON, headers, futures): mimalloc
// serves them at a fraction of glibc malloc's cost.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// orders-api: the Orders Copilot orders REST API (axum + SQLite).
#[derive(Parser)]
#[command(name = "orders-api", version, after_help = SETTINGS)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (ORDERS_API_ADDR, default 127.0.0.1:3002); the default.
    Serve,
    /// Delete every order in ORDERS_API_DATABASE, seed the demo orders again, and exit.
    #[command(long_flag = "reset")]
    Reset,
    /// Exit 0 if the local service answers /healthz (container health checks).
    Healthcheck,
}

const SETTINGS: &str = "\
Settings come from environment variables; see orders-api/README.md. The main ones:
    ORDERS_API_ADDR, ORDERS_API_DATABASE, ORDERS_API_PUBLIC_URL,
    ORDERS_API_ALLOW_PASSTHROUGH_AUDIENCE, ENTRA_AUTHORITY, IDENTITY_MANIFEST, LOG_FORMAT, RUST_LOG";

#[tokio::main]
async fn main() -> ExitCode {
    let command = Cli::parse().command.unwrap_or(Command::Serve);
    if let Command::Healthcheck = command {
        return service_kit::probe::healthcheck("ORDERS_API_ADDR", 3002);
    }
    let _telemetry = service_kit::telemetry::init("orders-api");
    let settings = match Settings::from_env(Env::from_process()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("orders-api: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match command {
        Command::Serve => serve(settings).await,
        Command::Reset => reset(settings).await,
        Command::Healthcheck => Ok(()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("orders-api: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    let app = Application::build(settings).await.map_err(|e| format!("{e:#}"))?;
    app.run_until_stopped(service_kit::serve::shutdown_signal()).await.map_err(|e| format!("server error: {e}"))
}

async fn reset(settings: Settings) -> Result<(), String> {
    let db = Database::open(&settings.database).await.map_err(|e| e.to_string())?;
    let outcome = seed::reset(&db, &settings.seed_users).await;
    db.close().await;
    let seeded = outcome.map_err(|e| format!("cannot reset {}: {e}", settings.database.display()))?;
    println!("orders-api: reset {}: {seeded}", settings.database.display());
    Ok(())
}
