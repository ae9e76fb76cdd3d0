//! Users of orders-api directly, as a client that retries: each creation carries an
//! Idempotency-Key and is retried with the same key until orders-api answers (through its
//! SIGKILL and restart), so that "nothing acknowledged is lost, nothing created twice" is
//! checked at the point where a retry can go wrong. Every 201 is recorded; every order listed
//! must be the user's own.
//!
//! The token: the user signs in with the Azure CLI's public client for orders-mcp (authorization
//! code + PKCE through the emulator's login form), then the run exchanges it On-Behalf-Of with
//! orders-mcp's emulator-only secret, the exchange orders-mcp itself makes; orders-api accepts
//! nothing else.

use std::time::{Duration, Instant};

use entra_auth::acquire::describe;
use entra_auth::pkce;
use reqwest::Method;
use serde_json::{Value, json};
use url::Url;

use super::browser::Browser;
use super::record::{Acknowledged, Recorder};
use super::user::Identity;

/// Where the Azure CLI's client receives the code (never followed: the code is in the redirect).
const REDIRECT_URI: &str = "http://localhost:8400/";

/// What the run needs from the manifest to mint a user's token for orders-api.
pub struct TokenSource {
    pub token_endpoint: String,
    pub authorize_endpoint: String,
    pub cli_client_id: String,
    pub mcp_client_id: String,
    pub mcp_secret: String,
    pub mcp_scope: String,
    pub api_scope: String,
}

impl TokenSource {
    /// A token for orders-api acting for `user`.
    pub async fn token_for(&self, http: &reqwest::Client, user: &Identity) -> Result<String, String> {
        let verifier = pkce::verifier().map_err(|e| e.to_string())?;
        let challenge = pkce::challenge(&verifier);
        let form = [
            ("client_id", self.cli_client_id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", &self.mcp_scope),
            ("state", "soak"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login", &user.name),
            ("password", &user.password),
        ];
        let r = http.post(&self.authorize_endpoint).form(&form).send().await.map_err(describe)?;
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
        let user_token = self
            .token(
                http,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", &self.cli_client_id),
                    ("code", &code),
                    ("redirect_uri", REDIRECT_URI),
                    ("code_verifier", &verifier),
                    ("scope", &self.mcp_scope),
                ],
            )
            .await?;
        self.token(
            http,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("client_id", &self.mcp_client_id),
                ("client_secret", &self.mcp_secret),
                ("assertion", &user_token),
                ("scope", &self.api_scope),
                ("requested_token_use", "on_behalf_of"),
            ],
        )
        .await
    }

    async fn token(&self, http: &reqwest::Client, form: &[(&str, &str)]) -> Result<String, String> {
        let body: Value = http
            .post(&self.token_endpoint)
            .form(form)
            .send()
            .await
            .map_err(describe)?
            .json()
            .await
            .map_err(describe)?;
        body["access_token"].as_str().map(str::to_string).ok_or_else(|| format!("no token: {body}"))
    }
}

pub struct ApiUser {
    pub label: String,
    pub identity: Identity,
    pub token: String,
    pub api: Url,
    pub browser: Browser,
    pub recorder: Recorder,
}

impl ApiUser {
    /// Creates, re-sends (the same key must answer the same order), lists and cancels, until
    /// `until`.
    pub async fn run(self, until: Instant, think: Duration) {
        let mut n = 0u32;
        while Instant::now() < until {
            n += 1;
            if let Some(id) = self.create(n, until).await {
                self.list().await;
                self.cancel(&id).await;
            }
            tokio::time::sleep(think).await;
        }
    }

    /// One creation, retried with the same key until orders-api answers it (or the run is
    /// almost over); the 201 is recorded, and a repeat must name the same order.
    async fn create(&self, n: u32, until: Instant) -> Option<String> {
        let key = service_kit::secret::hex::<16>().ok()?;
        let product = format!("soak {} {n}", self.label);
        let url = self.api.join("/api/orders").ok()?;
        let body = json!({"product": product, "quantity": 1});
        let mut first: Option<String> = None;
        // Retries end a little after the run does: an acknowledged key is the point.
        let give_up = until + Duration::from_secs(15);
        while Instant::now() < give_up {
            let request = self
                .browser
                .request(Method::POST, &url)
                .bearer_auth(&self.token)
                .header("idempotency-key", &key)
                .json(&body);
            match self.browser.fetch("POST /api/orders (orders-api)", &url, request).await {
                Ok(page) if page.status == 201 || page.status == 200 => {
                    let order: Value = serde_json::from_str(&page.body).unwrap_or_default();
                    let id = order["id"].as_str().unwrap_or_default().to_string();
                    match &first {
                        None => {
                            self.recorder.acknowledged(Acknowledged {
                                id: id.clone(),
                                owner_oid: self.identity.oid.clone(),
                                idempotency_key: key.clone(),
                                product: product.clone(),
                            });
                            first = Some(id);
                            // Every third creation is sent again, as a client whose answer was lost.
                            if !n.is_multiple_of(3) {
                                return first;
                            }
                        }
                        Some(earlier) if *earlier == id => return first,
                        Some(earlier) => {
                            self.recorder.leak(format!("key {key} answered {earlier}, then {id}"));
                            return first;
                        }
                    }
                }
                Ok(page) if page.status < 500 && page.status != 409 => {
                    self.recorder.message(&format!("orders-api: {} {}", page.status, page.body));
                    return first;
                }
                Ok(page) => self.recorder.message(&format!("orders-api: {} {}", page.status, page.body)),
                Err(e) => self.recorder.message(&format!("orders-api: {e}")),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        first
    }

    async fn list(&self) {
        let Ok(url) = self.api.join("/api/orders?limit=100") else { return };
        let request = self.browser.request(Method::GET, &url).bearer_auth(&self.token);
        let Ok(page) = self.browser.fetch("GET /api/orders (orders-api)", &url, request).await else { return };
        if page.status != 200 || self.identity.admin {
            return;
        }
        let listed: Value = serde_json::from_str(&page.body).unwrap_or_default();
        let orders = listed["orders"].as_array().cloned().unwrap_or_default();
        for order in orders {
            if order["owner_oid"].as_str() != Some(self.identity.oid.as_str()) {
                self.recorder
                    .leak(format!("{} was shown {} of {}", self.identity.name, order["id"], order["owner_oid"]));
            }
        }
    }

    async fn cancel(&self, id: &str) {
        let Ok(url) = self.api.join(&format!("/api/orders/{id}/cancel")) else { return };
        let request = self.browser.request(Method::POST, &url).bearer_auth(&self.token);
        if let Ok(page) = self.browser.fetch("POST /api/orders/{id}/cancel (orders-api)", &url, request).await
            && page.status >= 400
        {
            self.recorder.message(&format!("orders-api cancel: {} {}", page.status, page.body));
        }
    }
}
