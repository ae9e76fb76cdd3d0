//! `cargo xtask up`: the whole demo on this machine, offline.

use std::time::Duration;

use entra_manifest::Manifest;
use url::Url;

use crate::{frontend, stack};

/// Builds the client (a release build with `release`) and the services, runs them until
/// Ctrl-C. With `tls` the emulator serves HTTPS from its local CA (`data/emulator/ca.pem`),
/// which the services trust through `ENTRA_CA_FILE`. With `otel` every service exports its spans
/// there (OTLP/HTTP).
pub fn run(release: bool, tls: bool, otel: Option<&Url>) -> anyhow::Result<()> {
    let root = crate::root();
    let manifest = Manifest::load(entra_manifest::REPOSITORY_MANIFEST)?;

    println!("== 1/4 building the chat-app client (wasm)");
    let site = frontend::build(release)?;
    let data = root.join("data");
    std::fs::create_dir_all(&data)?;
    let emulator_dir = data.join("emulator");
    let tls = tls.then(|| stack::Tls { ca_file: emulator_dir.join("ca.pem"), dir: emulator_dir });
    let mut services = stack::local(&data, &site.env(), tls.as_ref(), stack::Ports::STANDARD)?;
    if let Some(endpoint) = otel {
        for service in &mut services {
            service.env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint.to_string()));
        }
    }
    stack::check_ports_free(&services)?;

    println!("\n== 2/4 building the services");
    let bin_dir = stack::build(&services, release)?;

    println!("\n== 3/4 starting emulator, orders-api, orders-mcp, chat-app");
    // The emulator first: it creates the CA that the others read at start in --tls mode.
    let (emulator, others) = services.split_at(1);
    let mut running = stack::Stack::start(emulator, &bin_dir)?;
    running.wait_ready(emulator, Duration::from_secs(60))?;
    running.start_more(others, &bin_dir)?;
    running.wait_ready(others, Duration::from_secs(60))?;

    println!("\n== 4/4 ready\n");
    println!("  Open http://localhost:3000 and sign in as one of the demo users:\n");
    for user in &manifest.users {
        let roles: Vec<String> = user.app_roles.iter().map(|r| r.role.clone()).collect();
        let roles = if roles.is_empty() { "customer".to_string() } else { roles.join(", ") };
        println!("    {:<8} password {:<8} {} ({roles})", user.name, user.password, user.display_name);
    }
    let idp = if tls.is_some() { "https" } else { "http" };
    println!(
        "\n  emulator {idp}://localhost:3003 · orders-mcp http://localhost:3001/mcp · orders-api http://localhost:3002/docs"
    );
    if let Some(tls) = &tls {
        let ca = tls.ca_file.display();
        println!("  The emulator's CA is {ca}; trust it (development only) with:");
        println!("    Python: export SSL_CERT_FILE={ca} REQUESTS_CA_BUNDLE={ca}");
        println!("    Node:   export NODE_EXTRA_CA_CERTS={ca}");
        println!("    browsers: the OS store (see the README, \"The emulator over HTTPS\")");
    }
    if let Some(endpoint) = otel {
        println!("  Spans go to {endpoint} (OTLP/HTTP). Set CHAT_APP_TRACE_URL (e.g. Jaeger's");
        println!("  http://localhost:16686/trace/{{trace_id}}) before starting to link the trace panel to them.");
    }
    println!("  The model is the offline planner: try \"show my orders\", \"order 2 keyboards\", \"cancel ORD-003\".");
    println!("  Press Ctrl-C to stop everything.\n");

    wait_for_interrupt()?;
    println!("\nstopping...");
    running.stop();
    println!("stopped.");
    Ok(())
}

fn wait_for_interrupt() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r,
                _ = term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await
    })?;
    Ok(())
}
