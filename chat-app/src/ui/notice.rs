//! Error and status notices, so no failure is a blank screen.

use leptos::prelude::*;

use crate::views::{SIGN_IN_REQUIRED, sign_in_url};

/// A problem the user can understand, with what to do next.
#[component]
pub fn Notice(
    #[prop(into)] title: String,
    #[prop(into)] detail: String,
    #[prop(optional, into)] action: Option<(String, String)>,
) -> impl IntoView {
    view! {
        <section class="notice" role="alert">
            <h2>{title}</h2>
            <p>{detail}</p>
            {action
                .map(|(href, label)| {
                    view! {
                        <a class="button" href=href rel="external">
                            {label}
                        </a>
                    }
                })}
        </section>
    }
}

/// The notice for a failed server call: sign in again, or what went wrong.
#[component]
pub fn ServerError(error: ServerFnError, return_to: &'static str) -> impl IntoView {
    let message = error_message(&error);
    if message == SIGN_IN_REQUIRED {
        view! {
            <Notice
                title="Please sign in"
                detail="Your session has ended. Sign in again to continue; your conversation is kept."
                action=(sign_in_url(return_to), "Sign in".to_string())
            />
        }
        .into_any()
    } else {
        view! { <Notice title="Something went wrong" detail=message /> }.into_any()
    }
}

/// The message of a server function error, without the framework's prefixes.
pub fn error_message(error: &ServerFnError) -> String {
    match error {
        ServerFnError::ServerError(message) => message.clone(),
        ServerFnError::Request(_) => "chat-app could not be reached. Check your connection and try again.".into(),
        other => other.to_string(),
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Notice
            title="Page not found"
            detail="There is nothing at this address."
            action=("/".to_string(), "Go to the start page".to_string())
        />
    }
}
