//! Making the tenant match the manifest (`apply`) and removing what was made (`cleanup`).
//!
//! Every run reads the tenant first and writes only differences, so a second run writes
//! nothing and a run that stopped halfway is finished by the next one. With `--dry-run` the
//! same steps run, reads included, but writes are only recorded.

use std::collections::BTreeMap;
use std::io::Write;

use entra_manifest::Manifest;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::azd::EnvStore;
use crate::container_apps;
use crate::deployment::{self, Deployment};
use crate::desired::{self, Context, FIC_MARKER};
use crate::diff::application_patches;
use crate::model::{AppRoleAssignment, Application, FederatedCredential, PermissionGrant, ServicePrincipal};
use crate::plan::{Action, Change, table};
use crate::rest::{ApiError, NotFound, Rest};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    DryRun,
}

const RESUME: &str = "Nothing is lost: what was done stays done, and the hook compares the tenant with the manifest \
on every run, so running it again continues from here. Fix the cause above, then run \
`azd hooks run postprovision` (or `cargo run --release -p postprovision -- apply`).";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "the developer sign-in is for tenant {signed_in}, but the deployment is in tenant {expected}: \
sign in to the right one (`azd auth login --tenant-id {expected}`, `az login --tenant {expected}`) and run again"
    )]
    WrongTenant { signed_in: String, expected: String },
    #[error(
        "{count} app registrations carry the tag {tag:?} (object ids {ids}); there must be one. \
Delete the extra ones (`az ad app delete --id <object id>`) and run again"
    )]
    Duplicate { tag: String, count: usize, ids: String },
    #[error("stopped after {done} change(s): {cause}\n{hint}{}", RESUME)]
    Stopped { done: usize, cause: String, hint: String },
}

impl RunError {
    fn stopped(done: usize, cause: &ApiError) -> RunError {
        let hint = if cause.is_forbidden() {
            "Your account lacks a permission this needs: creating app registrations needs the Application \
Developer role (or 'Users can register applications' on); updating them needs you to own them or be an \
Application Administrator.\n"
        } else {
            ""
        };
        RunError::Stopped { done, cause: cause.to_string(), hint: hint.to_string() }
    }
}

/// What a run did (or would do).
#[derive(Debug, Default)]
pub struct Summary {
    pub changes: Vec<Change>,
    /// Things skipped on purpose, with what to do about them.
    pub notes: Vec<String>,
}

/// An app registration as this run knows it.
struct AppState {
    object_id: String,
    app_id: String,
    current: Application,
    /// Only planned (dry run): nothing to read from Graph about it.
    planned: bool,
}

pub struct Reconciler<'a> {
    pub graph: &'a Rest,
    pub arm: Option<&'a Rest>,
    pub env: &'a mut dyn EnvStore,
    pub manifest: &'a Manifest,
    pub deployment: &'a Deployment,
    pub mode: Mode,
    pub out: &'a mut dyn Write,
    summary: Summary,
}

impl<'a> Reconciler<'a> {
    pub fn new(
        graph: &'a Rest,
        arm: Option<&'a Rest>,
        env: &'a mut dyn EnvStore,
        manifest: &'a Manifest,
        deployment: &'a Deployment,
        mode: Mode,
        out: &'a mut dyn Write,
    ) -> Self {
        Reconciler { graph, arm, env, manifest, deployment, mode, out, summary: Summary::default() }
    }

    // ---------------------------------------------------------------------------------------
    // apply

