//! The top bar: brand, navigation, and the signed-in user with sign-out.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::views::UserView;

#[component]
pub fn Header(session: Resource<Result<Option<UserView>, ServerFnError>>) -> impl IntoView {
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                <span class="brand-mark" aria-hidden="true"></span>
                "Orders Copilot"
            </a>
            <Transition fallback=|| ()>
                {move || {
                    session
                        .get()
                        .map(|user| match user {
                            Ok(Some(user)) => view! { <SignedInNav user /> }.into_any(),
                            _ => ().into_any(),
                        })
                }}
            </Transition>
        </header>
    }
}

#[component]
fn SignedInNav(user: UserView) -> impl IntoView {
    view! {
        <nav aria-label="Main">
            <A href="/chat">"Chat"</A>
            <A href="/orders">"My orders"</A>
        </nav>
        <div class="who">
            <span class="avatar" aria-hidden="true">
                {user.name.chars().next().unwrap_or('?').to_string()}
            </span>
            <span class="who-text">
                <span class="who-name" data-testid="user-name">
                    {user.name.clone()}
                </span>
                <span class="who-upn">{user.username.clone().unwrap_or_default()}</span>
            </span>
            // A plain form POST: the browser sends `Origin`, which the server checks.
            <form method="post" action="/auth/sign-out">
                <button type="submit" class="button ghost" id="sign-out">
                    "Sign out"
                </button>
            </form>
        </div>
    }
}
