//! The developer sign-in: azure_identity's azd and Azure CLI credentials, run through an
//! `Executor` that plays the two CLIs, so the real credential code (command line, JSON
//! parsing, error messages) is exercised without either CLI installed.

// Test code, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(unix)]

use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Output};
use std::sync::{Arc, Mutex};

use entra_auth::acquire::Executor;
use postprovision::credential::{DeveloperSignIn, GRAPH_SCOPE, TokenSource};

const TENANT: &str = "5a8f0e3c-2d4b-4c1e-9f6a-7b8c9d0e1f2a";

#[derive(Debug, Default)]
struct Clis {
    azd_signed_in: bool,
    az_signed_in: bool,
    commands: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Executor for Clis {
    async fn run(&self, _program: &OsStr, args: &[&OsStr]) -> std::io::Result<Output> {
        let command = args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
        self.commands.lock().unwrap().push(command.clone());
        let fail =
            |stderr: &str| Output { status: ExitStatus::from_raw(256), stdout: Vec::new(), stderr: stderr.into() };
        let expires = 4_102_444_800u64; // 2100-01-01
        if command.contains("azd auth token") {
            if !self.azd_signed_in {
                return Ok(fail("ERROR: not logged in, run `azd auth login` to login"));
            }
            let json = r#"{"token":"azd-token","expiresOn":"2100-01-01T00:00:00Z"}"#.to_string();
            return Ok(Output { status: ExitStatus::from_raw(0), stdout: json.into(), stderr: Vec::new() });
        }
        if command.contains("az account get-access-token") {
            if !self.az_signed_in {
                return Ok(fail("ERROR: Please run 'az login' to setup account."));
            }
            let json = format!(
                r#"{{"accessToken":"az-token","expiresOn":"2100-01-01 00:00:00.000000","expires_on":{expires},"subscription":"s","tenant":"{TENANT}","tokenType":"Bearer"}}"#
            );
            return Ok(Output { status: ExitStatus::from_raw(0), stdout: json.into(), stderr: Vec::new() });
        }
        Ok(fail("unknown command"))
    }
}

#[tokio::test]
async fn azd_first_then_the_azure_cli_always_for_the_deployment_tenant() {
    let clis = Arc::new(Clis { azd_signed_in: false, az_signed_in: true, ..Default::default() });
    let sign_in = DeveloperSignIn::new(TENANT, Some(clis.clone())).unwrap();
    let token = sign_in.token(GRAPH_SCOPE).await.unwrap();
    assert_eq!(token.secret(), "az-token");
    assert!(!format!("{token:?}").contains("az-token"), "tokens never print");
    let commands = clis.commands.lock().unwrap().clone();
    assert_eq!(commands.len(), 2, "{commands:#?}");
    assert!(commands[0].contains("azd auth token") && commands[0].contains(&format!("--tenant-id {TENANT}")));
    assert!(commands[0].contains(&format!("--scope {GRAPH_SCOPE}")));
    assert!(commands[1].contains("az account get-access-token") && commands[1].contains(&format!("--tenant {TENANT}")));

    // Cached: the CLIs take a second each, and a run makes dozens of requests.
    sign_in.token(GRAPH_SCOPE).await.unwrap();
    assert_eq!(clis.commands.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn azd_alone_is_enough() {
    let clis = Arc::new(Clis { azd_signed_in: true, az_signed_in: false, ..Default::default() });
    let sign_in = DeveloperSignIn::new(TENANT, Some(clis.clone())).unwrap();
    assert_eq!(sign_in.token(GRAPH_SCOPE).await.unwrap().secret(), "azd-token");
}

#[tokio::test]
async fn no_sign_in_says_how_to_sign_in() {
    let clis = Arc::new(Clis::default());
    let sign_in = DeveloperSignIn::new(TENANT, Some(clis)).unwrap();
    let message = sign_in.token(GRAPH_SCOPE).await.unwrap_err().to_string();
    assert!(message.contains("azd auth login"), "{message}");
    assert!(message.contains("az login"), "{message}");
}
