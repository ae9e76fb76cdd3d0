//! The two kinds of application object the hook writes, ordinary app registrations and agent
//! identity blueprints: where Graph addresses each, what a `403` on it means, and (in
//! [`super::run`]) which sign-in writes it.

use super::error::{AGENT_ID_FORBIDDEN, APPLICATIONS_FORBIDDEN};

/// Which kind of application object a manifest entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An ordinary app registration (`[app.*]`).
    App,
    /// An agent identity blueprint (`[agent_blueprint.*]`).
    Blueprint,
}

impl Kind {
    /// The collection new objects of this kind are posted to.
    pub fn create_path(self) -> &'static str {
        match self {
            Kind::App => "applications",
            Kind::Blueprint => "applications/microsoft.graph.agentIdentityBlueprint",
        }
    }

    /// Where Graph addresses the object with object id `id`.
    pub fn path(self, id: &str) -> String {
        match self {
            Kind::App => format!("applications/{id}"),
            Kind::Blueprint => format!("applications/{id}/microsoft.graph.agentIdentityBlueprint"),
        }
    }

    /// What a `403` on it means.
    pub fn forbidden_hint(self) -> &'static str {
        match self {
            Kind::App => APPLICATIONS_FORBIDDEN,
            Kind::Blueprint => AGENT_ID_FORBIDDEN,
        }
    }

    /// What the plan calls it.
    pub fn object(self) -> &'static str {
        match self {
            Kind::App => "application",
            Kind::Blueprint => "agent blueprint",
        }
    }
}
