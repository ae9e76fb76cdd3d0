//! The two CLIs the developer sign-in runs, played through entra-auth's `Executor`: `azd auth
//! token` and `az account get-access-token` answer with a token when that CLI is signed in,
//! or with the CLI's own "not signed in" message. The real credential code (command line, JSON
//! parsing, error messages, cache) runs; neither CLI needs to be installed.

use std::ffi::OsStr;
use std::process::{ExitStatus, Output};
use std::sync::{Arc, Mutex};

use entra_auth::acquire::Executor;

#[derive(Debug, Default)]
pub struct Clis {
    /// The token `azd auth token` prints; `None`: not signed in.
    pub azd: Option<&'static str>,
    /// The token `az account get-access-token` prints; `None`: not signed in.
    pub az: Option<&'static str>,
    /// For `az`'s answer, which names the tenant.
    pub tenant: &'static str,
    /// Every command line run, in order.
    pub commands: Mutex<Vec<String>>,
}

impl Clis {
    /// Signed in to azd only, which hands out `token` for every scope.
    pub fn azd_signed_in(token: &'static str) -> Arc<Clis> {
        Arc::new(Clis { azd: Some(token), ..Default::default() })
    }

    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Executor for Clis {
    async fn run(&self, _program: &OsStr, args: &[&OsStr]) -> std::io::Result<Output> {
        let command = args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
        self.commands.lock().unwrap().push(command.clone());
        let answer =
            |stdout: String| Output { status: ExitStatus::default(), stdout: stdout.into(), stderr: Vec::new() };
        let fail = |stderr: &str| Output { status: failed(), stdout: Vec::new(), stderr: stderr.into() };
        let expires = 4_102_444_800u64; // 2100-01-01
        if command.contains("azd auth token") {
            return Ok(match self.azd {
                Some(token) => answer(format!(r#"{{"token":"{token}","expiresOn":"2100-01-01T00:00:00Z"}}"#)),
                None => fail("ERROR: not logged in, run `azd auth login` to login"),
            });
        }
        if command.contains("az account get-access-token") {
            let tenant = self.tenant;
            return Ok(match self.az {
                Some(token) => answer(format!(
                    r#"{{"accessToken":"{token}","expiresOn":"2100-01-01 00:00:00.000000","expires_on":{expires},"subscription":"s","tenant":"{tenant}","tokenType":"Bearer"}}"#
                )),
                None => fail("ERROR: Please run 'az login' to setup account."),
            });
        }
        Ok(fail("unknown command"))
    }
}

#[cfg(unix)]
fn failed() -> ExitStatus {
    std::os::unix::process::ExitStatusExt::from_raw(256)
}

#[cfg(windows)]
fn failed() -> ExitStatus {
    std::os::windows::process::ExitStatusExt::from_raw(1)
}