    pub async fn apply(mut self) -> Result<Summary, RunError> {
        let d = self.deployment;
        self.say(&format!(
            "Applying the identity manifest to tenant {} for azd environment {:?}.",
            d.tenant_id, d.env_name
        ));
        self.check_tenant().await?;
        let mut apps = self.find_or_create_apps().await?;
        let app_ids: BTreeMap<String, String> = apps.iter().map(|(n, s)| (n.clone(), s.app_id.clone())).collect();
        self.update_apps(&mut apps, &app_ids).await?;
        let principals = self.service_principals(&apps).await?;
        self.federated_credentials(&apps, &app_ids).await?;
        self.admin_consent(&apps, &principals).await?;
        self.app_role_assignments(&principals).await?;
        let outputs = self.outputs(&apps);
        self.write_outputs(&outputs)?;
        self.container_apps(&outputs).await?;
        Ok(self.finish("the tenant, the azd environment and the container apps already match the manifest"))
    }

    async fn check_tenant(&mut self) -> Result<(), RunError> {
        let orgs: Vec<Value> = self.list("organization", &[]).await?;
        let signed_in = orgs.first().and_then(|o| o.get("id")).and_then(Value::as_str).unwrap_or_default().to_string();
        if !signed_in.eq_ignore_ascii_case(&self.deployment.tenant_id) {
            return Err(RunError::WrongTenant { signed_in, expected: self.deployment.tenant_id.clone() });
        }
        Ok(())
    }

    async fn find_or_create_apps(&mut self) -> Result<BTreeMap<String, AppState>, RunError> {
        let mut apps = BTreeMap::new();
        let env_name = self.deployment.env_name.clone();
        let manifest = self.manifest;
        for (name, app) in &manifest.apps {
            let tag = desired::app_tag(&env_name, name);
            let filter = format!("tags/any(t:t eq '{tag}')");
            let found: Vec<Application> = self.list("applications", &[("$filter", &filter)]).await?;
            let state = match found.len() {
                0 => {
                    let body = json!({
                        "displayName": format!("{} ({env_name})", app.display_name),
                        "signInAudience": "AzureADMyOrg",
                        "tags": [desired::TAG, desired::env_tag(&env_name), tag],
                    });
                    let change = self.change(Action::Create, "application", name, format!("tagged {tag}"));
                    match self.write(change, Method::POST, "applications", Some(body.clone())).await? {
                        Some(created) => {
                            let current: Application = self.parse(created, "applications")?;
                            AppState {
                                object_id: current.id.clone(),
                                app_id: current.app_id.clone(),
                                current,
                                planned: false,
                            }
                        }
                        None => AppState {
                            object_id: format!("<{name} object id>"),
                            app_id: format!("<{name} app id>"),
                            current: serde_json::from_value(body).unwrap_or_default(),
                            planned: true,
                        },
                    }
                }
                1 => {
                    let current = found.into_iter().next().unwrap_or_default();
                    AppState { object_id: current.id.clone(), app_id: current.app_id.clone(), current, planned: false }
                }
                count => {
                    let ids = found.iter().map(|a| a.id.as_str()).collect::<Vec<_>>().join(", ");
                    return Err(RunError::Duplicate { tag, count, ids });
                }
            };
            apps.insert(name.clone(), state);
        }
        Ok(apps)
    }

    async fn update_apps(
        &mut self,
        apps: &mut BTreeMap<String, AppState>,
        app_ids: &BTreeMap<String, String>,
    ) -> Result<(), RunError> {
        let context = Context { manifest: self.manifest, deployment: self.deployment, app_ids };
        let manifest = self.manifest;
        for (name, app) in &manifest.apps {
            let Some(state) = apps.get_mut(name) else { continue };
            let wanted = context.application(app);
            for patch in application_patches(&state.current, &wanted) {
                let change = self.change(Action::Update, "application", name, patch.details.join("; "));
                let path = format!("applications/{}", state.object_id);
                self.write(change, Method::PATCH, &path, Some(patch.body)).await?;
            }
            state.current = wanted;
        }
        Ok(())
    }

