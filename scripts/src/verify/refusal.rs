//! What a refused request must look like: 401 with a Bearer challenge that names the resource
//! metadata (RFC 9728 §5.1), or 403 `insufficient_scope` (RFC 6750 §3.1).

use entra_auth::acquire::describe;

use super::report::Check;

/// The request must get 401 with a Bearer challenge naming the metadata (and `error`, if given).
pub async fn challenge(request: reqwest::RequestBuilder, error: Option<&str>) -> Check<String> {
    let response = request.send().await.map_err(describe)?;
    if response.status() != 401 {
        return Err(format!("expected 401, got {}", response.status()));
    }
    let header = www_authenticate(&response);
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

/// The request must get 400 `invalid_request` (RFC 6750 §3.1: a malformed request, such as a
/// token in the query string, which these services never read), with the challenge.
pub async fn malformed(request: reqwest::RequestBuilder) -> Check<String> {
    let response = request.send().await.map_err(describe)?;
    let header = www_authenticate(&response);
    if response.status() != 400 || !header.contains("error=\"invalid_request\"") {
        return Err(format!("expected 400 invalid_request, got {} {header}", response.status()));
    }
    Ok("400 invalid_request".into())
}

/// The request must get 403 `insufficient_scope`.
pub async fn forbidden(request: reqwest::RequestBuilder) -> Check<String> {
    let response = request.send().await.map_err(describe)?;
    let challenge = www_authenticate(&response);
    if response.status() == 403 && names_insufficient_scope(&challenge) {
        Ok(INSUFFICIENT_SCOPE.into())
    } else {
        Err(format!("{} {challenge}", response.status()))
    }
}

/// The detail of a passed 403 check.
pub const INSUFFICIENT_SCOPE: &str = "403 insufficient_scope";

/// Whether a 403's challenge says the token lacks the scope the request needs (a missing app
/// role is a 403 `missing-role` problem with no challenge: it is not checked here).
pub fn names_insufficient_scope(challenge: &str) -> bool {
    challenge.contains("insufficient_scope")
}

fn www_authenticate(response: &reqwest::Response) -> String {
    response.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}
