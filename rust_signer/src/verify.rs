//! JWT verification against registered public keys: what the exchange simulator runs for every request.
//!
//! Checks structure, that `kid` is registered, that `alg` is that key's algorithm, and the signature. Claims
//! (time window, uri, sub, nonce replay) are the caller's to judge; they are returned as JSON bytes.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use base64::Engine;
use serde_json::Value;

use crate::encoding::{b64url_decoded_len, B64URL};
use crate::error::{Result, SignerError, TokenFault};
use crate::keys::{Algorithm, PublicKey};

/// A token that passed verification: its key id and its decoded header and claims JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub kid: String,
    pub header: Vec<u8>,
    pub claims: Vec<u8>,
}

fn invalid(fault: TokenFault, message: &'static str) -> SignerError {
    SignerError::TokenInvalid(fault, message)
}

fn malformed(message: &'static str) -> SignerError {
    invalid(TokenFault::Malformed, message)
}

/// Registered public keys by `kid`; safe to share across threads.
#[derive(Debug, Default)]
pub struct Verifier {
    keys: RwLock<HashMap<String, Arc<PublicKey>>>,
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register (or replace) the SubjectPublicKeyInfo PEM for `kid`; returns its algorithm.
    pub fn register(&self, kid: &str, public_key_pem: &str) -> Result<Algorithm> {
        let key = PublicKey::parse_pem(public_key_pem)?;
        let alg = key.algorithm();
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(kid.to_owned(), Arc::new(key));
        Ok(alg)
    }

    pub fn unregister(&self, kid: &str) {
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(kid);
    }

    pub fn verify(&self, token: &str) -> Result<Verified> {
        let mut parts = token.splitn(3, '.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed(
                "a JWT has three base64url parts separated by dots",
            ));
        };
        if signature_b64.contains('.') {
            return Err(malformed(
                "a JWT has three base64url parts separated by dots",
            ));
        }
        let header = decode_part(header_b64)?;
        let (alg, kid) = header_alg_kid(&header)?;
        let claims = decode_part(claims_b64)?;
        if !is_json_object(&claims) {
            return Err(malformed("the JWT claims are not a JSON object"));
        }
        let mut signature = [0u8; 64];
        if b64url_decoded_len(signature_b64.len()) != Some(64)
            || B64URL.decode_slice(signature_b64, &mut signature).is_err()
        {
            return Err(malformed("the JWT signature is not 64 bytes of base64url"));
        }
        let key = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(kid.as_str())
            .cloned()
            .ok_or(invalid(
                TokenFault::UnknownKey,
                "the JWT kid names no registered key",
            ))?;
        if alg != key.algorithm().jose_name() {
            return Err(invalid(
                TokenFault::AlgMismatch,
                "the JWT alg is not the algorithm of the key kid names",
            ));
        }
        // The signing input is the token's own text up to the second dot: no copy.
        let signing_input = &token[..header_b64.len() + 1 + claims_b64.len()];
        if !key.verify(signing_input.as_bytes(), &signature) {
            return Err(invalid(
                TokenFault::BadSignature,
                "the JWT signature does not verify under the key kid names",
            ));
        }
        Ok(Verified {
            kid,
            header,
            claims,
        })
    }
}

fn decode_part(part: &str) -> Result<Vec<u8>> {
    let len =
        b64url_decoded_len(part.len()).ok_or(malformed("a JWT part is not valid base64url"))?;
    let mut out = vec![0u8; len];
    match B64URL.decode_slice(part, &mut out) {
        Ok(n) if n == len => Ok(out),
        _ => Err(malformed("a JWT part is not valid base64url")),
    }
}

fn header_alg_kid(header: &[u8]) -> Result<(String, String)> {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(header) else {
        return Err(malformed("the JWT header is not a JSON object"));
    };
    match (fields.remove("alg"), fields.remove("kid")) {
        (Some(Value::String(alg)), Some(Value::String(kid))) => Ok((alg, kid)),
        _ => Err(malformed("the JWT header lacks a string alg or kid")),
    }
}

fn is_json_object(json: &[u8]) -> bool {
    json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(json).is_ok()
}
