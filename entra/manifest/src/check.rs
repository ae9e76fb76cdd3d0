//! Checking a parsed manifest: ids are GUIDs and unique, placeholders are known, and every
//! reference (pre-authorized clients, required access, federated credentials, role
//! assignments) names something the manifest defines. Each problem names its line.

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;

use crate::error::{ManifestError, line_of};
use crate::model::{
    AgentIdentity, App, AuthContext, Client, FederatedCredential, ManagedIdentity, Manifest, MemberType, PreAuthorized,
    RequiredAccess, RoleAssignment, Tenant, User, is_auth_context_id,
};
use crate::raw;
use crate::template::{PLACEHOLDERS, Template};

/// Entra object ids and app ids are GUIDs; anything else is a typo.
fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    groups.len() == 5 && groups.iter().zip(lens).all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Collects every problem; the first by line is reported.
pub(crate) struct Checker<'a> {
    text: &'a str,
    file: &'a str,
    errors: Vec<ManifestError>,
    /// Every id seen so far (lower case), with what it belongs to: ids are unique across kinds.
    ids: BTreeMap<String, String>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(text: &'a str, file: &'a str) -> Self {
        Checker { text, file, errors: Vec::new(), ids: BTreeMap::new() }
    }

    pub(crate) fn check(mut self, raw: raw::Manifest) -> Result<Manifest, ManifestError> {
        let tenant = Tenant {
            id: self.guid(&raw.tenant.id, "tenant id"),
            domain: raw.tenant.domain,
            display_name: raw.tenant.display_name,
        };
        let managed_identities = self.managed_identities(&raw.managed_identity);
        let clients = self.clients(&raw.client);
        // The apps themselves first, so references between them can be checked after.
        let mut apps = self.apps(&raw.app, &clients);
        let lookup = apps.clone();
        self.references(&raw.app, &mut apps, &lookup, &clients, &managed_identities);
        for (name, app) in &raw.app {
            if let Some(first) = app.inheritable_permission.first() {
                self.error(
                    first.resource.span(),
                    format!("app {name:?} has inheritable permissions: only an agent_blueprint can"),
                );
            }
        }
        let (agent_blueprints, agent_identities) =
            self.agents(&raw.agent_blueprint, &raw.agent_identity, &apps, &clients, &managed_identities);
        let users = self.users(&raw.user, &apps);
        let auth_contexts = self.auth_contexts(&raw.auth_context);
        match self.errors.into_iter().min_by_key(|e| e.line) {
            Some(first) => Err(first),
            None => Ok(Manifest {
                tenant,
                apps,
                clients,
                managed_identities,
                agent_blueprints,
                agent_identities,
                users,
                auth_contexts,
            }),
        }
    }

    /// Authentication context ids are `c1` through `c99`.
    fn auth_contexts(&mut self, raw: &BTreeMap<String, raw::AuthContext>) -> BTreeMap<String, AuthContext> {
        let mut contexts = BTreeMap::new();
        for (id, context) in raw {
            if !is_auth_context_id(id) {
                self.error(context.display_name.span(), format!("auth_context {id:?} must be c1 ... c99"));
            }
            let display_name = context.display_name.get_ref().clone();
            contexts.insert(id.clone(), AuthContext { id: id.clone(), display_name });
        }
        contexts
    }

    /// Agent ID: blueprints are checked like apps (their scopes, pre-authorized clients and
    /// federated credentials), plus their inheritable permissions, which must name scopes of
    /// the manifest's apps; every agent identity names a blueprint.
    fn agents(
        &mut self,
        raw_blueprints: &BTreeMap<String, raw::App>,
        raw_identities: &BTreeMap<String, raw::AgentIdentity>,
        apps: &BTreeMap<String, App>,
        clients: &BTreeMap<String, Client>,
        managed_identities: &BTreeMap<String, ManagedIdentity>,
    ) -> (BTreeMap<String, App>, BTreeMap<String, AgentIdentity>) {
        let mut blueprints: BTreeMap<String, App> = BTreeMap::new();
        for (name, raw) in raw_blueprints {
            if apps.contains_key(name) {
                self.error(raw.client_id.span(), format!("agent blueprint {name:?} has the same name as an app"));
            }
            blueprints.insert(name.clone(), self.app(name, raw, clients));
        }
        // A blueprint's own scopes are looked up among the blueprints, the rest among the apps.
        let mut lookup = apps.clone();
        lookup.extend(blueprints.clone());
        self.references(raw_blueprints, &mut blueprints, &lookup, clients, managed_identities);
        for (name, raw) in raw_blueprints {
            let inheritable = raw
                .inheritable_permission
                .iter()
                .filter_map(|req| {
                    let resource = req.resource.get_ref();
                    if !apps.contains_key(resource) {
                        self.error(
                            req.resource.span(),
                            format!("inheritable_permission names {resource:?}, which is not an app in this manifest"),
                        );
                        return None;
                    }
                    Some(RequiredAccess {
                        resource: resource.clone(),
                        scopes: self.scopes_of(apps, resource, &req.scopes),
                    })
                })
                .collect();
            if let Some(entry) = blueprints.get_mut(name) {
                entry.inheritable_permissions = inheritable;
            }
        }
        let identities = raw_identities
            .iter()
            .map(|(name, raw)| {
                self.unique_id(&raw.client_id, format!("agent identity {name:?}"));
                let blueprint = raw.blueprint.get_ref();
                if !blueprints.contains_key(blueprint) {
                    self.error(
                        raw.blueprint.span(),
                        format!(
                            "agent identity {name:?} names blueprint {blueprint:?}, which is not an agent_blueprint"
                        ),
                    );
                }
                let identity = AgentIdentity {
                    name: name.clone(),
                    display_name: raw.display_name.clone(),
                    client_id: self.guid(&raw.client_id, "client_id"),
                    object_id: self.guid(&raw.object_id, "object_id"),
                    blueprint: blueprint.clone(),
                };
                (name.clone(), identity)
            })
            .collect();
        (blueprints, identities)
    }

    fn managed_identities(
        &mut self,
        raw: &BTreeMap<String, raw::ManagedIdentity>,
    ) -> BTreeMap<String, ManagedIdentity> {
        raw.iter()
            .map(|(name, mi)| {
                self.unique_id(&mi.client_id, format!("managed identity {name:?}"));
                let identity = ManagedIdentity {
                    name: name.clone(),
                    client_id: self.guid(&mi.client_id, "client_id"),
                    principal_id: self.guid(&mi.principal_id, "principal_id"),
                };
                (name.clone(), identity)
            })
            .collect()
    }

    fn clients(&mut self, raw: &BTreeMap<String, raw::Client>) -> BTreeMap<String, Client> {
        raw.iter()
            .map(|(name, client)| {
                self.unique_id(&client.client_id, format!("client {name:?}"));
                let client = Client {
                    name: name.clone(),
                    display_name: client.display_name.clone(),
                    client_id: self.guid(&client.client_id, "client_id"),
                    redirect_uris: client.redirect_uris.clone(),
                };
                (name.clone(), client)
            })
            .collect()
    }

    /// Each app on its own; references to other apps are left empty for [`Self::references`].
    fn apps(&mut self, raw: &BTreeMap<String, raw::App>, clients: &BTreeMap<String, Client>) -> BTreeMap<String, App> {
        raw.iter().map(|(name, app)| (name.clone(), self.app(name, app, clients))).collect()
    }

    fn app(&mut self, name: &str, app: &raw::App, clients: &BTreeMap<String, Client>) -> App {
        if clients.contains_key(name) {
            self.error(app.client_id.span(), format!("app {name:?} has the same name as a client"));
        }
        self.unique_id(&app.client_id, format!("app {name:?}"));
        let version = *app.access_token_version.get_ref();
        if version != 1 && version != 2 {
            self.error(app.access_token_version.span(), format!("access_token_version must be 1 or 2, not {version}"));
        }
        let mut scope_values = BTreeSet::new();
        for scope in &app.scope {
            if !scope_values.insert(scope.get_ref().value.clone()) {
                self.error(scope.span(), format!("app {name:?} defines scope {:?} twice", scope.get_ref().value));
            }
            if !is_guid(&scope.get_ref().id) {
                self.error(scope.span(), format!("scope {:?} id is not a GUID", scope.get_ref().value));
            }
        }
        for role in &app.app_role {
            if !is_guid(&role.get_ref().id) {
                self.error(role.span(), format!("app role {:?} id is not a GUID", role.get_ref().value));
            }
        }
        let identifier_uri = app.identifier_uri.as_ref().map(|t| self.template(t));
        if identifier_uri.is_none() && !app.scope.is_empty() {
            self.error(app.client_id.span(), format!("app {name:?} defines scopes but no identifier_uri"));
        }
        App {
            name: name.to_string(),
            display_name: app.display_name.clone(),
            client_id: self.guid(&app.client_id, "client_id"),
            object_id: self.guid(&app.object_id, "object_id"),
            identifier_uri,
            access_token_version: version,
            scopes: app.scope.iter().map(|s| s.get_ref().clone()).collect(),
            app_roles: app.app_role.iter().map(|r| r.get_ref().clone()).collect(),
            pre_authorized: Vec::new(),
            required_access: Vec::new(),
            known_client_applications: Vec::new(),
            federated_credentials: Vec::new(),
            redirect_uris: app.redirect_uris.iter().map(|t| self.template(t)).collect(),
            front_channel_logout_url: app.front_channel_logout_url.as_ref().map(|t| self.template(t)),
            emulator_client_secret: app.emulator_client_secret.clone(),
            inheritable_permissions: Vec::new(),
        }
    }

    /// What each app says about the others: pre-authorized clients, required access, known
    /// client applications, federated credentials.
    /// `lookup` is every app a reference may name (the apps, plus the blueprints themselves
    /// when `targets` are blueprints).
    fn references(
        &mut self,
        raw: &BTreeMap<String, raw::App>,
        targets: &mut BTreeMap<String, App>,
        lookup: &BTreeMap<String, App>,
        clients: &BTreeMap<String, Client>,
        managed_identities: &BTreeMap<String, ManagedIdentity>,
    ) {
        for (name, app) in raw {
            let pre_authorized = self.pre_authorized(name, app, lookup, clients);
            let required_access = self.required_access(app, lookup);
            let known = self.known_clients(app, lookup);
            let federated = self.federated_credentials(app, managed_identities);
            if let Some(entry) = targets.get_mut(name) {
                entry.pre_authorized = pre_authorized;
                entry.required_access = required_access;
                entry.known_client_applications = known;
                entry.federated_credentials = federated;
            }
        }
    }

    fn pre_authorized(
        &mut self,
        name: &str,
        app: &raw::App,
        apps: &BTreeMap<String, App>,
        clients: &BTreeMap<String, Client>,
    ) -> Vec<PreAuthorized> {
        app.pre_authorized
            .iter()
            .map(|pre| {
                let client = pre.client.get_ref();
                if !apps.contains_key(client) && !clients.contains_key(client) {
                    self.error(
                        pre.client.span(),
                        format!("pre-authorized client {client:?} is not an app or client defined in this manifest"),
                    );
                }
                PreAuthorized { client: client.clone(), scopes: self.scopes_of(apps, name, &pre.scopes) }
            })
            .collect()
    }

    fn required_access(&mut self, app: &raw::App, apps: &BTreeMap<String, App>) -> Vec<RequiredAccess> {
        let mut required = Vec::new();
        for req in &app.required_access {
            let resource = req.resource.get_ref();
            if !apps.contains_key(resource) {
                self.error(
                    req.resource.span(),
                    format!("required_access names resource {resource:?}, which is not an app in this manifest"),
                );
                continue;
            }
            let scopes = self.scopes_of(apps, resource, &req.scopes);
            required.push(RequiredAccess { resource: resource.clone(), scopes });
        }
        required
    }

    fn known_clients(&mut self, app: &raw::App, apps: &BTreeMap<String, App>) -> Vec<String> {
        app.known_client_applications
            .iter()
            .map(|known| {
                if !apps.contains_key(known.get_ref()) {
                    self.error(
                        known.span(),
                        format!("known client application {:?} is not an app in this manifest", known.get_ref()),
                    );
                }
                known.get_ref().clone()
            })
            .collect()
    }

    fn federated_credentials(
        &mut self,
        app: &raw::App,
        managed_identities: &BTreeMap<String, ManagedIdentity>,
    ) -> Vec<FederatedCredential> {
        app.federated_credential
            .iter()
            .map(|fic| {
                let mi = fic.managed_identity.get_ref();
                if !managed_identities.contains_key(mi) {
                    self.error(
                        fic.managed_identity.span(),
                        format!(
                            "federated credential trusts managed identity {mi:?}, which is not defined in this manifest"
                        ),
                    );
                }
                FederatedCredential { name: fic.name.clone(), managed_identity: mi.clone() }
            })
            .collect()
    }

    fn users(&mut self, raw: &[raw::User], apps: &BTreeMap<String, App>) -> Vec<User> {
        let mut names = BTreeSet::new();
        let mut users = Vec::new();
        for user in raw {
            if !names.insert(user.name.get_ref().clone()) {
                self.error(user.name.span(), format!("user {:?} is defined twice", user.name.get_ref()));
            }
            self.unique_id(&user.oid, format!("user {:?}", user.name.get_ref()));
            let app_roles = user.app_roles.iter().filter_map(|a| self.role_assignment(a, apps)).collect();
            users.push(User {
                name: user.name.get_ref().clone(),
                display_name: user.display_name.clone(),
                oid: self.guid(&user.oid, "oid"),
                password: user.password.clone(),
                app_roles,
            });
        }
        users
    }

    /// `orders-api/Orders.Admin`: a role the app defines for users.
    fn role_assignment(
        &mut self,
        assignment: &Spanned<String>,
        apps: &BTreeMap<String, App>,
    ) -> Option<RoleAssignment> {
        let Some((app, role)) = assignment.get_ref().split_once('/') else {
            self.error(
                assignment.span(),
                format!("app role {:?} must be written \"<app>/<role>\"", assignment.get_ref()),
            );
            return None;
        };
        match apps.get(app).and_then(|a| a.app_role(role)) {
            Some(r) if r.allowed_member_types.contains(&MemberType::User) => {}
            Some(_) => {
                self.error(assignment.span(), format!("app role {role:?} of {app:?} cannot be assigned to users"))
            }
            None => self.error(
                assignment.span(),
                format!("app role {:?} is not defined in this manifest", assignment.get_ref()),
            ),
        }
        Some(RoleAssignment { app: app.into(), role: role.into() })
    }

    /// Checks that every scope in `scopes` is defined by app `resource`.
    fn scopes_of(&mut self, apps: &BTreeMap<String, App>, resource: &str, scopes: &[Spanned<String>]) -> Vec<String> {
        let defined = apps.get(resource);
        scopes
            .iter()
            .map(|s| {
                if defined.is_some_and(|app| app.scope(s.get_ref()).is_none()) {
                    self.error(s.span(), format!("scope {:?} is not defined by app {resource:?}", s.get_ref()));
                }
                s.get_ref().clone()
            })
            .collect()
    }

    fn unique_id(&mut self, id: &Spanned<String>, owner: String) {
        let key = id.get_ref().to_ascii_lowercase();
        if let Some(first) = self.ids.insert(key, owner.clone()) {
            self.error(id.span(), format!("{owner} reuses the id {:?} of {first}", id.get_ref()));
        }
    }

    fn error(&mut self, span: std::ops::Range<usize>, message: String) {
        self.errors.push(ManifestError {
            file: self.file.to_string(),
            line: Some(line_of(self.text, span.start)),
            message,
        });
    }

    fn guid(&mut self, value: &Spanned<String>, what: &str) -> String {
        if !is_guid(value.get_ref()) {
            self.error(value.span(), format!("{what} {:?} is not a GUID", value.get_ref()));
        }
        value.get_ref().to_ascii_lowercase()
    }

    fn template(&mut self, value: &Spanned<String>) -> Template {
        let mut rest = value.get_ref().as_str();
        while let Some(start) = rest.find('{') {
            let tail = &rest[start..];
            let end = tail.find('}').map_or(tail.len(), |i| i + 1);
            let placeholder = &tail[..end];
            if !PLACEHOLDERS.contains(&placeholder) {
                self.error(
                    value.span(),
                    format!("unknown placeholder {placeholder:?} (known: {})", PLACEHOLDERS.join(", ")),
                );
            }
            rest = &tail[end..];
        }
        Template::new(value.get_ref().clone())
    }
}
