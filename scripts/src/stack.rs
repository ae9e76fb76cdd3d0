//! The local stack as processes: the four services, their environment, readiness, and a clean
//! stop. `xtask up` runs it for people; tests run it to check the whole system.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One service to start.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: &'static str,
    /// The binary's name under `target/<profile>/`.
    pub bin: &'static str,
    /// Cargo package that builds it, and the features it needs.
    pub package: &'static str,
    pub features: &'static str,
    pub port: u16,
    pub env: Vec<(String, String)>,
    /// Serves HTTPS from the emulator's local CA (`xtask up --tls`); the file is that CA.
    pub ca_file: Option<PathBuf>,
}

impl Service {
    pub fn health_url(&self) -> String {
        let scheme = if self.ca_file.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/healthz", self.port)
    }

    /// The health check's status code: over HTTPS trusting the local CA only, else plain HTTP.
    fn health(&self) -> anyhow::Result<u16> {
        let Some(ca_file) = &self.ca_file else {
            return Ok(service_kit::probe::status(&self.health_url())?);
        };
        let ca = reqwest::Certificate::from_pem(&std::fs::read(ca_file)?)?;
        let http = reqwest::Client::builder().tls_certs_only([ca]).timeout(Duration::from_secs(2)).build()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(runtime.block_on(async { http.get(self.health_url()).send().await.map(|r| r.status().as_u16()) })?)
    }
}

/// The emulator's HTTPS mode for [`local`]: where its CA lives (created beforehand, so that the
/// services, which read `ENTRA_CA_FILE` at start, find it).
pub struct Tls {
    pub dir: PathBuf,
    pub ca_file: PathBuf,
}

/// The four services' ports: [`Ports::STANDARD`] for people (`xtask up`), free ones for a run that
/// must not collide with a stack already running (`xtask soak`).
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub chat_app: u16,
    pub orders_mcp: u16,
    pub orders_api: u16,
    pub emulator: u16,
}

impl Ports {
    pub const STANDARD: Ports = Ports { chat_app: 3000, orders_mcp: 3001, orders_api: 3002, emulator: 3003 };

    /// Four ports free now (asked of the OS, then released for the services to bind).
    pub fn free() -> anyhow::Result<Ports> {
        let listeners: Vec<TcpListener> =
            (0..4).map(|_| TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))).collect::<Result<_, _>>()?;
        let port = |i: usize| listeners[i].local_addr().map(|a| a.port());
        Ok(Ports { chat_app: port(0)?, orders_mcp: port(1)?, orders_api: port(2)?, emulator: port(3)? })
    }
}

