//! One run of the hook: what it works on, how it writes (or, in a dry run, only plans), and
//! the summary of what it did. Every step goes through [`Run`] to read and write, so a dry run
//! and a real one take the same path.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use entra_auth::acquire::{AcquireError, BrowserSignIn, Credential, DeviceCodeSignIn, Prompt};
use entra_manifest::Manifest;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::error::RunError;
use super::kind::Kind;
use crate::azd::EnvStore;
use crate::credential::GRAPH_SCOPE;
use crate::deployment::DeploymentId;
use crate::plan::{Change, table};
use crate::rest::{ApiError, NotFound, Rest};
use crate::retry::RetryPolicy;

/// Whether a run writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Make the changes.
    Write,
    /// Only list them (`--dry-run`).
    DryRun,
}

/// What a run did (or would do).
#[derive(Debug, Default)]
pub struct Summary {
    pub changes: Vec<Change>,
    /// Things skipped on purpose, with what to do about them.
    pub notes: Vec<String>,
}

/// How the developer signs in to the provisioning client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInFlow {
    /// In a browser on this machine (authorization code + PKCE, loopback redirect): works where
    /// Conditional Access blocks the device code flow, as Microsoft recommends tenants do.
    Browser,
    /// By device code (`--device-code`): for machines without a browser (SSH, Codespaces).
    DeviceCode,
}

/// How agent mode signs the developer in for its Agent ID writes: through the provisioning
/// client ([`super::provisioning_client`]), at this authority.
pub struct AgentIdSignIn {
    /// `https://login.microsoftonline.com` (or a test's stand-in).
    pub authority: Url,
    pub flow: SignInFlow,
    /// How long the browser sign-in waits for the person (the device code's own lifetime
    /// bounds the other).
    pub time_limit: std::time::Duration,
    pub graph_url: String,
    pub retry: RetryPolicy,
    /// Shows the developer where to sign in (the address to open, or the device-code message).
    pub prompt: Prompt,
}

pub struct Run<'a> {
    /// Microsoft Graph as the developer's azd / Azure CLI sign-in: every read, and every write
    /// but Agent ID's.
    pub graph: &'a Rest,
    /// Microsoft Graph as the developer signed in through the provisioning client: Agent ID's
    /// writes, which Graph ignores the Azure CLI's permissions for. Set by
    /// [`Self::sign_in_for_agent_id`]; the sign-in itself happens at the first such write.
    agent_graph: Option<Rest>,
    /// `None`: this run makes no Agent ID writes.
    agent_sign_in: Option<AgentIdSignIn>,
    /// Azure Resource Manager, for the container apps; `None` leaves them alone.
    pub arm: Option<&'a Rest>,
    /// Where the published ids go.
    pub azd_env: &'a mut dyn EnvStore,
    pub manifest: &'a Manifest,
    /// The deployment whose app registrations this run works on.
    pub id: &'a DeploymentId,
    pub mode: Mode,
    out: &'a mut dyn Write,
    summary: Summary,
}

impl<'a> Run<'a> {
    pub fn new(
        graph: &'a Rest,
        arm: Option<&'a Rest>,
        azd_env: &'a mut dyn EnvStore,
        manifest: &'a Manifest,
        id: &'a DeploymentId,
        mode: Mode,
        out: &'a mut dyn Write,
    ) -> Self {
        Run {
            graph,
            agent_graph: None,
            agent_sign_in: None,
            arm,
            azd_env,
            manifest,
            id,
            mode,
            out,
            summary: Summary::default(),
        }
    }

    /// How this run signs in for Agent ID writes.
    pub fn with_agent_id_sign_in(mut self, settings: AgentIdSignIn) -> Self {
        self.agent_sign_in = Some(settings);
        self
    }

