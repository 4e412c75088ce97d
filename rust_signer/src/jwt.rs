//! CDP JWT minting: `header.claims.signature`, each base64url, exactly as Coinbase's official SDK shapes them.
//!
//! header `{"alg","kid","nonce","typ":"JWT"}` (PyJWT's sorted order), claims `{"sub","iss":"cdp","nbf","exp",
//! "uri"}` with `exp = nbf + 120` and `uri = "<METHOD> <host><path>"` (query string stripped). The JSON prefixes
//! that never change for a key are built once; each token is written into one string of exact capacity.

use std::fmt::Write as _;

use base64::Engine;
use ring::rand::SecureRandom;

use crate::encoding::{b64url_len, push_hex, push_json_str, B64URL};
use crate::error::{Result, SignerError};
use crate::keys::{Algorithm, PrivateKey};

/// Coinbase rejects a token this many seconds after its `nbf`.
pub const TOKEN_LIFETIME_SECS: i64 = 120;
const NONCE_BYTES: usize = 32;
const HEADER_SUFFIX: &str = "\",\"typ\":\"JWT\"}";
const SIGNATURE_B64_LEN: usize = b64url_len(64);
/// `i64::MIN` has 20 characters: room for any `nbf`/`exp`.
const MAX_INT_LEN: usize = 20;

pub mod msg {
    pub const BAD_METHOD: &str = "method must be an HTTP method such as GET or POST";
    pub const BAD_HOST: &str =
        "host must be a bare host name such as api.coinbase.com or 127.0.0.1:8080, \
        without scheme or path";
    pub const BAD_PATH: &str =
        "path must start with '/', e.g. /api/v3/brokerage/orders (not a full URL), \
        and hold no control character: CR, LF and NUL would let a request be split or smuggled";
}

/// The request a REST token is for; `path` has its query string already stripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestUri<'a> {
    method: &'a str,
    host: &'a str,
    path: &'a str,
}

impl<'a> RequestUri<'a> {
    /// Check and normalise a request line: `host` as `name` or `name:port` without scheme, `path` from `/`.
    pub fn new(method: &'a str, path: &'a str, host: &'a str) -> Result<Self> {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(SignerError::InvalidArgument(msg::BAD_METHOD));
        }
        if host.is_empty() || host.contains('/') || host.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(SignerError::InvalidArgument(msg::BAD_HOST));
        }
        if !path.starts_with('/') || path.bytes().any(|b| b.is_ascii_control()) {
            return Err(SignerError::InvalidArgument(msg::BAD_PATH));
        }
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        Ok(Self { method, host, path })
    }

    pub fn method(&self) -> &'a str {
        self.method
    }
    pub fn host(&self) -> &'a str {
        self.host
    }
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// Whether this is the same request line as `other`; methods compare case-insensitively.
    pub fn same_as(&self, other: &RequestUri<'_>) -> bool {
        self.path == other.path
            && self.host == other.host
            && self.method.eq_ignore_ascii_case(other.method)
    }

    fn push_json(&self, out: &mut String) {
        for c in self.method.chars() {
            out.push(c.to_ascii_uppercase());
        }
        out.push(' ');
        push_json_str(out, self.host);
        push_json_str(out, self.path);
    }

    fn json_len_bound(&self) -> usize {
        // JSON escaping at most sextuples a character (\u00XX).
        self.method.len() + 1 + 6 * (self.host.len() + self.path.len())
    }
}

/// An owned `RequestUri`, as pools keep them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRequestUri {
    method: String,
    host: String,
    path: String,
}

impl OwnedRequestUri {
    pub fn new(method: &str, path: &str, host: &str) -> Result<Self> {
        let uri = RequestUri::new(method, path, host)?;
        Ok(Self {
            method: uri.method.to_ascii_uppercase(),
            host: uri.host.to_owned(),
            path: uri.path.to_owned(),
        })
    }

    pub fn as_ref(&self) -> RequestUri<'_> {
        RequestUri {
            method: &self.method,
            host: &self.host,
            path: &self.path,
        }
    }
}

/// A CDP key ready to mint: the parsed private key and its name, with the constant JSON prefixes prebuilt.
#[derive(Debug)]
pub struct TokenMinter {
    key: PrivateKey,
    name: String,
    /// `{"alg":"…","kid":"<name>","nonce":"`
    header_prefix: String,
    /// `{"sub":"<name>","iss":"cdp","nbf":`
    claims_prefix: String,
}

