//! Manifest values that differ per environment: `{suffix}`, `{chat_app_url}`, `{orders_mcp_url}`
//! and `{tenant_id}`.

/// Values that differ per environment, substituted into [`Template`]s.
#[derive(Debug, Clone)]
pub struct Vars {
    /// `local` offline; the azd environment name in Azure.
    pub suffix: String,
    /// Origin users reach chat-app on, without a trailing slash.
    pub chat_app_url: String,
    /// Origin MCP clients reach orders-mcp on: its canonical MCP endpoint, and so its Application
    /// ID URI, is `{orders_mcp_url}/mcp`.
    pub orders_mcp_url: String,
    /// The directory (tenant) id: the emulator's in the manifest offline, the real one in Azure.
    pub tenant_id: String,
}

impl Vars {
    /// The values for the offline stack on the default ports, in the manifest's tenant.
    pub fn local(tenant_id: &str) -> Self {
        Vars {
            suffix: "local".into(),
            chat_app_url: "http://localhost:3000".into(),
            orders_mcp_url: "http://localhost:3001".into(),
            tenant_id: tenant_id.into(),
        }
    }
}

pub(crate) const PLACEHOLDERS: [&str; 4] = ["{suffix}", "{chat_app_url}", "{orders_mcp_url}", "{tenant_id}"];

/// A string with the [`PLACEHOLDERS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(String);

impl Template {
    /// Text whose placeholders were checked against [`PLACEHOLDERS`].
    pub(crate) fn new(text: String) -> Self {
        Template(text)
    }

    pub fn render(&self, vars: &Vars) -> String {
        self.0
            .replace("{suffix}", &vars.suffix)
            .replace("{chat_app_url}", vars.chat_app_url.trim_end_matches('/'))
            .replace("{orders_mcp_url}", vars.orders_mcp_url.trim_end_matches('/'))
            .replace("{tenant_id}", &vars.tenant_id)
    }
}
