//! The fake Microsoft Entra token service, for agent mode's sign-ins to its public client only.
//!
//! In the browser ("Microsoft identity platform and OAuth 2.0 authorization code flow",
//! https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow): `GET
//! /{tenant}/oauth2/v2.0/authorize` checks the client (a new one is "not found", AADSTS700016,
//! until it replicates: [`Config::client_lag`]) and its redirect URI first and shows a problem
//! with either on a page (never redirecting to an unverified URI); the redirect URI
//! must match one of the app's `publicClient.redirectUris`, exactly but for the port of a
//! loopback one ("the port component ... is ignored for the purposes of matching a redirect
//! URI"; `localhost` and `127.0.0.1` differ: https://learn.microsoft.com/entra/identity-platform/reply-url).
//! Then `response_type=code`, a `scope`, and PKCE with `S256`. Here the fake is stricter than
//! Entra, on purpose: Entra recommends PKCE for every app but requires it only of single-page
//! apps, and "supports both plain and S256" (v2-oauth2-auth-code-flow, `code_challenge_method`);
//! the hook always sends `S256`, so a regression to `plain` or to no PKCE fails a test here
//! rather than weakening a public client's sign-in in a tenant. Then the person's answer
//! ([`SignInAnswer`]) goes to the redirect URI: `code` and `state`, or `error=access_denied`.
//! `POST .../token` with `grant_type=authorization_code` redeems a code once, for the client,
//! redirect URI and `code_verifier` it was issued for (AADSTS54005, AADSTS50148).
//!
//! By device code ("Microsoft identity platform and the OAuth 2.0 device authorization grant flow",
//! https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code), in Entra's wire
//! format: `POST /{tenant}/oauth2/v2.0/devicecode` (`client_id`, `scope`) answers `device_code`,
//! `user_code`, `verification_uri`, `expires_in`, `interval`, `message`; `POST .../token` with
//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` answers `authorization_pending`
//! until the person answers ([`super::SignInAnswer`]), then a token or `authorization_declined`
//! (a person who never answers: pending until the client gives up at `expires_in`). Errors are Entra's body (`error`, `error_description` with the AADSTS
//! code, `error_codes`, ...).
//!
//! Entra's rules: the client must be an app registration of the tenant; for the device code flow
//! one that allows public client flows (`isFallbackPublicClient`; otherwise AADSTS7000218, the
//! confidential-client error); an administrator must have consented to its Microsoft Graph
//! permissions (otherwise AADSTS65001). The token carries exactly the consented scopes.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use url::Url;

use super::graph::GRAPH_PRINCIPAL_ID;
use super::reply::{json_response, new_id};
use super::state::{AuthCode, Caller, Config, Directory, SignInAnswer};

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Answers `path` when it is a token service endpoint.
pub fn route(dir: &mut Directory, config: &Config, method: &Method, uri: &Uri, body: &[u8]) -> Option<Response> {
    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    let [tenant, "oauth2", "v2.0", endpoint] = segments.as_slice() else { return None };
    if *endpoint == "authorize" && method == Method::GET && tenant.eq_ignore_ascii_case(&config.tenant_id) {
        let query: BTreeMap<String, String> =
            url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
        return Some(authorize(dir, config, &query));
    }
    if method != Method::POST {
        return Some(entra_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", 900561, "Use POST."));
    }
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    if !tenant.eq_ignore_ascii_case(&config.tenant_id) {
        return Some(entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        ));
    }
    Some(match *endpoint {
        "devicecode" => device_code(dir, config, &form),
        "token" => token(dir, config, &form),
        _ => entra_error(StatusCode::NOT_FOUND, "invalid_request", 900561, "Unknown endpoint."),
    })
}

fn device_code(dir: &mut Directory, config: &Config, form: &BTreeMap<String, String>) -> Response {
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    if form.get("scope").is_none_or(String::is_empty) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        );
    }
    if dir.known_client(&client_id, config.client_lag).is_none() {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory."),
        );
    }
    let device_code = new_id();
    let user_code = "FAKE1234";
    dir.device_codes.insert(device_code.clone(), (client_id, 0));
    json_response(
        StatusCode::OK,
        json!({
            "user_code": user_code, "device_code": device_code,
            "verification_uri": "https://microsoft.com/devicelogin",
            "expires_in": config.device_expires_in, "interval": config.device_interval,
            "message": format!("To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code {user_code} to authenticate."),
        }),
    )
}

