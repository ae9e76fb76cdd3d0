//! Agent mode's provisioning client: the app registration the developer signs in to (in the
//! browser, or by device code) for the Agent ID writes, made with the azd / Azure CLI sign-in before them.
//!
//! Why: Graph ignores a client's Agent ID permissions when it holds `Directory.AccessAsUser.All`
//! or `Directory.ReadWrite.All`, and answers 403 ("Known issue" on every Agent ID write API,
//! e.g. https://learn.microsoft.com/graph/api/agentidentityblueprint-post?view=graph-rest-1.0);
//! the Azure CLI's client, which azd uses too, holds `Directory.AccessAsUser.All`. So, as
//! Microsoft's own tooling does (the Agent 365 CLI's "custom client app registration"; "A
//! separate, single-tenant public management app with administrator consent for the delegated
//! Microsoft Graph permissions", https://learn.microsoft.com/entra/agent-id/create-single-instance-agent),
//! the hook registers a single-tenant public client holding only the delegated permissions the
//! Agent ID calls need ([`SCOPES`]), its service principal, and an administrator's consent.
//! Delegated, not application permissions: "Create agentIdentity" takes `AgentIdentity.Create.All`
//! delegated, and the owner of a blueprint may create its agent identities
//! (https://learn.microsoft.com/graph/api/agentidentity-post?view=graph-rest-1.0), so no secret
//! exists anywhere.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::applications::Registration;
use super::error::RunError;
use super::grants;
use super::kind::Kind;
use super::run::Run;
use super::service_principals::{self, Principal};
use crate::deployment::TAG;
use crate::model::{Application, RequiredResourceAccess, ResourceAccess};
use crate::plan::{Action, Change};

/// Its name in tags and in the plan (not a manifest app: the hook's own).
pub const NAME: &str = "agent-id-provisioning";
const DISPLAY_NAME: &str = "Orders Copilot provisioning (Agent ID)";
/// The browser sign-in's loopback redirect URI (`publicClient.redirectUris`). Entra ignores the
/// port of a loopback redirect URI when matching, so the sign-in's ephemeral port needs no
/// registration of its own; it prefers the IP literal to `localhost` ("Redirect URI (reply URL)
/// restrictions and limitations", Localhost exceptions,
/// https://learn.microsoft.com/entra/identity-platform/reply-url). The Agent 365 CLI registers
/// `http://localhost:8400/` for its custom client the same way.
pub const REDIRECT_URI: &str = "http://127.0.0.1/";
/// Microsoft Graph's application id, the same in every tenant.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// The delegated Microsoft Graph permissions of the Agent ID writes the hook makes, least
/// privileged that cover them (each API's "Permissions" table, Graph v1.0):
/// - blueprint create, update, delete, its federated credentials and inheritable permissions:
///   `AgentIdentityBlueprint.ReadWrite.All`;
/// - its principal, create and delete: `AgentIdentityBlueprintPrincipal.ReadWrite.All`;
/// - agent identities: `AgentIdentity.Create.All`, and `AgentIdentity.DeleteRestore.All` to
///   delete one ("Delete agentIdentity" has no higher privileged delegated permission).
///
/// Never `Directory.AccessAsUser.All` or `Directory.ReadWrite.All`, which would void them.
pub const SCOPES: [&str; 4] = [
    "AgentIdentity.Create.All",
    "AgentIdentity.DeleteRestore.All",
    "AgentIdentityBlueprint.ReadWrite.All",
    "AgentIdentityBlueprintPrincipal.ReadWrite.All",
];

/// What the hook reads of the provisioning app.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProvisioningApp {
    id: String,
    app_id: String,
    #[serde(default)]
    is_fallback_public_client: Option<bool>,
    #[serde(default)]
    public_client: PublicClient,
    #[serde(default)]
    required_resource_access: Vec<RequiredResourceAccess>,
}

/// The app's mobile and desktop platform: where a public client's sign-in may redirect to.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicClient {
    #[serde(default)]
    redirect_uris: Vec<String>,
}

/// Microsoft Graph's service principal and the delegated permissions it publishes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphPrincipal {
    id: String,
    #[serde(default)]
    oauth2_permission_scopes: Vec<PublishedScope>,
}

#[derive(Debug, Deserialize)]
struct PublishedScope {
    id: String,
    value: String,
}

