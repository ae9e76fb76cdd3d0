//! `cargo xtask soak`: the stack under sustained load and faults, bounded in time, on loopback.
//!
//! Starts the four services as processes on free ports (the offline planner as chat-app's
//! model), signs N simulated users in through the emulator like browsers, and lets them load
//! pages and run chat turns that list, create and cancel their own orders (approving each
//! state-changing call), while a quarter as many clients create and cancel orders on orders-api
//! directly, retrying with Idempotency-Keys. Meanwhile, one at a time: chat-app restarted,
//! orders-api and orders-mcp killed with SIGKILL and restarted, the emulator stopped (and two
//! people sign in meanwhile: chat-app must answer them within the bound). Then it
//! stops the stack, reads orders-api's SQLite file, prints one table, and fails when a bound is
//! broken: a request open longer than 10 s, a 5xx or unanswered request outside a fault window,
//! a fault the stack does not recover from within 30 s (no other service restarted), an
//! acknowledged order lost, changed owner or created twice, an order shown to a user not its
//! own, memory grown more than 20 % after warm-up.

mod api;
mod browser;
mod faults;
mod ledger;
mod memory;
mod record;
mod report;
mod user;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entra_manifest::{Manifest, Vars};
use url::Url;

use crate::stack::{self, Ports, Stack};
use api::{ApiUser, TokenSource};
use browser::Browser;
use faults::Injector;
use memory::Memory;
use record::Recorder;
use user::{Identity, User};

/// `cargo xtask soak` options.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// How long the load runs, in seconds; the faults are spread over it and scaled to it.
    #[arg(long, default_value_t = 120)]
    pub duration: u64,
    /// Simulated chat-app users (a quarter as many, at least one, use orders-api directly).
    #[arg(long, default_value_t = 32)]
    pub users: usize,
    /// Release builds of the services.
    #[arg(long)]
    pub release: bool,
}

impl Options {
    /// The short soak `cargo xtask test` runs.
    pub fn short() -> Options {
        Options { duration: 30, users: 8, release: false }
    }
}

/// Builds the client and the services, then soaks them.
pub fn run(options: &Options) -> anyhow::Result<()> {
    let site = crate::frontend::build(options.release)?;
    let services = stack::local(Path::new("."), &site.env(), None, Ports::STANDARD)?;
    let bin_dir = stack::build(&services, options.release)?;
    soak(options, &site.env(), &bin_dir)
}

