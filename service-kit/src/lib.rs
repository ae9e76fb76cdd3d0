//! What every Orders Copilot service shares that is not identity (that is `entra-auth`):
//!
//! - [`settings`]: typed settings from environment variables, all problems reported at once.
//! - [`serve`]: the one start-up shape of every service (`Application::build` → `port()` →
//!   `run_until_stopped()`), the listener and the shutdown signal.
//! - [`probe`]: a dependency-free HTTP health probe (`<service> healthcheck` in containers).
//! - [`tls`]: HTTPS with rustls (the emulator's `--tls` mode).
//! - [`telemetry`]: logging set-up.
//! - [`problem`]: RFC 9457 problem details, the error body of every service.
//! - [`clock`], [`secret`] and [`hex`]: the current time, secrets from the OS compared in
//!   constant time, and lowercase hex, written once.
//! - [`private_file`]: database files only their owner may read.
//! - [`causes`]: an error as one line with its causes.
//! - [`visible_text`]: the characters that hide text from a person but not from a model.

pub mod causes;
pub mod clock;
pub mod hex;
pub mod private_file;
pub mod probe;
pub mod problem;
pub mod secret;
pub mod serve;
pub mod settings;
pub mod telemetry;
pub mod tls;
pub mod visible_text;
