//! Key parsing: every form a Coinbase CDP key is found in, parsed once into a ring key pair.
//!
//! Private keys: P-256 as SEC1 or PKCS#8 PEM; Ed25519 as base64 of 64 bytes (seed ‖ public key), base64 of a
//! 32-byte seed, or PKCS#8 PEM; literal `\n` escapes, CRLF, stray whitespace and surrounding quotes tolerated.
//! Public keys (for the verifier): SubjectPublicKeyInfo PEM of either algorithm.
//! Every rejection is a fixed message naming the problem and the fix, never any part of the input.

use base64::Engine;
#[cfg(feature = "verify")]
use ed25519_dalek::Verifier as _;
use pkcs8::der::asn1::OctetStringRef;
use pkcs8::der::Decode;
#[cfg(feature = "verify")]
use pkcs8::spki::SubjectPublicKeyInfoRef;
use pkcs8::{ObjectIdentifier, PrivateKeyInfo};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING,
};
#[cfg(feature = "verify")]
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use zeroize::Zeroizing;

use crate::encoding::{text_rule, TextRule, B64_LENIENT};
use crate::error::{Result, SignerError};
use crate::wipe::Wiped;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_SECP256K1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.10");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// SubjectPublicKeyInfo DER prefixes; the raw public key follows.
const SPKI_P256_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const SPKI_ED25519_PREFIX: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

pub mod msg {
    //! The fixed rejection messages (kept together so tests and reviewers see them all at once).
    pub const EMPTY: &str =
        "the private key is empty: pass the privateKey value of the CDP API key file \
        (a PEM block or base64 text), or set COINBASE_API_SECRET";
    pub const JSON_FILE: &str =
        "the private key looks like the whole JSON key file: pass its privateKey field, \
        or load the file with CdpKey.from_json_file(path)";
    pub const NOT_BASE64: &str =
        "the private key is neither a PEM block nor base64 text: pass the privateKey \
        value of the CDP API key file unchanged";
    pub const WRONG_LENGTH: &str = "the base64 private key decodes to the wrong number of bytes: an Ed25519 key \
        is base64 of 64 bytes (seed and public key) or of a 32-byte seed; copy the whole privateKey value again";
    pub const ED25519_MISMATCH: &str =
        "the 64-byte Ed25519 key's public half does not match its seed: the value \
        is corrupt or spliced from two keys; copy privateKey again from the CDP API key file";
    pub const PEM_CORRUPT: &str =
        "the PEM block is truncated or corrupt: copy the whole key including the \
        -----BEGIN and -----END lines (a key pasted on one line must keep its \\n escapes)";
    pub const ENCRYPTED: &str =
        "the private key is encrypted with a passphrase: decrypt it first (for example \
        `openssl pkey -in key.pem -out plain.pem`) and pass the unencrypted PEM";
    pub const PUBLIC_KEY: &str =
        "this is a public key: the signer needs the private key (privateKey in the CDP \
        API key file)";
    pub const RSA: &str =
        "this is an RSA key, which Coinbase CDP does not use: create an ECDSA (ES256) or \
        Ed25519 API key in the Coinbase Developer Platform portal";
    pub const P384: &str =
        "this is an ECDSA key on curve P-384; Coinbase CDP ECDSA keys are on P-256 \
        (prime256v1): create an ECDSA key in the CDP portal";
    pub const SECP256K1: &str =
        "this is an ECDSA key on curve secp256k1 (a wallet key); Coinbase CDP ECDSA keys \
        are on P-256 (prime256v1): create an ECDSA API key in the CDP portal";
    pub const OTHER_CURVE: &str =
        "this is an ECDSA key on a curve other than P-256; Coinbase CDP ECDSA keys are \
        on P-256 (prime256v1): create an ECDSA API key in the CDP portal";
    pub const NO_CURVE: &str = "the EC private key does not name its curve: re-export it with \
        `openssl ec -in key.pem -out p256.pem` so that it carries the prime256v1 parameters";
    pub const NO_EC_PUBLIC: &str =
        "the EC private key does not embed its public key, which the signer checks: \
        re-export it with `openssl ec -in key.pem -out full.pem`";
    pub const BAD_EC_KEY: &str =
        "the ECDSA P-256 private key is invalid (scalar out of range or public key not \
        matching): copy privateKey again from the CDP API key file";
    pub const BAD_ED25519_KEY: &str =
        "the Ed25519 PKCS#8 key is invalid (the seed is not 32 bytes or the \
        embedded public key does not match): copy privateKey again from the CDP API key file";
    pub const UNSUPPORTED_ALG: &str =
        "the PKCS#8 key is of a type Coinbase CDP does not use (only ECDSA P-256 \
        and Ed25519 are): create an API key in the CDP portal";
    pub const OPENSSH: &str =
        "this is an OpenSSH private key, which Coinbase does not issue: pass the privateKey \
        value of the CDP API key file";
    pub const NOT_A_KEY: &str =
        "the PEM block is not a private key: expected -----BEGIN EC PRIVATE KEY----- \
        or -----BEGIN PRIVATE KEY-----";
    pub const PUBLIC_NOT_SPKI: &str = "expected a public key as SubjectPublicKeyInfo PEM \
        (-----BEGIN PUBLIC KEY-----)";
    pub const PUBLIC_UNSUPPORTED: &str =
        "the public key is neither ECDSA P-256 nor Ed25519, the only \
        algorithms of Coinbase CDP keys";
    pub const PUBLIC_BAD_POINT: &str =
        "the public key is malformed: a P-256 key must be an uncompressed point \
        (65 bytes), an Ed25519 key 32 bytes";
}

