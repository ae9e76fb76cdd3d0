//! The chat-app server. Configuration: environment variables (see the README).
//! `chat-app healthcheck` exits 0 if the local server answers `/healthz` (container health
//! checks in images without a shell).

use std::process::ExitCode;

use chat_app::configuration::Settings;
use chat_app::startup::Application;

// Requests allocate many small, short-lived buffers (JSON, HTML, headers, futures): mimalloc
// serves them at a fraction of glibc malloc's cost.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("healthcheck") => return service_kit::probe::healthcheck("CHAT_APP_ADDR", 3000),
        Some(other) => {
            eprintln!(
                "chat-app: unknown argument {other:?} (usage: chat-app [healthcheck]; settings come from the environment)"
            );
            return ExitCode::FAILURE;
        }
    }
    service_kit::telemetry::init();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("chat-app: {e}");
            return ExitCode::FAILURE;
        }
    };
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("chat-app: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = app.run_until_stopped(service_kit::serve::shutdown_signal()).await {
        eprintln!("chat-app: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
