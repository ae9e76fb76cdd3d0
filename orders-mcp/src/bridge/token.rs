//! Bearer tokens for the bridge: from the Azure CLI, the Azure Developer CLI, or an environment
//! variable, cached and fetched again a margin before they expire.

use std::process::Stdio;
use std::time::Duration;

use entra_auth::acquire::{AccessToken, AcquireError, TokenCache};
use entra_auth::hop::TokenSummary;
use serde::Deserialize;
use tokio::process::Command;

/// Where the bridge gets its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenSourceKind {
    /// `az account get-access-token --resource <app id uri>`.
    Az,
    /// `azd auth token --scope <scope>`.
    Azd,
    /// The value of an environment variable (`--token-env`).
    Static,
}

/// A CLI gets this long to print a token (a first `az` call can be slow).
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
enum Source {
    Az { resource: String, tenant: Option<String> },
    Azd { scope: String, tenant: Option<String> },
    Static { var: String },
}

/// Fetches and caches the bridge's token.
pub struct TokenProvider {
    source: Source,
    cache: TokenCache<()>,
}

impl TokenProvider {
    /// `resource` is an app id URI (`api://orders-mcp-x`) or a scope under it
    /// (`api://orders-mcp-x/access_as_user`, `.../.default`): `az` is given the resource,
    /// `azd` a scope.
    pub fn new(
        kind: TokenSourceKind,
        resource: &str,
        tenant: Option<String>,
        token_env: &str,
        refresh_margin: Duration,
    ) -> TokenProvider {
        let source = match kind {
            TokenSourceKind::Az => Source::Az { resource: resource_of(resource, tenant.as_deref()), tenant },
            TokenSourceKind::Azd => Source::Azd { scope: scope_of(resource, tenant.as_deref()), tenant },
            TokenSourceKind::Static => Source::Static { var: token_env.to_string() },
        };
        TokenProvider { source, cache: TokenCache::new(refresh_margin) }
    }

    /// The current token, fetched if there is none or it is within the margin of expiry.
    pub async fn token(&self) -> Result<AccessToken, AcquireError> {
        self.cache.get_or_fetch((), || self.fetch()).await
    }

    /// A fresh token, after the server refused `rejected`; the same one if another request
    /// already refreshed it, or if the source has nothing newer (a static token).
    pub async fn refresh(&self, rejected: &AccessToken) -> Result<AccessToken, AcquireError> {
        let current = self.token().await?;
        if current.secret() != rejected.secret() {
            return Ok(current);
        }
        self.cache.invalidate(&());
        self.token().await
    }

    /// A short description for logs: which source, never the token.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Az { resource, .. } => format!("the Azure CLI (resource {resource})"),
            Source::Azd { scope, .. } => format!("the Azure Developer CLI (scope {scope})"),
            Source::Static { var } => format!("the environment variable {var}"),
        }
    }

    #[tracing::instrument(name = "bridge.token", skip_all, fields(source = %self.describe()))]
    async fn fetch(&self) -> Result<AccessToken, AcquireError> {
        let token = match &self.source {
            Source::Static { var } => {
                let token = std::env::var(var).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
                let token = token.ok_or_else(|| {
                    AcquireError::NotConfigured(format!(
                        "--token-source static: the environment variable {var} is not set"
                    ))
                })?;
                // A static token's lifetime is what it says; without one, trust it until refused.
                let expires_on = jwt_expiry(&token).unwrap_or(u64::MAX);
                AccessToken::new(token, expires_on)
            }
            Source::Az { resource, tenant } => {
                let mut args = vec!["account", "get-access-token", "--resource", resource.as_str(), "--output", "json"];
                if let Some(tenant) = tenant {
                    args.extend(["--tenant", tenant.as_str()]);
                }
                run_cli(if cfg!(windows) { "az.cmd" } else { "az" }, &args).await?
            }
            Source::Azd { scope, tenant } => {
                let mut args = vec!["auth", "token", "--scope", scope.as_str(), "--output", "json"];
                if let Some(tenant) = tenant {
                    args.extend(["--tenant-id", tenant.as_str()]);
                }
                run_cli("azd", &args).await?
            }
        };
        tracing::info!(source = %self.describe(), expires_in_secs = token.remaining(), "obtained a token");
        Ok(token)
    }
}

/// What `az account get-access-token` and `azd auth token` print (`--output json`).
#[derive(Deserialize)]
struct CliToken {
    #[serde(alias = "accessToken")]
    token: String,
    /// Seconds since the epoch: recent `az` versions; `azd` sends only `expiresOn` (RFC 3339) and
    /// old `az` a local time without zone, so otherwise the token's own `exp` is used.
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
}

async fn run_cli(program: &str, args: &[&str]) -> Result<AccessToken, AcquireError> {
    let fail = |reason: String| AcquireError::NotConfigured(format!("`{program} {}` failed: {reason}", args.join(" ")));
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(CLI_TIMEOUT, output).await {
        Err(_) => return Err(fail(format!("no answer within {} s", CLI_TIMEOUT.as_secs()))),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail(format!("{program} is not installed or not on PATH")));
        }
        Ok(Err(e)) => return Err(fail(e.to_string())),
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        // stderr explains (not signed in, no consent, ...); stdout is never shown: it may hold a token.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr: String = stderr.trim().chars().take(600).collect();
        return Err(fail(format!("{} ({stderr})", output.status)));
    }
    let parsed: CliToken = serde_json::from_slice(&output.stdout)
        .map_err(|_| fail("it did not print a JSON token (expected accessToken or token)".into()))?;
    let expires_on = parsed
        .expires_on
        .as_ref()
        .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())))
        .or_else(|| jwt_expiry(&parsed.token))
        .ok_or_else(|| fail("cannot tell when the token expires (no expires_on, and it is not a JWT)".into()))?;
    Ok(AccessToken::new(parsed.token, expires_on))
}