/// A private key as text: a PEM block (one to a few hundred characters) or base64.
pub const PRIVATE_KEY_TEXT: TextRule = text_rule!(
    "the private key",
    max_len = 16384,
    multiline = true,
    fix = "copy the privateKey value of the CDP API key file again, or download the key file again"
);
/// A public key as SubjectPublicKeyInfo PEM.
pub const PUBLIC_KEY_TEXT: TextRule = text_rule!(
    "the public key",
    max_len = 16384,
    multiline = true,
    fix = "pass the SubjectPublicKeyInfo PEM (-----BEGIN PUBLIC KEY-----) unchanged"
);

fn key_err(m: &'static str) -> SignerError {
    SignerError::KeyFormat(m)
}

/// The JOSE algorithm of a CDP key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Es256,
    EdDsa,
}

impl Algorithm {
    pub const fn jose_name(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
        }
    }
}

enum KeyPair {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

/// A parsed CDP private key. The key material lives in one heap slot that is wiped on drop.
pub struct PrivateKey {
    pair: Wiped<KeyPair>,
    rng: SystemRandom,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Parse any accepted form of a CDP private key.
    pub fn parse(input: &str) -> Result<Self> {
        PRIVATE_KEY_TEXT.check(input)?;
        let text = unescape(input);
        if text.trim().is_empty() {
            return Err(key_err(msg::EMPTY));
        }
        if text.contains("-----BEGIN") {
            return Self::from_pem(&text);
        }
        if text.starts_with('{') {
            return Err(key_err(msg::JSON_FILE));
        }
        let compact: Zeroizing<String> =
            Zeroizing::new(text.chars().filter(|c| !c.is_whitespace()).collect());
        let raw = Zeroizing::new(
            B64_LENIENT
                .decode(compact.as_bytes())
                .map_err(|_| key_err(msg::NOT_BASE64))?,
        );
        match raw.len() {
            32 => Self::from_ed25519_seed(&raw),
            64 => {
                let pair = Ed25519KeyPair::from_seed_and_public_key(&raw[..32], &raw[32..])
                    .map_err(|_| key_err(msg::ED25519_MISMATCH))?;
                Ok(Self::new(KeyPair::EdDsa(pair)))
            }
            // base64 of a DER document without its PEM armour: accept what the armour would have said.
            _ if raw.first() == Some(&0x30) => Self::from_pkcs8_der(&raw)
                .or_else(|_| Self::from_sec1_der(&raw))
                .map_err(|_| key_err(msg::WRONG_LENGTH)),
            _ => Err(key_err(msg::WRONG_LENGTH)),
        }
    }

