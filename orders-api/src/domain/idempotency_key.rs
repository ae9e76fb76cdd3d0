//! The `Idempotency-Key` request header: a client-chosen name for one create attempt.

/// Longer keys are refused: a UUID is 36 characters, so this leaves ample room.
const MAX_LEN: usize = 255;
/// [`IdempotencyKey::parse`]'s rule for the OpenAPI document: visible ASCII, 1 to 255 characters.
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]{1,255}$";

/// 1 to 255 visible ASCII characters (no spaces), compared exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &[u8]) -> Result<IdempotencyKey, String> {
        if raw.is_empty() || raw.len() > MAX_LEN || !raw.iter().all(|b| b.is_ascii_graphic()) {
            return Err(format!("Idempotency-Key must be 1 to {MAX_LEN} visible ASCII characters without spaces"));
        }
        Ok(IdempotencyKey(String::from_utf8_lossy(raw).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        let uuid = "9b2f1c1e-0d7a-4c55-b1c4-0a8e5f6a7b8c";
        assert_eq!(IdempotencyKey::parse(uuid.as_bytes()).unwrap().as_str(), uuid);
        assert!(IdempotencyKey::parse(&[b'k'; MAX_LEN]).is_ok());
        for bad in [&b""[..], b"has space", b"tab\t", "caf\u{e9}".as_bytes(), &[b'k'; MAX_LEN + 1]] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }
}
