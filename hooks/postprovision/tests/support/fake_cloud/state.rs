//! What the fake cloud holds: its configuration (faults to inject included) and the directory
//! (Graph objects, container apps) with the log of writes tests inspect.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Notify;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer `400` to every write after the limit.
    Refuse,
    /// Never answer writes after the limit: the run is stuck there until killed.
    Hang,
    /// Make the next write, then never answer: killed after the server acted, before the
    /// client heard.
    HangAfterWrite,
}

/// How the person answers agent mode's sign-in: at the device-code verification page, or at
/// the browser sign-in's `/authorize` page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInAnswer {
    Approve,
    /// Device code: `authorization_declined`; browser: `error=access_denied` in the redirect.
    Decline,
    /// Never answers: the device code expires (the token endpoint says `authorization_pending`
    /// until the client stops at `expires_in`); the browser page is never finished.
    Expire,
}

/// An authorization code the browser sign-in's `/authorize` issued: single use, for this
/// client, redirect URI and PKCE challenge only.
#[derive(Debug, Clone)]
pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
}

/// Who a bearer token speaks for: the client it was issued to and the delegated Microsoft Graph
/// permissions in its `scp` claim.
#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub tenant_id: String,
    pub me: String,
    pub admin: bool,
    /// The signed-in user holds Agent ID Developer or Agent ID Administrator: may create agent
    /// blueprints, their principals and agent identities.
    pub agent_id_role: bool,
    pub page_size: usize,
    /// Every n-th request is throttled.
    pub throttle_every: Option<usize>,
    pub retry_after_secs: u64,
    /// Requests addressing a new object that fail before it is visible.
    pub lag: usize,
    /// How long a new service principal cannot be named by a grant or an app role assignment
    /// (Graph answers 400 "Not a valid reference update." meanwhile).
    pub grant_replication: Duration,
    /// The tenant's verified domains: the hosts `https://` identifier URIs of v1 apps may use.
    pub verified_domains: Vec<String>,
    /// The stricter app management policy (`nonDefaultUriAddition`): v1 apps may add only
    /// `api://{appId}` or `api://{tenantId}/{appId}`.
    pub default_uris_only: bool,
    pub fail_after_writes: Option<(usize, Fault)>,
    /// The person's answer to agent mode's sign-in: at the second device-code poll (the first
    /// is answered `authorization_pending`), or at the browser sign-in's `/authorize` page.
    pub sign_in_answer: SignInAnswer,
    /// The device authorization response's `interval` (Entra sends 5; tests need not wait).
    pub device_interval: u64,
    /// Its `expires_in` (Entra: 900).
    pub device_expires_in: u64,
    /// Requests naming a new client (at `/devicecode` or `/authorize`) answered AADSTS700016
    /// ("not found in the directory") before the token service knows it: the delay after an app
    /// registration that Entra's sign-in shows (observed in practice; Learn documents no
    /// length), injected as a fault.
    pub client_lag: usize,
}

impl Config {
    pub fn new(tenant_id: &str) -> Self {
        Config {
            tenant_id: tenant_id.to_string(),
            me: uuid::Uuid::new_v4().to_string(),
            admin: true,
            agent_id_role: true,
            page_size: 2,
            throttle_every: None,
            retry_after_secs: 0,
            lag: 0,
            grant_replication: Duration::ZERO,
            verified_domains: vec!["contoso.onmicrosoft.com".to_string()],
            default_uris_only: false,
            fail_after_writes: None,
            sign_in_answer: SignInAnswer::Approve,
            device_interval: 0,
            device_expires_in: 900,
            client_lag: 0,
        }
    }
}

#[derive(Default)]
pub struct Directory {
    pub applications: BTreeMap<String, Value>,
    pub deleted: BTreeMap<String, Value>,
    pub service_principals: BTreeMap<String, Value>,
    /// Microsoft's own service principals in every tenant (Microsoft Graph's): listed and
    /// grantable like the others, never created or deleted by the hook.
    pub first_party: BTreeMap<String, Value>,
    /// Application object id -> its credentials.
    pub federated: BTreeMap<String, Vec<Value>>,
    /// Agent blueprint object id -> its inheritable permissions.
    pub inheritable: BTreeMap<String, Vec<Value>>,
    pub grants: BTreeMap<String, Value>,
    pub assignments: BTreeMap<String, Value>,
    pub container_apps: BTreeMap<String, Value>,
    /// ARM operation id -> polls still answered `InProgress`.
    pub(super) operations: HashMap<String, u32>,
    /// Id (object id, app id) -> requests still answered as if it did not exist.
    pub(super) lagging: HashMap<String, usize>,
    /// Service principal object id -> when grants may name it.
    pub(super) referable: HashMap<String, Instant>,
    /// Azure OpenAI models offered, by location (lower case): ARM's `models` list items.
    pub models: BTreeMap<String, Vec<Value>>,
    /// Subscription quota usages, by location (lower case): ARM's `usages` list items.
    pub usages: BTreeMap<String, Vec<Value>>,
    /// Answers of 400 "Not a valid reference update." given.
    pub reference_lag_answers: usize,
    /// Tokens the device-code sign-in issued, and who they speak for.
    pub tokens: HashMap<String, Caller>,
    /// Device codes handed out: (client id, tenant, polls so far).
    pub device_codes: HashMap<String, (String, u32)>,
    /// Requests answered as if the client did not exist yet ([`Config::client_lag`]).
    pub client_lag_answers: usize,
    /// Device-code sign-ins completed (tokens issued).
    pub device_sign_ins: usize,
    /// Authorization codes issued by `/authorize`, not yet redeemed.
    pub auth_codes: HashMap<String, AuthCode>,
    /// Browser sign-ins completed (codes redeemed for tokens).
    pub browser_sign_ins: usize,
    /// Successful writes: "METHOD path".
    pub writes: Vec<String>,
    pub requests: usize,
    pub throttled: usize,
    pub lag_answers: usize,
}

pub struct Shared {
    pub config: Mutex<Config>,
    pub dir: Mutex<Directory>,
    pub hung: Notify,
    /// The server's own URL, for `@odata.nextLink` and operation status URLs.
    pub(super) base: Mutex<String>,
}

impl Directory {
    /// Whether `id` is still replicating: answers one more request as missing.
    pub fn lags(&mut self, id: &str) -> bool {
        match self.lagging.get_mut(id) {
            Some(n) if *n > 0 => {
                *n -= 1;
                self.lag_answers += 1;
                true
            }
            _ => false,
        }
    }

    /// The registered application `client_id` names, once the token service knows it: the
    /// first `client_lag` requests naming a registered client find nothing, as an unknown
    /// client's always do ([`Config::client_lag`]).
    pub fn known_client(&mut self, client_id: &str, client_lag: usize) -> Option<Value> {
        let app = self.applications.values().find(|a| a["appId"] == client_id).cloned()?;
        if self.client_lag_answers < client_lag {
            self.client_lag_answers += 1;
            return None;
        }
        Some(app)
    }

    /// Whether a grant may name service principal `id` yet (see [`Config::grant_replication`]).
    pub fn referable(&mut self, id: &str) -> bool {
        let ready = self.referable.get(id).is_none_or(|at| Instant::now() >= *at);
        if !ready {
            self.reference_lag_answers += 1;
        }
        ready
    }
}
