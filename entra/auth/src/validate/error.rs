//! Why a token was refused.

/// Why a token was refused. The messages are fixed strings: nothing from the token (not even
/// its `kid`) is echoed, so they are safe in a `WWW-Authenticate` header and in logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token is too large")]
    TooLarge,
    #[error("only RS256-signed tokens are accepted")]
    UnsupportedAlgorithm,
    #[error("the token has no key id")]
    MissingKeyId,
    #[error("the token uses critical header extensions")]
    CriticalHeader,
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    #[error("the token signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is for another audience")]
    WrongAudience,
    #[error("the token was issued by an untrusted issuer")]
    WrongIssuer,
    #[error("the token was issued for another tenant")]
    WrongTenant,
    #[error("the token version does not match its issuer")]
    VersionMismatch,
    #[error("the token lacks a required claim")]
    MissingClaim,
    #[error("the ID token does not answer this sign-in (nonce mismatch)")]
    NonceMismatch,
    /// The identity provider's metadata or keys could not be loaded: nothing can be accepted.
    #[error("the identity provider's signing keys are unavailable")]
    KeysUnavailable,
}

impl ValidationError {
    /// A stable, token-free code for traces (`wrong-audience`, `expired`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            ValidationError::Malformed => "malformed",
            ValidationError::TooLarge => "too-large",
            ValidationError::UnsupportedAlgorithm => "unsupported-algorithm",
            ValidationError::MissingKeyId => "missing-key-id",
            ValidationError::CriticalHeader => "critical-header",
            ValidationError::UnknownKey => "unknown-key",
            ValidationError::BadSignature => "bad-signature",
            ValidationError::Expired => "expired",
            ValidationError::NotYetValid => "not-yet-valid",
            ValidationError::WrongAudience => "wrong-audience",
            ValidationError::WrongIssuer => "wrong-issuer",
            ValidationError::WrongTenant => "wrong-tenant",
            ValidationError::VersionMismatch => "version-mismatch",
            ValidationError::MissingClaim => "missing-claim",
            ValidationError::NonceMismatch => "nonce-mismatch",
            ValidationError::KeysUnavailable => "keys-unavailable",
        }
    }
}
