//! `cargo xtask verify`: checks a running deployment end to end and prints a pass/fail table.
//!
//! - `--local` (default): the stack of `cargo xtask up` (or docker compose) on the standard
//!   ports (or the ones given with `--url`, `--mcp-url`, `--api-url`, `--authority`). Here verify can also get tokens, as any client could: it signs alice in through the
//!   emulator's login form with the Azure CLI's (public, pre-authorized) client id, and asks for
//!   app-only tokens with the emulator-only client secrets of the manifest.
//! - `--azd` / `--env-file FILE`: a deployment described by the azd environment (`azd env
//!   get-values`). Checks that need a token it cannot mint are reported as skipped.
//! - `--url CHAT_APP_URL [--mcp-url ORDERS_MCP_URL]`: anything else reachable by URL.
//!
//! Exits non-zero when any check fails.

use std::collections::HashMap;
use std::time::Duration;

use entra_auth::acquire::describe;
use entra_auth::hop::{Hop, MCP_META_KEY};
use entra_manifest::{Manifest, Vars};
use serde_json::{Value, json};
use url::Url;

const TOOLS: [&str; 5] = ["whoami", "list_orders", "get_order", "create_order", "cancel_order"];

/// What to verify.
struct Target {
    chat_app: Url,
    /// The MCP endpoint (`.../mcp`).
    orders_mcp: Option<Url>,
    /// Only reachable locally (internal ingress in Azure).
    orders_api: Option<Url>,
    /// Where tokens come from: the emulator locally, Entra otherwise.
    authority: Url,
    tenant: String,
    /// Set locally: verify may mint tokens through the emulator.
    local: Option<Local>,
}

struct Local {
    manifest: Manifest,
    vars: Vars,
}

enum Outcome {
    Pass(String),
    Fail(String),
    Skip(String),
}

struct Verifier {
    http: reqwest::Client,
    target: Target,
    results: Vec<(String, Outcome)>,
}

type Check<T> = Result<T, String>;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let target = parse_args(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let failures = runtime.block_on(async {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()?;
        let mut v = Verifier { http, target, results: Vec::new() };
        v.run_all().await;
        Ok::<usize, anyhow::Error>(v.report())
    })?;
    if failures > 0 {
        anyhow::bail!("{failures} check(s) failed");
    }
    Ok(())
}

fn parse_args(args: &[String]) -> anyhow::Result<Target> {
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    if args.iter().any(|a| a == "--azd") || flag("--env-file").is_some() {
        let values = match flag("--env-file") {
            Some(path) => std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?,
            None => azd_env_values()?,
        };
        return azd_target(&parse_env_values(&values));
    }
    let local = args.iter().any(|a| a == "--local");
    if let Some(url) = flag("--url").filter(|_| !local) {
        return Ok(Target {
            chat_app: Url::parse(&url)?,
            orders_mcp: flag("--mcp-url").map(|u| Url::parse(&u)).transpose()?,
            orders_api: None,
            authority: Url::parse(&flag("--authority").unwrap_or_else(|| "https://login.microsoftonline.com".into()))?,
            tenant: flag("--tenant").unwrap_or_default(),
            local: None,
        });
    }
    const LOCAL_OPTIONS: [&str; 5] = ["--local", "--url", "--mcp-url", "--api-url", "--authority"];
    if let Some(unknown) = args.iter().find(|a| a.starts_with("--") && !LOCAL_OPTIONS.contains(&a.as_str())) {
        anyhow::bail!("unknown option {unknown:?}: use --local, --azd, --env-file FILE or --url URL [--mcp-url URL]");
    }
    // Locally, the standard ports unless told otherwise (a stack started on other ports).
    let url = |name: &str, default: &str| Url::parse(&flag(name).unwrap_or_else(|| default.to_string()));
    let manifest = Manifest::load(entra_manifest::REPOSITORY_MANIFEST)?;
    Ok(Target {
        chat_app: url("--url", "http://localhost:3000")?,
        orders_mcp: Some(url("--mcp-url", "http://localhost:3001/mcp")?),
        orders_api: Some(url("--api-url", "http://localhost:3002")?),
        authority: url("--authority", "http://localhost:3003")?,
        tenant: manifest.tenant.id.clone(),
        local: Some(Local { manifest, vars: Vars::local() }),
    })
}