    /// An Ed25519 key from its 32-byte RFC 8032 seed.
    pub fn from_ed25519_seed(seed: &[u8]) -> Result<Self> {
        let pair =
            Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| key_err(msg::WRONG_LENGTH))?;
        Ok(Self::new(KeyPair::EdDsa(pair)))
    }

    fn new(pair: KeyPair) -> Self {
        Self {
            pair: Wiped::new(pair),
            rng: SystemRandom::new(),
        }
    }

    fn from_pem(text: &str) -> Result<Self> {
        let (label, der) = decode_pem(text)?;
        match label.as_str() {
            "EC PRIVATE KEY" => Self::from_sec1_der(&der),
            "PRIVATE KEY" => Self::from_pkcs8_der(&der),
            "ENCRYPTED PRIVATE KEY" => Err(key_err(msg::ENCRYPTED)),
            "RSA PRIVATE KEY" => Err(key_err(msg::RSA)),
            "OPENSSH PRIVATE KEY" => Err(key_err(msg::OPENSSH)),
            l if l.contains("PUBLIC KEY") => Err(key_err(msg::PUBLIC_KEY)),
            _ => Err(key_err(msg::NOT_A_KEY)),
        }
    }

    fn from_sec1_der(der: &[u8]) -> Result<Self> {
        let ec = sec1::EcPrivateKey::from_der(der).map_err(|_| key_err(msg::PEM_CORRUPT))?;
        let curve = ec
            .parameters
            .and_then(|p| p.named_curve())
            .ok_or(key_err(msg::NO_CURVE))?;
        check_curve(curve)?;
        Self::from_p256_parts(ec.private_key, ec.public_key)
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let info = PrivateKeyInfo::from_der(der).map_err(|_| key_err(msg::PEM_CORRUPT))?;
        match info.algorithm.oid {
            OID_EC_PUBLIC_KEY => {
                let curve = info
                    .algorithm
                    .parameters_oid()
                    .map_err(|_| key_err(msg::NO_CURVE))?;
                check_curve(curve)?;
                let ec = sec1::EcPrivateKey::from_der(info.private_key)
                    .map_err(|_| key_err(msg::PEM_CORRUPT))?;
                if let Some(inner) = ec.parameters.and_then(|p| p.named_curve()) {
                    check_curve(inner)?;
                }
                Self::from_p256_parts(ec.private_key, ec.public_key)
            }
            OID_ED25519 => {
                // RFC 8410: the private key field holds an OCTET STRING wrapping the 32-byte seed.
                let seed = OctetStringRef::from_der(info.private_key)
                    .map_err(|_| key_err(msg::BAD_ED25519_KEY))?;
                let pair = match info.public_key {
                    Some(public) => {
                        Ed25519KeyPair::from_seed_and_public_key(seed.as_bytes(), public)
                    }
                    None => Ed25519KeyPair::from_seed_unchecked(seed.as_bytes()),
                }
                .map_err(|_| key_err(msg::BAD_ED25519_KEY))?;
                Ok(Self::new(KeyPair::EdDsa(pair)))
            }
            OID_RSA => Err(key_err(msg::RSA)),
            _ => Err(key_err(msg::UNSUPPORTED_ALG)),
        }
    }