    /// From now on Agent ID writes go through public client `client_id`, as the developer
    /// signed in to it (once, at the first such write; never in a dry run); a browser sign-in
    /// comes back to its loopback `redirect_uri`.
    pub fn sign_in_for_agent_id(&mut self, client_id: &str, redirect_uri: &str) -> Result<(), RunError> {
        let Some(settings) = &self.agent_sign_in else {
            let source = AcquireError::NotConfigured("no sign-in configured for Agent ID writes".into());
            return Err(self.stopped(&ApiError::Token { scope: GRAPH_SCOPE, source }));
        };
        let (authority, tenant, prompt) =
            (settings.authority.clone(), &self.id.tenant_id, Arc::clone(&settings.prompt));
        let credential = match settings.flow {
            SignInFlow::Browser => {
                // A client registered moments ago may not have reached the sign-in service yet;
                // the page then says so, and only the person can try again (the device code
                // flow retries AADSTS700016 itself, in `Rest::send`).
                let prompt: Prompt = Arc::new(move |message: &str| {
                    prompt(&format!(
                        "{message}\nIf the page says AADSTS700016 (application not found), the client was registered \
moments ago: wait a minute and reload the page."
                    ))
                });
                BrowserSignIn::new(authority, tenant, client_id, redirect_uri, prompt)
                    .map(|sign_in| Credential::Browser(Arc::new(sign_in.with_time_limit(settings.time_limit))))
            }
            SignInFlow::DeviceCode => DeviceCodeSignIn::new(authority, tenant, client_id, prompt)
                .map(|sign_in| Credential::DeviceCode(Arc::new(sign_in))),
        }
        .map_err(|source| self.stopped(&ApiError::Token { scope: GRAPH_SCOPE, source }))?;
        let graph = Rest::new("Microsoft Graph", &settings.graph_url, GRAPH_SCOPE, credential, settings.retry)
            .map_err(|e| self.stopped(&e))?;
        self.agent_graph = Some(graph);
        Ok(())
    }

    /// Where writes to an object of `kind` go.
    fn graph_for(&self, kind: Kind) -> Result<&Rest, ApiError> {
        match kind {
            Kind::App => Ok(self.graph),
            Kind::Blueprint => self.agent_graph.as_ref().ok_or(ApiError::Token {
                scope: GRAPH_SCOPE,
                source: AcquireError::NotConfigured("no provisioning client to sign in to for Agent ID writes".into()),
            }),
        }
    }

    pub fn say(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
    }

    /// Something skipped on purpose, printed at the end.
    pub fn note(&mut self, note: String) {
        self.summary.notes.push(note);
    }

    /// A change made: printed as it happens.
    pub fn record(&mut self, change: Change) {
        let _ = writeln!(self.out, "  {change}");
        self.summary.changes.push(change);
    }

    /// A change a dry run would make: printed with the plan at the end.
    pub fn plan(&mut self, change: Change) {
        self.summary.changes.push(change);
    }

    /// How many changes were made, for a message saying where a run stopped.
    pub fn done(&self) -> usize {
        if self.mode == Mode::Write { self.summary.changes.len() } else { 0 }
    }

    pub fn stopped(&self, cause: &ApiError) -> RunError {
        RunError::stopped(self.done(), cause)
    }

    /// Every item of a Graph list (all pages).
    pub async fn list<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<T>, RunError> {
        self.graph.list(path, query).await.map_err(|e| self.stopped(&e))
    }

    /// An object Graph answered a `POST` to `path` with.
    pub fn parse<T: DeserializeOwned>(&self, value: Value, path: &str) -> Result<T, RunError> {
        serde_json::from_value(value).map_err(|e| self.stopped(&self.graph.bad(&Method::POST, path, e.to_string())))
    }

