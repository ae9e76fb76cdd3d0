//! The manifest loader: the repository's manifest is valid, and each kind of mistake is refused
//! with its line.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

use entra_manifest::{Manifest, ManifestError, REPOSITORY_MANIFEST, RoleAssignment, Vars};

const FILE: &str = "app-registrations.toml";

fn repo_manifest() -> String {
    std::fs::read_to_string(REPOSITORY_MANIFEST).unwrap()
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
    let vars = Vars::local(&m.tenant.id);
    assert_eq!(
        api.identifier_uri.as_ref().unwrap().render(&vars),
        "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local"
    );
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
    let text =
        repo_manifest().replace("display_name = \"Orders API\"", "display_name = \"Orders API\"\ncolour = \"blue\"");
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
        t.replace("scopes = [\"Orders.Read\", \"Orders.ReadWrite\"]", "scopes = [\"Orders.Read\", \"Orders.Write\"]")
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
    let err = error_for(|t| t.replace("a58242b0-4441-4e9a-b6fa-2c3a3d94ebff", "90fbcf15-4b8f-4aed-86b8-b11996ed07e6"));
    assert!(err.message.contains("reuses the id"), "{err}");
}

#[test]
fn unknown_placeholders_are_refused() {
    let err = error_for(|t| t.replace("api://{tenant_id}/orders-api-{suffix}", "api://{tenant_id}/orders-api-{sufix}"));
    assert!(err.message.contains("{sufix}"), "{err}");
}

#[test]
fn a_missing_file_says_so() {
    let err = Manifest::load("/nonexistent/app-registrations.toml").unwrap_err();
    assert!(err.to_string().contains("cannot read the identity manifest"), "{err}");
}

/// Microsoft Entra Agent ID: the blueprint holds the credential (chat-app's managed identity)
/// and the inheritable permission for orders-mcp's scope; the agent identity is its child. They
/// are not ordinary apps, so nothing that walks `apps` (postprovision, the default flow) sees them.
#[test]
fn the_agent_blueprint_and_its_agent_identity() {
    let m = Manifest::parse(&repo_manifest(), FILE).unwrap();
    let blueprint = &m.agent_blueprints["orders-copilot"];
    assert_eq!(blueprint.access_token_version, 2);
    assert!(blueprint.scope("access_as_user").is_some());
    assert_eq!(blueprint.pre_authorized[0].client, "chat-app");
    assert_eq!(blueprint.federated_credentials[0].managed_identity, "chat-app");
    assert_eq!(blueprint.inheritable_permissions[0].resource, "orders-mcp");
    assert_eq!(blueprint.inheritable_permissions[0].scopes, ["access_as_user"]);
    let agent = &m.agent_identities["orders-copilot-agent"];
    assert_eq!(agent.display_name, "Orders Copilot agent");
    assert_eq!(agent.blueprint, "orders-copilot");
    assert_eq!(m.agent_identity_by_client_id(&agent.client_id).unwrap().name, "orders-copilot-agent");
    assert!(m.app("orders-copilot").is_none() && m.app_by_client_id(&blueprint.client_id).is_none());
}

#[test]
fn agent_references_are_checked() {
    let err = error_for(|t| t.replace("blueprint = \"orders-copilot\"", "blueprint = \"nope\""));
    assert!(err.message.contains("not an agent_blueprint"), "{err}");
    let err = error_for(|t| {
        t.replace(
            "[[agent_blueprint.orders-copilot.inheritable_permission]]\nresource = \"orders-mcp\"\nscopes = [\"access_as_user\"]",
            "[[agent_blueprint.orders-copilot.inheritable_permission]]\nresource = \"orders-mcp\"\nscopes = [\"Orders.Everything\"]",
        )
    });
    assert!(err.message.contains("Orders.Everything"), "{err}");
    let err = error_for(|t| {
        t.replace(
            "[[app.orders-mcp.scope]]",
            "[[app.orders-mcp.inheritable_permission]]\nresource = \"orders-api\"\nscopes = [\"Orders.Read\"]\n\n[[app.orders-mcp.scope]]",
        )
    });
    assert!(err.message.contains("only an agent_blueprint"), "{err}");
}
