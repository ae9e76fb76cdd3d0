//! Builds the application from [`Settings`]: state, routes, layers; and serves it.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use entra_auth::acquire::Credential;
use leptos::prelude::LeptosOptions;
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};
use service_kit::serve::{Built, Service};
use tokio_util::sync::CancellationToken;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::agent::Agent;
use crate::agent::endpoint::Endpoint;
use crate::agent::model::ChatModel;
use crate::agent::openai::OpenAiModel;
use crate::agent::planner::Planner;
use crate::approvals::Approvals;
use crate::auth::agent_identity::AgentTokens;
use crate::auth::oidc::Oidc;
use crate::auth::refresh::Refresher;
use crate::auth::session::SESSION_COOKIE;
use crate::auth::session_store::Sessions;
use crate::auth::{origin, routes};
use crate::configuration::{ApprovalPolicy, ModelAuth, ModelSettings, Settings};
use crate::mcp::McpConnector;
use crate::state::AppState;
use crate::store::Store;
use crate::turns::Turns;
use crate::{chat, headers, health, pages, presenter, ui};

const STYLESHEET: &str = include_str!("../style/main.css");

/// chat-app as a [`Service`]: `Application::build(settings)`; while it serves, expired
/// sessions, and conversations unchanged for a session's lifetime, are deleted every five
/// minutes.
pub struct ChatApp;

pub type Application = service_kit::serve::Application<ChatApp>;

impl Service for ChatApp {
    type Settings = Settings;
    type Handle = ();

    fn address(settings: &Settings) -> SocketAddr {
        settings.addr
    }

    async fn build(settings: Settings, local: SocketAddr, stopping: CancellationToken) -> anyhow::Result<Built<()>> {
        let public_url = settings.public_url.to_string();
        let mut state = build_state(settings).await?;
        state.stopping = stopping.clone();
        let sessions = state.sessions.clone().delete_expired(Duration::from_secs(300));
        let conversations = state.store.clone().delete_stale(Duration::from_secs(300));
        tokio::spawn(async move {
            tokio::select! {
                _ = futures::future::join(sessions, conversations) => {}
                () = stopping.cancelled() => {}
            }
        });
        tracing::info!(listen = %local, url = %public_url, "chat-app ready");
        Ok(Built::router(router(state)))
    }
}

pub async fn build_state(settings: Settings) -> anyhow::Result<AppState> {
    let http = settings
        .identity
        .trust
        .http()
        .connect_timeout(Duration::from_secs(5))
        // Tokens ride on these requests: never follow a redirect elsewhere with them.
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    if let Credential::Secret(_) = &settings.identity.credential {
        tracing::warn!(
            "chat-app authenticates with CHAT_APP_CLIENT_SECRET: a local fallback; use a managed identity in Azure"
        );
    }
    let oidc = Arc::new(Oidc::new(&settings, http.clone(), settings.identity.credential.clone())?);
    let agent_tokens = match &settings.agent_identity {
        Some(agent) => {
            tracing::info!(agent = %agent.agent_name, agent_id = %agent.agent_id, "the agent acts as its own Entra Agent ID identity");
            Some(Arc::new(AgentTokens::new(&settings, agent, http.clone())?))
        }
        None => None,
    };
    let store = Store::open(&settings.store, settings.session.absolute).await?;
    let sessions = match &store {
        Store::Sqlite(db) => Sessions::sqlite(db.pool().clone()).await?,
        Store::Redis(redis) => Sessions::redis(redis),
    };
    let model = model(&settings.model, &http);
    if settings.agent.approval == ApprovalPolicy::Never {
        tracing::warn!(
            "CHAT_APP_APPROVAL=never: the agent runs every tool call the model proposes, including ones that create \
             or cancel orders, without asking the user; text in tool results can steer the model into such calls"
        );
    }
    let approvals = Arc::new(Approvals::default());
    let agent = Agent::new(
        model,
        McpConnector::new(settings.orders_mcp_url.clone(), http.clone()),
        settings.agent.clone(),
        approvals.clone(),
    );
    let passthrough_demo = settings.passthrough_demo_mcp_url.clone().map(|url| {
        tracing::warn!(
            url = %url,
            "CHAT_APP_PASSTHROUGH_DEMO_MCP_URL: the presenter view can replay read-only calls through a passthrough \
             orders-mcp, which forwards the user's token unchanged (the confused-deputy demonstration)"
        );
        McpConnector::new(url, http.clone())
    });
    let leptos = LeptosOptions::builder()
        .output_name(settings.site.output_name.as_str())
        .site_root(settings.site.root.to_string_lossy().as_ref())
        .site_pkg_dir(settings.site.pkg_dir.as_str())
        .site_addr(settings.addr)
        .build();
    if !settings.site.root.join(&settings.site.pkg_dir).is_dir() {
        tracing::warn!(
            site = %settings.site.root.display(),
            "no browser bundle found: pages render but are not interactive (build it with `cargo xtask up`)"
        );
    }
    let turns = Arc::new(Turns::new(store.shared().cloned()));
    Ok(AppState {
        leptos,
        origin: settings.origin().into(),
        idp_origin: settings.identity.public_authority.origin().ascii_serialization().into(),
        refresher: Arc::new(Refresher::new(oidc.clone())),
        agent_tokens,
        oidc,
        store,
        sessions,
        agent: Arc::new(agent),
        approvals,
        turns,
        stopping: CancellationToken::new(),
        passthrough_demo,
        settings: Arc::new(settings),
    })
}