    /// Records `change`; when writing also sends it to Graph. Returns the created object, if any.
    pub async fn write(
        &mut self,
        change: Change,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Option<Value>, RunError> {
        self.send(change, method, path, body).await.map_err(|e| self.stopped(&e))
    }

    /// Like [`Self::write`], for an object of `kind`: an Agent ID object's writes go through
    /// the provisioning client, and a refusal's message explains a `403` for that kind.
    pub async fn write_as(
        &mut self,
        kind: Kind,
        change: Change,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Option<Value>, RunError> {
        self.send_as(kind, change, method, path, body)
            .await
            .map_err(|e| RunError::stopped_with(self.done(), &e, kind.forbidden_hint()))
    }

    /// Like [`Self::write`], but hands a refusal back to the caller, which may work around it.
    pub async fn try_write(
        &mut self,
        change: Change,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(), ApiError> {
        self.send(change, method, path, body).await.map(drop)
    }

    /// [`Self::send_as`] an ordinary object: through the azd / Azure CLI sign-in.
    async fn send(
        &mut self,
        change: Change,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Option<Value>, ApiError> {
        self.send_as(Kind::App, change, method, path, body).await
    }

    /// Plans `change` in a dry run; otherwise sends it (as [`Self::graph_for`] `kind` says) and
    /// records it once Graph accepted it.
    async fn send_as(
        &mut self,
        kind: Kind,
        change: Change,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Option<Value>, ApiError> {
        if self.mode == Mode::DryRun {
            self.plan(change);
            return Ok(None);
        }
        let answer = self.graph_for(kind)?.send(method, path, &[], body.as_ref(), NotFound::Lag).await?;
        self.record(change);
        Ok(answer.body)
    }

    /// Like [`Self::try_write`], for a write that names a service principal created moments
    /// ago: Graph answers 400 "Not a valid reference update." until the new object has reached
    /// every replica, which can take minutes. Tries again for up to the retry policy's
    /// replication budget, saying so while it waits.
    pub async fn try_write_replicated(
        &mut self,
        change: Change,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(), ApiError> {
        let retry = self.graph.retry();
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_write(change.clone(), method.clone(), path, body.clone()).await {
                Err(e) if e.is_replication_lag() && started.elapsed() < retry.replication => {
                    if attempt == 1 {
                        self.say(&format!(
                            "  waiting for Entra to replicate the new service principals before: {change} \
(Graph: \"Not a valid reference update.\"); trying again for up to {} s",
                            retry.replication.as_secs()
                        ));
                    }
                    let wait = retry.delay(attempt, &reqwest::header::HeaderMap::new());
                    tokio::time::sleep(wait.min(retry.replication.saturating_sub(started.elapsed()))).await;
                }
                other => return other,
            }
        }
    }

    /// Records `change`; when writing also deletes `path` (an object of `kind`) from Graph.
    pub async fn delete(
        &mut self,
        kind: Kind,
        change: Change,
        path: &str,
        not_found: NotFound,
    ) -> Result<(), RunError> {
        if self.mode == Mode::DryRun {
            self.plan(change);
            return Ok(());
        }
        let graph = self.graph_for(kind).map_err(|e| self.stopped(&e))?;
        graph
            .send(Method::DELETE, path, &[], None, not_found)
            .await
            .map_err(|e| RunError::stopped_with(self.done(), &e, kind.forbidden_hint()))?;
        self.record(change);
        Ok(())
    }

    /// Prints the outcome (in a dry run: the plan) and the notes. `unchanged` says what already
    /// matches when there was nothing to do.
    pub fn finish(mut self, unchanged: &str) -> Summary {
        let count = self.summary.changes.len();
        match (self.mode, count) {
            (_, 0) => self.say(&format!("Nothing to change: {unchanged}.")),
            (Mode::DryRun, _) => {
                let text = table(&self.summary.changes);
                let _ = write!(self.out, "{text}");
                self.say(&format!("Dry run: {count} change(s) planned, nothing written."));
            }
            (Mode::Write, _) => self.say(&format!("Done: {count} change(s) made.")),
        }
        for note in self.summary.notes.clone() {
            self.say(&format!("note: {note}"));
        }
        self.summary
    }
}
