//! Sign-in as a backend-for-frontend: the browser holds only a session cookie; the user's
//! tokens stay in the server-side session (tower-sessions, SQLite).
//!
//! - [`routes`]: the sign-in, callback, sign-out and front-channel logout routes.
//! - [`oidc`]: chat-app as an OpenID Connect client of the identity provider.
//! - [`refresh`]: the user's tokens, renewed single-flight before they expire.
//! - [`session`]: who is signed in, and a fresh access token for them.
//! - [`session_store`]: where sessions are kept, and a signed-out one stays deleted.
//! - [`origin`]: the cross-site request check.
//! - [`agent_identity`]: the agent's own token for orders-mcp (Microsoft Entra Agent ID mode).

pub mod agent_identity;
pub mod oidc;
pub mod origin;
pub mod refresh;
pub mod routes;
pub mod session;
pub mod session_store;
