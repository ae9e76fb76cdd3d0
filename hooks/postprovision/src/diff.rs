//! What must change for an application to match the manifest, as the `PATCH` bodies that do it.
//!
//! Only differences are sent. Lists Graph treats as sets are compared as sets. Graph refuses
//! to remove a scope or app role that is still enabled, so removals take two patches: the first
//! disables, the second removes.

use serde_json::{Map, Value, json};

use crate::model::{Api, AppRole, Application, PermissionScope, RequiredResourceAccess, Web};

/// One `PATCH /applications/{id}` and what it changes, for the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    pub body: Value,
    pub details: Vec<String>,
}

pub fn application_patches(current: &Application, desired: &Application) -> Vec<Patch> {
    let mut first = Map::new();
    let mut details = Vec::new();
    let mut second = Map::new();
    let mut second_details = Vec::new();

    if current.display_name != desired.display_name {
        first.insert("displayName".into(), json!(desired.display_name));
        details.push(format!("displayName {:?} -> {:?}", current.display_name, desired.display_name));
    }
    if current.sign_in_audience != desired.sign_in_audience {
        first.insert("signInAudience".into(), json!(desired.sign_in_audience));
        details.push(format!("signInAudience -> {}", desired.sign_in_audience));
    }
    let missing_tags: Vec<&String> = desired.tags.iter().filter(|t| !current.tags.contains(t)).collect();
    if !missing_tags.is_empty() {
        // Tags someone else added stay.
        let mut tags = current.tags.clone();
        tags.extend(missing_tags.iter().map(|t| (*t).clone()));
        first.insert("tags".into(), json!(tags));
        details.push(format!("tags + {}", join(missing_tags)));
    }
    if sorted(&current.identifier_uris) != sorted(&desired.identifier_uris) {
        first.insert("identifierUris".into(), json!(desired.identifier_uris));
        details.push(format!("identifierUris = [{}]", desired.identifier_uris.join(", ")));
    }
    if !same_web(&current.web, &desired.web) {
        first.insert("web".into(), json!(desired.web));
        details.push(format!("redirectUris = [{}]", desired.web.redirect_uris.join(", ")));
        if current.web.logout_url != desired.web.logout_url {
            details.push(format!("logoutUrl = {}", desired.web.logout_url.as_deref().unwrap_or("(none)")));
        }
    }
    if normal_access(&current.required_resource_access) != normal_access(&desired.required_resource_access) {
        first.insert("requiredResourceAccess".into(), json!(desired.required_resource_access));
        details.push("requiredResourceAccess updated".into());
    }

    let api_changes = api_details(&current.api, &desired.api);
    if !api_changes.is_empty() {
        let retiring = retiring_scopes(&current.api, &desired.api);
        if retiring.is_empty() {
            first.insert("api".into(), json!(desired.api));
            details.extend(api_changes);
        } else {
            let mut interim = desired.api.clone();
            interim
                .oauth2_permission_scopes
                .extend(retiring.iter().map(|s| PermissionScope { is_enabled: false, ..(*s).clone() }));
            first.insert("api".into(), json!(interim));
            details.extend(api_changes);
            details.push(format!("disable scope {} before removing it", join(retiring.iter().map(|s| &s.value))));
            second.insert("api".into(), json!(desired.api));
            second_details.push(format!("remove scope {}", join(retiring.iter().map(|s| &s.value))));
        }
    }

    let role_changes = role_details(&current.app_roles, &desired.app_roles);
    if !role_changes.is_empty() {
        let retiring: Vec<&AppRole> = current
            .app_roles
            .iter()
            .filter(|r| r.is_enabled && !desired.app_roles.iter().any(|d| d.id == r.id))
            .collect();
        if retiring.is_empty() {
            first.insert("appRoles".into(), json!(desired.app_roles));
        } else {
            let mut interim = desired.app_roles.clone();
            interim.extend(retiring.iter().map(|r| AppRole { is_enabled: false, ..(*r).clone() }));
            first.insert("appRoles".into(), json!(interim));
            details.push(format!("disable app role {} before removing it", join(retiring.iter().map(|r| &r.value))));
            second.insert("appRoles".into(), json!(desired.app_roles));
            second_details.push(format!("remove app role {}", join(retiring.iter().map(|r| &r.value))));
        }
        details.extend(role_changes);
    }

    let mut patches = Vec::new();
    if !first.is_empty() {
        patches.push(Patch { body: Value::Object(first), details });
    }
    if !second.is_empty() {
        patches.push(Patch { body: Value::Object(second), details: second_details });
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

/// Enabled scopes the manifest no longer has.
fn retiring_scopes<'a>(current: &'a Api, desired: &Api) -> Vec<&'a PermissionScope> {
    current
        .oauth2_permission_scopes
        .iter()
        .filter(|s| s.is_enabled && !desired.oauth2_permission_scopes.iter().any(|d| d.id == s.id))
        .collect()
}

