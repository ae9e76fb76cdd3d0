//! Secrets: unguessable values from the operating system's generator (PKCE verifiers, `state`
//! and `nonce`, authorization codes, per-run header secrets), and comparing them without
//! leaking through timing how much matched. There is no fallback: a value that must be
//! unguessable is never made from the time.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The operating system's random generator failed.
#[derive(Debug, Clone)]
pub struct RandomError;

impl fmt::Display for RandomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the operating system's random generator failed")
    }
}

impl std::error::Error for RandomError {}

/// `N` random bytes.
pub fn bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| RandomError)?;
    Ok(buf)
}

/// `N` random bytes as base64url without padding (RFC 4648 §5): URL, header and cookie safe.
/// 32 bytes make 43 characters: a valid PKCE verifier (RFC 7636 §4.1).
pub fn urlsafe<const N: usize>() -> Result<String, RandomError> {
    Ok(URL_SAFE_NO_PAD.encode(bytes::<N>()?))
}

/// `N` random bytes as lowercase hex.
pub fn hex<const N: usize>() -> Result<String, RandomError> {
    Ok(crate::hex::encode(&bytes::<N>()?))
}

/// Compares secrets in constant time (for equal lengths).
pub fn same(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_differ_are_url_safe_and_have_the_expected_length() {
        let (a, b) = (urlsafe::<32>().unwrap(), urlsafe::<32>().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(hex::<16>().unwrap().len(), 32);
        assert!(same(&a, &a.clone()) && !same(&a, &b) && !same(&a, "short"));
    }
}
