//! `cargo xtask up`: the whole demo on this machine, offline.

use std::time::Duration;

use entra_manifest::Manifest;

use crate::{frontend, stack};

/// Builds the client (a release build with `release`) and the services, runs them until
/// Ctrl-C.
pub fn run(release: bool) -> anyhow::Result<()> {
    let root = crate::root();
    let manifest = Manifest::load(entra_manifest::REPOSITORY_MANIFEST)?;

    println!("== 1/4 building the chat-app client (wasm)");
    let site = frontend::build(release)?;
    let data = root.join("data");
    std::fs::create_dir_all(&data)?;
    let services = stack::local(&data, &site.env())?;
    stack::check_ports_free(&services)?;

    println!("\n== 2/4 building the services");
    let bin_dir = stack::build(&services, release)?;

    println!("\n== 3/4 starting emulator, orders-api, orders-mcp, chat-app");
    let mut running = stack::Stack::start(&services, &bin_dir)?;
    running.wait_ready(&services, Duration::from_secs(60))?;

    println!("\n== 4/4 ready\n");
    println!("  Open http://localhost:3000 and sign in as one of the demo users:\n");
    for user in &manifest.users {
        let roles: Vec<String> = user.app_roles.iter().map(|r| r.role.clone()).collect();
        let roles = if roles.is_empty() { "customer".to_string() } else { roles.join(", ") };
        println!("    {:<8} password {:<8} {} ({roles})", user.name, user.password, user.display_name);
    }
    println!(
        "\n  emulator http://localhost:3003 · orders-mcp http://localhost:3001/mcp · orders-api http://localhost:3002/docs"
    );
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
