//! Typed settings from environment variables, with every problem reported at once.
//!
//! Each service's `configuration.rs` reads its variables through [`Env`] and calls
//! [`Env::finish`]: a missing or malformed value is one line naming the variable, what was
//! wrong and what is expected, so a start-up failure is fixed in one go.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// All the problems found in a service's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub problems: Vec<String>,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SettingsError {}

/// A source of settings: the process environment, or a map in tests.
pub struct Env {
    vars: HashMap<String, String>,
    problems: Vec<String>,
    /// Every variable name looked up, so a test can prove a deployment file sets only names
    /// the service actually reads (a renamed setting then breaks the test, not the demo).
    read: NamesRead,
}

/// The variable names an [`Env`] was asked for; outlives the `Env` (which settings constructors
/// consume), so a test can inspect it afterwards.
#[derive(Clone, Default)]
pub struct NamesRead(std::rc::Rc<std::cell::RefCell<std::collections::BTreeSet<String>>>);

impl NamesRead {
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.0.borrow().clone()
    }
}

impl Env {
    pub fn from_process() -> Self {
        Env::from_map(std::env::vars())
    }

    pub fn from_map<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        Env {
            vars: vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            problems: Vec::new(),
            read: Default::default(),
        }
    }

    /// A handle on the names looked up, now and later.
    pub fn names_read(&self) -> NamesRead {
        self.read.clone()
    }

    /// The raw value; empty values count as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        self.read.0.borrow_mut().insert(name.to_string());
        self.vars.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    pub fn string(&mut self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_string())
    }

    pub fn optional<T: FromStr>(&mut self, name: &str, expected: &str) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        let raw = self.get(name)?;
        match raw.parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.push(format!("{name}={raw:?} is not {expected}: {e}"));
                None
            }
        }
    }

    pub fn parse<T: FromStr>(&mut self, name: &str, default: T, expected: &str) -> T
    where
        T::Err: fmt::Display,
    {
        self.optional(name, expected).unwrap_or(default)
    }

    /// A required value; records a problem (and returns `None`) when missing or malformed.
    pub fn required<T: FromStr>(&mut self, name: &str, expected: &str) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        if self.get(name).is_none() {
            self.problems.push(format!("{name} is not set: expected {expected}"));
            return None;
        }
        self.optional(name, expected)
    }

    /// Seconds, as a [`Duration`].
    pub fn seconds(&mut self, name: &str, default_secs: u64) -> Duration {
        Duration::from_secs(self.parse(name, default_secs, "a whole number of seconds"))
    }

    pub fn flag(&mut self, name: &str, default: bool) -> bool {
        match self.get(name).map(|v| v.to_ascii_lowercase()) {
            None => default,
            Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => true,
            Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => false,
            Some(v) => {
                self.problems.push(format!("{name}={v:?} is not a boolean: expected true or false"));
                default
            }
        }
    }

    /// One of `choices` (case-insensitive).
    pub fn choice(&mut self, name: &str, choices: &[&str], default: &str) -> String {
        let value = self.string(name, default).to_ascii_lowercase();
        if !choices.contains(&value.as_str()) {
            self.problems.push(format!("{name}={value:?} is not one of: {}", choices.join(", ")));
            return default.to_string();
        }
        value
    }

    /// Records a problem found while combining values.
    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    /// `Ok` if every value read was valid.
    pub fn finish(self) -> Result<(), SettingsError> {
        if self.problems.is_empty() { Ok(()) } else { Err(SettingsError { problems: self.problems }) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_with_its_variable() {
        let mut env = Env::from_map([("PORT", "eighty"), ("FLAG", "maybe"), ("MODE", "fast")]);
        let port: u16 = env.parse("PORT", 3000, "a port number");
        let _ = env.flag("FLAG", false);
        let _ = env.choice("MODE", &["obo", "passthrough"], "obo");
        let _: Option<String> = env.required("AUTHORITY", "a URL");
        assert_eq!(port, 3000);
        let err = env.finish().unwrap_err();
        assert_eq!(err.problems.len(), 4, "{err}");
        for name in ["PORT", "FLAG", "MODE", "AUTHORITY"] {
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn valid_values_and_defaults() {
        let mut env = Env::from_map([("PORT", "3002"), ("EMPTY", "  ")]);
        assert_eq!(env.parse::<u16>("PORT", 1, "a port"), 3002);
        assert_eq!(env.string("EMPTY", "default"), "default");
        assert_eq!(env.seconds("MISSING", 7), Duration::from_secs(7));
        let read = env.names_read();
        env.finish().unwrap();
        assert!(read.names().contains("MISSING") && read.names().contains("PORT"));
    }
}

/// The Entra settings every service shares, with the identity manifest as the source of
/// defaults: an explicit variable wins (Azure sets them from postprovision's output), else
/// the manifest (`IDENTITY_MANIFEST`, or `infra/app-registrations.toml` found from the working
/// directory) rendered for `IDENTITY_SUFFIX` (default `local`). So no service hard-codes an id.
pub struct Identity {
    /// Where OpenID metadata and tokens are fetched (`ENTRA_AUTHORITY`, default the local
    /// emulator `http://localhost:3003`; `https://login.microsoftonline.com` in Azure).
    pub authority: url::Url,
    /// The authority browsers and MCP clients use (`ENTRA_PUBLIC_AUTHORITY`, default
    /// `authority`): differs only when services reach the IdP on an internal address (compose).
    pub public_authority: url::Url,
    pub tenant_id: String,
    pub manifest: Option<crate::manifest::Manifest>,
    pub vars: crate::manifest::Vars,
}

/// One app registration's identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRegistration {
    pub client_id: String,
    /// The identifier URI (`api://...`), for resources.
    pub app_id_uri: Option<String>,
}

impl Env {
    /// Reads `ENTRA_AUTHORITY`, `ENTRA_PUBLIC_AUTHORITY`, `ENTRA_TENANT_ID`, `IDENTITY_MANIFEST`, `IDENTITY_SUFFIX`, `CHAT_APP_URL`.
    pub fn identity(&mut self) -> Identity {
        let authority = self
            .optional::<url::Url>("ENTRA_AUTHORITY", "a URL like https://login.microsoftonline.com")
            .unwrap_or_else(local_emulator);
        let vars = crate::manifest::Vars {
            suffix: self.string("IDENTITY_SUFFIX", "local"),
            chat_app_url: self.string("CHAT_APP_URL", "http://localhost:3000"),
        };
        let path = match self.get("IDENTITY_MANIFEST") {
            Some(p) => Some(std::path::PathBuf::from(p)),
            None => std::env::current_dir().ok().and_then(crate::manifest::Manifest::locate),
        };
        let manifest = match path.map(crate::manifest::Manifest::load) {
            Some(Ok(m)) => Some(m),
            Some(Err(e)) => {
                self.problem(format!("IDENTITY_MANIFEST: {e}"));
                None
            }
            None => None,
        };
        let tenant_id = match (self.get("ENTRA_TENANT_ID"), &manifest) {
            (Some(t), _) => t,
            (None, Some(m)) => m.tenant.id.clone(),
            (None, None) => {
                self.problem("ENTRA_TENANT_ID is not set and no identity manifest was found (set IDENTITY_MANIFEST)");
                String::new()
            }
        };
        let public_authority = self
            .optional::<url::Url>("ENTRA_PUBLIC_AUTHORITY", "a URL like http://localhost:3003")
            .unwrap_or_else(|| authority.clone());
        Identity { authority, public_authority, tenant_id, manifest, vars }
    }
}

/// The emulator on its default port.
fn local_emulator() -> url::Url {
    #[allow(clippy::expect_used)] // a constant that parses; the settings tests exercise it
    url::Url::parse("http://localhost:3003").expect("constant URL")
}

impl Identity {
    /// `{PREFIX}_CLIENT_ID` and `{PREFIX}_APP_ID_URI`, else the manifest's app `name`.
    pub fn app(&self, env: &mut Env, prefix: &str, name: &str) -> AppRegistration {
        let app = self.manifest.as_ref().and_then(|m| m.app(name));
        let client_id = env.get(&format!("{prefix}_CLIENT_ID")).or_else(|| app.map(|a| a.client_id.clone()));
        let app_id_uri = env
            .get(&format!("{prefix}_APP_ID_URI"))
            .or_else(|| app.and_then(|a| a.identifier_uri.as_ref()).map(|t| t.render(&self.vars)));
        let client_id = client_id.unwrap_or_else(|| {
            env.problem(format!("{prefix}_CLIENT_ID is not set and the identity manifest has no app {name:?}"));
            String::new()
        });
        AppRegistration { client_id, app_id_uri }
    }

    /// `{PREFIX}_MANAGED_IDENTITY_CLIENT_ID`, else the manifest's managed identity `name`.
    pub fn managed_identity_client_id(&self, env: &mut Env, prefix: &str, name: &str) -> Option<String> {
        env.get(&format!("{prefix}_MANAGED_IDENTITY_CLIENT_ID"))
            .or_else(|| self.manifest.as_ref()?.managed_identities.get(name).map(|mi| mi.client_id.clone()))
    }

    /// The v2 issuer clients are told to use (RFC 9728 `authorization_servers`): under the
    /// public authority, as tokens name it.
    pub fn issuer_v2(&self) -> String {
        format!("{}/{}/v2.0", self.public_authority.as_str().trim_end_matches('/'), self.tenant_id)
    }
}

#[cfg(test)]
mod identity_tests {
    use super::*;

    fn manifest_path() -> String {
        format!("{}/../../infra/app-registrations.toml", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn identity_comes_from_the_manifest_unless_overridden() {
        let mut env = Env::from_map([
            ("IDENTITY_MANIFEST", manifest_path()),
            ("ORDERS_API_CLIENT_ID", "11111111-1111-1111-1111-111111111111".into()),
        ]);
        let identity = env.identity();
        let api = identity.app(&mut env, "ORDERS_API", "orders-api");
        let mcp = identity.app(&mut env, "ORDERS_MCP", "orders-mcp");
        let mi = identity.managed_identity_client_id(&mut env, "ORDERS_MCP", "orders-mcp");
        env.finish().unwrap();
        let m = identity.manifest.as_ref().unwrap();
        assert_eq!(identity.authority.as_str(), "http://localhost:3003/");
        assert_eq!(identity.tenant_id, m.tenant.id);
        assert_eq!(api.client_id, "11111111-1111-1111-1111-111111111111");
        assert_eq!(api.app_id_uri.as_deref(), Some("api://orders-api-local"));
        assert_eq!(mcp.client_id, m.apps["orders-mcp"].client_id);
        assert_eq!(mi, Some(m.managed_identities["orders-mcp"].client_id.clone()));
    }

    #[test]
    fn without_a_manifest_the_ids_are_required() {
        let mut env = Env::from_map([("IDENTITY_MANIFEST", "/nonexistent.toml")]);
        let identity = env.identity();
        let _ = identity.app(&mut env, "ORDERS_API", "orders-api");
        let err = env.finish().unwrap_err();
        assert!(err.to_string().contains("IDENTITY_MANIFEST"), "{err}");
        assert!(err.to_string().contains("ORDERS_API_CLIENT_ID"), "{err}");
    }
}
