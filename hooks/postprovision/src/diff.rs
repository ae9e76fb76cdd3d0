//! What must change for an application to match the manifest, as the `PATCH` bodies that do it,
//! in the order Microsoft Graph and Entra accept them.
//!
//! Graph checks some properties against what it already holds, not against the rest of the
//! same request, so one patch cannot do everything on a new app:
//!
//! 1. [`Phase::Basics`]: `requestedAccessTokenVersion` first, because Entra's identifier-URI
//!    policy exempts only apps already issuing v2 tokens ("Restrictions on identifier URIs of
//!    Microsoft Entra applications": orders-mcp's `https://<fqdn>/mcp` needs it); with the
//!    display name, tags and web settings.
//! 2. [`Phase::IdentifierUris`].
//! 3. [`Phase::Permissions`]: scopes and app roles; one leaving the manifest is disabled here,
//!    because Graph refuses to delete an enabled one.
//! 4. [`Phase::References`]: what names permission ids, here or on other apps
//!    (`preAuthorizedApplications`, `knownClientApplications`, `requiredResourceAccess`). Graph
//!    answers 400 when `preAuthorizedApplications` names a scope it does not hold yet ("has a
//!    Permission Id that cannot be found in the AppPermissions sets").
//! 5. [`Phase::Removals`]: scopes and app roles disabled in 3, now referenced by nothing.
//!
//! Each phase runs for every app before the next starts (an app's references name other apps'
//! scopes). Only differences are sent; lists Graph treats as sets are compared as sets.

use serde_json::{Map, Value, json};

use crate::model::{Api, AppRole, Application, PermissionScope, RequiredResourceAccess, Web};

/// One step of bringing an application to the manifest (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Basics,
    IdentifierUris,
    Permissions,
    References,
    Removals,
}

impl Phase {
    /// Every phase, in the order they run.
    pub const ALL: [Phase; 5] =
        [Phase::Basics, Phase::IdentifierUris, Phase::Permissions, Phase::References, Phase::Removals];
}

/// One `PATCH /applications/{id}` and what it changes, for the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    pub body: Value,
    pub details: Vec<String>,
}

/// The application as it is once `phase` is done: `current` with that phase's part of
/// `desired` (and every earlier phase's) applied.
pub fn after(current: &Application, desired: &Application, phase: Phase) -> Application {
    let mut next = current.clone();
    let reached = |p: Phase| Phase::ALL.iter().position(|x| *x == p) <= Phase::ALL.iter().position(|x| *x == phase);
    if reached(Phase::Basics) {
        next.display_name = desired.display_name.clone();
        next.sign_in_audience = desired.sign_in_audience.clone();
        // Tags someone else added stay.
        for tag in &desired.tags {
            if !next.tags.contains(tag) {
                next.tags.push(tag.clone());
            }
        }
        next.web = desired.web.clone();
        next.api.requested_access_token_version = desired.api.requested_access_token_version;
    }
    if reached(Phase::IdentifierUris) {
        next.identifier_uris = desired.identifier_uris.clone();
    }
    if reached(Phase::Permissions) {
        let mut scopes = desired.api.oauth2_permission_scopes.clone();
        scopes
            .extend(retiring_scopes(current, desired).into_iter().map(|s| PermissionScope { is_enabled: false, ..s }));
        next.api.oauth2_permission_scopes = scopes;
        let mut roles = desired.app_roles.clone();
        roles.extend(retiring_roles(current, desired).into_iter().map(|r| AppRole { is_enabled: false, ..r }));
        next.app_roles = roles;
    }
    if reached(Phase::References) {
        next.api.pre_authorized_applications = desired.api.pre_authorized_applications.clone();
        next.api.known_client_applications = desired.api.known_client_applications.clone();
        next.required_resource_access = desired.required_resource_access.clone();
    }
    if reached(Phase::Removals) {
        next.api.oauth2_permission_scopes = desired.api.oauth2_permission_scopes.clone();
        next.app_roles = desired.app_roles.clone();
    }
    next
}

