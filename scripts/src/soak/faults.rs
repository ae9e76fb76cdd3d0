//! The faults, one at a time while the users run, and how long the stack takes to serve a user
//! again after each, with no other service restarted.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::stack::{Service, Stack};

use super::record::{BOUND, Recorder};
use super::user::User;

/// Longer than this to serve users again after the faulty service is back is a failure.
pub const RECOVERY_BOUND: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// SIGKILL, then started again at once.
    Kill,
    /// Stopped (SIGSTOP: connections are accepted and never answered, the harshest form of an
    /// unreachable identity provider) for this long, then continued, its keys and sessions
    /// intact, as Entra's would be.
    Pause(Duration),
    /// Stopped gracefully (SIGINT, as a deployment does) and started again.
    Restart,
}

#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub name: &'static str,
    pub service: &'static str,
    pub kind: Kind,
}

/// How a fault went.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub fault: Fault,
    /// From the fault until the service was back (healthy, or continued).
    pub down: Duration,
    /// From then until a user was served normally again; `None`: not within [`RECOVERY_BOUND`].
    pub recovered: Option<Duration>,
    pub error: Option<String>,
}

/// The four faults of the issue; the pause scaled to the run (30 s in a 2-minute run).
pub fn plan(scale: f64) -> Vec<Fault> {
    let pause = Duration::from_secs_f64((30.0 * scale).max(3.0));
    vec![
        Fault { name: "chat-app restarted", service: "chat-app", kind: Kind::Restart },
        Fault { name: "orders-api SIGKILL + restart", service: "orders-api", kind: Kind::Kill },
        Fault { name: "orders-mcp SIGKILL + restart", service: "orders-mcp", kind: Kind::Kill },
        Fault { name: "emulator stopped", service: "entra-emulator", kind: Kind::Pause(pause) },
    ]
}

pub struct Injector {
    pub stack: Arc<Mutex<Stack>>,
    pub services: Vec<Service>,
    pub bin_dir: PathBuf,
    pub recorder: Recorder,
}

impl Injector {
    /// Injects `fault`, brings the service back, then waits for `probe` to be served again.
    pub async fn inject(&self, fault: Fault, probe: &mut User) -> Outcome {
        let window = self.recorder.fault_started(fault.name);
        let started = Instant::now();
        let result = self.break_and_restore(fault, probe).await;
        let down = started.elapsed();
        let (recovered, error) = match result {
            Ok(()) => {
                let back = Instant::now();
                let mut recovered = None;
                while back.elapsed() < RECOVERY_BOUND {
                    if served(probe, fault).await {
                        recovered = Some(back.elapsed());
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                (recovered, None)
            }
            Err(e) => (None, Some(format!("{e:#}"))),
        };
        self.recorder.fault_ended(window);
        Outcome { fault, down, recovered, error }
    }

    async fn break_and_restore(&self, fault: Fault, probe: &User) -> anyhow::Result<()> {
        let service = self
            .services
            .iter()
            .find(|s| s.name == fault.service)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no service {}", fault.service))?;
        match fault.kind {
            Kind::Pause(how_long) => {
                // Someone is on the identity provider's login page as it stops: their browser
                // comes back with a code chat-app cannot redeem until it continues.
                let mut returning = probe.another()?;
                let callback =
                    returning.authorize().await.map_err(|e| anyhow::anyhow!("sign-in before the pause: {e}"))?;
                let name = service.name;
                self.blocking(move |stack| stack.signal(name, "STOP")).await?;
                let resume = async {
                    tokio::time::sleep(how_long).await;
                    self.blocking(move |stack| stack.signal(name, "CONT")).await
                };
                let (_, resumed) = tokio::join!(self.sign_in_while_stopped(returning, callback, probe), resume);
                resumed
            }
            Kind::Kill | Kind::Restart => {
                let signal = if matches!(fault.kind, Kind::Kill) { "KILL" } else { "INT" };
                let bin_dir = self.bin_dir.clone();
                self.blocking(move |stack| {
                    stack.end(service.name, signal)?;
                    let one = [service];
                    stack.start_more(&one, &bin_dir)?;
                    stack.wait_ready(&one, Duration::from_secs(60))
                })
                .await
            }
        }
    }

    /// What people signing in while the identity provider is stopped see: one back from its
    /// login page with a code, then one starting afresh. chat-app must answer each within the
    /// bound (the identity provider's own page cannot, and is its own: the browser waits on it).
    async fn sign_in_while_stopped(&self, mut returning: User, callback: url::Url, probe: &User) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let seen = match returning.finish_sign_in(&callback).await {
            Ok(()) => "signed in".to_string(),
            Err(e) => e,
        };
        self.recorder.message(&format!("sign-in, back from the login page: {seen}"));
        let Ok(mut fresh) = probe.another() else { return };
        let seen = match fresh.authorize().await {
            Ok(_) => "the sign-in page answered once the identity provider was back".to_string(),
            Err(e) if e.contains("timed out") => {
                format!("the identity provider's sign-in page did not answer within {} s", BOUND.as_secs())
            }
            Err(e) => e,
        };
        self.recorder.message(&format!("sign-in, starting afresh: {seen}"));
    }

    async fn blocking(&self, f: impl FnOnce(&mut Stack) -> anyhow::Result<()> + Send + 'static) -> anyhow::Result<()> {
        let stack = self.stack.clone();
        tokio::task::spawn_blocking(move || {
            let mut stack = stack.lock().map_err(|_| anyhow::anyhow!("the stack's lock is poisoned"))?;
            f(&mut stack)
        })
        .await?
    }
}

/// Whether a user is served normally: after the emulator, a new sign-in; otherwise the agent
/// lists the user's orders through orders-mcp and orders-api.
async fn served(probe: &mut User, fault: Fault) -> bool {
    if matches!(fault.kind, Kind::Pause(_)) && probe.sign_in().await.is_err() {
        return false;
    }
    let turn = probe.turn("show my orders").await;
    !turn.failed && !turn.results.is_empty()
}
