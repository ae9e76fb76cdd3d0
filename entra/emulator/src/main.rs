//! `entra-emulator`: run the offline identity provider, ask a running one to rotate keys, or run
//! the managed-identity broker (real tokens from the developer's sign-in, for containers).

use std::process::ExitCode;

use entra_auth::acquire::developer::DeveloperSignIn;
use entra_auth::settings::Env;
use entra_emulator::broker::{self, BrokerConfig};
use entra_emulator::{Emulator, EmulatorConfig, serve};

const USAGE: &str = "\
usage: entra-emulator [serve]                  run the emulator (settings: EMULATOR_* variables)
       entra-emulator rotate-keys [--url URL]  make a running emulator sign with a new key
                                               (default URL: http://localhost:3003)
       entra-emulator --broker                 serve the managed-identity endpoint from your
                                               azd / Azure CLI sign-in (settings: BROKER_*)
       entra-emulator healthcheck              exit 0 if the local emulator answers /healthz";

#[tokio::main]
async fn main() -> ExitCode {
    entra_auth::telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] | ["serve"] => run().await,
        ["--broker"] | ["broker"] => broker().await,
        ["rotate-keys"] => rotate("http://localhost:3003").await,
        ["rotate-keys", "--url", url] => rotate(url).await,
        ["healthcheck"] => return entra_auth::probe::healthcheck("EMULATOR_ADDR", 3003),
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(anyhow::anyhow!("unrecognised arguments\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("entra-emulator: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let config = EmulatorConfig::from_env(Env::from_process())?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
    let emulator = Emulator::new(config)?;
    tracing::info!(
        url = emulator.public_url(),
        tenant = emulator.tenant_id(),
        issuer_v2 = %emulator.issuers().v2,
        "Entra emulator ready"
    );
    let running = serve(emulator, listener)?;
    entra_auth::serve::shutdown_signal().await;
    running.stop().await;
    Ok(())
}

async fn broker() -> anyhow::Result<()> {
    let config = BrokerConfig::from_env(Env::from_process())?;
    let sign_in = DeveloperSignIn::new(config.tenant_id.as_deref(), None)?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
    tracing::info!(
        endpoint = %format!("http://{}/msi/token", config.bind),
        tenant = config.tenant_id.as_deref().unwrap_or("the CLI's default"),
        "managed-identity broker ready: tokens come from your azd / Azure CLI sign-in"
    );
    axum::serve(entra_auth::serve::without_delay(listener), broker::router(sign_in, &config.identity_header))
        .with_graceful_shutdown(entra_auth::serve::shutdown_signal())
        .await?;
    Ok(())
}

async fn rotate(base: &str) -> anyhow::Result<()> {
    let url = format!("{}/_emulator/rotate-keys", base.trim_end_matches('/'));
    let response = reqwest::Client::new().post(&url).send().await?;
    if !response.status().is_success() {
        anyhow::bail!("{url} answered {}", response.status());
    }
    println!("{}", response.text().await?);
    Ok(())
}
