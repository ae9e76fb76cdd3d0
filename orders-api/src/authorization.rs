//! Who may do what. Each route names a [`Policy`] over the [`permissions`](crate::permissions),
//! and [`Permitted`] turns a request into the [`User`] it acts for, or refuses it.
//!
//! | operation | needs |
//! |---|---|
//! | read (list, get) | scope `Orders.Read` or `Orders.ReadWrite` |
//! | create, cancel | scope `Orders.ReadWrite` |
//! | delete | scope `Orders.ReadWrite` and app role `Orders.Admin` |
//!
//! A user sees and changes only their own orders (`owner_oid` = token `oid`); `Orders.Admin`
//! sees and changes all. App-only tokens carry no scope, so every policy refuses them. A user's
//! token counts only if it was issued to orders-mcp (its `appid`/`azp`): see [`client_allowed`].
//!
//! A call by an agent (Microsoft Entra Agent ID: the token names one, see
//! `entra_auth::hop::AgentActor`) is judged by the same scopes and roles, never by which agent or
//! blueprint it is; `ORDERS_API_AGENT_POLICY` can then only take away (agents read-only, or
//! users' own tokens only, or agents' writes only with the user's step-up: the token's `acrs`
//! holds the approval's authentication context, as validated by entra-auth; nothing else a
//! request carries counts as approval).

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use entra_auth::claims_challenge::ClaimsChallenge;
use entra_auth::guard::{AuthError, Policy};
use entra_auth::hop::How;
use entra_auth::validate::Caller;

use crate::configuration::AgentPolicy;
use crate::domain::User;
use crate::error::ApiError;
use crate::hop_trace::{DenyReason, HopSlot};
use crate::permissions::{ADMIN, READ, READ_WRITE, SCOPES};
use crate::state::AppState;

pub struct ReadOrders;
impl Policy for ReadOrders {
    const SCOPES: &'static [&'static str] = &[READ, READ_WRITE];
}

pub struct WriteOrders;
impl Policy for WriteOrders {
    const SCOPES: &'static [&'static str] = &[READ_WRITE];
}

pub struct DeleteOrders;
impl Policy for DeleteOrders {
    const SCOPES: &'static [&'static str] = &[READ_WRITE];
    const ROLES: &'static [&'static str] = &[ADMIN];
}

/// The user a validated caller is: admin when the token carries the `Orders.Admin` role.
fn user(caller: &Caller) -> User {
    let name = caller.name.clone().or_else(|| caller.preferred_username.clone()).unwrap_or_else(|| caller.oid.clone());
    User { oid: caller.oid.clone(), name, admin: caller.has_role(ADMIN) }
}

/// A user that passed policy `P`. As a handler argument it must come first, so that an
/// unauthenticated request is refused before anything about it is parsed.
pub struct Permitted<P: Policy>(pub User, pub PhantomData<P>);

impl<P: Policy> FromRequestParts<AppState> for Permitted<P> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = state.guard.authenticate(parts).await.map_err(IntoResponse::into_response)?;
        let how = how_it_arrived(&caller, state.passthrough_audience.as_deref());
        let granted;
        let effective = match how {
            How::Forwarded => {
                granted = passthrough_grant(&caller);
                &granted
            }
            // The caller as it is: checked in place, not copied (this runs on every request).
            _ => &*caller,
        };
        // The client first (no challenge sends another app for consent it could not use), then
        // scopes and roles, then what ORDERS_API_AGENT_POLICY takes away.
        let checked = match client_allowed(effective, how, &state.orders_mcp_client_id) {
            Err(refused) => Err(refused.into_response()),
            Ok(()) => state.guard.check::<P>(effective).map_err(denied),
        };
        let permitted = match checked {
            Err(refused) => Err(refused),
            Ok(()) => match agent_allowed(state.agent_policy, &state.approval, effective, parts.method.is_safe()) {
                Err(refused) => Err(refused.into_response()),
                Ok(()) => Ok(user(effective)),
            },
        };
        if let Some(slot) = parts.extensions.get::<HopSlot>() {
            slot.record(caller, how);
        }
        Ok(Permitted(permitted?, PhantomData))
    }
}

/// orders-api is only ever called by orders-mcp, which exchanges the user's token through
/// On-Behalf-Of; the one exception is a token for orders-mcp itself, forwarded unchanged, and
/// only accepted at all when that audience was explicitly allowed.
fn how_it_arrived(caller: &Caller, passthrough_audience: Option<&str>) -> How {
    if passthrough_audience == Some(caller.audience.as_str()) { How::Forwarded } else { How::Obo }
}