    fn from_p256_parts(private: &[u8], public: Option<&[u8]>) -> Result<Self> {
        let public = public.ok_or(key_err(msg::NO_EC_PUBLIC))?;
        // Some encoders drop leading zero bytes of the scalar; ring wants exactly 32.
        if private.len() > 32 {
            return Err(key_err(msg::BAD_EC_KEY));
        }
        let mut scalar = Zeroizing::new([0u8; 32]);
        scalar[32 - private.len()..].copy_from_slice(private);
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &scalar[..],
            public,
            &SystemRandom::new(),
        )
        .map_err(|_| key_err(msg::BAD_EC_KEY))?;
        Ok(Self::new(KeyPair::Es256(pair)))
    }

    pub fn algorithm(&self) -> Algorithm {
        match *self.pair {
            KeyPair::Es256(_) => Algorithm::Es256,
            KeyPair::EdDsa(_) => Algorithm::EdDsa,
        }
    }

    /// The raw public key: the uncompressed P-256 point (65 bytes) or the Ed25519 key (32 bytes).
    pub fn public_key_raw(&self) -> &[u8] {
        match &*self.pair {
            KeyPair::Es256(p) => p.public_key().as_ref(),
            KeyPair::EdDsa(p) => p.public_key().as_ref(),
        }
    }

    /// SubjectPublicKeyInfo PEM of the public key, as `cryptography` and PyJWT load it.
    pub fn public_key_pem(&self) -> String {
        public_key_pem(self.algorithm(), self.public_key_raw())
    }

    /// Sign `message`: JOSE `r ‖ s` for ES256 (ECDSA nonce from the OS generator), RFC 8032 for Ed25519.
    pub fn sign(&self, message: &[u8]) -> Result<[u8; 64]> {
        let mut out = [0u8; 64];
        match &*self.pair {
            KeyPair::Es256(p) => {
                let sig = p
                    .sign(&self.rng, message)
                    .map_err(|_| SignerError::Crypto("ECDSA signing failed"))?;
                out.copy_from_slice(sig.as_ref());
            }
            KeyPair::EdDsa(p) => out.copy_from_slice(p.sign(message).as_ref()),
        }
        Ok(out)
    }

    /// The OS random generator this key signs with (also the source of token nonces).
    pub fn rng(&self) -> &SystemRandom {
        &self.rng
    }
}

fn check_curve(curve: ObjectIdentifier) -> Result<()> {
    match curve {
        OID_P256 => Ok(()),
        OID_P384 => Err(key_err(msg::P384)),
        OID_SECP256K1 => Err(key_err(msg::SECP256K1)),
        OID_P521 => Err(key_err(msg::OTHER_CURVE)),
        _ => Err(key_err(msg::OTHER_CURVE)),
    }
}

/// Undo the damage keys suffer in transit: surrounding quotes, literal `\n` escapes, CRLF, stray whitespace.
fn unescape(input: &str) -> Zeroizing<String> {
    let mut text = input.trim();
    if text.len() >= 2 && text.starts_with('"') && text.ends_with('"') {
        text = text[1..text.len() - 1].trim();
    }
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some('n') => {
                    chars.next();
                    out.push('\n');
                    continue;
                }
                Some('r') => {
                    chars.next();
                    continue;
                }
                _ => {}
            }
        }
        if c != '\r' {
            out.push(c);
        }
    }
    out
}