/// The configured model: a provider, or the offline planner.
fn model(settings: &ModelSettings, http: &reqwest::Client) -> Arc<dyn ChatModel> {
    match settings {
        ModelSettings::Offline => Arc::new(Planner),
        ModelSettings::OpenAi { base_url, api_key, model, stream } => {
            let auth = api_key.clone().map_or(ModelAuth::None, ModelAuth::Bearer);
            let host = base_url.host_str().unwrap_or("model server");
            let label = format!("{model} · {host}");
            Arc::new(OpenAiModel::new(
                http.clone(),
                Endpoint::new(base_url.as_str(), auth),
                model.clone(),
                *stream,
                label,
                "openai",
            ))
        }
        ModelSettings::Azure { endpoint, deployment, auth, stream } => {
            let base = Endpoint::azure_v1_base(endpoint.as_str());
            let label = format!("{deployment} · Azure OpenAI");
            Arc::new(OpenAiModel::new(
                http.clone(),
                Endpoint::new(&base, auth.clone()),
                deployment.clone(),
                *stream,
                label,
                "azure.ai.openai",
            ))
        }
    }
}

pub fn router(state: AppState) -> Router {
    let settings = state.settings.clone();
    let leptos = state.leptos.clone();
    let sessions = SessionManagerLayer::new(state.sessions.clone())
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(settings.secure_cookies())
        .with_expiry(Expiry::OnInactivity(time::Duration::seconds(
            i64::try_from(settings.session.idle.as_secs()).unwrap_or(i64::MAX),
        )));
    Router::new()
        .route("/auth/sign-in", get(routes::sign_in))
        .route("/auth/step-up", get(routes::step_up))
        .route("/auth/callback", get(routes::callback))
        .route("/auth/sign-out", post(routes::sign_out))
        .route("/auth/front-channel-logout", get(routes::front_channel_logout))
        .route("/api/chat/turns/{turn}/events", get(chat::events))
        .merge(presenter::routes::routes())
        .route(ui::STYLESHEET, get(stylesheet))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .leptos_routes_with_context(&state, page_routes(), headers::provide_nonce, move || ui::shell(leptos.clone()))
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(headers::provide_nonce, ui::shell))
        .layer(middleware::from_fn_with_state(state.clone(), pages::prepare))
        .layer(middleware::from_fn_with_state(state.clone(), origin::require_same_origin))
        .layer(sessions)
        .layer(middleware::from_fn_with_state(state.clone(), headers::security_headers))
        .layer(service_kit::serve::request_spans())
        .with_state(state)
}

/// The pages' routes, generated once per process. Generating them renders the app with Leptos'
/// process-wide "suppress resource loads" flag set, and a page that another instance in this
/// process renders meanwhile awaits its data forever: the SSR stall of issue #17
/// (leptos-rs/leptos#4773, open). The first instance generates them before it serves; no later
/// build (a second instance, a restart, a test) opens that window again.
fn page_routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(ui::App)).clone()
}

async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], STYLESHEET)
        .into_response()
}