/// The patch from `before` to `after`: only the top-level properties that differ (`api` whole,
/// as Graph replaces a complex property); `None` when nothing does.
pub fn patch(before: &Application, after: &Application) -> Option<Patch> {
    let mut body = Map::new();
    let mut details = Vec::new();
    if before.display_name != after.display_name {
        body.insert("displayName".into(), json!(after.display_name));
        details.push(format!("displayName {:?} -> {:?}", before.display_name, after.display_name));
    }
    if before.sign_in_audience != after.sign_in_audience {
        body.insert("signInAudience".into(), json!(after.sign_in_audience));
        details.push(format!("signInAudience -> {}", after.sign_in_audience));
    }
    if sorted(&before.tags) != sorted(&after.tags) {
        body.insert("tags".into(), json!(after.tags));
        let added: Vec<&String> = after.tags.iter().filter(|t| !before.tags.contains(t)).collect();
        details.push(format!("tags + {}", join(added)));
    }
    if sorted(&before.identifier_uris) != sorted(&after.identifier_uris) {
        body.insert("identifierUris".into(), json!(after.identifier_uris));
        details.push(format!("identifierUris = [{}]", after.identifier_uris.join(", ")));
    }
    if !same_web(&before.web, &after.web) {
        body.insert("web".into(), json!(after.web));
        details.push(format!("redirectUris = [{}]", after.web.redirect_uris.join(", ")));
        if before.web.logout_url != after.web.logout_url {
            details.push(format!("logoutUrl = {}", after.web.logout_url.as_deref().unwrap_or("(none)")));
        }
    }
    if normal_access(&before.required_resource_access) != normal_access(&after.required_resource_access) {
        body.insert("requiredResourceAccess".into(), json!(after.required_resource_access));
        details.push("requiredResourceAccess updated".into());
    }
    let api_changes = api_details(&before.api, &after.api);
    if !api_changes.is_empty() {
        body.insert("api".into(), json!(after.api));
        details.extend(api_changes);
    }
    let role_changes = role_details(&before.app_roles, &after.app_roles);
    if !role_changes.is_empty() {
        body.insert("appRoles".into(), json!(after.app_roles));
        details.extend(role_changes);
    }
    (!body.is_empty()).then_some(Patch { body: Value::Object(body), details })
}

/// Every patch from `current` to `desired`, in phase order (for one app on its own).
pub fn application_patches(current: &Application, desired: &Application) -> Vec<Patch> {
    let mut state = current.clone();
    let mut patches = Vec::new();
    for phase in Phase::ALL {
        let next = after(current, desired, phase);
        patches.extend(patch(&state, &next));
        state = next;
    }
    patches
}

fn join<T: AsRef<str>>(items: impl IntoIterator<Item = T>) -> String {
    items.into_iter().map(|s| s.as_ref().to_string()).collect::<Vec<_>>().join(", ")
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut items: Vec<String> = items.iter().map(|s| s.to_ascii_lowercase()).collect();
    items.sort();
    items.dedup();
    items
}

fn same_web(a: &Web, b: &Web) -> bool {
    sorted(&a.redirect_uris) == sorted(&b.redirect_uris) && a.logout_url == b.logout_url
}

fn normal_access(list: &[RequiredResourceAccess]) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<_> = list
        .iter()
        .map(|r| {
            let mut access: Vec<_> =
                r.resource_access.iter().map(|a| (a.id.to_ascii_lowercase(), a.kind.clone())).collect();
            access.sort();
            (r.resource_app_id.to_ascii_lowercase(), access)
        })
        .collect();
    out.sort();
    out
}

/// Scopes `current` has and the manifest no longer does.
fn retiring_scopes(current: &Application, desired: &Application) -> Vec<PermissionScope> {
    let wanted = &desired.api.oauth2_permission_scopes;
    current.api.oauth2_permission_scopes.iter().filter(|s| !wanted.iter().any(|d| d.id == s.id)).cloned().collect()
}

/// App roles `current` has and the manifest no longer does.
fn retiring_roles(current: &Application, desired: &Application) -> Vec<AppRole> {
    current.app_roles.iter().filter(|r| !desired.app_roles.iter().any(|d| d.id == r.id)).cloned().collect()
}