    /// Service principal object ids, by manifest app name.
    async fn service_principals(
        &mut self,
        apps: &BTreeMap<String, AppState>,
    ) -> Result<BTreeMap<String, (String, bool)>, RunError> {
        let mut principals = BTreeMap::new();
        for (name, state) in apps {
            let existing: Vec<ServicePrincipal> = if state.planned {
                Vec::new()
            } else {
                let filter = format!("appId eq '{}'", state.app_id);
                self.list("servicePrincipals", &[("$filter", &filter)]).await?
            };
            let entry = match existing.into_iter().next() {
                Some(sp) => (sp.id, false),
                None => {
                    let change =
                        self.change(Action::Create, "service principal", name, "the app's identity in this tenant");
                    let body = json!({ "appId": state.app_id });
                    match self.write(change, Method::POST, "servicePrincipals", Some(body)).await? {
                        Some(created) => (self.parse::<ServicePrincipal>(created, "servicePrincipals")?.id, false),
                        None => (format!("<{name} service principal>"), true),
                    }
                }
            };
            principals.insert(name.clone(), entry);
        }
        Ok(principals)
    }

    async fn federated_credentials(
        &mut self,
        apps: &BTreeMap<String, AppState>,
        app_ids: &BTreeMap<String, String>,
    ) -> Result<(), RunError> {
        let context = Context { manifest: self.manifest, deployment: self.deployment, app_ids };
        let manifest = self.manifest;
        for (name, app) in &manifest.apps {
            let Some(state) = apps.get(name) else { continue };
            let wanted = context.federated_credentials(app);
            let path = format!("applications/{}/federatedIdentityCredentials", state.object_id);
            let existing: Vec<FederatedCredential> =
                if state.planned { Vec::new() } else { self.list(&path, &[]).await? };
            for fic in &wanted {
                let detail = format!("subject {} (managed identity)", fic.subject);
                match existing.iter().find(|e| e.name == fic.name) {
                    None => {
                        let change = self.change(
                            Action::Create,
                            "federated credential",
                            name,
                            format!("{}: {detail}", fic.name),
                        );
                        self.write(change, Method::POST, &path, Some(json!(fic))).await?;
                    }
                    Some(e)
                        if e.issuer != fic.issuer
                            || e.subject != fic.subject
                            || e.audiences != fic.audiences
                            || e.description != fic.description =>
                    {
                        let change = self.change(
                            Action::Update,
                            "federated credential",
                            name,
                            format!("{}: {detail}", fic.name),
                        );
                        let body = json!({
                            "issuer": fic.issuer, "subject": fic.subject, "audiences": fic.audiences, "description": fic.description,
                        });
                        self.write(change, Method::PATCH, &format!("{path}/{}", e.id), Some(body)).await?;
                    }
                    Some(_) => {}
                }
            }
            for stale in existing.iter().filter(|e| {
                e.description.as_deref().is_some_and(|d| d.starts_with(FIC_MARKER))
                    && !wanted.iter().any(|w| w.name == e.name)
            }) {
                let change = self.change(
                    Action::Delete,
                    "federated credential",
                    name,
                    format!("{}: no longer in the manifest", stale.name),
                );
                self.write(change, Method::DELETE, &format!("{path}/{}", stale.id), None).await?;
            }
        }
        Ok(())
    }

