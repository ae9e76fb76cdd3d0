//! The values the emulator hands out that stand for a grant: authorization codes, refresh
//! tokens, device and user codes, sign-in session ids. Whoever holds one can redeem it, so each
//! comes from the operating system's generator; if that fails nothing is issued.

use service_kit::secret::{self, RandomError};

/// Entra's user codes are nine characters; these avoid look-alikes (0/O, 1/I).
const USER_CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// An authorization code or a device code: 48 random bytes, base64url.
pub fn code() -> Result<String, RandomError> {
    secret::urlsafe::<48>()
}

/// A refresh token: 64 random bytes, base64url.
pub fn refresh_token() -> Result<String, RandomError> {
    secret::urlsafe::<64>()
}

/// The code a user types at `/devicelogin`: nine characters of [`USER_CODE_ALPHABET`] (32
/// symbols divide 256, so every symbol is equally likely).
pub fn user_code() -> Result<String, RandomError> {
    let bytes = secret::bytes::<9>()?;
    Ok(bytes.iter().map(|b| USER_CODE_ALPHABET[usize::from(*b) % USER_CODE_ALPHABET.len()] as char).collect())
}

/// A sign-in session id (`sid` in tokens, `session_state` to apps): a random GUID, as Entra's.
pub fn session_id() -> Result<String, RandomError> {
    Ok(uuid::Builder::from_random_bytes(secret::bytes::<16>()?).into_uuid().to_string())
}

/// The SSO cookie's value: 32 random bytes, base64url. Apart from the session id because every
/// app learns that id, and knowing it must not sign anyone in.
pub fn session_cookie() -> Result<String, RandomError> {
    secret::urlsafe::<32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_entra_shapes() {
        assert_eq!(code().unwrap().len(), 64);
        assert_eq!(refresh_token().unwrap().len(), 86);
        let user = user_code().unwrap();
        assert_eq!(user.len(), 9);
        assert!(user.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
        let sid = uuid::Uuid::parse_str(&session_id().unwrap()).unwrap();
        assert_eq!(sid.get_version_num(), 4);
        assert_eq!(session_cookie().unwrap().len(), 43);
        assert_ne!(code().unwrap(), code().unwrap());
    }
}
