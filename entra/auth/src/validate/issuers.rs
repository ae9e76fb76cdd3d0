//! The issuers a validator trusts, learned from the discovery documents.

/// The issuers a validator trusts, learned from the discovery documents.
#[derive(Debug, Clone, Default)]
pub(crate) struct Issuers {
    pub v1: Option<String>,
    pub v2: Option<String>,
}

impl Issuers {
    pub(crate) fn trusts(&self, iss: &str) -> bool {
        self.v1.as_deref() == Some(iss) || self.v2.as_deref() == Some(iss)
    }
}