    async fn admin_consent(
        &mut self,
        apps: &BTreeMap<String, AppState>,
        principals: &BTreeMap<String, (String, bool)>,
    ) -> Result<(), RunError> {
        let manifest = self.manifest;
        for (name, app) in &manifest.apps {
            let (Some((client_sp, client_planned)), Some(state)) = (principals.get(name), apps.get(name)) else {
                continue;
            };
            if app.required_access.is_empty() {
                continue;
            }
            let existing: Vec<PermissionGrant> = if *client_planned {
                Vec::new()
            } else {
                let filter = format!("clientId eq '{client_sp}'");
                self.list("oauth2PermissionGrants", &[("$filter", &filter)]).await?
            };
            for access in &app.required_access {
                let Some((resource_sp, _)) = principals.get(&access.resource) else { continue };
                let scope = desired::consent_scopes(&access.scopes);
                let detail = format!("{name} -> {}: {scope} (all users)", access.resource);
                let grant =
                    existing.iter().find(|g| &g.resource_id == resource_sp && g.consent_type == "AllPrincipals");
                let result = match grant {
                    None => {
                        let change = self.change(Action::Create, "admin consent", name, detail);
                        let body = json!(PermissionGrant {
                            id: String::new(),
                            client_id: client_sp.clone(),
                            consent_type: "AllPrincipals".into(),
                            principal_id: None,
                            resource_id: resource_sp.clone(),
                            scope: scope.clone(),
                        });
                        self.try_write(change, Method::POST, "oauth2PermissionGrants", Some(body)).await
                    }
                    Some(g)
                        if desired::consent_scopes(
                            &g.scope.split_whitespace().map(str::to_string).collect::<Vec<_>>(),
                        ) != scope =>
                    {
                        let change = self.change(Action::Update, "admin consent", name, detail);
                        let path = format!("oauth2PermissionGrants/{}", g.id);
                        self.try_write(change, Method::PATCH, &path, Some(json!({ "scope": scope }))).await
                    }
                    Some(_) => Ok(()),
                };
                match result {
                    Ok(()) => {}
                    Err(e) if e.is_forbidden() => self.note(format!(
                        "admin consent for {name} -> {} needs an administrator (Privileged Role Administrator or Global \
Administrator): until one grants it at https://login.microsoftonline.com/{}/adminconsent?client_id={}, each user \
is asked to consent at first sign-in",
                        access.resource, self.deployment.tenant_id, state.app_id
                    )),
                    Err(e) => return Err(RunError::stopped(self.done(), &e)),
                }
            }
        }
        Ok(())
    }

    async fn app_role_assignments(&mut self, principals: &BTreeMap<String, (String, bool)>) -> Result<(), RunError> {
        if self.deployment.assign_roles.is_empty() {
            return Ok(());
        }
        let me = match self.graph.send(Method::GET, "me", &[], None, NotFound::Error).await {
            Ok(answer) => answer.body.and_then(|b| b.get("id").and_then(Value::as_str).map(str::to_string)),
            Err(e) if matches!(e.status(), Some(400..=499)) => None,
            Err(e) => return Err(RunError::stopped(self.done(), &e)),
        };
        let Some(me) = me else {
            self.note("no signed-in user (the sign-in is an application): app roles were not assigned".to_string());
            return Ok(());
        };
        for request in self.deployment.assign_roles.clone() {
            let Some(role) = self.manifest.app(&request.app).and_then(|a| a.app_role(&request.role)) else { continue };
            let Some((resource_sp, planned)) = principals.get(&request.app) else { continue };
            let path = format!("servicePrincipals/{resource_sp}/appRoleAssignedTo");
            let existing: Vec<AppRoleAssignment> = if *planned { Vec::new() } else { self.list(&path, &[]).await? };
            if existing.iter().any(|a| a.principal_id == me && a.app_role_id == role.id) {
                continue;
            }
            let change = self.change(
                Action::Create,
                "app role assignment",
                &request.app,
                format!("{} for the signed-in user {me}", request.role),
            );
            let body = json!(AppRoleAssignment {
                id: String::new(),
                principal_id: me.clone(),
                resource_id: resource_sp.clone(),
                app_role_id: role.id.clone(),
            });
            match self.try_write(change, Method::POST, &path, Some(body)).await {
                Ok(()) => {}
                Err(e) if e.is_forbidden() => self.note(format!(
                    "assigning {}/{} needs an administrator or the app's owner; ask one to assign it in the \
Enterprise applications blade",
                    request.app, request.role
                )),
                Err(e) => return Err(RunError::stopped(self.done(), &e)),
            }
        }
        Ok(())
    }