/// The offline stack on `ports`: the emulator is the identity provider, its
/// managed-identity endpoint stands in for Azure's, and every id comes from the manifest
/// (the services read it themselves). Browser-facing URLs use `localhost`; service-to-service
/// calls use `127.0.0.1`, which also exercises the emulator's public/back-channel split.
/// With `tls`, the emulator serves HTTPS and every service trusts its CA through `ENTRA_CA_FILE`.
pub fn local(
    data_dir: &Path,
    site_env: &[(&'static str, String)],
    tls: Option<&Tls>,
    ports: Ports,
) -> anyhow::Result<Vec<Service>> {
    let Ports { chat_app, orders_mcp, orders_api, emulator } = ports;
    // The managed-identity header secret of this run (the emulator checks it).
    let identity_header = service_kit::secret::hex::<16>()?;
    let data = |file: &str| data_dir.join(file).display().to_string();
    let idp = if tls.is_some() { "https" } else { "http" };
    let common = |extra: &[(&str, String)]| -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = vec![
            ("ENTRA_AUTHORITY".into(), format!("{idp}://127.0.0.1:{emulator}")),
            ("ENTRA_PUBLIC_AUTHORITY".into(), format!("{idp}://localhost:{emulator}")),
            // Every service renders the manifest's `{chat_app_url}` and `{orders_mcp_url}`.
            ("CHAT_APP_URL".into(), format!("http://localhost:{chat_app}")),
            ("ORDERS_MCP_PUBLIC_URL".into(), format!("http://localhost:{orders_mcp}")),
            ("IDENTITY_MANIFEST".into(), crate::root().join(entra_manifest::DEFAULT_PATH).display().to_string()),
        ];
        if let Some(tls) = tls {
            env.push(("ENTRA_CA_FILE".into(), tls.ca_file.display().to_string()));
        }
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env
    };
    let mut emulator_env = vec![
        ("EMULATOR_ADDR", format!("127.0.0.1:{emulator}")),
        ("EMULATOR_PUBLIC_URL", format!("{idp}://localhost:{emulator}")),
        ("EMULATOR_CHAT_APP_URL", format!("http://localhost:{chat_app}")),
        ("EMULATOR_ORDERS_MCP_URL", format!("http://localhost:{orders_mcp}")),
        ("EMULATOR_IDENTITY_HEADER", identity_header.clone()),
    ];
    if let Some(tls) = tls {
        emulator_env
            .extend([("EMULATOR_TLS", "true".to_string()), ("EMULATOR_DATA_DIR", tls.dir.display().to_string())]);
    }
    let managed_identity = [
        ("IDENTITY_ENDPOINT", format!("{idp}://127.0.0.1:{emulator}/msi/token")),
        ("IDENTITY_HEADER", identity_header.clone()),
    ];
    let mut chat_env = vec![
        ("CHAT_APP_ADDR", format!("127.0.0.1:{chat_app}")),
        ("CHAT_APP_SESSION_DB", data("chat-app.db")),
        ("ORDERS_MCP_URL", format!("http://127.0.0.1:{orders_mcp}/mcp")),
    ];
    chat_env.extend(managed_identity.iter().cloned());
    chat_env.extend(site_env.iter().cloned());
    let mut mcp_env = vec![
        ("ORDERS_MCP_ADDR", format!("127.0.0.1:{orders_mcp}")),
        ("ORDERS_API_URL", format!("http://127.0.0.1:{orders_api}")),
    ];
    mcp_env.extend(managed_identity.iter().cloned());
    Ok(vec![
        Service {
            name: "entra-emulator",
            bin: "entra-emulator",
            package: "entra-emulator",
            features: "",
            port: emulator,
            env: common(&emulator_env),
            ca_file: tls.map(|t| t.ca_file.clone()),
        },
        Service {
            name: "orders-api",
            bin: "orders-api",
            package: "orders-api",
            features: "",
            port: orders_api,
            env: common(&[
                ("ORDERS_API_ADDR", format!("127.0.0.1:{orders_api}")),
                ("ORDERS_API_PUBLIC_URL", format!("http://localhost:{orders_api}")),
                ("ORDERS_API_DATABASE", data("orders.db")),
            ]),
            ca_file: None,
        },
        Service {
            name: "orders-mcp",
            bin: "orders-mcp",
            package: "orders-mcp",
            features: "",
            port: orders_mcp,
            env: common(&mcp_env),
            ca_file: None,
        },
        Service {
            name: "chat-app",
            bin: "chat-app",
            package: "chat-app",
            features: "ssr",
            port: chat_app,
            env: common(&chat_env),
            ca_file: None,
        },
    ])
}

/// `cargo build` for the services' binaries, in one invocation.
pub fn build(services: &[Service], release: bool) -> anyhow::Result<PathBuf> {
    let mut args: Vec<String> = vec!["build".into()];
    if release {
        args.push("--release".into());
    }
    for s in services {
        args.extend(["-p".into(), s.package.into(), "--bin".into(), s.bin.into()]);
        if !s.features.is_empty() {
            args.extend(["--features".into(), format!("{}/{}", s.package, s.features)]);
        }
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    crate::run_cmd("cargo", &refs, &[])?;
    Ok(crate::root().join("target").join(if release { "release" } else { "debug" }))
}

/// The services' binaries as `cargo test --workspace` builds them (same features, same profile,
/// same target directory as the test calling this), brought up to date first: a no-op under
/// `cargo xtask test`, a build when that test runs alone. For tests that run the services as
/// processes (any package's: the test binary's own location names the target directory).
pub fn workspace_binaries() -> anyhow::Result<PathBuf> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--workspace", "--no-run", "--quiet"])
        .current_dir(crate::root())
        .status()?;
    if !status.success() {
        anyhow::bail!("building the workspace failed ({status})");
    }
    // A test runs from <target>/<profile>/deps/; the binaries are in <target>/<profile>/.
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow::anyhow!("{} is not in <target>/<profile>/deps", exe.display()))
}

