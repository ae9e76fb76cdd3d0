//! One simulated browser: its own cookie jar (per host and port, as browsers keep them for
//! `localhost`), redirects followed by the caller (each hop is a request to time), and every
//! request recorded with its route, duration and outcome.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use reqwest::{Method, RequestBuilder, Response};
use url::Url;

use super::record::{Outcome, Recorder};

/// What a request that completed returned.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

pub struct Browser {
    http: reqwest::Client,
    /// `host:port` → cookie name → value.
    jar: Mutex<HashMap<String, BTreeMap<String, String>>>,
    recorder: Recorder,
}

impl Browser {
    pub fn new(recorder: Recorder) -> anyhow::Result<Browser> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(super::record::BOUND)
            // Services listen on 127.0.0.1; `localhost` must not try ::1 first.
            .resolve("localhost", ([127, 0, 0, 1], 0).into())
            .build()?;
        Ok(Browser { http, jar: Mutex::new(HashMap::new()), recorder })
    }

    /// A request to `url` with this browser's cookies for its origin.
    pub fn request(&self, method: Method, url: &Url) -> RequestBuilder {
        let request = self.http.request(method, url.clone());
        match self.cookies(url) {
            Some(cookies) => request.header("cookie", cookies),
            None => request,
        }
    }

    /// Sends `request`, reads the whole body, records it under `route`.
    pub async fn fetch(&self, route: &'static str, url: &Url, request: RequestBuilder) -> Result<Page, String> {
        let started = Instant::now();
        let result = async {
            let response = request.send().await?;
            self.keep_cookies(url, &response);
            let status = response.status().as_u16();
            let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
            let body = response.text().await?;
            Ok::<Page, reqwest::Error>(Page { status, location, body })
        }
        .await;
        self.recorder.record(route, started, outcome(result.as_ref().map(|p| p.status)));
        result.map_err(entra_auth::acquire::describe)
    }

    /// Sends `request` and returns the response with its body unread (a stream); the caller
    /// records it with [`Browser::finish`] once the body ends.
    pub async fn open(&self, url: &Url, request: RequestBuilder) -> Result<Response, reqwest::Error> {
        let response = request.send().await?;
        self.keep_cookies(url, &response);
        Ok(response)
    }

    pub fn finish(&self, route: &'static str, started: Instant, result: &Result<u16, reqwest::Error>) {
        self.recorder.record(route, started, outcome(result.as_ref().map(|s| *s)));
    }

    fn cookies(&self, url: &Url) -> Option<String> {
        let jar = self.jar.lock().ok()?;
        let cookies = jar.get(&origin(url))?;
        (!cookies.is_empty()).then(|| cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "))
    }

    fn keep_cookies(&self, url: &Url, response: &Response) {
        let Ok(mut jar) = self.jar.lock() else { return };
        let cookies = jar.entry(origin(url)).or_default();
        for header in response.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            let mut parts = header.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.trim().split_once('=')) else { continue };
            let expired = parts.any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            if expired || value.is_empty() {
                cookies.remove(name);
            } else {
                cookies.insert(name.to_string(), value.to_string());
            }
        }
    }
}

fn origin(url: &Url) -> String {
    format!("{}:{}", url.host_str().unwrap_or_default(), url.port_or_known_default().unwrap_or_default())
}

fn outcome(result: Result<u16, &reqwest::Error>) -> Outcome {
    match result {
        Ok(status) => Outcome::Status(status),
        Err(e) if e.is_timeout() => Outcome::Hung,
        Err(_) => Outcome::Failed,
    }
}