/// Whether `requested` matches `registered`: exactly, but for the port of a loopback `http` one.
fn redirect_matches(registered: &str, requested: &str) -> bool {
    let (Ok(reg), Ok(req)) = (Url::parse(registered), Url::parse(requested)) else { return false };
    let loopback = reg.scheme() == "http" && matches!(reg.host_str(), Some("localhost" | "127.0.0.1"));
    if !loopback {
        return reg == req;
    }
    (req.scheme(), req.host_str(), req.path(), req.query(), req.fragment())
        == (reg.scheme(), reg.host_str(), reg.path(), reg.query(), reg.fragment())
}

/// A problem shown on Entra's page: the client or its redirect URI cannot be trusted.
fn error_page(code: u32, message: &str) -> Response {
    let text = format!("Sign in\nSorry, but we're having trouble signing you in.\nAADSTS{code}: {message}");
    (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], text).into_response()
}

/// Back to the (verified) redirect URI with `params`.
fn redirect_to(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let mut url = Url::parse(redirect_uri).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

fn authorize(dir: &mut Directory, config: &Config, query: &BTreeMap<String, String>) -> Response {
    let get = |k: &str| query.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let client_id = get("client_id").unwrap_or_default();
    // A client registered moments ago is unknown until it replicates, as at `/devicecode`.
    let Some(app) = dir.known_client(client_id, config.client_lag) else {
        return error_page(
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory."),
        );
    };
    let redirect_uri = get("redirect_uri").unwrap_or_default();
    let registered = app["publicClient"]["redirectUris"].as_array().cloned().unwrap_or_default();
    if !registered.iter().any(|r| redirect_matches(r.as_str().unwrap_or_default(), redirect_uri)) {
        return error_page(
            50011,
            &format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'."
            ),
        );
    }
    let state = get("state").unwrap_or_default();
    let fail = |error: &str, code: u32, message: &str| {
        let description = format!("AADSTS{code}: {message}");
        redirect_to(redirect_uri, &[("error", error), ("error_description", &description), ("state", state)])
    };
    if get("response_type") != Some("code") {
        return fail("unsupported_response_type", 700054, "response_type is not enabled for the application.");
    }
    if get("scope").is_none() {
        return fail("invalid_request", 900144, "The request body must contain the following parameter: 'scope'.");
    }
    // Stricter than Entra (see the module doc): the answers reuse Entra's shape, not a documented
    // Entra refusal for a native client.
    let Some(code_challenge) = get("code_challenge") else {
        return fail(
            "invalid_request",
            9002325,
            "Proof Key for Code Exchange is required for cross-origin authorization code redemption.",
        );
    };
    if get("code_challenge_method") != Some("S256") {
        return fail("invalid_request", 501491, "Invalid code_challenge_method: only S256 is accepted.");
    }
    match config.sign_in_answer {
        SignInAnswer::Approve => {
            let code = new_id();
            let issued = AuthCode {
                client_id: client_id.to_string(),
                redirect_uri: redirect_uri.to_string(),
                code_challenge: code_challenge.to_string(),
            };
            dir.auth_codes.insert(code.clone(), issued);
            redirect_to(redirect_uri, &[("code", &code), ("state", state), ("session_state", &new_id())])
        }
        SignInAnswer::Decline => fail("access_denied", 65004, "User declined to consent to access the app."),
        // The person never gets past the sign-in page.
        SignInAnswer::Expire => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], "Sign in").into_response()
        }
    }
}

fn token(dir: &mut Directory, config: &Config, form: &BTreeMap<String, String>) -> Response {
    match form.get("grant_type").map(String::as_str) {
        Some(DEVICE_CODE_GRANT) => device_code_token(dir, config, form),
        Some("authorization_code") => authorization_code_token(dir, form),
        _ => entra_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", 70003, "Unsupported grant type."),
    }
}

