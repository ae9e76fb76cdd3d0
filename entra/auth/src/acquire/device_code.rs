//! A person's sign-in through a public client by the device authorization grant (RFC 8628,
//! "Microsoft identity platform and the OAuth 2.0 device authorization grant flow",
//! https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code): the client asks
//! `{authority}/{tenant}/oauth2/v2.0/devicecode` for a code, shows the person Entra's message
//! (open the verification page, enter the code), then polls `/token` every `interval` seconds
//! until the person approved, declined, or the code expired. No secret, no redirect URI, no
//! browser on the machine running it.
//!
//! Used by tools a developer runs (the post-provision hook), where the sign-in must be through a
//! client of their own choosing rather than the Azure CLI's.

use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

use super::error::AcquireError;
use super::http::{lenient_u64, read_response};
use super::public_client::{Prompt, PublicClient};
use super::token::{AccessToken, TokenResponse};

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.5: "If no value is provided, clients MUST use 5 as the default."
const DEFAULT_INTERVAL: u64 = 5;
/// RFC 8628 §3.5: on `slow_down` "the interval MUST be increased by 5 seconds".
const SLOW_DOWN: u64 = 5;

/// The device authorization response (RFC 8628 §3.2, Entra's field names).
#[derive(Deserialize)]
struct DeviceAuthorization {
    device_code: String,
    #[serde(deserialize_with = "lenient_u64")]
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    user_code: String,
    #[serde(default)]
    verification_uri: String,
}

/// A public client signing a person in by device code, for one tenant. Tokens are cached per
/// scope, so a run signs in once.
pub struct DeviceCodeSignIn {
    client: PublicClient,
}

impl DeviceCodeSignIn {
    /// `authority`: e.g. `https://login.microsoftonline.com`; `client_id`: a public client
    /// ("Allow public client flows") registered in `tenant`.
    pub fn new(authority: Url, tenant: &str, client_id: &str, prompt: Prompt) -> Result<Self, AcquireError> {
        Ok(DeviceCodeSignIn { client: PublicClient::new("device code sign-in", authority, tenant, client_id, prompt)? })
    }

    pub fn client_id(&self) -> &str {
        &self.client.client_id
    }

    /// A token for `scope` (e.g. `https://graph.microsoft.com/.default`), signing in when none is cached.
    pub async fn token(&self, scope: &str) -> Result<AccessToken, AcquireError> {
        self.client.token(scope, || self.sign_in(scope)).await
    }

    async fn sign_in(&self, scope: &str) -> Result<AccessToken, AcquireError> {
        let devicecode = self.client.endpoint("devicecode")?;
        let form = [("client_id", self.client.client_id.as_str()), ("scope", scope)];
        let result = self.client.http.post(devicecode.clone()).form(&form).send().await;
        let grant: DeviceAuthorization = read_response(devicecode.as_str(), result).await?;
        let message = grant.message.clone().unwrap_or_else(|| {
            format!("To sign in, open {} and enter the code {}.", grant.verification_uri, grant.user_code)
        });
        (self.client.prompt)(&message);
        self.poll(&grant, scope).await
    }

    /// Polls the token endpoint until the sign-in ends one way or the other; never past the
    /// code's expiry.
    async fn poll(&self, grant: &DeviceAuthorization, scope: &str) -> Result<AccessToken, AcquireError> {
        let token_endpoint = self.client.endpoint("token")?;
        let deadline = Instant::now() + Duration::from_secs(grant.expires_in);
        let mut interval = grant.interval.unwrap_or(DEFAULT_INTERVAL);
        loop {
            if Instant::now() + Duration::from_secs(interval) >= deadline {
                return Err(expired(scope));
            }
            tokio::time::sleep(Duration::from_secs(interval)).await;
            let form = [
                ("grant_type", DEVICE_CODE_GRANT),
                ("client_id", self.client.client_id.as_str()),
                ("device_code", grant.device_code.as_str()),
            ];
            let result = self.client.http.post(token_endpoint.clone()).form(&form).send().await;
            match read_response::<TokenResponse>(token_endpoint.as_str(), result).await {
                Ok(response) => {
                    tracing::info!(scope, client_id = %self.client.client_id, "device code sign-in token");
                    return Ok(response.access());
                }
                Err(AcquireError::Rejected { error, .. }) if error == "authorization_pending" => {}
                Err(AcquireError::Rejected { error, .. }) if error == "slow_down" => interval += SLOW_DOWN,
                Err(AcquireError::Rejected { error, .. }) if error == "expired_token" => return Err(expired(scope)),
                Err(AcquireError::Rejected { status, error, codes, .. }) if error == "authorization_declined" => {
                    return Err(AcquireError::Rejected {
                        status,
                        error,
                        description: "the sign-in was declined at the verification page".into(),
                        codes,
                    });
                }
                // AADSTS53003: Conditional Access blocked the sign-in. "Microsoft recommends
                // blocking device code flow wherever possible" ("Conditional Access:
                // Authentication flows", learn.microsoft.com/entra/identity/conditional-access/
                // concept-authentication-flows), so this is the likely cause: say so.
                Err(AcquireError::Rejected { status, error, description, codes }) if codes.contains(&53003) => {
                    return Err(AcquireError::Rejected {
                        status,
                        error,
                        description: format!(
                            "{description} (Conditional Access refused this device-code sign-in; many tenants block \
                             the device code flow, as Microsoft recommends: an administrator of the policy can \
                             exclude client {})",
                            self.client.client_id
                        ),
                        codes,
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn expired(scope: &str) -> AcquireError {
    AcquireError::Rejected {
        status: 400,
        error: "expired_token".into(),
        description: format!("the device code for {scope} expired before the sign-in was completed"),
        codes: vec![70019],
    }
}

impl std::fmt::Debug for DeviceCodeSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCodeSignIn").field("client", &self.client).finish()
    }
}
