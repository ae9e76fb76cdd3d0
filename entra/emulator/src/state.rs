//! The emulator's state: the directory from the manifest, signing keys, codes and sessions,
//! counters; and what tests ask of it (tokens without a browser).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use entra_manifest::Manifest;
use serde::Serialize;
use serde_json::Value;
use service_kit::secret::RandomError;

use crate::claims::{self, AccessClaims, ClientAuth, Issuers, Subject};
use crate::config::EmulatorConfig;
use crate::directory::{self, Directory};
use crate::error::EntraError;
use crate::keys::KeySet;
use crate::store::Store;

/// Counters of what the emulator did, for tests and `/_emulator/stats`.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) authorization_code: AtomicU64,
    pub(crate) refresh_token: AtomicU64,
    pub(crate) on_behalf_of: AtomicU64,
    pub(crate) client_credentials: AtomicU64,
    pub(crate) device_code: AtomicU64,
    pub(crate) managed_identity: AtomicU64,
    pub(crate) jwks: AtomicU64,
    pub(crate) discovery: AtomicU64,
    pub(crate) refused: AtomicU64,
}

/// A snapshot of [`Counters`]: successful token issuances per grant, and metadata fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub authorization_code: u64,
    pub refresh_token: u64,
    pub on_behalf_of: u64,
    pub client_credentials: u64,
    pub device_code: u64,
    pub managed_identity: u64,
    pub jwks: u64,
    pub discovery: u64,
    /// Token requests refused with an Entra error.
    pub refused: u64,
}

pub(crate) struct Inner {
    pub(crate) dir: Directory,
    pub(crate) config: EmulatorConfig,
    pub(crate) public_url: String,
    pub(crate) issuers: Issuers,
    pub(crate) keys: KeySet,
    pub(crate) store: Store,
    pub(crate) counters: Counters,
}

/// The emulator's state; clone it freely (it is an `Arc`).
#[derive(Clone)]
pub struct Emulator(pub(crate) Arc<Inner>);

impl Emulator {
    /// Builds an emulator serving at `config.public_url` (which must be set; the start-up sets
    /// it from the bound port when it is not).
    pub fn new(config: EmulatorConfig) -> anyhow::Result<Emulator> {
        let public_url = config
            .public_url
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .ok_or_else(|| anyhow::anyhow!("the emulator needs a public URL"))?;
        let issuers = Issuers::new(&public_url, &config.manifest.tenant.id);
        let dir = Directory::new(config.manifest.clone(), config.vars.clone(), config.admin_consent);
        Ok(Emulator(Arc::new(Inner {
            dir,
            issuers,
            public_url,
            keys: KeySet::generate()?,
            store: Store::default(),
            counters: Counters::default(),
            config,
        })))
    }

    pub fn public_url(&self) -> &str {
        &self.0.public_url
    }

    pub fn config(&self) -> &EmulatorConfig {
        &self.0.config
    }

    pub fn issuers(&self) -> &Issuers {
        &self.0.issuers
    }

    pub fn tenant_id(&self) -> &str {
        self.0.dir.tenant_id()
    }

    pub fn manifest(&self) -> &Manifest {
        &self.0.dir.manifest
    }

