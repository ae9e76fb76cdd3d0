//! How an app proves who it is to Entra: the one credential type of the workspace, built from
//! settings in one place (`entra_auth::settings::Identity::credential`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::browser::BrowserSignIn;
use super::developer::DeveloperSignIn;
use super::device_code::DeviceCodeSignIn;
use super::error::AcquireError;
use super::managed_identity::ManagedIdentityCredential;
use super::token::AccessToken;

/// The audience a managed identity's token must have to serve as a client assertion through a
/// federated identity credential.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An app's credential. Cheap to clone; `Debug` never shows a secret.
#[derive(Clone, Debug)]
pub enum Credential {
    /// The app's managed identity. It authenticates the app registration with its token for
    /// `api://AzureADTokenExchange` as client assertion (a federated identity credential
    /// trusts it: no secret exists anywhere), and gets tokens for Azure resources directly.
    ManagedIdentity(Arc<ManagedIdentityCredential>),
    /// A client secret: local runs only.
    Secret(SecretString),
    /// The developer's own sign-in (azd, Azure CLI): tokens for Azure resources from a laptop.
    /// It cannot authenticate an app registration.
    Developer(Arc<DeveloperSignIn>),
    /// A person signed in through a public client by device code: tokens for resources as that
    /// person, through that client. It cannot authenticate an app registration either.
    DeviceCode(Arc<DeviceCodeSignIn>),
    /// A person signed in through a public client in their browser (authorization code with
    /// PKCE, loopback redirect): the same, where device code sign-in is blocked.
    Browser(Arc<BrowserSignIn>),
    /// A client assertion from elsewhere: an agent identity's, which its blueprint gets for it
    /// ([`AgentIdentityAssertion`](super::AgentIdentityAssertion)).
    Assertion(Arc<dyn ClientAssertion>),
}

/// Something that produces a client assertion (a JWT for `client_assertion`) on demand.
pub trait ClientAssertion: std::fmt::Debug + Send + Sync {
    fn assertion(&self) -> Pin<Box<dyn Future<Output = Result<AccessToken, AcquireError>> + Send + '_>>;
}

impl Credential {
    /// The developer's own sign-in (azd, then Azure CLI), in the CLIs' default tenant.
    pub fn developer() -> Result<Credential, AcquireError> {
        Ok(Credential::Developer(Arc::new(DeveloperSignIn::new(None, None)?)))
    }

    /// Adds this credential's client authentication to a token request.
    pub(crate) async fn authenticate(&self, form: &mut Vec<(&str, String)>) -> Result<(), AcquireError> {
        match self {
            Credential::ManagedIdentity(mi) => {
                let assertion = mi.token(TOKEN_EXCHANGE_AUDIENCE).await?;
                form.push(("client_assertion_type", JWT_BEARER_ASSERTION.to_string()));
                form.push(("client_assertion", assertion.secret().to_string()));
            }
            Credential::Assertion(source) => {
                let assertion = source.assertion().await?;
                form.push(("client_assertion_type", JWT_BEARER_ASSERTION.to_string()));
                form.push(("client_assertion", assertion.secret().to_string()));
            }
            Credential::Secret(secret) => form.push(("client_secret", secret.expose_secret().to_string())),
            Credential::Developer(_) | Credential::DeviceCode(_) | Credential::Browser(_) => {
                return Err(AcquireError::NotConfigured(
                    "a developer, device-code or browser sign-in cannot authenticate an app registration: configure a managed identity \
                     (IDENTITY_ENDPOINT, IDENTITY_HEADER) or, locally, a client secret"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// A token for an Azure resource (`scope`, e.g. `https://cognitiveservices.azure.com/.default`)
    /// as the app itself (a managed identity) or as the developer.
    pub async fn token(&self, scope: &str) -> Result<AccessToken, AcquireError> {
        match self {
            Credential::ManagedIdentity(mi) => mi.token(scope).await,
            Credential::Developer(sign_in) => sign_in.token(scope).await,
            Credential::DeviceCode(sign_in) => sign_in.token(scope).await,
            Credential::Browser(sign_in) => sign_in.token(scope).await,
            Credential::Secret(_) | Credential::Assertion(_) => Err(AcquireError::NotConfigured(
                "a client secret gets resource tokens only through a token endpoint: use a managed identity or the \
                 developer sign-in"
                    .into(),
            )),
        }
    }
}
