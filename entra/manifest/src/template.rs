//! Manifest values that differ per environment: `{suffix}` and `{chat_app_url}`.

/// Values that differ per environment, substituted into [`Template`]s.
#[derive(Debug, Clone)]
pub struct Vars {
    /// `local` offline; the azd environment name in Azure.
    pub suffix: String,
    /// Origin users reach chat-app on, without a trailing slash.
    pub chat_app_url: String,
}

impl Vars {
    /// The values for the offline stack on the default ports.
    pub fn local() -> Self {
        Vars { suffix: "local".into(), chat_app_url: "http://localhost:3000".into() }
    }
}

pub(crate) const PLACEHOLDERS: [&str; 2] = ["{suffix}", "{chat_app_url}"];

/// A string with `{suffix}` / `{chat_app_url}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(String);

impl Template {
    /// Text whose placeholders were checked against [`PLACEHOLDERS`].
    pub(crate) fn new(text: String) -> Self {
        Template(text)
    }

    pub fn render(&self, vars: &Vars) -> String {
        self.0.replace("{suffix}", &vars.suffix).replace("{chat_app_url}", vars.chat_app_url.trim_end_matches('/'))
    }
}