/// What a forwarded orders-mcp token may do here when passthrough is allowed: everything a
/// user may do with their own orders, whatever its scopes say. That blanket trust is the
/// confused-deputy problem the passthrough demonstration exists to show. Roles are dropped:
/// orders-mcp's roles mean nothing here, so passthrough never grants `Orders.Admin`.
fn passthrough_grant(caller: &Caller) -> Caller {
    let mut granted = caller.clone();
    if granted.is_user() {
        granted.scopes = SCOPES.iter().map(|s| s.to_string()).collect();
    }
    granted.roles.clear();
    granted
}

/// "The actor (client app) is authorized" ("Secure applications and APIs by validating claims",
/// learn.microsoft.com/entra/identity-platform/claims-validation): any application a user or an
/// administrator consented to `Orders.*` for can get a token for orders-api with the user's
/// scopes, yet users reach orders-api only through orders-mcp, which exchanges their token
/// On-Behalf-Of (so the token's client is orders-mcp, an agent's call included: the agent is its
/// actor). A user's token issued to any other client is refused. (App-only tokens are refused by
/// every policy anyway, for their missing scope.) A forwarded orders-mcp token (the passthrough
/// demonstration) names another client by construction and is let through, as the failure that
/// demonstration shows.
fn client_allowed(caller: &Caller, how: How, orders_mcp: &str) -> Result<(), ApiError> {
    // Client ids are GUIDs, which compare without regard to case.
    if how == How::Forwarded || !caller.is_user() || caller.client_id.eq_ignore_ascii_case(orders_mcp) {
        Ok(())
    } else {
        Err(ApiError::ClientRefused)
    }
}

/// `ORDERS_API_AGENT_POLICY` for a caller that passed the scope and role checks.
fn agent_allowed(policy: AgentPolicy, approval: &ClaimsChallenge, caller: &Caller, read: bool) -> Result<(), ApiError> {
    let Some(agent) = &caller.agent else {
        return Ok(());
    };
    let who = caller.name.as_deref().unwrap_or(&caller.oid);
    match policy {
        AgentPolicy::Allow => Ok(()),
        AgentPolicy::ReadOnly | AgentPolicy::ApprovedWrites if read => Ok(()),
        AgentPolicy::ApprovedWrites => {
            // Fail closed: a challenge naming no context is never satisfied.
            let needed = approval.auth_contexts();
            if !needed.is_empty() && needed.iter().all(|c| caller.has_auth_context(c)) {
                return Ok(());
            }
            let context = needed.join(" ");
            Err(ApiError::StepUpRequired {
                challenge: approval.header_value(),
                detail: format!(
                    "needs step-up {context}: agent {} acts for {who}, and an agent's change to orders needs {who}'s \
                     fresh confirmation at sign-in (authentication context {context}, ORDERS_API_AGENT_POLICY=approved-writes)",
                    agent.id
                ),
            })
        }
        AgentPolicy::ReadOnly => Err(ApiError::AgentRefused(format!(
            "agent {} acts for {who}: agents may read orders here but not change them \
             (ORDERS_API_AGENT_POLICY=read-only); {who} can do it with their own sign-in",
            agent.id
        ))),
        AgentPolicy::UsersOnly => Err(ApiError::AgentRefused(format!(
            "this API accepts a user's own token only (ORDERS_API_AGENT_POLICY=users-only); this one is agent {}'s, \
             acting for {who}",
            agent.id
        ))),
    }
}

fn denied(error: AuthError) -> Response {
    let reason = error.detail();
    let mut response = error.into_response();
    response.extensions_mut().insert(DenyReason(reason));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_and_role_names_exist_in_the_manifest() {
        let manifest = entra_manifest::Manifest::load(entra_manifest::REPOSITORY_MANIFEST).unwrap();
        let api = manifest.app("orders-api").unwrap();
        for scope in SCOPES {
            assert!(api.scope(scope).is_some(), "scope {scope} is not defined for orders-api");
        }
        assert!(api.app_role(ADMIN).is_some(), "role {ADMIN} is not defined for orders-api");
        let policies: [&[&str]; 4] =
            [ReadOrders::SCOPES, WriteOrders::SCOPES, DeleteOrders::SCOPES, DeleteOrders::ROLES];
        for name in policies.into_iter().flatten() {
            assert!(api.scope(name).is_some() || api.app_role(name).is_some(), "{name} is not in the manifest");
        }
    }
}
