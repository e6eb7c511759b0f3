//! Random tokens, hashes and password hashing, in one place so their choices stay consistent.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Random bytes from the operating system. Failing to get randomness is not recoverable.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    bytes
}

/// 256 random bits, URL-safe (base64url without padding): for links and API tokens.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

pub fn sha256_hex(input: &str) -> String {
    sha256_hex_bytes(input.as_bytes())
}

pub fn sha256_hex_bytes(input: &[u8]) -> String {
    hex::encode(Sha256::digest(input))
}

/// A keyed, URL-safe digest of `parts` (joined unambiguously).
pub fn hmac_token(key: &[u8], parts: &[&str]) -> String {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// A token shape check before any lookup: base64url or hex, of a sane length.
pub fn looks_like_token(token: &str) -> bool {
    (16..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordVerifier, phc::PasswordHash};
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// The key that signs status links, cookies and our Message-IDs: at least 64 bytes.
#[derive(Clone)]
pub struct SecretKey(Vec<u8>);

impl SecretKey {
    pub const MIN_BYTES: usize = 64;

    /// Hex or base64 (standard or URL-safe), at least 64 bytes once decoded.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let decoded = hex::decode(text)
            .ok()
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
            .or_else(|| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok())
            .ok_or("RECOVERYDESK_SECRET_KEY must be hex or base64")?;
        if decoded.len() < Self::MIN_BYTES {
            return Err(format!(
                "RECOVERYDESK_SECRET_KEY must be at least {} bytes; it has {}",
                Self::MIN_BYTES,
                decoded.len()
            ));
        }
        Ok(SecretKey(decoded))
    }

    pub fn generate_hex() -> String {
        hex::encode(random_bytes::<64>())
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([hidden])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_url_safe_and_distinct() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert!(looks_like_token(&a));
        assert_ne!(a, random_token());
        assert!(!looks_like_token("short"));
        assert!(!looks_like_token("has/slash/and/is/long/enough"));
    }

    #[test]
    fn hmac_tokens_depend_on_key_and_every_part() {
        let key = [7u8; 64];
        let t = hmac_token(&key, &["status", "1", "salt"]);
        assert_eq!(t, hmac_token(&key, &["status", "1", "salt"]));
        assert_ne!(t, hmac_token(&key, &["status", "2", "salt"]));
        assert_ne!(t, hmac_token(&key, &["status", "1s", "alt"]));
        assert_ne!(t, hmac_token(&[8u8; 64], &["status", "1", "salt"]));
    }

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let phc = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong", &phc));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn secret_keys_need_64_bytes() {
        assert!(SecretKey::parse(&SecretKey::generate_hex()).is_ok());
        assert!(SecretKey::parse(&"ab".repeat(63)).is_err());
        assert!(SecretKey::parse("not a key!").is_err());
    }
}