/// The `exp` claim of a JWT, read without validation (the bridge is the token's client, not its
/// audience: this only schedules the refresh).
fn jwt_expiry(token: &str) -> Option<u64> {
    TokenSummary::from_unverified(token).and_then(|s| u64::try_from(s.exp).ok()).filter(|exp| *exp > 0)
}

/// Splits `value` into an Application ID URI and the scope under it, if it names one.
///
/// Entra's `api://` URIs have one or two segments (`api://<appId>`, `api://<tenantId>/<appId>`,
/// `api://<tenantId>/<string>`, `api://<string>/<appId>`, `api://<domain>/<string>`: "Restrictions
/// on identifier URIs of Microsoft Entra applications"), and a scope is one more. So a third
/// segment, or `/.default`, is a scope; a second is one unless it is an app id (a GUID), the
/// first is a domain (it has a dot) or the first names the tenant given (`--tenant`, its id):
/// `api://<appId>/access_as_user` is the common scope, `api://<tenantId>/orders-api` the
/// manifest's own URI form. An `https://` URI's path is its own.
fn split_scope<'a>(value: &'a str, tenant: Option<&str>) -> (&'a str, Option<&'a str>) {
    let value = value.trim().trim_end_matches('/');
    if let Some(resource) = value.strip_suffix("/.default") {
        return (resource, Some(".default"));
    }
    let Some(rest) = value.strip_prefix("api://") else {
        return (value, None);
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let names_scope = match segments.as_slice() {
        [_] => false,
        [first, second] => {
            let uri = uuid::Uuid::parse_str(second).is_ok()
                || first.contains('.')
                || tenant.is_some_and(|t| t.eq_ignore_ascii_case(first));
            !uri
        }
        _ => true,
    };
    match value.rsplit_once('/') {
        Some((resource, scope)) if names_scope => (resource, Some(scope)),
        _ => (value, None),
    }
}

/// The app id URI in `value` (see [`split_scope`]).
fn resource_of(value: &str, tenant: Option<&str>) -> String {
    split_scope(value, tenant).0.to_string()
}

/// A scope for `value`: itself if it names one, else the resource's `/.default`.
fn scope_of(value: &str, tenant: Option<&str>) -> String {
    match split_scope(value, tenant) {
        (resource, Some(scope)) => format!("{resource}/{scope}"),
        (resource, None) => format!("{resource}/.default"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_and_scopes_are_derived_from_either_form() {
        assert_eq!(resource_of("api://orders-mcp-local", None), "api://orders-mcp-local");
        assert_eq!(resource_of("api://orders-mcp-local/access_as_user", None), "api://orders-mcp-local");
        assert_eq!(resource_of("api://orders-mcp-local/.default", None), "api://orders-mcp-local");
        assert_eq!(resource_of("https://contoso.example/orders", None), "https://contoso.example/orders");
        assert_eq!(scope_of("api://orders-mcp-local", None), "api://orders-mcp-local/.default");
        assert_eq!(scope_of("api://orders-mcp-local/access_as_user", None), "api://orders-mcp-local/access_as_user");
        assert_eq!(scope_of("https://contoso.example/orders", None), "https://contoso.example/orders/.default");
    }

    /// The two-segment forms of "Restrictions on identifier URIs of Microsoft Entra applications"
    /// (learn.microsoft.com/entra/identity-platform/identifier-uri-restrictions) are URIs, not a
    /// URI and a scope: `api://<tenantId>/<string>` is the manifest's orders-api.
    #[test]
    fn two_segment_app_id_uris_are_not_split() {
        const TENANT: &str = "aaaabbbb-0000-cccc-1111-dddd2222eeee";
        const APP: &str = "00001111-aaaa-2222-bbbb-3333cccc4444";
        let tenant_uri = format!("api://{TENANT}/orders-api-local");
        assert_eq!(resource_of(&tenant_uri, Some(TENANT)), tenant_uri);
        assert_eq!(scope_of(&tenant_uri, Some(TENANT)), format!("{tenant_uri}/.default"));
        let scope = format!("{tenant_uri}/Orders.Read");
        assert_eq!(resource_of(&scope, None), tenant_uri, "a third segment is always a scope");
        assert_eq!(scope_of(&scope, None), scope);
        assert_eq!(resource_of(&format!("{tenant_uri}/.default"), None), tenant_uri);

        let tenant_app = format!("api://{TENANT}/{APP}");
        assert_eq!(resource_of(&tenant_app, None), tenant_app, "an app id is never a scope");
        let string_app = format!("api://productapi/{APP}");
        assert_eq!(scope_of(&string_app, None), format!("{string_app}/.default"));
        assert_eq!(resource_of("api://contoso.com/productsapi", None), "api://contoso.com/productsapi");
        assert_eq!(resource_of("api://contoso.com/productsapi/Read", None), "api://contoso.com/productsapi");

        // Without the tenant, `<guid>/<name>` is the portal's default `api://<appId>` and a scope.
        let app_scope = format!("api://{APP}/access_as_user");
        assert_eq!(resource_of(&app_scope, None), format!("api://{APP}"));
        assert_eq!(resource_of(&app_scope, Some(TENANT)), format!("api://{APP}"));
    }
}