/// A code redeemed once, by the client it was issued to, with the same redirect URI and the
/// verifier of its challenge (RFC 7636 §4.6).
fn authorization_code_token(dir: &mut Directory, form: &BTreeMap<String, String>) -> Response {
    let code = form.get("code").cloned().unwrap_or_default();
    // Removed whatever the outcome: a code is tried once.
    let Some(issued) = dir.auth_codes.remove(&code) else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        );
    };
    if form.get("client_id") != Some(&issued.client_id) {
        return entra_error(StatusCode::BAD_REQUEST, "invalid_grant", 70000, "The code was issued to another client.");
    }
    if form.get("redirect_uri") != Some(&issued.redirect_uri) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70000,
            "The redirect URI is not the one the code was issued for.",
        );
    }
    let verified = form.get("code_verifier").is_some_and(|v| entra_auth::pkce::verifies(v, &issued.code_challenge));
    if !verified {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50148,
            "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.",
        );
    }
    let response = consented_token(dir, &issued.client_id);
    if response.status().is_success() {
        dir.browser_sign_ins += 1;
    }
    response
}

fn device_code_token(dir: &mut Directory, config: &Config, form: &BTreeMap<String, String>) -> Response {
    let code = form.get("device_code").cloned().unwrap_or_default();
    let Some((client_id, polls)) = dir.device_codes.get_mut(&code) else {
        return entra_error(StatusCode::BAD_REQUEST, "invalid_grant", 70000, "The provided device code is invalid.");
    };
    if form.get("client_id") != Some(client_id) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70000,
            "The device code was issued to another client.",
        );
    }
    *polls += 1;
    let (client_id, polls) = (client_id.clone(), *polls);
    // The person looks at the page after the first poll; one who never does lets the code expire.
    if polls == 1 || config.sign_in_answer == SignInAnswer::Expire {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        );
    }
    dir.device_codes.remove(&code);
    match config.sign_in_answer {
        SignInAnswer::Decline => {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "authorization_declined",
                70000,
                "The end user denied the authorization request.",
            );
        }
        SignInAnswer::Approve | SignInAnswer::Expire => {}
    }
    let app = dir.applications.values().find(|a| a["appId"] == client_id.as_str()).cloned().unwrap_or_default();
    if app["isFallbackPublicClient"] != true {
        return entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    }
    let response = consented_token(dir, &client_id);
    if response.status().is_success() {
        dir.device_sign_ins += 1;
    }
    response
}

/// A token for `client_id` with the Microsoft Graph permissions an administrator consented to
/// for it, or AADSTS65001.
fn consented_token(dir: &mut Directory, client_id: &str) -> Response {
    let app = dir.applications.values().find(|a| a["appId"] == client_id).cloned().unwrap_or_default();
    let principal = dir.service_principals.iter().find(|(_, sp)| sp["appId"] == client_id).map(|(id, _)| id);
    let consented = principal.and_then(|id| {
        dir.grants.values().find(|g| {
            g["clientId"] == id.as_str() && g["resourceId"] == GRAPH_PRINCIPAL_ID && g["consentType"] == "AllPrincipals"
        })
    });
    let Some(grant) = consented else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            65001,
            &format!(
                "The user or administrator has not consented to use the application with ID '{client_id}' named '{}'. Send an interactive authorization request for this user and resource.",
                app["displayName"].as_str().unwrap_or_default()
            ),
        );
    };
    let scope = grant["scope"].as_str().unwrap_or_default().to_string();
    let access_token = format!("fake-device-token-{}", new_id());
    let scopes = scope.split_whitespace().map(str::to_string).collect();
    dir.tokens.insert(access_token.clone(), Caller { client_id: client_id.to_string(), scopes });
    json_response(
        StatusCode::OK,
        json!({"token_type": "Bearer", "scope": scope, "expires_in": 3599, "ext_expires_in": 3599,
               "access_token": access_token}),
    )
}

/// Entra's OAuth error body.
fn entra_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let body: Value = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description} Trace ID: {} Correlation ID: {} Timestamp: 2025-01-01 00:00:00Z", new_id(), new_id()),
        "error_codes": [code],
        "timestamp": "2025-01-01 00:00:00Z",
        "trace_id": new_id(),
        "correlation_id": new_id(),
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    json_response(status, body)
}