fn api_details(before: &Api, after: &Api) -> Vec<String> {
    let mut details = Vec::new();
    // Graph's `null` means version 1.
    let version = |v: Option<u8>| v.unwrap_or(1);
    if version(before.requested_access_token_version) != version(after.requested_access_token_version) {
        details.push(format!(
            "requestedAccessTokenVersion {} -> {}",
            version(before.requested_access_token_version),
            version(after.requested_access_token_version)
        ));
    }
    for scope in &after.oauth2_permission_scopes {
        match before.oauth2_permission_scopes.iter().find(|s| s.id == scope.id) {
            None => details.push(format!("add scope {}", scope.value)),
            Some(existing) if existing.is_enabled && !scope.is_enabled => {
                details.push(format!("disable scope {} before removing it", scope.value));
            }
            Some(existing) if existing != scope => details.push(format!("update scope {}", scope.value)),
            Some(_) => {}
        }
    }
    for scope in &before.oauth2_permission_scopes {
        if !after.oauth2_permission_scopes.iter().any(|d| d.id == scope.id) {
            details.push(format!("remove scope {}", scope.value));
        }
    }
    let preauth = |api: &Api| {
        let mut list: Vec<(String, Vec<String>)> = api
            .pre_authorized_applications
            .iter()
            .map(|p| (p.app_id.to_ascii_lowercase(), sorted(&p.delegated_permission_ids)))
            .collect();
        list.sort();
        list
    };
    if preauth(before) != preauth(after) {
        details.push(format!("preAuthorizedApplications = {} client(s)", after.pre_authorized_applications.len()));
    }
    if sorted(&before.known_client_applications) != sorted(&after.known_client_applications) {
        details.push(format!("knownClientApplications = {} app(s)", after.known_client_applications.len()));
    }
    details
}