impl TokenMinter {
    pub fn new(name: &str, key: PrivateKey) -> Result<Self> {
        let name = name.trim();
        if name.is_empty() {
            return Err(SignerError::KeyFormat(
                "the key name is empty: pass the name (organizations/…/apiKeys/…) or id from the CDP API key file",
            ));
        }
        let mut header_prefix = String::from("{\"alg\":\"");
        header_prefix.push_str(key.algorithm().jose_name());
        header_prefix.push_str("\",\"kid\":\"");
        push_json_str(&mut header_prefix, name);
        header_prefix.push_str("\",\"nonce\":\"");
        let mut claims_prefix = String::from("{\"sub\":\"");
        push_json_str(&mut claims_prefix, name);
        claims_prefix.push_str("\",\"iss\":\"cdp\",\"nbf\":");
        Ok(Self {
            key,
            name: name.to_owned(),
            header_prefix,
            claims_prefix,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn algorithm(&self) -> Algorithm {
        self.key.algorithm()
    }

    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// Mint one token valid from `nbf` for `TOKEN_LIFETIME_SECS`; a REST token when `uri` is given, else a
    /// WebSocket token.
    pub fn mint(&self, nbf: i64, uri: Option<&RequestUri<'_>>) -> Result<String> {
        let mut nonce = [0u8; NONCE_BYTES];
        self.key
            .rng()
            .fill(&mut nonce)
            .map_err(|_| SignerError::Crypto("the OS random generator failed"))?;

        // One scratch string holds header then claims JSON; the token is written once, at exact capacity.
        let header_len = self.header_prefix.len() + 2 * NONCE_BYTES + HEADER_SUFFIX.len();
        let claims_bound = self.claims_prefix.len()
            + 2 * MAX_INT_LEN
            + ",\"exp\":".len()
            + uri.map_or(0, |u| ",\"uri\":\"\"".len() + u.json_len_bound())
            + 1;
        let mut json = String::with_capacity(header_len + claims_bound);
        json.push_str(&self.header_prefix);
        push_hex(&mut json, &nonce);
        json.push_str(HEADER_SUFFIX);
        let exp = nbf
            .checked_add(TOKEN_LIFETIME_SECS)
            .ok_or(SignerError::InvalidArgument("time out of range"))?;
        json.push_str(&self.claims_prefix);
        // Writing into a String cannot fail.
        let _ = write!(json, "{nbf},\"exp\":{exp}");
        if let Some(uri) = uri {
            json.push_str(",\"uri\":\"");
            uri.push_json(&mut json);
            json.push('"');
        }
        json.push('}');
        let (header, claims) = json.split_at(header_len);

        let mut token = String::with_capacity(
            b64url_len(header.len()) + b64url_len(claims.len()) + SIGNATURE_B64_LEN + 2,
        );
        B64URL.encode_string(header, &mut token);
        token.push('.');
        B64URL.encode_string(claims, &mut token);
        let signature = self.key.sign(token.as_bytes())?;
        token.push('.');
        B64URL.encode_string(signature, &mut token);
        debug_assert_eq!(token.len(), token.capacity());
        Ok(token)
    }
}

#[cfg(test)]
#[cfg(feature = "verify")] // each test checks its tokens with the verifier
mod tests {
    use super::*;
    use crate::keys::PublicKey;
    use crate::verify::Verifier;
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    fn es256_minter(name: &str) -> TokenMinter {
        let rng = ring::rand::SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pem =
            pem_rfc7468::encode_string("PRIVATE KEY", pem_rfc7468::LineEnding::LF, doc.as_ref())
                .unwrap();
        TokenMinter::new(name, PrivateKey::parse(&pem).unwrap()).unwrap()
    }

    fn ed25519_minter(name: &str) -> TokenMinter {
        TokenMinter::new(name, PrivateKey::from_ed25519_seed(&[9u8; 32]).unwrap()).unwrap()
    }

    fn round_trip(minter: &TokenMinter) {
        let verifier = Verifier::new();
        let pem = minter.key().public_key_pem();
        assert_eq!(
            verifier.register(minter.name(), &pem).unwrap(),
            minter.algorithm()
        );
        let uri =
            RequestUri::new("post", "/api/v3/brokerage/orders?x=1", "127.0.0.1:8443").unwrap();
        let token = minter.mint(1_700_000_000, Some(&uri)).unwrap();
        let verified = verifier.verify(&token).unwrap();
        let header = String::from_utf8(verified.header).unwrap();
        let claims = String::from_utf8(verified.claims).unwrap();
        assert!(header.starts_with(&format!(
            "{{\"alg\":\"{}\",\"kid\":",
            minter.algorithm().jose_name()
        )));
        assert!(header.ends_with("\",\"typ\":\"JWT\"}"));
        assert_eq!(
            claims,
            format!(
                "{{\"sub\":\"{}\",\"iss\":\"cdp\",\"nbf\":1700000000,\"exp\":1700000120,\
                 \"uri\":\"POST 127.0.0.1:8443/api/v3/brokerage/orders\"}}",
                minter.name()
            )
        );
        let ws = minter.mint(5, None).unwrap();
        let claims = verifier.verify(&ws).unwrap().claims;
        assert_eq!(
            claims,
            format!(
                "{{\"sub\":\"{}\",\"iss\":\"cdp\",\"nbf\":5,\"exp\":125}}",
                minter.name()
            )
            .as_bytes()
        );
        // Any flipped byte of the signing input breaks the signature.
        let mut tampered = token.clone().into_bytes();
        tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
        assert!(verifier
            .verify(std::str::from_utf8(&tampered).unwrap())
            .is_err());
        // Two tokens for the same request differ (fresh nonce; ECDSA also randomises the signature).
        assert_ne!(
            minter.mint(1, Some(&uri)).unwrap(),
            minter.mint(1, Some(&uri)).unwrap()
        );
    }

    #[test]
    fn es256_tokens_round_trip_through_the_verifier() {
        round_trip(&es256_minter("organizations/org/apiKeys/key"));
    }

    #[test]
    fn ed25519_tokens_round_trip_through_the_verifier() {
        round_trip(&ed25519_minter("7b6e1a0c-9d7e-4c1b-8d8e-3f2a1b0c9d8e"));
    }

    #[test]
    fn alg_swap_and_unknown_kid_are_refused() {
        let es = es256_minter("k1");
        let verifier = Verifier::new();
        // Register k1 under an Ed25519 key: an ES256 token naming k1 is an alg mismatch.
        let ed = PrivateKey::from_ed25519_seed(&[3u8; 32]).unwrap();
        verifier.register("k1", &ed.public_key_pem()).unwrap();
        let token = es.mint(0, None).unwrap();
        assert!(matches!(
            verifier.verify(&token),
            Err(SignerError::TokenInvalid(
                crate::error::TokenFault::AlgMismatch,
                _
            ))
        ));
        verifier.unregister("k1");
        assert!(matches!(
            verifier.verify(&token),
            Err(SignerError::TokenInvalid(
                crate::error::TokenFault::UnknownKey,
                _
            ))
        ));
        let _ = PublicKey::parse_pem(&es.key().public_key_pem()).unwrap();
    }

    #[test]
    fn names_and_uris_are_json_escaped() {
        let minter = ed25519_minter("we\"ird\\name");
        let verifier = Verifier::new();
        verifier
            .register("we\"ird\\name", &minter.key().public_key_pem())
            .unwrap();
        let token = minter.mint(0, None).unwrap();
        assert_eq!(verifier.verify(&token).unwrap().kid, "we\"ird\\name");
    }

    #[test]
    fn request_uri_rejects_what_coinbase_would_401() {
        assert!(RequestUri::new("GET", "https://api.coinbase.com/x", "api.coinbase.com").is_err());
        assert!(RequestUri::new("GET", "/x", "https://api.coinbase.com").is_err());
        assert!(RequestUri::new("", "/x", "api.coinbase.com").is_err());
        assert!(RequestUri::new("G T", "/x", "api.coinbase.com").is_err());
        assert_eq!(RequestUri::new("get", "/a?b=c", "h").unwrap().path(), "/a");
    }

    #[test]
    fn a_path_with_a_control_character_is_refused() {
        for path in ["/a\r\nX-Injected: 1", "/a\n", "/a\0", "/a\x7f", "/a?q=\r"] {
            let refused = RequestUri::new("GET", path, "api.coinbase.com");
            assert!(
                matches!(refused, Err(SignerError::InvalidArgument(m)) if m == msg::BAD_PATH),
                "{path:?}"
            );
        }
        assert!(RequestUri::new("GET", "/a/%0D%0A", "api.coinbase.com").is_ok());
        // encoded: fine
    }
}
