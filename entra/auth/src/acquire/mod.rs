//! Obtaining tokens: from a managed identity, from the developer's own CLI sign-in, as a
//! confidential client (authorization code, refresh, client credentials), by a person's
//! sign-in through a public client (in the browser, or by device code), and On-Behalf-Of a user, with a cache that
//! refreshes before expiry and collapses concurrent misses into one request.
//!
//! Tokens are held as [`AccessToken`], whose `Debug` never prints the secret.

mod agent;
mod browser;
mod cache;
mod client;
mod credential;
mod developer;
mod device_code;
mod error;
mod http;
mod managed_identity;
mod obo;
mod public_client;
mod token;

pub use agent::AgentIdentityAssertion;
pub use browser::{BrowserSignIn, DEFAULT_TIME_LIMIT};
pub use cache::TokenCache;
pub use client::ConfidentialClient;
pub use credential::{ClientAssertion, Credential, TOKEN_EXCHANGE_AUDIENCE};
pub use developer::{DeveloperSignIn, Executor};
pub use device_code::DeviceCodeSignIn;
pub use error::{AcquireError, describe};
pub use managed_identity::{ManagedIdentityCredential, ManagedIdentitySource};
pub use obo::OnBehalfOf;
pub use public_client::Prompt;
pub use token::{AccessToken, TokenResponse};
