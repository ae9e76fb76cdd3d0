//! The HTTP client every check uses: redirects are answers to check, not to follow.

use std::time::Duration;

use entra_auth::acquire::describe;
use serde_json::Value;

use super::report::Check;

pub struct Http {
    client: reqwest::Client,
}

impl Http {
    pub fn new() -> reqwest::Result<Http> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()?;
        Ok(Http { client })
    }

    /// For requests the helpers below do not cover (and rmcp's transport).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub async fn get(&self, url: &str) -> Check<reqwest::Response> {
        self.client.get(url).send().await.map_err(|e| format!("GET {url}: {}", describe(e)))
    }

    /// GET that must answer `status`.
    pub async fn expect_status(&self, url: &str, status: u16) -> Check<String> {
        let response = self.get(url).await?;
        if response.status().as_u16() == status {
            Ok(format!("{status}"))
        } else {
            Err(format!("{}", response.status()))
        }
    }

    /// GET of a JSON document.
    pub async fn json(&self, url: &str) -> Check<Value> {
        let response = self.get(url).await?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: {}", response.status()));
        }
        response.json().await.map_err(|e| format!("GET {url}: not JSON: {}", describe(e)))
    }
}