/// Running services; stopped (interrupted, then killed if need be) on drop.
pub struct Stack {
    children: Vec<(&'static str, Child)>,
    /// Where each service's output goes (`<name>.log`, appended); the terminal when `None`.
    log_dir: Option<PathBuf>,
}

/// `n` distinct free ports on loopback, for a stack started on ports of its own (tests). Each is
/// held until all are chosen: a port let go at once can be the next bind's to port 0, and two
/// services were once given the same one.
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let held =
        (0..n).map(|_| TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))).collect::<Result<Vec<_>, _>>()?;
    held.iter().map(|listener| Ok(listener.local_addr()?.port())).collect()
}

/// Fails early, with the culprit named, if a port is taken.
pub fn check_ports_free(services: &[Service]) -> anyhow::Result<()> {
    for s in services {
        if TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], s.port))).is_err() {
            anyhow::bail!("port {} ({}) is already in use: is another stack running? Stop it first.", s.port, s.name);
        }
    }
    Ok(())
}

impl Stack {
    /// Starts every service from `bin_dir`, prefixing each output line with the service name.
    pub fn start(services: &[Service], bin_dir: &Path) -> anyhow::Result<Stack> {
        let mut stack = Stack { children: Vec::new(), log_dir: None };
        stack.start_more(services, bin_dir)?;
        Ok(stack)
    }

    /// An empty stack whose services, once started, write their output to `<log_dir>/<name>.log`.
    pub fn logging_to(log_dir: &Path) -> Stack {
        Stack { children: Vec::new(), log_dir: Some(log_dir.to_path_buf()) }
    }

    /// The process id of a running service.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.children.iter().find(|(n, _)| *n == name).map(|(_, c)| c.id())
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to one service.
    pub fn signal(&self, name: &str, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid(name).ok_or_else(|| anyhow::anyhow!("{name} is not running"))?;
        let status = Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {name}: {status}");
        Ok(())
    }

    /// Ends one service with `signal` (`KILL`, `INT`, ...) and waits for it to exit (killing it
    /// after 10 s if it has not).
    pub fn end(&mut self, name: &str, signal: &str) -> anyhow::Result<()> {
        self.signal(name, signal)?;
        let index = self
            .children
            .iter()
            .position(|(n, _)| *n == name)
            .ok_or_else(|| anyhow::anyhow!("{name} is not running"))?;
        let (_, mut child) = self.children.remove(index);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(child.try_wait(), Ok(None)) {
            eprintln!("{name} did not stop within 10 s of SIG{signal}: killing it");
            let _ = child.kill();
        }
        child.wait()?;
        Ok(())
    }

    /// Starts more services into this stack.
    pub fn start_more(&mut self, services: &[Service], bin_dir: &Path) -> anyhow::Result<()> {
        for s in services {
            let path = bin_dir.join(s.bin);
            let mut child = Command::new(&path)
                .envs(s.env.iter().map(|(k, v)| (k, v)))
                .current_dir(crate::root())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", path.display()))?;
            let log = match &self.log_dir {
                Some(dir) => Some(Arc::new(Mutex::new(
                    std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{}.log", s.name)))?,
                ))),
                None => None,
            };
            for pipe in [
                child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
                child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
            ]
            .into_iter()
            .flatten()
            {
                let name = s.name;
                let log = log.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                        match &log {
                            Some(file) => {
                                if let Ok(mut file) = file.lock() {
                                    let _ = writeln!(file, "{line}");
                                }
                            }
                            None => println!("[{name:>14}] {line}"),
                        }
                    }
                });
            }
            self.children.push((s.name, child));
        }
        Ok(())
    }

    /// Waits until every service answers its health check, or one exits.
    pub fn wait_ready(&mut self, services: &[Service], timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        for s in services {
            loop {
                if let Some((_, child)) = self.children.iter_mut().find(|(n, _)| *n == s.name)
                    && let Ok(Some(status)) = child.try_wait()
                {
                    anyhow::bail!("{} exited during start-up ({status}); its output is above", s.name);
                }
                if s.health().is_ok_and(|code| code == 200) {
                    println!("  ✓ {} ready on port {}", s.name, s.port);
                    break;
                }
                if Instant::now() > deadline {
                    anyhow::bail!("{} did not become healthy within {timeout:?}", s.name);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        Ok(())
    }

    /// Asks each service to stop (SIGINT, as Ctrl-C would), then kills what is left.
    pub fn stop(&mut self) {
        for (_, child) in self.children.iter_mut() {
            let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (name, child) in self.children.iter_mut() {
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(child.try_wait(), Ok(None)) {
                eprintln!("{name} did not stop in time: killing it");
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
    }
}
