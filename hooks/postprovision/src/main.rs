use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use postprovision::cli::{self, Cli, Io};
use postprovision::retry::RetryPolicy;

#[tokio::main]
async fn main() -> ExitCode {
    let _telemetry = service_kit::telemetry::init("postprovision");
    let cli = Cli::parse();
    let mut stdout = std::io::stdout();
    let io = Io {
        // azd gives hooks its environment's values as process variables; a variable that is
        // not Unicode is none of them.
        process_env: std::env::vars_os()
            .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
            .collect(),
        sign_in_clis: None,
        // The sign-in message is for the person at the terminal, not for azd's log of stdout.
        sign_in_prompt: std::sync::Arc::new(|message: &str| eprintln!("{message}")),
        sign_in_time_limit: entra_auth::acquire::DEFAULT_TIME_LIMIT,
        retry: RetryPolicy::default(),
        out: &mut stdout,
    };
    match cli::run(cli, io).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(message) => {
            let _ = stdout.flush();
            eprintln!("postprovision: {message}");
            ExitCode::FAILURE
        }
    }
}