/// Soaks the services built in `bin_dir`; fails when a bound is broken.
pub fn soak(options: &Options, site_env: &[(&'static str, String)], bin_dir: &Path) -> anyhow::Result<()> {
    let dir = crate::target_dir().join("soak");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let ports = Ports::free()?;
    let services = stack::local(&dir, site_env, None, ports)?;
    println!("\n== soak: starting the stack on ports {ports:?} (logs in {})", dir.display());
    let (emulator, others) = services.split_at(1);
    let mut running = Stack::logging_to(&dir);
    running.start_more(emulator, bin_dir)?;
    running.wait_ready(emulator, Duration::from_secs(60))?;
    running.start_more(others, bin_dir)?;
    running.wait_ready(others, Duration::from_secs(60))?;
    let stack = Arc::new(Mutex::new(running));

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(load(options, ports, stack.clone(), &services, bin_dir));
    if let Ok(mut stack) = stack.lock() {
        stack.stop();
    }
    let (recorder, faults, memory) = result?;
    let findings =
        runtime.block_on(ledger::check(&dir.join("orders.db"), &recorder.all_acknowledged(), &recorder.all_shown()))?;
    let scale = options.duration as f64 / 120.0;
    let broken = report::print(&report::Run {
        users: options.users,
        duration: Duration::from_secs(options.duration),
        samples: &recorder.samples(),
        windows: &recorder.windows(),
        faults: &faults,
        messages: &recorder.messages(),
        memory: &memory.summaries(warm_up(scale)),
        ledger: &findings,
        leaks: &recorder.leaks(),
    });
    if !broken.is_empty() {
        for b in &broken {
            eprintln!("  ✗ {b}");
        }
        anyhow::bail!("{} bound(s) broken; the services' logs are in {}", broken.len(), dir.display());
    }
    println!("\nsoak: every bound held");
    Ok(())
}

/// How long after start (of the run, or of a restarted process) load and memory count as settled.
fn warm_up(scale: f64) -> Duration {
    Duration::from_secs_f64((15.0 * scale).max(5.0))
}

async fn load(
    options: &Options,
    ports: Ports,
    stack: Arc<Mutex<Stack>>,
    services: &[stack::Service],
    bin_dir: &Path,
) -> anyhow::Result<(Recorder, Vec<faults::Outcome>, Memory)> {
    let manifest = Manifest::load(entra_manifest::REPOSITORY_MANIFEST)?;
    let vars = Vars {
        chat_app_url: format!("http://localhost:{}", ports.chat_app),
        orders_mcp_url: format!("http://localhost:{}", ports.orders_mcp),
        ..Vars::local(&manifest.tenant.id)
    };
    let identities: Vec<Identity> = manifest
        .users
        .iter()
        .map(|u| Identity {
            name: u.name.clone(),
            password: u.password.clone(),
            oid: u.oid.clone(),
            admin: u.app_roles.iter().any(|r| r.role == "Orders.Admin"),
        })
        .collect();
    anyhow::ensure!(!identities.is_empty(), "the manifest has no demo users");
    let chat_app = Url::parse(&format!("http://localhost:{}/", ports.chat_app))?;
    let api = Url::parse(&format!("http://127.0.0.1:{}/", ports.orders_api))?;
    let tenant = format!("http://127.0.0.1:{}/{}", ports.emulator, manifest.tenant.id);
    let app_uri = |app: &str| {
        manifest.app(app).and_then(|a| a.identifier_uri.as_ref()).map(|t| t.render(&vars)).unwrap_or_default()
    };
    let mcp = manifest.app("orders-mcp").ok_or_else(|| anyhow::anyhow!("no orders-mcp in the manifest"))?;
    let tokens = TokenSource {
        token_endpoint: format!("{tenant}/oauth2/v2.0/token"),
        authorize_endpoint: format!("{tenant}/oauth2/v2.0/authorize"),
        cli_client_id: manifest.clients.get("azure-cli").map(|c| c.client_id.clone()).unwrap_or_default(),
        mcp_client_id: mcp.client_id.clone(),
        mcp_secret: mcp.emulator_client_secret.clone().unwrap_or_default(),
        mcp_scope: format!("{}/access_as_user", app_uri("orders-mcp")),
        api_scope: format!("{}/Orders.ReadWrite", app_uri("orders-api")),
    };

    let recorder = Recorder::start();
    let scale = options.duration as f64 / 120.0;
    let warm = warm_up(scale);
    let think = Duration::from_millis(300);
    let until = Instant::now() + Duration::from_secs(options.duration);

    // Sign every user in before the clock matters; a user that cannot is a broken run.
    let mut users = Vec::new();
    for i in 0..options.users {
        let mut user = User::new(identities[i % identities.len()].clone(), chat_app.clone(), recorder.clone())?;
        user.sign_in().await.map_err(|e| anyhow::anyhow!("user {i} cannot sign in: {e}"))?;
        users.push(user);
    }
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let mut api_users = Vec::new();
    for i in 0..(options.users / 4).max(1) {
        let identity = identities[i % identities.len()].clone();
        let token = tokens.token_for(&http, &identity).await.map_err(|e| anyhow::anyhow!("{}: {e}", identity.name))?;
        api_users.push(ApiUser {
            label: format!("api-{i}"),
            identity,
            token,
            api: api.clone(),
            browser: Browser::new(recorder.clone())?,
            recorder: recorder.clone(),
        });
    }
    let mut probe = User::new(identities[0].clone(), chat_app.clone(), recorder.clone())?;
    probe.sign_in().await.map_err(|e| anyhow::anyhow!("the probe cannot sign in: {e}"))?;

    let mut tasks = tokio::task::JoinSet::new();
    for (i, user) in users.into_iter().enumerate() {
        // Spread the users' steps so they do not march in lockstep.
        let jitter = Duration::from_millis((i as u64 * 37) % 300);
        tasks.spawn(async move {
            tokio::time::sleep(jitter).await;
            user.run(until, think + jitter).await;
        });
    }
    for user in api_users {
        tasks.spawn(user.run(until, think));
    }

    let memory = Arc::new(Mutex::new(Memory::default()));
    let sampler = {
        let (memory, stack, recorder) = (memory.clone(), stack.clone(), recorder.clone());
        let names: Vec<&'static str> = services.iter().map(|s| s.name).collect();
        tokio::spawn(async move {
            while Instant::now() < until {
                // The injector holds the stack while it restarts a service: skip that sample.
                let pids: Vec<(&'static str, u32)> = match stack.try_lock() {
                    Ok(stack) => names.iter().filter_map(|n| Some((*n, stack.pid(n)?))).collect(),
                    Err(_) => Vec::new(),
                };
                if let Ok(mut memory) = memory.lock() {
                    for (name, pid) in pids {
                        memory.sample(name, pid, recorder.elapsed());
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };

    // The faults: after warm-up, spread over the first three quarters of the run, so that the
    // stack runs faultless at the end and memory is judged on settled processes.
    let injector =
        Injector { stack, services: services.to_vec(), bin_dir: bin_dir.to_path_buf(), recorder: recorder.clone() };
    let plan = faults::plan(scale);
    let span = Duration::from_secs(options.duration).mul_f64(0.75).saturating_sub(warm);
    let gap = span / plan.len() as u32;
    let begun = Instant::now();
    let mut outcomes = Vec::new();
    for (i, fault) in plan.into_iter().enumerate() {
        let at = warm + gap * i as u32;
        tokio::time::sleep(at.saturating_sub(begun.elapsed())).await;
        println!("  fault: {} at {:.0} s", fault.name, recorder.elapsed().as_secs_f64());
        outcomes.push(injector.inject(fault, &mut probe).await);
    }
    while let Some(joined) = tasks.join_next().await {
        joined?;
    }
    sampler.await?;
    let memory = std::mem::take(&mut *memory.lock().map_err(|_| anyhow::anyhow!("memory samples poisoned"))?);
    Ok((recorder, outcomes, memory))
}
