//! The bridge's HTTP client: rmcp's reqwest client for Streamable HTTP, with the current bearer
//! token put on every request. A request the server answers with a `401` challenge is sent once
//! more with a freshly fetched token (the old one may have been revoked before it expired).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use entra_auth::acquire::AccessToken;
use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use sse_stream::Sse;

use super::token::TokenProvider;

#[derive(Clone)]
pub struct BearerClient {
    http: reqwest::Client,
    tokens: Arc<TokenProvider>,
}

type Error = StreamableHttpError<reqwest::Error>;

impl BearerClient {
    pub fn new(http: reqwest::Client, tokens: Arc<TokenProvider>) -> Self {
        BearerClient { http, tokens }
    }

    /// Runs `call` with the current token; after a `401`, once more with a fresh one.
    async fn with_token<T, F, Fut>(&self, call: F) -> Result<T, Error>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let token = self.tokens.token().await.map_err(token_error)?;
        match call(token.secret().to_string()).await {
            Err(StreamableHttpError::AuthRequired(challenge)) => {
                let fresh: AccessToken = self.tokens.refresh(&token).await.map_err(token_error)?;
                if fresh.secret() == token.secret() {
                    tracing::warn!(source = %self.tokens.describe(), "the server refused the token and there is no newer one");
                    return Err(StreamableHttpError::AuthRequired(challenge));
                }
                tracing::info!("the server refused the token; retrying once with a fresh one");
                call(fresh.secret().to_string()).await
            }
            result => result,
        }
    }
}

fn token_error(e: entra_auth::acquire::AcquireError) -> Error {
    StreamableHttpError::Io(std::io::Error::other(format!("no token for the remote MCP server: {e}")))
}

impl StreamableHttpClient for BearerClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, Error> {
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            None,
            custom_headers,
            StreamableHttpResponseLimits::default(),
        )
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, Error> {
        let mut limits = StreamableHttpResponseLimits::default();
        limits.max_sse_event_size = max_sse_event_size;
        self.post_message_with_response_limits(uri, message, session_id, None, custom_headers, limits).await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, Error> {
        self.with_token(|token| {
            self.http.post_message_with_response_limits(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                Some(token),
                custom_headers.clone(),
                limits,
            )
        })
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), Error> {
        self.with_token(|token| {
            self.http.delete_session(uri.clone(), session_id.clone(), Some(token), custom_headers.clone())
        })
        .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, Error> {
        self.with_token(|token| {
            self.http.get_stream(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                Some(token),
                custom_headers.clone(),
            )
        })
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, Error> {
        self.with_token(|token| {
            self.http.get_stream_with_max_sse_event_size(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                Some(token),
                custom_headers.clone(),
                max_sse_event_size,
            )
        })
        .await
    }
}
