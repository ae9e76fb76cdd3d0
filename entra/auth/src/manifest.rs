//! The identity manifest, `infra/app-registrations.toml`: the one description of the tenant.
//!
//! [`Manifest::load`] parses it and checks every cross-reference (pre-authorized clients,
//! required access, federated credentials, user role assignments), so a typo fails with a message
//! naming the file and line instead of surfacing later as a confusing token error.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// The manifest's path relative to the workspace root.
pub const DEFAULT_PATH: &str = "infra/app-registrations.toml";

/// The Entra scope value that stands for "everything this client was granted on a resource".
pub const DEFAULT_SCOPE: &str = ".default";

/// A manifest problem, with the file and line it was found at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub file: String,
    /// 1-based; `None` when the problem is not tied to one line (for example, an unreadable file).
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ManifestError {}

/// Values that differ per environment, substituted into [`Template`]s.
#[derive(Debug, Clone)]
pub struct Vars {
    /// `local` offline; the azd environment name in Azure.
    pub suffix: String,
    /// Origin users reach chat-app on, without a trailing slash.
    pub chat_app_url: String,
}

impl Vars {
    /// The values for the offline stack on the default ports.
    pub fn local() -> Self {
        Vars { suffix: "local".into(), chat_app_url: "http://localhost:3000".into() }
    }
}

const PLACEHOLDERS: [&str; 2] = ["{suffix}", "{chat_app_url}"];

/// A string with `{suffix}` / `{chat_app_url}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(String);

impl Template {
    pub fn render(&self, vars: &Vars) -> String {
        self.0.replace("{suffix}", &vars.suffix).replace("{chat_app_url}", vars.chat_app_url.trim_end_matches('/'))
    }

    /// The text as written in the manifest.
    pub fn raw(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct Manifest {
    pub tenant: Tenant,
    /// App registrations this project owns, by manifest name (`orders-api`, ...).
    pub apps: BTreeMap<String, App>,
    /// First-party clients that exist in every tenant (Azure CLI, VS Code), by manifest name.
    pub clients: BTreeMap<String, Client>,
    pub managed_identities: BTreeMap<String, ManagedIdentity>,
    pub users: Vec<User>,
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub domain: String,
    pub display_name: String,
}

#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    pub display_name: String,
    pub client_id: String,
    pub object_id: String,
    pub identifier_uri: Option<Template>,
    /// 1 or 2: the shape of access tokens issued *for* this app (`requestedAccessTokenVersion`).
    pub access_token_version: u8,
    pub scopes: Vec<Scope>,
    pub app_roles: Vec<AppRole>,
    pub pre_authorized: Vec<PreAuthorized>,
    pub required_access: Vec<RequiredAccess>,
    /// Manifest names of apps whose consent also covers this one.
    pub known_client_applications: Vec<String>,
    pub federated_credentials: Vec<FederatedCredential>,
    pub redirect_uris: Vec<Template>,
    pub front_channel_logout_url: Option<Template>,
    /// The emulator's client secret: a local fallback only, never applied to a real tenant.
    pub emulator_client_secret: Option<String>,
}

impl App {
    pub fn scope(&self, value: &str) -> Option<&Scope> {
        self.scopes.iter().find(|s| s.value == value)
    }

    pub fn app_role(&self, value: &str) -> Option<&AppRole> {
        self.app_roles.iter().find(|r| r.value == value)
    }

    /// The full scope string a client requests, e.g. `api://orders-api-local/Orders.Read`.
    pub fn scope_uri(&self, value: &str, vars: &Vars) -> Option<String> {
        let uri = self.identifier_uri.as_ref()?.render(vars);
        Some(format!("{uri}/{value}"))
    }