fn api_details(current: &Api, desired: &Api) -> Vec<String> {
    let mut details = Vec::new();
    // Graph's `null` means version 1.
    let version = |v: Option<u8>| v.unwrap_or(1);
    if version(current.requested_access_token_version) != version(desired.requested_access_token_version) {
        details.push(format!(
            "requestedAccessTokenVersion {} -> {}",
            version(current.requested_access_token_version),
            version(desired.requested_access_token_version)
        ));
    }
    for scope in &desired.oauth2_permission_scopes {
        match current.oauth2_permission_scopes.iter().find(|s| s.id == scope.id) {
            None => details.push(format!("add scope {}", scope.value)),
            Some(existing) if existing != scope => details.push(format!("update scope {}", scope.value)),
            Some(_) => {}
        }
    }
    for scope in &current.oauth2_permission_scopes {
        if !desired.oauth2_permission_scopes.iter().any(|d| d.id == scope.id) {
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
    if preauth(current) != preauth(desired) {
        details.push(format!("preAuthorizedApplications = {} client(s)", desired.pre_authorized_applications.len()));
    }
    if sorted(&current.known_client_applications) != sorted(&desired.known_client_applications) {
        details.push(format!("knownClientApplications = {} app(s)", desired.known_client_applications.len()));
    }
    details
}

fn role_details(current: &[AppRole], desired: &[AppRole]) -> Vec<String> {
    let mut details = Vec::new();
    for role in desired {
        let mut role_sorted = role.clone();
        role_sorted.allowed_member_types.sort();
        match current.iter().find(|r| r.id == role.id) {
            None => details.push(format!("add app role {}", role.value)),
            Some(existing) => {
                let mut existing = existing.clone();
                existing.allowed_member_types.sort();
                if existing != role_sorted {
                    details.push(format!("update app role {}", role.value));
                }
            }
        }
    }
    for role in current {
        if !desired.iter().any(|d| d.id == role.id) {
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
            identifier_uris: vec!["api://orders-api-dev".into()],
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
        desired.identifier_uris = vec!["api://orders-api-prod".into()];
        let patches = application_patches(&current, &desired);
        assert_eq!(patches.len(), 1);
        assert_eq!(patches[0].body, json!({"identifierUris": ["api://orders-api-prod"]}));
    }

    #[test]
    fn an_enabled_scope_is_disabled_before_it_is_removed() {
        let current = app();
        let mut desired = app();
        desired.api.oauth2_permission_scopes.truncate(1);
        desired.api.pre_authorized_applications[0].delegated_permission_ids = vec!["1".into()];
        let patches = application_patches(&current, &desired);
        assert_eq!(patches.len(), 2, "{patches:#?}");
        let interim: Api = serde_json::from_value(patches[0].body["api"].clone()).unwrap();
        let retired = interim.oauth2_permission_scopes.iter().find(|s| s.id == "2").unwrap();
        assert!(!retired.is_enabled);
        assert_eq!(interim.pre_authorized_applications, desired.api.pre_authorized_applications);
        let last: Api = serde_json::from_value(patches[1].body["api"].clone()).unwrap();
        assert_eq!(last, desired.api);
    }

    #[test]
    fn a_disabled_scope_is_removed_in_one_patch() {
        let mut current = app();
        current.api.oauth2_permission_scopes[1].is_enabled = false;
        let mut desired = app();
        desired.api.oauth2_permission_scopes.truncate(1);
        let patches = application_patches(&current, &desired);
        assert_eq!(patches.len(), 1);
        assert!(patches[0].details.iter().any(|d| d == "remove scope Orders.ReadWrite"), "{patches:?}");
    }
}
