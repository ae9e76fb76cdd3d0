//! `entra-emulator`: run the offline identity provider, ask a running one to rotate keys, or run
//! the managed-identity broker (real tokens from the developer's sign-in, for containers).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use entra_emulator::{Application, EmulatorConfig, broker};
use service_kit::serve::shutdown_signal;
use service_kit::settings::Env;

/// An offline identity provider shaped like Microsoft Entra ID. Settings come from `EMULATOR_*`
/// variables (the broker's from `BROKER_*`); see the README.
#[derive(Parser)]
#[command(name = "entra-emulator", version, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Serve the managed-identity endpoint from your azd / Azure CLI sign-in instead.
    #[arg(long)]
    broker: bool,
    /// Serve HTTPS with a local certificate authority (as EMULATOR_TLS=true), for clients such
    /// as MSAL that accept only an https authority.
    #[arg(long)]
    tls: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the emulator (the default).
    Serve,
    /// Serve the managed-identity endpoint from your azd / Azure CLI sign-in (same as --broker).
    Broker,
    /// Make a running emulator sign with a new key.
    RotateKeys {
        #[arg(long, default_value = "http://localhost:3003")]
        url: String,
    },
    /// Exit 0 if the local emulator answers /healthz (container health checks).
    Healthcheck,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = if cli.broker { Command::Broker } else { cli.command.unwrap_or(Command::Serve) };
    if let Command::Healthcheck = command {
        return match EmulatorConfig::from_env(Env::from_process(), cli.tls) {
            Ok(config) if config.tls.is_some() => tls_healthcheck(&config).await,
            _ => service_kit::probe::healthcheck("EMULATOR_ADDR", 3003),
        };
    }
    let _telemetry = service_kit::telemetry::init("entra-emulator");
    let result = match command {
        Command::Serve => serve(cli.tls).await,
        Command::Broker => serve_broker().await,
        Command::RotateKeys { url } => rotate(&url).await,
        Command::Healthcheck => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("entra-emulator: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(tls: bool) -> anyhow::Result<()> {
    let app = Application::build(EmulatorConfig::from_env(Env::from_process(), tls)?).await?;
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}

async fn serve_broker() -> anyhow::Result<()> {
    let app = broker::Application::build(broker::BrokerConfig::from_env(Env::from_process())?).await?;
    app.run_until_stopped(shutdown_signal()).await?;
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

/// The container health check in `--tls` mode: `/healthz` over HTTPS, trusting the local CA only.
async fn tls_healthcheck(config: &EmulatorConfig) -> ExitCode {
    let probe = async {
        let dir = config.tls.as_ref().map(|t| t.dir.clone()).unwrap_or_default();
        let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join(entra_emulator::tls::CA_FILE))?)?;
        let http =
            reqwest::Client::builder().tls_certs_only([ca]).timeout(std::time::Duration::from_secs(5)).build()?;
        let url = format!("https://127.0.0.1:{}/healthz", config.bind.port());
        anyhow::Ok(http.get(url).send().await?.status().as_u16())
    };
    match probe.await {
        Ok(200) => ExitCode::SUCCESS,
        Ok(code) => {
            eprintln!("unhealthy: /healthz answered {code}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("unhealthy: {e:#}");
            ExitCode::FAILURE
        }
    }
}
