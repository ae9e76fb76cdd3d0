//! On-Behalf-Of: a middle-tier API exchanges the user's token for a token to call the next
//! API as that same user. Results are cached per user and scope until shortly before expiry.
//!
//! A user token that carries Conditional Access authentication contexts (`acrs`, after a
//! step-up) is exchanged asking for them again (`claims`): Entra issues `acrs` only when a
//! client requests it, and the next API may demand it ("Claims challenges, claims requests and
//! client capabilities"). Such a token is cached apart from the same user's token without them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use service_kit::telemetry::context::set_attribute;
use tracing::Instrument;

use super::cache::TokenCache;
use super::client::ConfidentialClient;
use super::error::AcquireError;
use super::token::AccessToken;
use crate::span_attributes;
use crate::validate::Caller;

/// Cache key: the user (tenant + object id), the agent acting for them (Microsoft Entra Agent
/// ID; empty when none) and the requested scope. Two users never share an entry; one user's
/// calls through an agent never reuse a token exchanged for their own calls, or the other way
/// round: the result names the agent (see `hop::AgentActor`), and policies downstream tell them apart.
/// Last, the authentication contexts of the user's token: a token exchanged before a step-up
/// (no `acrs`) is never handed out for a request whose token has stepped up, nor the reverse.
type Key = (String, String, String, String, Vec<String>);

fn key(caller: &Caller, scope: &str) -> Key {
    let agent = caller.agent.as_ref().map(|a| a.id.clone()).unwrap_or_default();
    let mut acrs = caller.acrs.clone();
    acrs.sort();
    (caller.tid.clone(), caller.oid.clone(), agent, scope.to_string(), acrs)
}

/// The claims request that keeps the user's authentication contexts through the exchange.
pub fn auth_context_claims(acrs: &[String]) -> Option<String> {
    if acrs.is_empty() {
        return None;
    }
    Some(serde_json::json!({ "access_token": { "acrs": { "essential": true, "values": acrs } } }).to_string())
}

pub struct OnBehalfOf {
    client: ConfidentialClient,
    cache: TokenCache<Key>,
}

impl OnBehalfOf {
    pub fn new(client: ConfidentialClient) -> Self {
        OnBehalfOf { client, cache: TokenCache::new(Duration::from_secs(300)) }
    }

    /// A token for `scope` (e.g. `api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/.default`) on behalf of `caller`,
    /// whose validated access token is `user_token`.
    pub async fn token(&self, caller: &Caller, user_token: &str, scope: &str) -> Result<AccessToken, AcquireError> {
        if !caller.is_user() {
            return Err(AcquireError::NotConfigured("On-Behalf-Of needs a user token, not an app-only token".into()));
        }
        let key = key(caller, scope);
        let issued = AtomicBool::new(false);
        let token = self
            .cache
            .get_or_fetch(key, || {
                issued.store(true, Ordering::Relaxed);
                // A span for the exchange only (a request to the identity provider, which
                // continues it); a cache hit is a lookup, noted on the caller's span below.
                let span = tracing::info_span!("obo.token", otel.kind = "client", %scope);
                let claims = auth_context_claims(&caller.acrs);
                async move {
                    let token = self.client.on_behalf_of(user_token, scope, claims.as_deref()).await?.access();
                    // Only once one was: a refused exchange issued nothing.
                    set_attribute(&tracing::Span::current(), span_attributes::TOKEN_SOURCE, "issued");
                    Ok(token)
                }
                .instrument(span)
            })
            .await?;
        if !issued.load(Ordering::Relaxed) {
            set_attribute(&tracing::Span::current(), span_attributes::TOKEN_SOURCE, "cache");
        }
        Ok(token)
    }

    /// Drops `caller`'s cached token for `scope`, e.g. after the downstream API refused it.
    pub fn forget(&self, caller: &Caller, scope: &str) {
        self.cache.invalidate(&key(caller, scope));
    }

    pub fn client(&self) -> &ConfidentialClient {
        &self.client
    }
}
