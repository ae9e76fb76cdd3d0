use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use postprovision::cli::{self, Cli, Io};
use postprovision::credential::{DeveloperSignIn, TokenSource};
use postprovision::retry::RetryPolicy;

#[tokio::main]
async fn main() -> ExitCode {
    service_kit::telemetry::init();
    let cli = Cli::parse();
    let mut stdout = std::io::stdout();
    let io = Io {
        process_env: std::env::vars().collect(),
        tokens: Box::new(|tenant| {
            DeveloperSignIn::new(tenant, None).map(|s| Arc::new(s) as Arc<dyn TokenSource>).map_err(|e| e.to_string())
        }),
        azd: std::env::var_os("AZD").unwrap_or_else(|| "azd".into()),
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