/// Rebuild a canonical PEM block (64-column body, no stray whitespace) and decode it with pem-rfc7468.
fn decode_pem(text: &str) -> Result<(String, Zeroizing<Vec<u8>>)> {
    const BEGIN: &str = "-----BEGIN ";
    const END: &str = "-----END ";
    let start = text.find(BEGIN).ok_or(key_err(msg::PEM_CORRUPT))? + BEGIN.len();
    let label_len = text[start..]
        .find("-----")
        .ok_or(key_err(msg::PEM_CORRUPT))?;
    let label = &text[start..start + label_len];
    let body_start = start + label_len + 5;
    let end = text[body_start..]
        .find(END)
        .ok_or(key_err(msg::PEM_CORRUPT))?
        + body_start;
    let body = &text[body_start..end];
    if body.contains(':') {
        // RFC 1421 headers (Proc-Type: 4,ENCRYPTED / DEK-Info) mark an OpenSSL-encrypted legacy key.
        return Err(key_err(if body.contains("ENCRYPTED") {
            msg::ENCRYPTED
        } else {
            msg::PEM_CORRUPT
        }));
    }
    let end_label_start = end + END.len();
    let end_label_len = text[end_label_start..]
        .find("-----")
        .ok_or(key_err(msg::PEM_CORRUPT))?;
    let end_label = &text[end_label_start..end_label_start + end_label_len];
    if label.contains("PUBLIC KEY") && end_label == label && label != "PUBLIC KEY" {
        return Err(key_err(msg::PUBLIC_KEY));
    }
    let compact: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_whitespace()).collect());
    let mut canonical = Zeroizing::new(String::with_capacity(
        compact.len() + compact.len() / 64 + 2 * 64,
    ));
    canonical.push_str(BEGIN);
    canonical.push_str(label);
    canonical.push_str("-----\n");
    for chunk in compact.as_bytes().chunks(64) {
        // The body was checked to be free of ':'; any non-ASCII byte fails pem-rfc7468's base64 anyway.
        canonical.push_str(std::str::from_utf8(chunk).map_err(|_| key_err(msg::PEM_CORRUPT))?);
        canonical.push('\n');
    }
    canonical.push_str(END);
    canonical.push_str(end_label);
    canonical.push_str("-----\n");
    let (decoded_label, der) =
        pem_rfc7468::decode_vec(canonical.as_bytes()).map_err(|_| key_err(msg::PEM_CORRUPT))?;
    Ok((decoded_label.to_owned(), Zeroizing::new(der)))
}

/// SubjectPublicKeyInfo PEM for a raw public key.
pub fn public_key_pem(alg: Algorithm, raw: &[u8]) -> String {
    let prefix = match alg {
        Algorithm::Es256 => SPKI_P256_PREFIX,
        Algorithm::EdDsa => SPKI_ED25519_PREFIX,
    };
    let mut der = Vec::with_capacity(prefix.len() + raw.len());
    der.extend_from_slice(prefix);
    der.extend_from_slice(raw);
    // Encoding a well-formed label and DER cannot fail; an empty string would only surface as a load error later.
    pem_rfc7468::encode_string("PUBLIC KEY", pem_rfc7468::LineEnding::LF, &der).unwrap_or_default()
}

/// A public key registered with the verifier.
#[derive(Debug, Clone)]
#[cfg(feature = "verify")]
pub struct PublicKey {
    alg: Algorithm,
    verifier: Verifying,
}

/// A public key parsed for verification once, at registration, never per token.
///
/// Ed25519: `ed25519-dalek`'s `VerifyingKey`, the point decompressed once (ring's `UnparsedPublicKey`
/// decompresses it on every verify), verified with the same cofactorless equation and canonical-`s` rule as
/// ring and Go's `crypto/ed25519` (not `verify_strict`, which would refuse small-order keys Coinbase accepts),
/// on curve25519-dalek's AVX2 backend when the CPU has it (chosen at run time). ES256: ring's P-256
/// (nistz256 assembly), which keeps no parsed form of a public key; the pure-Rust `p256` verify measured 4x
/// slower here (160 vs 37 us).
#[cfg(feature = "verify")]
#[derive(Debug, Clone)]
enum Verifying {
    Es256(Vec<u8>),
    EdDsa(ed25519_dalek::VerifyingKey),
}