fn role_details(before: &[AppRole], after: &[AppRole]) -> Vec<String> {
    let mut details = Vec::new();
    let normal = |r: &AppRole| {
        let mut r = r.clone();
        r.allowed_member_types.sort();
        r
    };
    for role in after {
        match before.iter().find(|r| r.id == role.id) {
            None => details.push(format!("add app role {}", role.value)),
            Some(existing) if existing.is_enabled && !role.is_enabled => {
                details.push(format!("disable app role {} before removing it", role.value));
            }
            Some(existing) if normal(existing) != normal(role) => {
                details.push(format!("update app role {}", role.value))
            }
            Some(_) => {}
        }
    }
    for role in before {
        if !after.iter().any(|d| d.id == role.id) {
            details.push(format!("remove app role {}", role.value));
        }
    }
    details
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PreAuthorizedApplication;

    fn scope(id: &str, value: &str) -> PermissionScope {
        PermissionScope {
            id: id.into(),
            value: value.into(),
            kind: "User".into(),
            is_enabled: true,
            ..Default::default()
        }
    }

    fn app() -> Application {
        Application {
            display_name: "Orders API (dev)".into(),
            sign_in_audience: "AzureADMyOrg".into(),
            tags: vec!["orders-copilot".into(), "orders-copilot:dev:orders-api".into()],
            identifier_uris: vec!["https://mcp.example.io/mcp".into()],
            api: Api {
                requested_access_token_version: Some(2),
                oauth2_permission_scopes: vec![scope("1", "Orders.Read"), scope("2", "Orders.ReadWrite")],
                pre_authorized_applications: vec![PreAuthorizedApplication {
                    app_id: "client".into(),
                    delegated_permission_ids: vec!["1".into(), "2".into()],
                }],
                known_client_applications: vec![],
            },
            ..Default::default()
        }
    }

    /// An application just created with `POST /applications`: name and tags only.
    fn created() -> Application {
        Application {
            display_name: "Orders API (dev)".into(),
            sign_in_audience: "AzureADMyOrg".into(),
            tags: app().tags,
            ..Default::default()
        }
    }

    #[test]
    fn equal_apps_need_no_patch_whatever_the_order() {
        let desired = app();
        let mut current = app();
        current.api.oauth2_permission_scopes.reverse();
        current.api.pre_authorized_applications[0].delegated_permission_ids.reverse();
        current.tags.push("someone-else's".into());
        assert_eq!(application_patches(&current, &desired), []);
    }

    #[test]
    fn a_null_token_version_is_version_one() {
        let mut desired = app();
        desired.api.requested_access_token_version = Some(1);
        let mut current = desired.clone();
        current.api.requested_access_token_version = None;
        assert_eq!(application_patches(&current, &desired), []);
    }

    #[test]
    fn only_the_changed_properties_are_sent() {
        let current = app();
        let mut desired = app();
        desired.identifier_uris = vec!["https://mcp2.example.io/mcp".into()];
        let patches = application_patches(&current, &desired);
        assert_eq!(patches.len(), 1);
        assert_eq!(patches[0].body, json!({"identifierUris": ["https://mcp2.example.io/mcp"]}));
    }

    /// The order Graph needs on a new app: token version, then identifier URI, then scopes,
    /// then the pre-authorization that names them.
    #[test]
    fn a_new_app_is_patched_in_the_order_graph_accepts() {
        let patches = application_patches(&created(), &app());
        let keys: Vec<Vec<&str>> = patches
            .iter()
            .map(|p| {
                let mut keys: Vec<&str> = p.body.as_object().unwrap().keys().map(String::as_str).collect();
                keys.sort();
                keys
            })
            .collect();
        assert_eq!(keys, [vec!["api"], vec!["identifierUris"], vec!["api"], vec!["api"]], "{patches:#?}");
        let api = |i: usize| -> Api { serde_json::from_value(patches[i].body["api"].clone()).unwrap() };
        assert_eq!(api(0).requested_access_token_version, Some(2));
        assert!(api(0).oauth2_permission_scopes.is_empty());
        assert_eq!(api(2).oauth2_permission_scopes.len(), 2);
        assert!(api(2).pre_authorized_applications.is_empty(), "no reference before the scopes are stored");
        assert_eq!(api(3), app().api);
    }

    #[test]
    fn an_enabled_scope_is_disabled_before_it_is_removed() {
        let current = app();
        let mut desired = app();
        desired.api.oauth2_permission_scopes.truncate(1);
        desired.api.pre_authorized_applications[0].delegated_permission_ids = vec!["1".into()];
        let patches = application_patches(&current, &desired);
        assert_eq!(patches.len(), 3, "{patches:#?}");
        let interim: Api = serde_json::from_value(patches[0].body["api"].clone()).unwrap();
        let retired = interim.oauth2_permission_scopes.iter().find(|s| s.id == "2").unwrap();
        assert!(!retired.is_enabled);
        assert_eq!(interim.pre_authorized_applications, current.api.pre_authorized_applications);
        assert!(patches[0].details.iter().any(|d| d == "disable scope Orders.ReadWrite before removing it"));
        let references: Api = serde_json::from_value(patches[1].body["api"].clone()).unwrap();
        assert_eq!(references.pre_authorized_applications, desired.api.pre_authorized_applications);
        let last: Api = serde_json::from_value(patches[2].body["api"].clone()).unwrap();
        assert_eq!(last, desired.api);
        assert!(patches[2].details.iter().any(|d| d == "remove scope Orders.ReadWrite"));
    }

    #[test]
    fn a_disabled_scope_is_removed_without_another_disable() {
        let mut current = app();
        current.api.oauth2_permission_scopes[1].is_enabled = false;
        current.api.pre_authorized_applications[0].delegated_permission_ids = vec!["1".into()];
        let mut desired = app();
        desired.api.oauth2_permission_scopes.truncate(1);
        desired.api.pre_authorized_applications[0].delegated_permission_ids = vec!["1".into()];
        let patches = application_patches(&current, &desired);
        assert_eq!(patches.len(), 1, "{patches:#?}");
        assert!(patches[0].details.iter().any(|d| d == "remove scope Orders.ReadWrite"), "{patches:?}");
    }
}
