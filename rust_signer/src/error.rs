//! The one error type of the signing core.
//!
//! Messages are fixed strings chosen here: they say what was wrong and how to fix it, and never carry any part
//! of the input, so nothing secret can reach a log line or a traceback through them.

use std::fmt;

/// Why a token failed verification; the short code the simulator maps to Coinbase's 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFault {
    /// Not three base64url parts, not JSON objects, no string `alg`/`kid`, or a signature of the wrong size.
    Malformed,
    /// `kid` names no registered key.
    UnknownKey,
    /// `alg` is not the algorithm of the key `kid` names.
    AlgMismatch,
    /// The signature does not verify under the registered key.
    BadSignature,
}

impl TokenFault {
    pub fn reason(self) -> &'static str {
        match self {
            TokenFault::Malformed => "malformed",
            TokenFault::UnknownKey => "unknown_key",
            TokenFault::AlgMismatch => "alg_mismatch",
            TokenFault::BadSignature => "bad_signature",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerError {
    /// A private or public key could not be loaded; the message names the problem and the fix.
    KeyFormat(&'static str),
    /// A token failed verification.
    TokenInvalid(TokenFault, &'static str),
    /// A caller passed an argument the signer cannot use (e.g. a path without a leading `/`).
    InvalidArgument(&'static str),
    /// The operating system's random generator or the signature primitive failed.
    Crypto(&'static str),
    /// The operating system refused a resource (e.g. the pre-mint thread could not start).
    Runtime(&'static str),
}

impl fmt::Display for SignerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignerError::KeyFormat(m)
            | SignerError::InvalidArgument(m)
            | SignerError::Crypto(m)
            | SignerError::Runtime(m) => f.write_str(m),
            SignerError::TokenInvalid(_, m) => f.write_str(m),
        }
    }
}

impl std::error::Error for SignerError {}

pub type Result<T> = std::result::Result<T, SignerError>;
