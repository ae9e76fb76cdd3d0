//! The emulator's HTTPS mode (`--tls`): MSAL (Python, Node, .NET) and everything built on it
//! refuse an authority that is not `https`, so the one identity provider that runs offline must
//! speak TLS for them.
//!
//! On first run a local certificate authority is created in the data directory, and a leaf
//! certificate for the names the emulator is reached by (`localhost`, `127.0.0.1`, `::1` and any
//! extra, such as the compose service name), signed by it. Both are reused by later runs; the
//! leaf is issued again when the names change or it nears its end. Clients trust the CA (its path
//! is printed at start), never a switch that turns verification off.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use service_kit::tls::rustls::ServerConfig;
use time::{Duration, OffsetDateTime};

/// The names every leaf certificate covers.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
const CA_NAME: &str = "Orders Copilot Entra emulator local CA";
/// The CA certificate's file name in the data directory.
pub const CA_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";
const LEAF_FILE: &str = "server.pem";
const LEAF_KEY_FILE: &str = "server-key.pem";
/// What the leaf was issued for and until when, to know when to issue it again.
const LEAF_INFO_FILE: &str = "server.txt";
const CA_LIFETIME: Duration = Duration::days(3650);
/// Under the 825 days Apple platforms accept for a TLS server certificate.
const LEAF_LIFETIME: Duration = Duration::days(820);
const LEAF_RENEW_BEFORE: Duration = Duration::days(30);

/// The local CA and the server configuration using its leaf.
pub struct LocalCa {
    /// The CA certificate clients must trust (PEM).
    pub ca_file: PathBuf,
    pub server: Arc<ServerConfig>,
}

/// Loads the CA and leaf from `dir`, creating what is missing.
pub fn load_or_create(dir: &Path, extra_names: &[String]) -> anyhow::Result<LocalCa> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut names: Vec<String> = LOOPBACK_NAMES.iter().map(|n| n.to_string()).collect();
    for name in extra_names.iter().map(|n| n.trim().to_ascii_lowercase()).filter(|n| !n.is_empty()) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let ca_key = match fs::read_to_string(dir.join(CA_KEY_FILE)) {
        Ok(pem) if dir.join(CA_FILE).exists() => KeyPair::from_pem(&pem).context("the stored CA key")?,
        _ => create_ca(dir)?,
    };
    let now = OffsetDateTime::now_utc();
    let wanted = leaf_info(&names, None);
    let current = fs::read_to_string(dir.join(LEAF_INFO_FILE)).unwrap_or_default();
    let reusable = current.lines().next() == wanted.lines().next()
        && current
            .lines()
            .nth(1)
            .and_then(|l| l.parse::<i64>().ok())
            .is_some_and(|until| until > (now + LEAF_RENEW_BEFORE).unix_timestamp())
        && dir.join(LEAF_FILE).exists()
        && dir.join(LEAF_KEY_FILE).exists();
    if !reusable {
        issue_leaf(dir, &ca_key, &names, now)?;
    }
    let chain = fs::read(dir.join(LEAF_FILE)).context("the server certificate")?;
    let key = fs::read(dir.join(LEAF_KEY_FILE)).context("the server key")?;
    Ok(LocalCa { ca_file: dir.join(CA_FILE), server: service_kit::tls::server_config(&chain, &key)? })
}

/// The CA's parameters: the same on every run, so a leaf issued with the stored key chains to
/// the stored certificate (the issuer name is this, the authority key id comes from the key).
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    name.push(DnType::OrganizationName, "Orders Copilot (development only)");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

fn create_ca(dir: &Path) -> anyhow::Result<KeyPair> {
    let key = KeyPair::generate().context("cannot generate the CA key")?;
    let mut params = ca_params();
    let now = OffsetDateTime::now_utc();
    (params.not_before, params.not_after) = (now - Duration::days(1), now + CA_LIFETIME);
    let cert = params.self_signed(&key).context("cannot sign the CA certificate")?;
    write_private(&dir.join(CA_KEY_FILE), &key.serialize_pem())?;
    fs::write(dir.join(CA_FILE), cert.pem()).context("cannot write the CA certificate")?;
    // A new CA invalidates any leaf issued by an earlier one.
    let _ = fs::remove_file(dir.join(LEAF_INFO_FILE));
    Ok(key)
}

fn issue_leaf(dir: &Path, ca_key: &KeyPair, names: &[String], now: OffsetDateTime) -> anyhow::Result<()> {
    let issuer = Issuer::new(ca_params(), ca_key);
    let key = KeyPair::generate().context("cannot generate the server key")?;
    let mut params = CertificateParams::new(names.to_vec()).context("the certificate's names")?;
    params.distinguished_name.push(DnType::CommonName, "Entra emulator");
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let until = now + LEAF_LIFETIME;
    (params.not_before, params.not_after) = (now - Duration::days(1), until);
    let cert = params.signed_by(&key, &issuer).context("cannot sign the server certificate")?;
    write_private(&dir.join(LEAF_KEY_FILE), &key.serialize_pem())?;
    fs::write(dir.join(LEAF_FILE), cert.pem()).context("cannot write the server certificate")?;
    fs::write(dir.join(LEAF_INFO_FILE), leaf_info(names, Some(until))).context("cannot write server.txt")?;
    Ok(())
}

fn leaf_info(names: &[String], until: Option<OffsetDateTime>) -> String {
    format!("{}\n{}\n", names.join(","), until.map_or(0, |u| u.unix_timestamp()))
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(pem.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// What to print at start: where the CA is and the one line each ecosystem needs to trust it.
pub fn trust_instructions(ca_file: &Path) -> String {
    let ca = ca_file.display();
    format!(
        "HTTPS with a local certificate authority: {ca}\n\
         Trust it (development only), one line per ecosystem:\n  \
         services (chat-app, orders-mcp, orders-api): ENTRA_CA_FILE={ca}\n  \
         Python (MSAL, azure-identity, requests, httpx): export SSL_CERT_FILE={ca} REQUESTS_CA_BUNDLE={ca}\n  \
         Node (MSAL Node, MCP SDK, Inspector): export NODE_EXTRA_CA_CERTS={ca}\n  \
         browsers: add it to the OS store (Debian/Ubuntu: cp {ca} /usr/local/share/ca-certificates/entra-emulator.crt && update-ca-certificates; \
         macOS: security add-trusted-cert -r trustRoot -k ~/Library/Keychains/login.keychain-db {ca}; \
         Windows: certutil -user -addstore Root {ca}); Chromium and Firefox on Linux keep their own store (certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n entra-emulator -i {ca})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_created_once_and_the_leaf_follows_the_names() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), &[]).unwrap();
        let ca = fs::read_to_string(&first.ca_file).unwrap();
        let leaf = fs::read_to_string(dir.path().join(LEAF_FILE)).unwrap();
        load_or_create(dir.path(), &[]).unwrap();
        assert_eq!(fs::read_to_string(&first.ca_file).unwrap(), ca, "the CA is reused");
        assert_eq!(fs::read_to_string(dir.path().join(LEAF_FILE)).unwrap(), leaf, "the leaf is reused");
        load_or_create(dir.path(), &["Emulator".into()]).unwrap();
        assert_eq!(fs::read_to_string(&first.ca_file).unwrap(), ca, "the CA outlives a new leaf");
        assert_ne!(fs::read_to_string(dir.path().join(LEAF_FILE)).unwrap(), leaf, "new names, new leaf");
        #[cfg(unix)]
        for key in [CA_KEY_FILE, LEAF_KEY_FILE] {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(key)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{key} is private");
        }
    }
}