#[cfg(feature = "verify")]
impl PublicKey {
    /// Parse a SubjectPublicKeyInfo PEM of a P-256 or Ed25519 key.
    pub fn parse_pem(input: &str) -> Result<Self> {
        PUBLIC_KEY_TEXT.check(input)?;
        let text = unescape(input);
        if !text.contains("-----BEGIN") {
            return Err(key_err(msg::PUBLIC_NOT_SPKI));
        }
        let (label, der) = decode_pem(&text)?;
        if label != "PUBLIC KEY" {
            return Err(key_err(msg::PUBLIC_NOT_SPKI));
        }
        Self::from_spki_der(&der)
    }

    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(|_| key_err(msg::PEM_CORRUPT))?;
        let raw = spki
            .subject_public_key
            .as_bytes()
            .ok_or(key_err(msg::PUBLIC_BAD_POINT))?;
        let alg = match spki.algorithm.oid {
            OID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters_oid()
                    .map_err(|_| key_err(msg::PUBLIC_UNSUPPORTED))?;
                if curve != OID_P256 {
                    return Err(key_err(msg::PUBLIC_UNSUPPORTED));
                }
                Algorithm::Es256
            }
            OID_ED25519 => Algorithm::EdDsa,
            _ => return Err(key_err(msg::PUBLIC_UNSUPPORTED)),
        };
        Self::from_raw(alg, raw)
    }

    /// A raw public key: the uncompressed SEC1 point (65 bytes) for ES256, 32 bytes for Ed25519.
    pub fn from_raw(alg: Algorithm, raw: &[u8]) -> Result<Self> {
        let verifier = match alg {
            Algorithm::Es256 => {
                if raw.len() != 65 || raw[0] != 0x04 {
                    return Err(key_err(msg::PUBLIC_BAD_POINT));
                }
                Verifying::Es256(raw.to_vec())
            }
            Algorithm::EdDsa => {
                let bytes: &[u8; 32] =
                    raw.try_into().map_err(|_| key_err(msg::PUBLIC_BAD_POINT))?;
                Verifying::EdDsa(
                    ed25519_dalek::VerifyingKey::from_bytes(bytes)
                        .map_err(|_| key_err(msg::PUBLIC_BAD_POINT))?,
                )
            }
        };
        Ok(Self { alg, verifier })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Whether `signature` (JOSE `r ‖ s` for ES256) signs `message` under this key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.verifier {
            Verifying::Es256(raw) => UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, raw)
                .verify(message, signature)
                .is_ok(),
            Verifying::EdDsa(key) => {
                let Ok(bytes) = <&[u8; 64]>::try_from(signature) else {
                    return false;
                };
                key.verify(message, &ed25519_dalek::Signature::from_bytes(bytes))
                    .is_ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// RFC 8032 section 7.1, tests 1–3: (secret key, public key, message, signature).
    const RFC8032: [(&str, &str, &str, &str); 3] = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b\
             d25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c\
             387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc659\
             4a7c15e9716ed28dc027beceea1ec40a",
        ),
    ];

    #[test]
    fn ed25519_rfc8032_vectors_sign_and_verify() {
        for (secret, public, message, signature) in RFC8032 {
            let key = PrivateKey::from_ed25519_seed(&hex(secret)).expect("seed");
            assert_eq!(key.algorithm(), Algorithm::EdDsa);
            assert_eq!(key.public_key_raw(), hex(public).as_slice());
            let sig = key.sign(&hex(message)).expect("sign");
            assert_eq!(sig.as_slice(), hex(signature).as_slice());
            #[cfg(feature = "verify")]
            let verifier = PublicKey::from_raw(Algorithm::EdDsa, &hex(public)).expect("point");
            #[cfg(feature = "verify")]
            {
                assert!(verifier.verify(&hex(message), &sig));
                assert!(!verifier.verify(b"other message", &sig));
            }
        }
    }

    #[test]
    #[cfg(feature = "verify")]
    fn ed25519_base64_forms_and_spki_round_trip() {
        use base64::engine::general_purpose::STANDARD;
        let (secret, public, _, _) = RFC8032[0];
        let mut both = hex(secret);
        both.extend(hex(public));
        for text in [
            STANDARD.encode(hex(secret)),
            STANDARD.encode(&both),
            format!("  {}\n", STANDARD.encode(&both)),
        ] {
            let key = PrivateKey::parse(&text).expect("ed25519 base64");
            assert_eq!(key.public_key_raw(), hex(public).as_slice());
            let pem = key.public_key_pem();
            let parsed = PublicKey::parse_pem(&pem).expect("spki");
            assert_eq!(parsed.algorithm(), Algorithm::EdDsa);
        }
        both[40] ^= 1;
        assert_eq!(
            PrivateKey::parse(&STANDARD.encode(&both)).unwrap_err(),
            key_err(msg::ED25519_MISMATCH)
        );
    }

    #[test]
    #[cfg(feature = "verify")]
    fn es256_generated_pkcs8_signs_and_verifies() {
        let rng = SystemRandom::new();
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("generate");
        let pem =
            pem_rfc7468::encode_string("PRIVATE KEY", pem_rfc7468::LineEnding::LF, doc.as_ref())
                .expect("pem");
        for text in [
            pem.clone(),
            pem.replace('\n', "\\n"),
            format!("\"{}\"", pem.replace('\n', "\r\n")),
        ] {
            let key = PrivateKey::parse(&text).expect("pkcs8 p-256");
            assert_eq!(key.algorithm(), Algorithm::Es256);
            let public = PublicKey::parse_pem(&key.public_key_pem()).expect("spki");
            assert_eq!(public.algorithm(), Algorithm::Es256);
            let sig = key.sign(b"header.claims").expect("sign");
            assert!(public.verify(b"header.claims", &sig));
            assert!(!public.verify(b"header.claimz", &sig));
        }
    }

    #[test]
    fn rejections_name_the_problem() {
        assert_eq!(PrivateKey::parse("").unwrap_err(), key_err(msg::EMPTY));
        assert_eq!(
            PrivateKey::parse("  \\n ").unwrap_err(),
            key_err(msg::EMPTY)
        );
        assert_eq!(
            PrivateKey::parse("not base64 at all!").unwrap_err(),
            key_err(msg::NOT_BASE64)
        );
        assert_eq!(
            PrivateKey::parse("AAAA").unwrap_err(),
            key_err(msg::WRONG_LENGTH)
        );
        assert_eq!(
            PrivateKey::parse("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE").unwrap_err(),
            key_err(msg::PEM_CORRUPT)
        );
        assert_eq!(
            PrivateKey::parse("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .unwrap_err(),
            key_err(msg::PUBLIC_KEY)
        );
    }

    #[test]
    fn impossible_text_is_refused_before_parsing() {
        let pem = pem_rfc7468::encode_string(
            "PRIVATE KEY",
            pem_rfc7468::LineEnding::LF,
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .expect("generate")
                .as_ref(),
        )
        .expect("pem");
        for damaged in [
            format!("{pem}\0"),
            pem.replacen('M', "\u{feff}", 1),
            pem.replacen('\n', "\u{a0}", 1),
            pem.replacen('A', "\u{1}", 1),
            format!("\u{2028}{pem}"),
        ] {
            assert_eq!(
                PrivateKey::parse(&damaged).unwrap_err(),
                key_err(PRIVATE_KEY_TEXT.messages.bad_char)
            );
        }
        assert_eq!(
            PrivateKey::parse(&"A".repeat(16385)).unwrap_err(),
            key_err(PRIVATE_KEY_TEXT.messages.too_long)
        );
    }

    #[cfg(feature = "verify")]
    #[test]
    fn impossible_public_key_text_is_refused_before_parsing() {
        assert_eq!(
            PublicKey::parse_pem("-----BEGIN PUBLIC KEY-----\0").unwrap_err(),
            key_err(PUBLIC_KEY_TEXT.messages.bad_char)
        );
    }
}