/// Makes the provisioning client exist as it should (app, service principal, admin consent),
/// then points the run's Agent ID writes at it. Without an administrator's consent the run
/// stops, saying exactly what to ask one for.
#[tracing::instrument(skip_all)]
pub async fn ensure(run: &mut Run<'_>) -> Result<(), RunError> {
    let graph = graph_principal(run).await?;
    let mut access = Vec::new();
    for scope in SCOPES {
        let Some(published) = graph.oauth2_permission_scopes.iter().find(|s| s.value == scope) else {
            let path = format!("servicePrincipals?$filter=appId eq '{GRAPH_APP_ID}'");
            let reason = format!("Microsoft Graph publishes no delegated permission {scope}");
            return Err(run.stopped(&run.graph.bad(&Method::GET, &path, reason)));
        };
        access.push(ResourceAccess { id: published.id.clone(), kind: "Scope".into() });
    }
    let wanted = vec![RequiredResourceAccess { resource_app_id: GRAPH_APP_ID.into(), resource_access: access }];

    let registration = find_or_create(run, &wanted).await?;
    let client = service_principals::find_or_create(run, NAME, &registration).await?;
    let resource = Principal { id: graph.id, planned: false };
    let scope = SCOPES.join(" ");
    let existing = grants::existing(run, &client).await?;
    let detail = format!("{NAME} -> Microsoft Graph: {scope} (all users)");
    match grants::grant(run, NAME, detail, &client, &resource, &scope, &existing).await {
        Ok(()) => {}
        Err(e) if e.is_forbidden() => {
            return Err(RunError::ProvisioningConsent {
                request: grants::admin_request(&client.id, &resource.id, &scope),
            });
        }
        Err(e) => return Err(run.stopped(&e)),
    }
    run.sign_in_for_agent_id(&registration.app_id, REDIRECT_URI)
}

async fn graph_principal(run: &Run<'_>) -> Result<GraphPrincipal, RunError> {
    let filter = format!("appId eq '{GRAPH_APP_ID}'");
    let found: Vec<GraphPrincipal> = run.list("servicePrincipals", &[("$filter", &filter)]).await?;
    match found.into_iter().next() {
        Some(graph) => Ok(graph),
        None => {
            let path = format!("servicePrincipals?$filter={filter}");
            Err(run.stopped(&run.graph.bad(&Method::GET, &path, "no Microsoft Graph service principal".into())))
        }
    }
}

/// The provisioning app of this deployment (by its tag), created or patched until it is a
/// single-tenant public client ("Allow public client flows": the device code flow; the loopback
/// [`REDIRECT_URI`]: the browser sign-in) asking for exactly `wanted`.
async fn find_or_create(run: &mut Run<'_>, wanted: &[RequiredResourceAccess]) -> Result<Registration, RunError> {
    let id = run.id;
    let tag = id.app_tag(NAME);
    let filter = format!("tags/any(t:t eq '{tag}')");
    let found: Vec<ProvisioningApp> = run.list("applications", &[("$filter", &filter)]).await?;
    if found.len() > 1 {
        let ids = found.iter().map(|a| a.id.as_str()).collect::<Vec<_>>().join(", ");
        return Err(RunError::Duplicate { tag, count: found.len(), ids });
    }
    let registration = |object_id: String, app_id: String, planned: bool| Registration {
        kind: Kind::App,
        object_id,
        app_id,
        current: Application::default(),
        planned,
    };
    let Some(app) = found.into_iter().next() else {
        let body = json!({
            "displayName": id.display_name(DISPLAY_NAME),
            "signInAudience": "AzureADMyOrg",
            "isFallbackPublicClient": true,
            "publicClient": { "redirectUris": [REDIRECT_URI] },
            "requiredResourceAccess": wanted,
            "tags": [TAG, id.tag(), tag],
        });
        let detail = format!(
            "public client ({REDIRECT_URI}) for the Agent ID writes (Microsoft Graph: {}), tagged {tag}",
            SCOPES.join(" ")
        );
        let change = Change::new(Action::Create, "application", NAME, detail);
        return Ok(match run.write_as(Kind::App, change, Method::POST, "applications", Some(body)).await? {
            Some(created) => {
                let created: ProvisioningApp = run.parse(created, "applications")?;
                registration(created.id, created.app_id, false)
            }
            None => registration(format!("<{NAME} object id>"), format!("<{NAME} app id>"), true),
        });
    };
    if app.is_fallback_public_client != Some(true)
        || app.public_client.redirect_uris != [REDIRECT_URI]
        || app.required_resource_access != wanted
    {
        let body = json!({
            "isFallbackPublicClient": true,
            "publicClient": { "redirectUris": [REDIRECT_URI] },
            "requiredResourceAccess": wanted,
        });
        let detail = format!("public client ({REDIRECT_URI}), Microsoft Graph: {}", SCOPES.join(" "));
        let change = Change::new(Action::Update, "application", NAME, detail);
        run.write_as(Kind::App, change, Method::PATCH, &format!("applications/{}", app.id), Some(body)).await?;
    }
    Ok(registration(app.id, app.app_id, false))
}
