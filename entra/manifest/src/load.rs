//! Finding, reading and parsing the manifest file.

use std::path::{Path, PathBuf};

use crate::check::Checker;
use crate::error::{ManifestError, line_of};
use crate::model::Manifest;
use crate::raw;

/// The manifest's path relative to the workspace root.
pub const DEFAULT_PATH: &str = "infra/app-registrations.toml";

/// The repository's own manifest, by absolute path at build time: for tests, benches and
/// developer tools that run from a checkout (never for deployed services, which are told
/// `IDENTITY_MANIFEST`).
pub const REPOSITORY_MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/app-registrations.toml");

impl Manifest {
    /// Reads and checks the manifest at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ManifestError {
            file: path.display().to_string(),
            line: None,
            message: format!("cannot read the identity manifest: {e}"),
        })?;
        Manifest::parse(&text, &path.display().to_string())
    }

    /// Finds the manifest from `start` or one of its ancestors: the workspace root holds it.
    pub fn locate(start: impl AsRef<Path>) -> Option<PathBuf> {
        start.as_ref().ancestors().map(|dir| dir.join(DEFAULT_PATH)).find(|p| p.is_file())
    }

    /// Parses and checks manifest text; `file` names it in error messages.
    pub fn parse(text: &str, file: &str) -> Result<Manifest, ManifestError> {
        let raw: raw::Manifest = toml::from_str(text).map_err(|e| ManifestError {
            file: file.to_string(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().to_string(),
        })?;
        Checker::new(text, file).check(raw)
    }
}
