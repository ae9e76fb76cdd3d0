//! `cargo xtask verify`'s command line: which deployment, and where its services are.

use std::path::PathBuf;

use clap::{ArgGroup, Parser};
use entra_manifest::{Manifest, Vars};
use url::Url;

use super::azd;
use super::target::{ENTRA, Local, Target};

/// Check a running deployment end to end.
#[derive(Debug, Parser)]
#[command(name = "verify", group(ArgGroup::new("deployment").args(["local", "azd", "env_file"])))]
pub struct Options {
    /// The stack of `xtask up` or docker compose (the default); --url, --mcp-url, --api-url and
    /// --authority then name other ports.
    #[arg(long)]
    pub local: bool,
    /// The deployment of the current azd environment (`azd env get-values`).
    #[arg(long, conflicts_with_all = ["url", "mcp_url", "api_url", "tenant"])]
    pub azd: bool,
    /// The same, from a saved `azd env get-values` (for example .env.azure).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["url", "mcp_url", "api_url", "tenant"])]
    pub env_file: Option<PathBuf>,
    /// chat-app's URL; without --local, the deployment reachable there is checked.
    #[arg(long, value_name = "URL")]
    pub url: Option<Url>,
    /// orders-mcp's MCP endpoint (`.../mcp`).
    #[arg(long, value_name = "URL")]
    pub mcp_url: Option<Url>,
    /// orders-api's URL (reachable locally; internal in Azure).
    #[arg(long, value_name = "URL")]
    pub api_url: Option<Url>,
    /// Where tokens come from [default: the emulator locally, Entra ID otherwise]. With --azd or
    /// --env-file: the authority the deployment's services were given as `ENTRA_AUTHORITY`
    /// when it is not the public cloud's (a national cloud, or the emulator standing in for
    /// Entra in the dress rehearsal of hooks/postprovision).
    #[arg(long, value_name = "URL")]
    pub authority: Option<Url>,
    /// The Entra tenant of the deployment given with --url.
    #[arg(long, requires = "url", conflicts_with = "local")]
    pub tenant: Option<String>,
}

impl Options {
    /// The deployment these options name.
    pub fn target(&self) -> anyhow::Result<Target> {
        if self.azd || self.env_file.is_some() {
            return azd::target(self.env_file.as_deref(), self.authority.as_ref());
        }
        match &self.url {
            Some(url) if !self.local => self.by_url(url),
            _ => self.local(),
        }
    }

    /// Anything reachable by URL: no tokens, so the checks that need one are skipped.
    fn by_url(&self, url: &Url) -> anyhow::Result<Target> {
        Ok(Target {
            chat_app: url.clone(),
            orders_mcp: self.mcp_url.clone(),
            orders_api: self.api_url.clone(),
            authority: self.authority.clone().map_or_else(|| Url::parse(ENTRA), Ok)?,
            tenant: self.tenant.clone().unwrap_or_default(),
            local: None,
        })
    }

    /// The local stack: the standard ports unless told otherwise (a stack started on others).
    fn local(&self) -> anyhow::Result<Target> {
        let url = |given: &Option<Url>, default: &str| given.clone().map_or_else(|| Url::parse(default), Ok);
        let manifest = Manifest::load(entra_manifest::REPOSITORY_MANIFEST)?;
        Ok(Target {
            chat_app: url(&self.url, "http://localhost:3000")?,
            orders_mcp: Some(url(&self.mcp_url, "http://localhost:3001/mcp")?),
            orders_api: Some(url(&self.api_url, "http://localhost:3002")?),
            authority: url(&self.authority, "http://localhost:3003")?,
            tenant: manifest.tenant.id.clone(),
            local: Some(Local { vars: Vars::local(&manifest.tenant.id), manifest }),
        })
    }
}