    /// The values the hook publishes: each app's client id and application id URI.
    fn outputs(&self, apps: &BTreeMap<String, AppState>) -> BTreeMap<String, String> {
        let vars = self.deployment.vars();
        let mut outputs = BTreeMap::new();
        let manifest = self.manifest;
        for (name, app) in &manifest.apps {
            if let Some(state) = apps.get(name) {
                outputs.insert(deployment::client_id_key(name), state.app_id.clone());
            }
            if let Some(uri) = &app.identifier_uri {
                outputs.insert(deployment::app_id_uri_key(name), uri.render(&vars));
            }
        }
        outputs
    }

    fn write_outputs(&mut self, outputs: &BTreeMap<String, String>) -> Result<(), RunError> {
        for (key, value) in outputs {
            if self.deployment.values.get(key) == Some(value) {
                continue;
            }
            let change = self.change(Action::Set, "azd env", key, value.clone());
            if self.mode == Mode::Apply {
                self.env.set(key, value).map_err(|cause| RunError::Stopped {
                    done: self.summary.changes.len(),
                    cause,
                    hint: String::new(),
                })?;
                self.record(change);
            } else {
                self.summary.changes.push(change);
            }
        }
        Ok(())
    }

    async fn container_apps(&mut self, outputs: &BTreeMap<String, String>) -> Result<(), RunError> {
        let (Some(arm), Some(target)) = (self.arm, self.deployment.container_apps.clone()) else {
            self.note(
                "no container apps in the environment (or --skip-container-apps): their settings were not updated"
                    .into(),
            );
            return Ok(());
        };
        for (app, name) in &target.apps {
            let path = container_apps::resource_path(&target.subscription_id, &target.resource_group, name);
            let current = container_apps::get(arm, &path).await.map_err(|e| RunError::stopped(self.done(), &e))?;
            let Some((containers, changed)) = container_apps::updated_containers(&current, outputs) else { continue };
            let change = self.change(Action::Update, "container app", name, format!("{app}: {}", changed.join(", ")));
            if self.mode == Mode::Apply {
                container_apps::patch_containers(arm, &path, containers)
                    .await
                    .map_err(|e| RunError::stopped(self.done(), &e))?;
                self.record(change);
            } else {
                self.summary.changes.push(change);
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // cleanup

    pub async fn cleanup(mut self) -> Result<Summary, RunError> {
        let env_name = self.deployment.env_name.clone();
        let tag = desired::env_tag(&env_name);
        self.say(&format!("Removing the app registrations tagged {tag} from tenant {}.", self.deployment.tenant_id));
        self.check_tenant().await?;
        let filter = format!("tags/any(t:t eq '{tag}')");
        let apps: Vec<Application> = self.list("applications", &[("$filter", &filter)]).await?;
        for app in apps {
            let name = app
                .tags
                .iter()
                .find_map(|t| t.strip_prefix(&format!("{tag}:")))
                .unwrap_or(&app.display_name)
                .to_string();
            let filter = format!("appId eq '{}'", app.app_id);
            let principals: Vec<ServicePrincipal> = self.list("servicePrincipals", &[("$filter", &filter)]).await?;
            for sp in principals {
                let change = self.change(Action::Delete, "service principal", &name, format!("object id {}", sp.id));
                self.write_gone(change, &format!("servicePrincipals/{}", sp.id), NotFound::Gone).await?;
            }
            let change = self.change(Action::Delete, "application", &name, format!("object id {}", app.id));
            self.write_gone(change, &format!("applications/{}", app.id), NotFound::Gone).await?;
            // Deleted applications are kept 30 days and keep their identifier URIs reserved:
            // delete for good, so the next `azd up` of this environment can reuse them.
            let change =
                self.change(Action::Delete, "deleted application", &name, "permanently (frees its identifier URI)");
            self.write_gone(change, &format!("directory/deletedItems/{}", app.id), NotFound::Lag).await?;
        }
        Ok(self.finish(&format!("no app registrations are tagged {tag}")))
    }

    // ---------------------------------------------------------------------------------------
    // plumbing

    fn say(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
    }

    fn change(&self, action: Action, object: &'static str, name: &str, detail: impl Into<String>) -> Change {
        Change { action, object, name: name.to_string(), detail: detail.into() }
    }

    fn note(&mut self, note: String) {
        self.summary.notes.push(note);
    }

    fn done(&self) -> usize {
        if self.mode == Mode::Apply { self.summary.changes.len() } else { 0 }
    }

    fn record(&mut self, change: Change) {
        let _ = writeln!(self.out, "  {change}");
        self.summary.changes.push(change);
    }

    async fn list<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<T>, RunError> {
        let mut items = Vec::new();
        let mut next = Some((path.to_string(), query.to_vec()));
        let not_found = if path.contains('/') { NotFound::Lag } else { NotFound::Error };
        while let Some((url, query)) = next.take() {
            let answer = self
                .graph
                .send(Method::GET, &url, &query, None, not_found)
                .await
                .map_err(|e| RunError::stopped(self.done(), &e))?;
            let body = answer.body.unwrap_or(Value::Null);
            let page = body.get("value").cloned().unwrap_or(Value::Null);
            let page: Vec<T> = serde_json::from_value(page).map_err(|e| {
                RunError::stopped(self.done(), &self.graph.bad(&Method::GET, path, format!("not a list: {e}")))
            })?;
            items.extend(page);
            next = body.get("@odata.nextLink").and_then(Value::as_str).map(|link| (link.to_string(), Vec::new()));
        }
        Ok(items)
    }

    fn parse<T: DeserializeOwned>(&self, value: Value, path: &str) -> Result<T, RunError> {
        serde_json::from_value(value)
            .map_err(|e| RunError::stopped(self.done(), &self.graph.bad(&Method::POST, path, e.to_string())))
    }

    /// Records `change`; in apply mode also sends it. Returns the created object, if any.
    async fn write(
        &mut self,
        change: Change,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Option<Value>, RunError> {
        if self.mode == Mode::DryRun {
            self.summary.changes.push(change);
            return Ok(None);
        }
        let answer = self
            .graph
            .send(method, path, &[], body.as_ref(), NotFound::Lag)
            .await
            .map_err(|e| RunError::stopped(self.done(), &e))?;
        self.record(change);
        Ok(answer.body)
    }

    /// Like [`Self::write`], but hands a refusal back to the caller, which may work around it.
    async fn try_write(
        &mut self,
        change: Change,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(), ApiError> {
        if self.mode == Mode::DryRun {
            self.summary.changes.push(change);
            return Ok(());
        }
        self.graph.send(method, path, &[], body.as_ref(), NotFound::Lag).await?;
        self.record(change);
        Ok(())
    }

    async fn write_gone(&mut self, change: Change, path: &str, not_found: NotFound) -> Result<(), RunError> {
        if self.mode == Mode::DryRun {
            self.summary.changes.push(change);
            return Ok(());
        }
        match self.graph.send(Method::DELETE, path, &[], None, not_found).await {
            Ok(_) => {
                self.record(change);
                Ok(())
            }
            Err(e) => Err(RunError::stopped(self.done(), &e)),
        }
    }

    fn finish(mut self, unchanged: &str) -> Summary {
        let count = self.summary.changes.len();
        match (self.mode, count) {
            (_, 0) => self.say(&format!("Nothing to change: {unchanged}.")),
            (Mode::DryRun, _) => {
                let text = table(&self.summary.changes);
                let _ = write!(self.out, "{text}");
                self.say(&format!("Dry run: {count} change(s) planned, nothing written."));
            }
            (Mode::Apply, _) => self.say(&format!("Done: {count} change(s) made.")),
        }
        for note in self.summary.notes.clone() {
            self.say(&format!("note: {note}"));
        }
        self.summary
    }
}
