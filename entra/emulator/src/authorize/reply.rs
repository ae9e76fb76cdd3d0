//! Answers to the client's (verified) redirect URI: the code or an error, in the query string or
//! as a `form_post`, with the request's `state`.

use axum::response::{IntoResponse, Redirect, Response};
use url::Url;

use super::request::{AuthorizeRequest, Failure};
use crate::error::{self, EntraError};
use crate::pages;

pub fn redirect_with(request: &AuthorizeRequest, mut params: Vec<(String, String)>) -> Response {
    if let Some(state) = &request.state {
        params.push(("state".into(), state.clone()));
    }
    if request.form_post {
        return pages::form_post(&request.redirect_uri, &params);
    }
    match Url::parse(&request.redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params.iter());
            Redirect::to(url.as_str()).into_response()
        }
        Err(_) => pages::error(&EntraError::new("invalid_request", 50011, "The redirect URI is not a valid URL.")),
    }
}

/// An error as Entra sends it back to the client: `error`, `error_description` with the AADSTS
/// code, `error_uri`, and `error_subcode` for a sub-error.
pub fn error(request: &AuthorizeRequest, e: EntraError) -> Response {
    let (trace, correlation) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let mut params = vec![
        ("error".to_string(), e.suberror.unwrap_or(e.error).to_string()),
        ("error_description".to_string(), e.description(&trace, &correlation, &error::timestamp())),
        ("error_uri".to_string(), e.error_uri()),
    ];
    if e.suberror.is_some() {
        params.push(("error_subcode".into(), e.error.to_string()));
    }
    redirect_with(request, params)
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::Page(e) => pages::error(&e),
            Failure::Redirect(request, e) => error(&request, e),
        }
    }
}
