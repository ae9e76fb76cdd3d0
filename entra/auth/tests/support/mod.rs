//! Test support: an emulator, and axum resources protected by entra-auth on port 0.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use entra_auth::guard::{AuthError, Policy, ResourceGuard};
use entra_auth::metadata::ProtectedResourceMetadata;
use entra_auth::validate::{Caller, TokenValidator, TokenVersion, ValidatorConfig};
use entra_emulator::{EmulatorConfig, Running};
use url::Url;

pub async fn emulator() -> Running {
    entra_emulator::Application::build(EmulatorConfig::from_repository().unwrap()).await.unwrap().spawn()
}

pub struct Resource {
    pub url: String,
    pub validator: Arc<TokenValidator>,
}

#[derive(Clone)]
struct State {
    guard: ResourceGuard,
}

pub struct ReadOrders;
impl Policy for ReadOrders {
    const SCOPES: &'static [&'static str] = &["Orders.Read", "Orders.ReadWrite"];
}

pub struct AccessAsUser;
impl Policy for AccessAsUser {
    const SCOPES: &'static [&'static str] = &["access_as_user"];
}

/// A resource that answers with the caller policy `P` let through.
async fn whoami<P: Policy>(
    axum::extract::State(state): axum::extract::State<State>,
    request: axum::extract::Request,
) -> Result<axum::Json<Caller>, AuthError> {
    let (parts, _) = request.into_parts();
    Ok(axum::Json(Caller::clone(&*state.guard.authorize::<P>(&parts).await?)))
}

/// The validator a resource named `app` (in the manifest) would configure.
pub fn validator_config(idp: &Running, app: &str) -> ValidatorConfig {
    let m = idp.handle().manifest();
    let app = m.app(app).unwrap();
    let uri = app.identifier_uri.as_ref().unwrap().render(&entra_manifest::Vars::local(&m.tenant.id));
    let version = if app.access_token_version == 1 { TokenVersion::V1 } else { TokenVersion::V2 };
    let mut config = ValidatorConfig::new(
        Url::parse(&idp.url()).unwrap(),
        idp.handle().tenant_id(),
        vec![app.client_id.clone(), uri],
    )
    .versions(&[version]);
    config.key_refetch_interval = Duration::from_millis(300);
    config
}

/// Serves `GET /protected` guarded by policy `P`, with `config`.
pub async fn resource<P: Policy>(config: ValidatorConfig) -> Resource {
    let validator = Arc::new(TokenValidator::new(config, reqwest::Client::new()));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let resource = Url::parse(&format!("{url}/protected")).unwrap();
    let guard = ResourceGuard::new(validator.clone(), ProtectedResourceMetadata::url_for(&resource).to_string());
    let metadata = ProtectedResourceMetadata::new(&resource, "https://issuer.example/v2.0", vec!["scope".into()]);
    let app = Router::new()
        .route("/protected", get(whoami::<P>).post(whoami::<P>))
        .with_state(State { guard })
        .merge(metadata.router());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Resource { url, validator }
}
