//! Why a token could not be obtained.

/// Why a token could not be obtained. Messages name the endpoint and Entra's own error, never
/// a token or secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AcquireError {
    #[error("cannot reach the identity endpoint {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    /// The identity provider answered with an OAuth error (`AADSTS...` codes for Entra).
    #[error("the identity provider refused the request ({error}): {description}")]
    Rejected { status: u16, error: String, description: String, codes: Vec<u32> },
    #[error("unexpected answer from {endpoint}: {reason}")]
    BadResponse { endpoint: String, reason: String },
    #[error("{0}")]
    NotConfigured(String),
    /// A person's interactive sign-in did not finish in the time it was given.
    #[error("{0}")]
    NotCompleted(String),
}

impl AcquireError {
    /// Entra's `AADSTS` error codes, when the provider sent any.
    pub fn codes(&self) -> &[u32] {
        match self {
            AcquireError::Rejected { codes, .. } => codes,
            _ => &[],
        }
    }

    /// Whether retrying later may help (the endpoint was down or overloaded).
    pub fn is_transient(&self) -> bool {
        match self {
            AcquireError::Unreachable { .. } => true,
            AcquireError::Rejected { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// reqwest errors include the URL, which may carry query parameters: keep the failure's
/// description and its causes, without the URL.
pub fn describe(e: reqwest::Error) -> String {
    service_kit::causes::with_causes(&e.without_url())
}
