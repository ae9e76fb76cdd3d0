//! The developer sign-in the hook uses: azure_identity's azd and Azure CLI credentials, run
//! through fake CLIs (tests/support/clis.rs), so the real credential code (command line, JSON
//! parsing, error messages) is exercised without either CLI installed.

// Test code, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use postprovision::credential::{GRAPH_SCOPE, developer_sign_in};
use support::TENANT;
use support::clis::Clis;

#[tokio::test]
async fn azd_first_then_the_azure_cli_always_for_the_deployment_tenant() {
    let clis = Arc::new(Clis { az: Some("az-token"), tenant: TENANT, ..Default::default() });
    let sign_in = developer_sign_in(TENANT, Some(clis.clone())).unwrap();
    let token = sign_in.token(GRAPH_SCOPE).await.unwrap();
    assert_eq!(token.secret(), "az-token");
    assert!(!format!("{token:?}").contains("az-token"), "tokens never print");
    let commands = clis.commands();
    assert_eq!(commands.len(), 2, "{commands:#?}");
    assert!(commands[0].contains("azd auth token") && commands[0].contains(&format!("--tenant-id {TENANT}")));
    assert!(commands[0].contains(&format!("--scope {GRAPH_SCOPE}")));
    assert!(commands[1].contains("az account get-access-token") && commands[1].contains(&format!("--tenant {TENANT}")));

    // Cached: the CLIs take a second each, and a run makes dozens of requests.
    sign_in.token(GRAPH_SCOPE).await.unwrap();
    assert_eq!(clis.commands().len(), 2);
}

#[tokio::test]
async fn azd_alone_is_enough() {
    let sign_in = developer_sign_in(TENANT, Some(Clis::azd_signed_in("azd-token"))).unwrap();
    assert_eq!(sign_in.token(GRAPH_SCOPE).await.unwrap().secret(), "azd-token");
}

#[tokio::test]
async fn no_sign_in_says_how_to_sign_in() {
    let sign_in = developer_sign_in(TENANT, Some(Arc::new(Clis::default()))).unwrap();
    let message = sign_in.token(GRAPH_SCOPE).await.unwrap_err().to_string();
    assert!(message.contains("azd auth login"), "{message}");
    assert!(message.contains("az login"), "{message}");
}