    /// Whether this app is a confidential client (can hold a credential and use OBO / client
    /// credentials): it has a federated credential or an emulator secret.
    pub fn is_confidential(&self) -> bool {
        !self.federated_credentials.is_empty() || self.emulator_client_secret.is_some()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    pub value: String,
    pub id: String,
    pub admin_consent_display_name: String,
    pub admin_consent_description: String,
    pub user_consent_display_name: String,
    pub user_consent_description: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRole {
    pub value: String,
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub allowed_member_types: Vec<MemberType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MemberType {
    User,
    Application,
}

#[derive(Debug, Clone)]
pub struct PreAuthorized {
    /// Manifest name of an app or a first-party client.
    pub client: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RequiredAccess {
    /// Manifest name of the resource app.
    pub resource: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FederatedCredential {
    pub name: String,
    /// Manifest name of the managed identity this app trusts.
    pub managed_identity: String,
}

#[derive(Debug, Clone)]
pub struct Client {
    pub name: String,
    pub display_name: String,
    pub client_id: String,
    pub redirect_uris: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ManagedIdentity {
    pub name: String,
    pub client_id: String,
    /// The identity's service principal object id: the `sub` of its tokens.
    pub principal_id: String,
}

#[derive(Debug, Clone)]
pub struct User {
    /// Sign-in name; the user principal name is `name@tenant.domain`.
    pub name: String,
    pub display_name: String,
    pub oid: String,
    pub password: String,
    pub app_roles: Vec<RoleAssignment>,
}

impl User {
    pub fn upn(&self, tenant: &Tenant) -> String {
        format!("{}@{}", self.name, tenant.domain)
    }
}

/// An app role given to a user: `orders-api/Orders.Admin` in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignment {
    pub app: String,
    pub role: String,
}

impl Manifest {
    /// Reads and checks the manifest at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ManifestError {
            file: path.display().to_string(),
            line: None,
            message: format!("cannot read the identity manifest: {e}"),
        })?;
        Manifest::parse(&text, &path.display().to_string())
    }

    /// Finds the manifest from `start` or one of its ancestors: the workspace root holds it.
    pub fn locate(start: impl AsRef<Path>) -> Option<PathBuf> {
        start.as_ref().ancestors().map(|dir| dir.join(DEFAULT_PATH)).find(|p| p.is_file())
    }

    /// Parses and checks manifest text; `file` names it in error messages.
    pub fn parse(text: &str, file: &str) -> Result<Manifest, ManifestError> {
        let raw: raw::Manifest = toml::from_str(text).map_err(|e| ManifestError {
            file: file.to_string(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().to_string(),
        })?;
        Checker { text, file, errors: Vec::new() }.check(raw)
    }

    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.get(name)
    }

    pub fn app_by_client_id(&self, client_id: &str) -> Option<&App> {
        self.apps.values().find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(1, |before| before.matches('\n').count() + 1)
}

/// Entra object ids and app ids are GUIDs; anything else is a typo.
fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    groups.len() == 5 && groups.iter().zip(lens).all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

struct Checker<'a> {
    text: &'a str,
    file: &'a str,
    errors: Vec<ManifestError>,
}

impl Checker<'_> {
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
        Template(value.get_ref().clone())
    }

