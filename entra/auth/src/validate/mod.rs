//! Access-token validation, as a resource server must do it for Entra ID tokens: see
//! [`TokenValidator`] for the order of checks.

mod accepted;
mod caller;
mod config;
mod error;
mod id_token;
mod issuers;
mod jws;
mod keys;
mod validator;

pub use caller::{Caller, CallerKind, TokenVersion};
pub use config::ValidatorConfig;
pub use error::ValidationError;
pub use id_token::IdToken;
pub use jws::MAX_TOKEN_LEN;
pub use validator::TokenValidator;