fn azd_env_values() -> anyhow::Result<String> {
    let output = std::process::Command::new("azd")
        .args(["env", "get-values"])
        .current_dir(crate::root())
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run `azd env get-values` ({e}); pass --env-file instead"))?;
    if !output.status.success() {
        anyhow::bail!("`azd env get-values` failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `KEY="value"` lines, as `azd env get-values` prints them.
fn parse_env_values(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

fn azd_target(env: &HashMap<String, String>) -> anyhow::Result<Target> {
    let get = |k: &str| env.get(k).cloned().ok_or_else(|| anyhow::anyhow!("the azd environment has no {k}"));
    Ok(Target {
        chat_app: Url::parse(&get("CHAT_APP_URL")?)?,
        orders_mcp: Some(Url::parse(&get("ORDERS_MCP_URL")?)?),
        orders_api: None,
        authority: Url::parse("https://login.microsoftonline.com")?,
        tenant: get("AZURE_TENANT_ID")?,
        local: None,
    })
}

/// Reads a JSON-RPC answer from a Streamable HTTP response (JSON, or SSE `data:` lines).
fn jsonrpc_result(content_type: &str, body: &str) -> Check<Value> {
    let message: Value = if content_type.starts_with("text/event-stream") {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|m| m.get("id").is_some())
            .ok_or("no JSON-RPC response in the event stream")?
    } else {
        serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?
    };
    match (message.get("result"), message.get("error")) {
        (Some(result), _) => Ok(result.clone()),
        (_, Some(error)) => Err(format!("JSON-RPC error: {error}")),
        _ => Err(format!("not a JSON-RPC response: {message}")),
    }
}

impl Verifier {
    fn record<T>(&mut self, name: &str, result: Check<T>, detail: impl FnOnce(&T) -> String) -> Option<T> {
        match result {
            Ok(value) => {
                self.results.push((name.to_string(), Outcome::Pass(detail(&value))));
                Some(value)
            }
            Err(why) => {
                self.results.push((name.to_string(), Outcome::Fail(why)));
                None
            }
        }
    }

    fn skip(&mut self, name: &str, why: &str) {
        self.results.push((name.to_string(), Outcome::Skip(why.to_string())));
    }

    async fn get(&self, url: &str) -> Check<reqwest::Response> {
        self.http.get(url).send().await.map_err(|e| format!("GET {url}: {}", describe(e)))
    }

    async fn expect_status(&self, url: &str, status: u16) -> Check<String> {
        let response = self.get(url).await?;
        if response.status().as_u16() == status {
            Ok(format!("{status}"))
        } else {
            Err(format!("{}", response.status()))
        }
    }

    async fn run_all(&mut self) {
        self.health().await;
        self.identity_provider().await;
        self.protected_resource_metadata().await;
        self.challenges().await;
        self.chat_app().await;
        match self.target.local.is_some() {
            true => self.with_tokens().await,
            false => {
                for name in [
                    "MCP initialize with a user token",
                    "tools/list",
                    "hop chain on a tool call",
                    "wrong-audience token refused by orders-api",
                    "app-only token refused by orders-mcp (403)",
                ] {
                    self.skip(name, "needs a token verify can mint only locally");
                }
            }
        }
    }

    async fn health(&mut self) {
        let mut urls = vec![
            ("chat-app /healthz", self.target.chat_app.join("/healthz")),
            ("chat-app /readyz", self.target.chat_app.join("/readyz")),
        ];
        if let Some(mcp) = &self.target.orders_mcp {
            urls.push(("orders-mcp /healthz", mcp.join("/healthz")));
            urls.push(("orders-mcp /readyz", mcp.join("/readyz")));
        }
        if let Some(api) = &self.target.orders_api {
            urls.push(("orders-api /healthz", api.join("/healthz")));
            urls.push(("orders-api /readyz", api.join("/readyz")));
        }
        if self.target.local.is_some() {
            urls.push(("emulator /healthz", self.target.authority.join("/healthz")));
        }
        for (name, url) in urls {
            let result = match url {
                Ok(url) => self.expect_status(url.as_str(), 200).await,
                Err(e) => Err(e.to_string()),
            };
            self.record(name, result, |s| s.clone());
        }
    }

    fn discovery_url(&self, v2: bool) -> String {
        let base = self.target.authority.as_str().trim_end_matches('/');
        let tenant = &self.target.tenant;
        if v2 {
            format!("{base}/{tenant}/v2.0/.well-known/openid-configuration")
        } else {
            format!("{base}/{tenant}/.well-known/openid-configuration")
        }
    }

    async fn json(&self, url: &str) -> Check<Value> {
        let response = self.get(url).await?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: {}", response.status()));
        }
        response.json().await.map_err(|e| format!("GET {url}: not JSON: {}", describe(e)))
    }

    async fn identity_provider(&mut self) {
        let tenant = self.target.tenant.clone();
        let v2 = self.json(&self.discovery_url(true)).await;
        let v2 = self.record(
            "OpenID discovery (v2)",
            v2.and_then(|d| {
                let issuer = d["issuer"].as_str().unwrap_or_default();
                if issuer.contains(&tenant) && issuer.ends_with("/v2.0") {
                    Ok(d)
                } else {
                    Err(format!("unexpected issuer {issuer}"))
                }
            }),
            |d| d["issuer"].as_str().unwrap_or_default().to_string(),
        );
        let v1 = self.json(&self.discovery_url(false)).await;
        self.record(
            "OpenID discovery (v1)",
            v1.and_then(|d| {
                let issuer = d["issuer"].as_str().unwrap_or_default().to_string();
                if issuer.contains(&tenant) && issuer.ends_with('/') {
                    Ok(issuer)
                } else {
                    Err(format!("unexpected issuer {issuer}"))
                }
            }),
            |i| i.clone(),
        );
        let jwks = match v2.as_ref().and_then(|d| d["jwks_uri"].as_str()) {
            Some(uri) => self.json(uri).await,
            None => Err("no jwks_uri".into()),
        };
        self.record(
            "JWKS publishes RS256 signing keys",
            jwks.and_then(|j| {
                let keys = j["keys"].as_array().cloned().unwrap_or_default();
                let rsa = keys.iter().filter(|k| k["kty"] == "RSA" && k["kid"].is_string()).count();
                if rsa > 0 { Ok(rsa) } else { Err("no RSA key with a kid".into()) }
            }),
            |n| format!("{n} key(s)"),
        );
    }

    async fn protected_resource_metadata(&mut self) {
        let Some(mcp) = self.target.orders_mcp.clone() else {
            self.skip("orders-mcp RFC 9728 metadata", "no orders-mcp URL");
            return;
        };
        let resource_path = entra_auth::metadata::ProtectedResourceMetadata::url_for(&mcp);
        let doc = self.json(resource_path.as_str()).await;
        let doc = self.record(
            "orders-mcp RFC 9728 metadata (/.well-known/oauth-protected-resource/mcp)",
            doc.and_then(|d| {
                let ok = d["resource"].as_str() == Some(mcp.as_str())
                    && d["authorization_servers"].as_array().is_some_and(|a| !a.is_empty())
                    && d["scopes_supported"].as_array().is_some_and(|a| !a.is_empty())
                    && d["bearer_methods_supported"] == json!(["header"]);
                if ok { Ok(d) } else { Err(format!("incomplete document: {d}")) }
            }),
            |d| d["scopes_supported"].to_string(),
        );
        let root = mcp.join("/.well-known/oauth-protected-resource").map_err(|e| e.to_string());
        let root = match root {
            Ok(u) => self.json(u.as_str()).await,
            Err(e) => Err(e),
        };
        self.record(
            "orders-mcp RFC 9728 metadata (root well-known)",
            root.and_then(|d| {
                if d["resource"].as_str() == Some(mcp.as_str()) {
                    Ok(())
                } else {
                    Err(format!("resource is {}", d["resource"]))
                }
            }),
            |_| "same resource".into(),
        );
        let issuer = doc.as_ref().and_then(|d| d["authorization_servers"][0].as_str()).map(str::to_string);
        let check = match issuer {
            Some(issuer) => self.json(&format!("{issuer}/.well-known/openid-configuration")).await.and_then(|d| {
                if d["issuer"].as_str() == Some(issuer.as_str()) {
                    Ok(issuer)
                } else {
                    Err(format!("{issuer} serves issuer {}", d["issuer"]))
                }
            }),
            None => Err("no authorization server".into()),
        };
        self.record("authorization server in the metadata is discoverable", check, |i| i.clone());
        if let Some(api) = self.target.orders_api.clone() {
            let url = api.join("/.well-known/oauth-protected-resource").map_err(|e| e.to_string());
            let doc = match url {
                Ok(u) => self.json(u.as_str()).await,
                Err(e) => Err(e),
            };
            self.record("orders-api RFC 9728 metadata", doc.map(|d| d["resource"].to_string()), |r| r.clone());
        }
    }

    /// A request without a token must get 401 with a Bearer challenge naming the metadata.
    async fn challenge(&self, request: reqwest::RequestBuilder, error: Option<&str>) -> Check<String> {
        let response = request.send().await.map_err(describe)?;
        if response.status() != 401 {
            return Err(format!("expected 401, got {}", response.status()));
        }
        let header =
            response.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        if !header.starts_with("Bearer ") || !header.contains("resource_metadata=\"") {
            return Err(format!("challenge lacks resource_metadata: {header:?}"));
        }
        if let Some(error) = error
            && !header.contains(&format!("error=\"{error}\""))
        {
            return Err(format!("challenge lacks error={error}: {header}"));
        }
        Ok("401 + challenge".into())
    }

    async fn challenges(&mut self) {
        if let Some(mcp) = self.target.orders_mcp.clone() {
            let init = initialize_body();
            let r = self.challenge(self.mcp_request(&mcp, &init), None).await;
            self.record("POST /mcp without a token → 401 challenge", r, |s| s.clone());
            let r = self.challenge(self.http.get(mcp.clone()).header("accept", "text/event-stream"), None).await;
            self.record("GET /mcp without a token → 401 challenge", r, |s| s.clone());
            let r =
                self.challenge(self.mcp_request(&mcp, &init).bearer_auth("not.a.token"), Some("invalid_token")).await;
            self.record("POST /mcp with a malformed token → 401 invalid_token", r, |s| s.clone());
            let r = self.challenge(self.http.post(format!("{mcp}?access_token=x")).json(&init), None).await;
            self.record("token in the query string is refused", r, |s| s.clone());
        }
        if let Some(api) = self.target.orders_api.clone() {
            let url = format!("{}api/orders", api);
            let r = self.challenge(self.http.get(&url), None).await;
            self.record("orders-api without a token → 401 challenge", r, |s| s.clone());
            let r = self.expect_status(&format!("{api}openapi.json"), 200).await;
            self.record("orders-api OpenAPI document", r, |s| s.clone());
        }
    }

    fn mcp_request(&self, mcp: &Url, body: &Value) -> reqwest::RequestBuilder {
        self.http.post(mcp.clone()).header("accept", "application/json, text/event-stream").json(body)
    }

    async fn chat_app(&mut self) {
        let base = self.target.chat_app.clone();
        let landing = self.get(base.as_str()).await;
        let headers = landing.as_ref().map(|r| r.headers().clone()).ok();
        self.record(
            "chat-app landing page",
            landing.and_then(|r| {
                let html = r
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|c| c.starts_with("text/html"));
                if r.status() == 200 && html { Ok(()) } else { Err(format!("{} (HTML: {html})", r.status())) }
            }),
            |_| "200 text/html".into(),
        );
        let header =
            |name: &str| headers.as_ref().and_then(|h| h.get(name)).and_then(|v| v.to_str().ok()).map(str::to_string);
        let csp = header("content-security-policy");
        self.record("security header: Content-Security-Policy", csp.clone().ok_or("missing".to_string()), |v| {
            truncate(v)
        });
        self.record(
            "security header: X-Content-Type-Options nosniff",
            header("x-content-type-options").filter(|v| v == "nosniff").ok_or("missing".to_string()),
            |v| v.clone(),
        );
        self.record("security header: Referrer-Policy", header("referrer-policy").ok_or("missing".to_string()), |v| {
            v.clone()
        });
        let framing = header("x-frame-options").or_else(|| csp.filter(|c| c.contains("frame-ancestors")));
        self.record(
            "clickjacking protection (frame-ancestors / X-Frame-Options)",
            framing.ok_or("missing".to_string()),
            |v| truncate(v),
        );

        let sign_in = base.join("/auth/sign-in").map_err(|e| e.to_string());
        let response = match sign_in {
            Ok(url) => self.get(url.as_str()).await,
            Err(e) => Err(e),
        };
        let https = base.scheme() == "https";
        match response {
            Ok(r) => {
                let location =
                    r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let cookies: Vec<String> = r
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .map(str::to_string)
                    .collect();
                let redirect = Url::parse(&location)
                    .map_err(|_| format!("{} without an absolute Location", r.status()))
                    .and_then(|u| {
                        let q: HashMap<String, String> = u.query_pairs().into_owned().collect();
                        let ok = u.path().ends_with("/oauth2/v2.0/authorize")
                            && q.get("code_challenge_method").map(String::as_str) == Some("S256")
                            && q.contains_key("state")
                            && q.contains_key("nonce")
                            && q.get("response_type").map(String::as_str) == Some("code");
                        if ok { Ok(u) } else { Err(format!("not an authorization-code + PKCE request: {u}")) }
                    });
                let url_text = location.clone();
                self.record("sign-in redirects to the IdP with PKCE S256, state and nonce", redirect, |u| {
                    format!("{}{}", u.host_str().unwrap_or_default(), u.path())
                });
                let session = cookies.iter().find(|c| c.contains("HttpOnly")).cloned();
                let flags = session.ok_or_else(|| format!("no HttpOnly cookie in {cookies:?}")).and_then(|c| {
                    let lower = c.to_ascii_lowercase();
                    let ok = lower.contains("samesite=lax") && (!https || lower.contains("; secure"));
                    if ok { Ok(c) } else { Err(format!("flags: {c}")) }
                });
                self.record("session cookie flags (HttpOnly, SameSite=Lax, Secure on https)", flags, |c| {
                    truncate(c.split(';').skip(1).collect::<Vec<_>>().join(";").trim())
                });
                let leak = url_text.contains("eyJ") || cookies.iter().any(|c| c.contains("eyJ"));
                self.record(
                    "no token in the sign-in redirect or cookies",
                    if leak { Err("a JWT appears".to_string()) } else { Ok(()) },
                    |_| "none".into(),
                );
            }
            Err(e) => {
                self.record::<()>("sign-in redirects to the IdP with PKCE S256, state and nonce", Err(e), |_| {
                    String::new()
                });
            }
        }
        let sign_out = base.join("/auth/sign-out").map_err(|e| e.to_string());
        let cross_site = match sign_out {
            Ok(url) => self.http.post(url).header("origin", "https://evil.example").send().await.map_err(describe),
            Err(e) => Err(e),
        };
        self.record(
            "cross-site POST refused",
            cross_site.and_then(|r| if r.status() == 403 { Ok(()) } else { Err(format!("{}", r.status())) }),
            |_| "403".into(),
        );
    }

    /// Local only: real tokens, the MCP session, the hop chain.
    async fn with_tokens(&mut self) {
        let Some(mcp) = self.target.orders_mcp.clone() else { return };
        let user = self.sign_in_alice().await;
        let Some(token) = self.record("sign in alice through the emulator's login form", user, |_| {
            "Azure CLI client, auth code + PKCE".into()
        }) else {
            return;
        };
        let session = self.mcp_initialize(&mcp, &token).await;
        let Some(session) = self.record("MCP initialize with a user token", session, |s| {
            format!("session {}", &s.chars().take(8).collect::<String>())
        }) else {
            return;
        };
        let tools = self.mcp_call(&mcp, &token, &session, "tools/list", json!({})).await.and_then(|r| {
            let names: Vec<String> = r["tools"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect();
            match TOOLS.iter().find(|t| !names.iter().any(|n| n == *t)) {
                Some(missing) => Err(format!("no {missing} tool in {names:?}")),
                None => Ok(names),
            }
        });
        self.record("tools/list", tools, |n| n.join(", "));
        let call = self
            .mcp_call(&mcp, &token, &session, "tools/call", json!({ "name": "list_orders", "arguments": {} }))
            .await;
        let alice_oid = self.local_manifest().and_then(|m| m.user("alice")).map(|u| u.oid.clone()).unwrap_or_default();
        let orders = call.as_ref().map_err(Clone::clone).and_then(|r| {
            let orders = r["structuredContent"]["orders"].as_array().cloned().unwrap_or_default();
            if r["isError"] == json!(true) {
                return Err(format!("tool error: {}", r["content"]));
            }
            match orders.iter().find(|o| o["owner_oid"].as_str() != Some(alice_oid.as_str())) {
                Some(other) => Err(format!("alice sees someone else's order: {other}")),
                None => Ok(orders.len()),
            }
        });
        self.record("list_orders returns only the caller's orders", orders, |n| format!("{n} order(s), all alice's"));
        let hops = call.and_then(|r| {
            let hops: Vec<Hop> = serde_json::from_value(r["_meta"][MCP_META_KEY].clone())
                .map_err(|e| format!("no hops in _meta: {e}"))?;
            match hops.as_slice() {
                [mcp_hop, api_hop, ..] => {
                    let same_user = mcp_hop.token.oid == api_hop.token.oid && mcp_hop.token.oid == alice_oid;
                    let audience_changed = mcp_hop.token.aud != api_hop.token.aud;
                    if same_user && audience_changed && api_hop.how == entra_auth::hop::How::Obo {
                        Ok(format!("{} → {} (OBO), same user", mcp_hop.token.aud, api_hop.token.aud))
                    } else {
                        Err(format!("unexpected chain: {hops:?}"))
                    }
                }
                _ => Err(format!("expected orders-mcp and orders-api hops, got {}", hops.len())),
            }
        });
        self.record("hop chain on a tool call (same user, audience changes at OBO)", hops, |s| s.clone());
        if let Some(api) = self.target.orders_api.clone() {
            let r = self
                .challenge(self.http.get(format!("{api}api/orders")).bearer_auth(&token), Some("invalid_token"))
                .await;
            self.record("wrong-audience token refused by orders-api", r, |_| "401 invalid_token".into());
            let app_only = self.app_token("orders-mcp", "orders-api").await;
            let r = match app_only {
                Ok(t) => self.forbidden(self.http.get(format!("{api}api/orders")).bearer_auth(t)).await,
                Err(e) => Err(e),
            };
            self.record("app-only token refused by orders-api (403)", r, |s| s.clone());
        }
        let app_only = self.app_token("chat-app", "orders-mcp").await;
        let r = match app_only {
            Ok(t) => self.forbidden(self.mcp_request(&mcp, &initialize_body()).bearer_auth(t)).await,
            Err(e) => Err(e),
        };
        self.record("app-only token refused by orders-mcp (403)", r, |s| s.clone());
    }

    async fn forbidden(&self, request: reqwest::RequestBuilder) -> Check<String> {
        let r = request.send().await.map_err(describe)?;
        let challenge =
            r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        if r.status() == 403 && challenge.contains("insufficient_scope") {
            Ok("403 insufficient_scope".into())
        } else {
            Err(format!("{} {challenge}", r.status()))
        }
    }

    fn local_manifest(&self) -> Option<&Manifest> {
        self.target.local.as_ref().map(|l| &l.manifest)
    }

    fn token_endpoint(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.target.authority.as_str().trim_end_matches('/'), self.target.tenant)
    }

    /// Client credentials with the emulator-only secret of `client` (a manifest app).
    async fn app_token(&self, client: &str, resource: &str) -> Check<String> {
        let local = self.target.local.as_ref().ok_or("local only")?;
        let app = local.manifest.app(client).ok_or(format!("no app {client}"))?;
        let secret = app.emulator_client_secret.clone().ok_or(format!("{client} has no emulator secret"))?;
        let resource_uri = local
            .manifest
            .app(resource)
            .and_then(|a| a.identifier_uri.as_ref())
            .map(|t| t.render(&local.vars))
            .ok_or("no resource")?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", app.client_id.as_str()),
            ("client_secret", secret.as_str()),
            ("scope", &format!("{resource_uri}/.default")),
        ];
        let r = self.http.post(self.token_endpoint()).form(&form).send().await.map_err(describe)?;
        let body: Value = r.json().await.map_err(describe)?;
        body["access_token"].as_str().map(str::to_string).ok_or_else(|| format!("no token: {body}"))
    }

    /// Authorization code + PKCE with the Azure CLI's public client, through the login form.
    async fn sign_in_alice(&self) -> Check<String> {
        let local = self.target.local.as_ref().ok_or("local only")?;
        let cli = local.manifest.clients.get("azure-cli").ok_or("no azure-cli client in the manifest")?;
        let mcp_uri = local
            .manifest
            .app("orders-mcp")
            .and_then(|a| a.identifier_uri.as_ref())
            .map(|t| t.render(&local.vars))
            .ok_or("no orders-mcp")?;
        let verifier = entra_auth::pkce::verifier().map_err(|e| e.to_string())?;
        let challenge = entra_auth::pkce::challenge(&verifier);
        let redirect = "http://localhost:8400/";
        let scope = format!("{mcp_uri}/access_as_user");
        let authorize = format!(
            "{}/{}/oauth2/v2.0/authorize",
            self.target.authority.as_str().trim_end_matches('/'),
            self.target.tenant
        );
        let alice = local.manifest.user("alice").ok_or("no alice")?;
        let form = [
            ("client_id", cli.client_id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", redirect),
            ("scope", &scope),
            ("state", "verify"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login", &alice.name),
            ("password", &alice.password),
        ];
        let r = self.http.post(&authorize).form(&form).send().await.map_err(describe)?;
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or(format!("login answered {}", r.status()))?;
        let code = Url::parse(location)
            .map_err(|e| e.to_string())?
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .ok_or("no code in the redirect")?;
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", cli.client_id.as_str()),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", &verifier),
            ("scope", &scope),
        ];
        let r = self.http.post(self.token_endpoint()).form(&form).send().await.map_err(describe)?;
        let body: Value = r.json().await.map_err(describe)?;
        body["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no token: {}", body["error_description"]))
    }

    async fn mcp_initialize(&self, mcp: &Url, token: &str) -> Check<String> {
        let r = self.mcp_request(mcp, &initialize_body()).bearer_auth(token).send().await.map_err(describe)?;
        let session = r.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        let content_type =
            r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let status = r.status();
        let body = r.text().await.map_err(describe)?;
        if !status.is_success() {
            return Err(format!("{status}: {body}"));
        }
        jsonrpc_result(&content_type, &body)?;
        let session = session.unwrap_or_default();
        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let mut request = self.mcp_request(mcp, &note).bearer_auth(token);
        if !session.is_empty() {
            request = request.header("mcp-session-id", &session);
        }
        request.send().await.map_err(describe)?;
        Ok(session)
    }

    async fn mcp_call(&self, mcp: &Url, token: &str, session: &str, method: &str, params: Value) -> Check<Value> {
        let body = json!({ "jsonrpc": "2.0", "id": 2, "method": method, "params": params });
        let mut request = self.mcp_request(mcp, &body).bearer_auth(token).header("mcp-protocol-version", "2025-06-18");
        if !session.is_empty() {
            request = request.header("mcp-session-id", session);
        }
        let r = request.send().await.map_err(describe)?;
        let content_type =
            r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let body = r.text().await.map_err(describe)?;
        jsonrpc_result(&content_type, &body)
    }

    /// Prints the table; returns the number of failures.
    fn report(&self) -> usize {
        println!("\n{:<4} {:<70} detail", "", "check");
        println!("{}", "-".repeat(110));
        let (mut passed, mut failed, mut skipped) = (0, 0, 0);
        for (name, outcome) in &self.results {
            let (mark, detail) = match outcome {
                Outcome::Pass(d) => {
                    passed += 1;
                    ("PASS", d.as_str())
                }
                Outcome::Fail(d) => {
                    failed += 1;
                    ("FAIL", d.as_str())
                }
                Outcome::Skip(d) => {
                    skipped += 1;
                    ("skip", d.as_str())
                }
            };
            println!("{mark:<4} {name:<70} {detail}");
        }
        println!("\n{passed} passed, {failed} failed, {skipped} skipped");
        failed
    }
}

fn initialize_body() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "xtask-verify", "version": "1" } }
    })
}

fn truncate(s: &str) -> String {
    if s.len() > 48 {
        format!("{}…", &s[..s.char_indices().nth(47).map_or(s.len(), |(i, _)| i)])
    } else {
        s.to_string()
    }
}