    fn check(mut self, raw: raw::Manifest) -> Result<Manifest, ManifestError> {
        let tenant = Tenant {
            id: self.guid(&raw.tenant.id, "tenant id"),
            domain: raw.tenant.domain,
            display_name: raw.tenant.display_name,
        };

        let mut seen_ids: BTreeMap<String, String> = BTreeMap::new();
        let mut unique_id = |checker: &mut Self, id: &Spanned<String>, owner: String| {
            let key = id.get_ref().to_ascii_lowercase();
            if let Some(first) = seen_ids.insert(key, owner.clone()) {
                checker.error(id.span(), format!("{owner} reuses the id {:?} of {first}", id.get_ref()));
            }
        };

        let mut managed_identities = BTreeMap::new();
        for (name, mi) in &raw.managed_identity {
            unique_id(&mut self, &mi.client_id, format!("managed identity {name:?}"));
            managed_identities.insert(
                name.clone(),
                ManagedIdentity {
                    name: name.clone(),
                    client_id: self.guid(&mi.client_id, "client_id"),
                    principal_id: self.guid(&mi.principal_id, "principal_id"),
                },
            );
        }

        let mut clients = BTreeMap::new();
        for (name, client) in &raw.client {
            unique_id(&mut self, &client.client_id, format!("client {name:?}"));
            clients.insert(
                name.clone(),
                Client {
                    name: name.clone(),
                    display_name: client.display_name.clone(),
                    client_id: self.guid(&client.client_id, "client_id"),
                    redirect_uris: client.redirect_uris.clone(),
                },
            );
        }

        // First pass: the apps themselves, so references between them can be checked after.
        let mut apps = BTreeMap::new();
        for (name, app) in &raw.app {
            if clients.contains_key(name) {
                self.error(app.client_id.span(), format!("app {name:?} has the same name as a client"));
            }
            unique_id(&mut self, &app.client_id, format!("app {name:?}"));
            let version = *app.access_token_version.get_ref();
            if version != 1 && version != 2 {
                self.error(
                    app.access_token_version.span(),
                    format!("access_token_version must be 1 or 2, not {version}"),
                );
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
            let redirect_uris = app.redirect_uris.iter().map(|t| self.template(t)).collect();
            let front_channel_logout_url = app.front_channel_logout_url.as_ref().map(|t| self.template(t));
            apps.insert(
                name.clone(),
                App {
                    name: name.clone(),
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
                    redirect_uris,
                    front_channel_logout_url,
                    emulator_client_secret: app.emulator_client_secret.clone(),
                },
            );
        }

        // Second pass: references.
        for (name, app) in &raw.app {
            let mut pre_authorized = Vec::new();
            for pre in &app.pre_authorized {
                let client = pre.client.get_ref();
                if !apps.contains_key(client) && !clients.contains_key(client) {
                    self.error(
                        pre.client.span(),
                        format!("pre-authorized client {client:?} is not an app or client defined in this manifest"),
                    );
                }
                let scopes = self.scopes_of(&apps, name, &pre.scopes);
                pre_authorized.push(PreAuthorized { client: client.clone(), scopes });
            }
            let mut required_access = Vec::new();
            for req in &app.required_access {
                let resource = req.resource.get_ref();
                if !apps.contains_key(resource) {
                    self.error(
                        req.resource.span(),
                        format!("required_access names resource {resource:?}, which is not an app in this manifest"),
                    );
                    continue;
                }
                let scopes = self.scopes_of(&apps, resource, &req.scopes);
                required_access.push(RequiredAccess { resource: resource.clone(), scopes });
            }
            let mut known = Vec::new();
            for known_client in &app.known_client_applications {
                if !apps.contains_key(known_client.get_ref()) {
                    self.error(
                        known_client.span(),
                        format!("known client application {:?} is not an app in this manifest", known_client.get_ref()),
                    );
                }
                known.push(known_client.get_ref().clone());
            }
            let mut federated = Vec::new();
            for fic in &app.federated_credential {
                let mi = fic.managed_identity.get_ref();
                if !managed_identities.contains_key(mi) {
                    self.error(
                        fic.managed_identity.span(),
                        format!(
                            "federated credential trusts managed identity {mi:?}, which is not defined in this manifest"
                        ),
                    );
                }
                federated.push(FederatedCredential { name: fic.name.clone(), managed_identity: mi.clone() });
            }
            if let Some(entry) = apps.get_mut(name) {
                entry.pre_authorized = pre_authorized;
                entry.required_access = required_access;
                entry.known_client_applications = known;
                entry.federated_credentials = federated;
            }
        }

        let mut users = Vec::new();
        let mut user_names = BTreeSet::new();
        for user in &raw.user {
            if !user_names.insert(user.name.get_ref().clone()) {
                self.error(user.name.span(), format!("user {:?} is defined twice", user.name.get_ref()));
            }
            unique_id(&mut self, &user.oid, format!("user {:?}", user.name.get_ref()));
            let mut roles = Vec::new();
            for assignment in &user.app_roles {
                match assignment.get_ref().split_once('/') {
                    Some((app, role)) => {
                        let known = apps.get(app).and_then(|a| a.app_role(role));
                        match known {
                            Some(r) if r.allowed_member_types.contains(&MemberType::User) => {}
                            Some(_) => self.error(
                                assignment.span(),
                                format!("app role {role:?} of {app:?} cannot be assigned to users"),
                            ),
                            None => self.error(
                                assignment.span(),
                                format!("app role {:?} is not defined in this manifest", assignment.get_ref()),
                            ),
                        }
                        roles.push(RoleAssignment { app: app.into(), role: role.into() });
                    }
                    None => self.error(
                        assignment.span(),
                        format!("app role {:?} must be written \"<app>/<role>\"", assignment.get_ref()),
                    ),
                }
            }
            users.push(User {
                name: user.name.get_ref().clone(),
                display_name: user.display_name.clone(),
                oid: self.guid(&user.oid, "oid"),
                password: user.password.clone(),
                app_roles: roles,
            });
        }

        match self.errors.into_iter().min_by_key(|e| e.line) {
            Some(first) => Err(first),
            None => Ok(Manifest { tenant, apps, clients, managed_identities, users }),
        }
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
}

/// The file's shape, as written; [`Checker`] turns it into a [`Manifest`].
mod raw {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use toml::Spanned;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Manifest {
        pub tenant: Tenant,
        #[serde(default)]
        pub app: BTreeMap<String, App>,
        #[serde(default)]
        pub client: BTreeMap<String, Client>,
        #[serde(default)]
        pub managed_identity: BTreeMap<String, ManagedIdentity>,
        #[serde(default)]
        pub user: Vec<User>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Tenant {
        pub id: Spanned<String>,
        pub domain: String,
        pub display_name: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct App {
        pub display_name: String,
        pub client_id: Spanned<String>,
        pub object_id: Spanned<String>,
        pub identifier_uri: Option<Spanned<String>>,
        #[serde(default = "v1")]
        pub access_token_version: Spanned<u8>,
        #[serde(default)]
        pub scope: Vec<Spanned<super::Scope>>,
        #[serde(default)]
        pub app_role: Vec<Spanned<super::AppRole>>,
        #[serde(default)]
        pub pre_authorized: Vec<PreAuthorized>,
        #[serde(default)]
        pub required_access: Vec<RequiredAccess>,
        #[serde(default)]
        pub known_client_applications: Vec<Spanned<String>>,
        #[serde(default)]
        pub federated_credential: Vec<FederatedCredential>,
        #[serde(default)]
        pub redirect_uris: Vec<Spanned<String>>,
        pub front_channel_logout_url: Option<Spanned<String>>,
        pub emulator_client_secret: Option<String>,
    }

    /// Entra issues v1 tokens when `requestedAccessTokenVersion` is unset.
    fn v1() -> Spanned<u8> {
        Spanned::new(0..0, 1)
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PreAuthorized {
        pub client: Spanned<String>,
        pub scopes: Vec<Spanned<String>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RequiredAccess {
        pub resource: Spanned<String>,
        pub scopes: Vec<Spanned<String>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FederatedCredential {
        pub name: String,
        pub managed_identity: Spanned<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Client {
        pub display_name: String,
        pub client_id: Spanned<String>,
        #[serde(default)]
        pub redirect_uris: Vec<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ManagedIdentity {
        pub client_id: Spanned<String>,
        pub principal_id: Spanned<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct User {
        pub name: Spanned<String>,
        pub display_name: String,
        pub oid: Spanned<String>,
        pub password: String,
        #[serde(default)]
        pub app_roles: Vec<Spanned<String>>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "app-registrations.toml";

    fn repo_manifest() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/app-registrations.toml")).unwrap()
    }

    #[test]
    fn the_repository_manifest_is_valid_and_complete() {
        let m = Manifest::parse(&repo_manifest(), FILE).unwrap();
        let api = m.app("orders-api").unwrap();
        assert_eq!(api.access_token_version, 1);
        assert!(api.scope("Orders.Read").is_some() && api.scope("Orders.ReadWrite").is_some());
        assert!(api.app_role("Orders.Admin").is_some());
        let mcp = m.app("orders-mcp").unwrap();
        assert_eq!(mcp.access_token_version, 2);
        assert!(mcp.scope("access_as_user").is_some());
        let pre: Vec<_> = mcp.pre_authorized.iter().map(|p| p.client.as_str()).collect();
        assert_eq!(pre, ["chat-app", "azure-cli", "vscode"]);
        assert_eq!(m.clients["azure-cli"].client_id, "04b07795-8ddb-461a-bbee-02f9e1bf7b46");
        assert_eq!(m.clients["vscode"].client_id, "aebc6443-996d-45c2-90f0-388ff96faa56");
        assert_eq!(
            m.user("carol").unwrap().app_roles,
            [RoleAssignment { app: "orders-api".into(), role: "Orders.Admin".into() }]
        );
        let vars = Vars::local();
        assert_eq!(api.identifier_uri.as_ref().unwrap().render(&vars), "api://orders-api-local");
        assert_eq!(m.app("chat-app").unwrap().redirect_uris[0].render(&vars), "http://localhost:3000/auth/callback");
    }

    fn error_for(edit: impl Fn(String) -> String) -> ManifestError {
        Manifest::parse(&edit(repo_manifest()), FILE).unwrap_err()
    }

    fn line_containing(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let text = repo_manifest()
            .replace("display_name = \"Orders API\"", "display_name = \"Orders API\"\ncolour = \"blue\"");
        let err = Manifest::parse(&text, FILE).unwrap_err();
        assert_eq!(err.line, Some(line_containing(&text, "colour")));
        assert!(err.message.contains("colour"), "{err}");
        assert!(err.to_string().starts_with(&format!("{FILE}:{}:", err.line.unwrap())));
    }

    #[test]
    fn a_duplicate_app_is_refused_with_its_line() {
        let text = format!("{}\n[app.orders-api]\ndisplay_name = \"again\"\n", repo_manifest());
        let err = Manifest::parse(&text, FILE).unwrap_err();
        assert!(err.line.is_some_and(|l| l >= line_containing(&text, "display_name = \"again\"") - 1), "{err}");
    }

    #[test]
    fn a_scope_referenced_but_not_defined_names_its_line() {
        let err = error_for(|t| {
            t.replace(
                "scopes = [\"Orders.Read\", \"Orders.ReadWrite\"]",
                "scopes = [\"Orders.Read\", \"Orders.Write\"]",
            )
        });
        assert!(err.message.contains("\"Orders.Write\"") && err.message.contains("orders-api"), "{err}");
        let text = repo_manifest();
        assert_eq!(err.line, Some(line_containing(&text, "scopes = [\"Orders.Read\", \"Orders.ReadWrite\"]")));
    }

    #[test]
    fn broken_references_are_refused() {
        let cases: [(&str, &str, &str); 6] = [
            ("client = \"vscode\"", "client = \"vscodium\"", "vscodium"),
            ("resource = \"orders-api\"", "resource = \"orders-apix\"", "orders-apix"),
            ("managed_identity = \"chat-app\"", "managed_identity = \"chatapp\"", "chatapp"),
            ("app_roles = [\"orders-api/Orders.Admin\"]", "app_roles = [\"orders-api/Orders.Boss\"]", "Orders.Boss"),
            ("known_client_applications = [\"chat-app\"]", "known_client_applications = [\"chat\"]", "chat"),
            ("access_token_version = 2", "access_token_version = 3", "3"),
        ];
        for (from, to, named) in cases {
            let err = error_for(|t| t.replacen(from, to, 1));
            assert!(err.message.contains(named), "{to}: {err}");
            assert!(err.line.is_some(), "{to}: {err}");
        }
    }

    #[test]
    fn ids_must_be_guids_and_unique() {
        let err = error_for(|t| t.replace("90fbcf15-4b8f-4aed-86b8-b11996ed07e6", "not-a-guid"));
        assert!(err.message.contains("not a GUID"), "{err}");
        let err =
            error_for(|t| t.replace("a58242b0-4441-4e9a-b6fa-2c3a3d94ebff", "90fbcf15-4b8f-4aed-86b8-b11996ed07e6"));
        assert!(err.message.contains("reuses the id"), "{err}");
    }

    #[test]
    fn unknown_placeholders_are_refused() {
        let err = error_for(|t| t.replace("api://orders-api-{suffix}", "api://orders-api-{sufix}"));
        assert!(err.message.contains("{sufix}"), "{err}");
    }

    #[test]
    fn a_missing_file_says_so() {
        let err = Manifest::load("/nonexistent/app-registrations.toml").unwrap_err();
        assert!(err.to_string().contains("cannot read the identity manifest"), "{err}");
    }
}