    pub fn stats(&self) -> Stats {
        let c = &self.0.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            authorization_code: get(&c.authorization_code),
            refresh_token: get(&c.refresh_token),
            on_behalf_of: get(&c.on_behalf_of),
            client_credentials: get(&c.client_credentials),
            device_code: get(&c.device_code),
            managed_identity: get(&c.managed_identity),
            jwks: get(&c.jwks),
            discovery: get(&c.discovery),
            refused: get(&c.refused),
        }
    }

    /// Starts signing with a new key; the previous key stays published for verification.
    pub fn rotate_keys(&self) -> anyhow::Result<String> {
        Ok(self.0.keys.rotate()?.current_kid)
    }

    /// The key id tokens are signed with now.
    pub fn current_kid(&self) -> String {
        self.0.keys.current().kid.clone()
    }

    /// Signs arbitrary claims with the current key and Entra's header. For tests that need a
    /// token the endpoints would never issue (expired, wrong audience, ...).
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        self.0.keys.sign(claims)
    }

    /// Signs with the current key under a caller-chosen header (for header-tampering tests).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> anyhow::Result<String> {
        self.0.keys.current().sign_parts(header, claims)
    }

    /// The claims of a delegated access token, as the token endpoint would issue them after
    /// `user` signed in to `client` (manifest names) and asked for `scopes` on `resource` (a
    /// manifest app name). Consent is not checked. Tests mutate these to build bad tokens.
    pub fn user_claims(&self, user: &str, client: &str, resource: &str, scopes: &[&str]) -> anyhow::Result<Value> {
        let inner = &self.0;
        let user = inner.dir.manifest.user(user).ok_or_else(|| anyhow::anyhow!("no user {user:?} in the manifest"))?;
        let client_id = self.client_id(client)?;
        let resource = self.resource(resource)?;
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let roles = inner.dir.user_roles(user, &resource);
        Ok(self.access_claims(&AccessClaims {
            subject: Subject::User(user),
            client_id: &client_id,
            client_auth: ClientAuth::Assertion,
            resource: &resource,
            scopes: &scopes,
            roles: &roles,
            session_id: None,
            agent: None,
            acrs: &[],
        })?)
    }

    /// A signed delegated access token (see [`Emulator::user_claims`]): real tokens without a browser.
    pub fn user_token(&self, user: &str, client: &str, resource: &str, scopes: &[&str]) -> anyhow::Result<String> {
        self.sign(&self.user_claims(user, client, resource, scopes)?)
    }

    /// The claims of an app-only token for `client` (a manifest app name) to `resource`, as
    /// client credentials would issue them.
    pub fn app_claims(&self, client: &str, resource: &str) -> anyhow::Result<Value> {
        let inner = &self.0;
        let app = inner.dir.manifest.app(client).ok_or_else(|| anyhow::anyhow!("no app {client:?} in the manifest"))?;
        let resource = self.resource(resource)?;
        Ok(self.access_claims(&AccessClaims::app(&app.object_id, &app.client_id, ClientAuth::Assertion, &resource))?)
    }

    /// A signed app-only token (see [`Emulator::app_claims`]).
    pub fn app_token(&self, client: &str, resource: &str) -> anyhow::Result<String> {
        self.sign(&self.app_claims(client, resource)?)
    }

    fn client_id(&self, name: &str) -> anyhow::Result<String> {
        let m = &self.0.dir.manifest;
        m.app(name)
            .map(|a| a.client_id.clone())
            .or_else(|| m.clients.get(name).map(|c| c.client_id.clone()))
            .ok_or_else(|| anyhow::anyhow!("no app or client {name:?} in the manifest"))
    }

    pub(crate) fn resource(&self, name: &str) -> anyhow::Result<directory::Resource> {
        let m = &self.0.dir.manifest;
        let app = m
            .app(name)
            .or_else(|| m.agent_blueprints.get(name))
            .ok_or_else(|| anyhow::anyhow!("no app {name:?} in the manifest"))?;
        self.0.dir.resource(&app.client_id).ok_or_else(|| anyhow::anyhow!("{name:?} is not a resource"))
    }

    /// Checks the `{tenant}` path segment (the tenant id or its domain).
    pub(crate) fn tenant(&self, tenant: &str) -> Result<(), EntraError> {
        if self.0.dir.is_tenant(tenant) { Ok(()) } else { Err(EntraError::tenant_not_found(tenant)) }
    }

    /// How long the tokens this emulator issues live, in seconds.
    pub(crate) fn token_lifetime(&self) -> i64 {
        self.0.config.token_lifetime.as_secs() as i64
    }

    /// The claims of an access token issued by this tenant now.
    pub(crate) fn access_claims(&self, access: &AccessClaims) -> Result<Value, RandomError> {
        claims::access_token(&self.0.issuers, &self.0.dir.manifest.tenant, self.token_lifetime(), access)
    }

    pub(crate) fn count(&self, counter: impl Fn(&Counters) -> &AtomicU64) {
        counter(&self.0.counters).fetch_add(1, Ordering::Relaxed);
    }
}
