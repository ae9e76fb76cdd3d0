//! The start page (sign in, or continue to the chat) and the signed-out page.

use leptos::prelude::*;

use crate::views::{UserView, sign_in_url};

#[component]
pub fn Landing(session: Resource<Result<Option<UserView>, ServerFnError>>) -> impl IntoView {
    view! {
        <section class="hero">
            <h1>"Ask about your orders. Watch your identity travel."</h1>
            <p class="lead">
                "An AI agent answers questions about your orders by calling tools on an MCP server, which calls the orders API "
                <em>"as you"</em>
                ". Every hop validates the token it receives, and the trace panel shows exactly what each one saw."
            </p>
            <Transition fallback=|| view! { <p class="muted">"Checking your session…"</p> }>
                {move || {
                    session
                        .get()
                        .map(|user| match user {
                            Ok(Some(user)) => {
                                view! {
                                    <p class="cta">
                                        <a class="button primary large" href="/chat">
                                            "Continue as "
                                            {user.name}
                                        </a>
                                    </p>
                                }
                                    .into_any()
                            }
                            _ => {
                                view! {
                                    <p class="cta">
                                        <a
                                            class="button primary large"
                                            id="sign-in"
                                            href=sign_in_url("/chat")
                                            rel="external"
                                        >
                                            "Sign in"
                                        </a>
                                    </p>
                                }
                                    .into_any()
                            }
                        })
                }}
            </Transition>
            <ol class="flow" aria-label="How a request travels">
                <li>
                    <strong>"chat-app"</strong>
                    <span>"signs you in; keeps your tokens on the server"</span>
                </li>
                <li>
                    <strong>"orders-mcp"</strong>
                    <span>"validates your token; exchanges it On-Behalf-Of you"</span>
                </li>
                <li>
                    <strong>"orders-api"</strong>
                    <span>"validates again; shows only your orders"</span>
                </li>
            </ol>
        </section>
    }
}

#[component]
pub fn SignedOut() -> impl IntoView {
    view! {
        <section class="hero">
            <h1>"You signed out"</h1>
            <p class="lead">"Your session here and at the identity provider has ended."</p>
            <p class="cta">
                <a class="button primary large" href=sign_in_url("/chat") rel="external">
                    "Sign in again"
                </a>
            </p>
        </section>
    }
}
