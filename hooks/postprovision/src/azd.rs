//! Writing results to the azd environment: through `azd env set` when running as an azd hook,
//! or straight into a dotenv file (`--env-file`) when run by hand or in tests.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use service_kit::settings::Env;

use crate::deployment::variables::AZD_ENV_NAME;
use crate::dotenv;

/// The process variable that names the azd program to run (default: `azd` on `PATH`).
pub const AZD_PROGRAM: &str = "AZD";

pub trait EnvStore {
    fn set(&mut self, key: &str, value: &str) -> Result<(), String>;
}

/// `azd env set KEY VALUE --environment NAME`.
pub struct AzdCli {
    pub program: OsString,
    pub environment: String,
}

impl AzdCli {
    /// `azd env set` for the environment azd runs this hook in, read from the process
    /// environment azd gives hooks.
    pub fn from_env(env: &Env) -> AzdCli {
        AzdCli {
            program: env.get(AZD_PROGRAM).unwrap_or_else(|| "azd".to_string()).into(),
            environment: env.get(AZD_ENV_NAME).unwrap_or_default(),
        }
    }
}

impl EnvStore for AzdCli {
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let output = Command::new(&self.program)
            .args(["env", "set", key, value, "--environment", &self.environment])
            .output()
            .map_err(|e| {
                format!("cannot run {}: {e} (is the Azure Developer CLI installed?)", self.program.display())
            })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`azd env set {key}` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }
}

/// A dotenv file, updated in place (written to a temporary file, then renamed over it).
pub struct DotEnvFile {
    pub path: PathBuf,
}

impl DotEnvFile {
    pub fn read(&self) -> Result<BTreeMap<String, String>, String> {
        let text =
            std::fs::read_to_string(&self.path).map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        dotenv::parse(&text).map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

impl EnvStore for DotEnvFile {
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let mut values = self.read()?;
        values.insert(key.to_string(), value.to_string());
        let temporary = self.path.with_extension("postprovision.tmp");
        std::fs::write(&temporary, dotenv::render(&values))
            .and_then(|()| std::fs::rename(&temporary, &self.path))
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}
