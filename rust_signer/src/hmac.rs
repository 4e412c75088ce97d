//! HMAC-SHA256 and Coinbase Exchange request signing.
//!
//! `CB-ACCESS-SIGN = base64(HMAC_SHA256(base64decode(secret), timestamp + METHOD + request_path + body))`.

use base64::Engine;
use ring::hmac;
use zeroize::Zeroizing;

use crate::encoding::{text_rule, TextRule, B64, B64_LENIENT};
use crate::error::{Result, SignerError};
use crate::wipe::Wiped;

/// base64 of HMAC-SHA256(secret, message), the form Exchange signatures take.
pub fn hmac_sha256_base64(secret: &[u8], message: &[u8]) -> String {
    let key = Wiped::new(hmac::Key::new(hmac::HMAC_SHA256, secret));
    B64.encode(hmac::sign(&key, message))
}

/// The key id: 32 hex digits as the Exchange portal shows it.
pub const KEY_ID_TEXT: TextRule = text_rule!(
    "the Exchange API key",
    max_len = 256,
    multiline = false,
    fix = "pass the key id from the Coinbase Exchange portal unchanged"
);
/// The secret: base64 of 64 bytes (88 characters), perhaps wrapped by whoever pasted it.
pub const SECRET_TEXT: TextRule = text_rule!(
    "the Exchange API secret",
    max_len = 1024,
    multiline = true,
    fix = "pass the secret exactly as the Coinbase Exchange portal showed it (88 characters ending in '=')"
);
/// The passphrase is sent as a header (`CB-ACCESS-PASSPHRASE`): one line of printable ASCII.
pub const PASSPHRASE_TEXT: TextRule = text_rule!(
    "the Exchange API passphrase",
    max_len = 256,
    multiline = false,
    fix = "pass the passphrase chosen when the key was created, exactly as typed then"
);

/// The longest `CB-ACCESS-TIMESTAMP` accepted: 20 integer digits (any i64), a point and 11 fraction digits.
const MAX_TIMESTAMP_LEN: usize = 32;

pub mod msg {
    pub const BAD_TIMESTAMP: &str =
        "timestamp must be a finite, non-negative number of seconds since the epoch, \
        written as ASCII digits with an optional fraction (e.g. 1700000000 or 1700000000.25)";
    pub const BAD_METHOD: &str = "method must be an HTTP method such as GET or POST";
    pub const BAD_REQUEST_PATH: &str =
        "request path must start with '/' and hold only printable ASCII without spaces \
        (percent-encode the rest); CR, LF and NUL would let a request be split or smuggled";
    pub const SECRET_NOT_BASE64: &str =
        "the Exchange API secret is not base64: pass the secret exactly as the \
        Coinbase Exchange portal showed it (88 characters ending in '=')";
    pub const SECRET_EMPTY: &str =
        "the Exchange API secret is empty: pass the secret the Coinbase Exchange \
        portal showed when the key was created";
    pub const KEY_EMPTY: &str =
        "the Exchange API key is empty: pass the key id from the Coinbase Exchange portal";
    pub const PASSPHRASE_EMPTY: &str =
        "the Exchange API passphrase is empty: pass the passphrase chosen when \
        the key was created";
}

/// Coinbase Exchange credentials, the secret held only as a precomputed HMAC key (wiped on drop).
pub struct ExchangeSigner {
    key: String,
    hmac: Wiped<hmac::Key>,
    passphrase: Zeroizing<String>,
}

impl std::fmt::Debug for ExchangeSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeSigner")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ExchangeSigner {
    pub fn new(key: &str, secret_b64: &str, passphrase: &str) -> Result<Self> {
        KEY_ID_TEXT.check(key)?;
        SECRET_TEXT.check(secret_b64)?;
        PASSPHRASE_TEXT.check(passphrase)?;
        let key = key.trim();
        if key.is_empty() {
            return Err(SignerError::KeyFormat(msg::KEY_EMPTY));
        }
        if passphrase.is_empty() {
            return Err(SignerError::KeyFormat(msg::PASSPHRASE_EMPTY));
        }
        let compact: Zeroizing<String> =
            Zeroizing::new(secret_b64.chars().filter(|c| !c.is_whitespace()).collect());
        if compact.is_empty() {
            return Err(SignerError::KeyFormat(msg::SECRET_EMPTY));
        }
        let secret = Zeroizing::new(
            B64_LENIENT
                .decode(compact.as_bytes())
                .map_err(|_| SignerError::KeyFormat(msg::SECRET_NOT_BASE64))?,
        );
        Ok(Self {
            key: key.to_owned(),
            hmac: Wiped::new(hmac::Key::new(hmac::HMAC_SHA256, &secret)),
            passphrase: Zeroizing::new(passphrase.to_owned()),
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn passphrase(&self) -> &str {
        &self.passphrase
    }

    /// `CB-ACCESS-SIGN` for one request; `method` is upper-cased, `request_path` includes any query string.
    ///
    /// Every part that becomes a header or the request line is checked first: what is signed is what can be
    /// sent, and nothing signed can carry a second header or request.
    pub fn sign(
        &self,
        timestamp: &str,
        method: &str,
        request_path: &str,
        body: &[u8],
    ) -> Result<String> {
        check_timestamp(timestamp)?;
        check_method(method)?;
        check_request_path(request_path)?;
        let mut ctx = hmac::Context::with_key(&self.hmac);
        ctx.update(timestamp.as_bytes());
        if method.bytes().any(|b| b.is_ascii_lowercase()) {
            ctx.update(method.to_ascii_uppercase().as_bytes());
        } else {
            ctx.update(method.as_bytes());
        }
        ctx.update(request_path.as_bytes());
        ctx.update(body);
        Ok(B64.encode(ctx.sign()))
    }
}

/// `CB-ACCESS-TIMESTAMP` as Coinbase reads it: seconds, ASCII digits, an optional fraction.
pub fn check_timestamp(timestamp: &str) -> Result<()> {
    let bad = || SignerError::InvalidArgument(msg::BAD_TIMESTAMP);
    if timestamp.len() > MAX_TIMESTAMP_LEN {
        return Err(bad());
    }
    let (whole, fraction) = match timestamp.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (timestamp, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
        return Err(bad());
    }
    Ok(())
}

fn check_method(method: &str) -> Result<()> {
    if method.is_empty() || method.len() > 16 || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(SignerError::InvalidArgument(msg::BAD_METHOD));
    }
    Ok(())
}

fn check_request_path(path: &str) -> Result<()> {
    // One pass with no early exit (b - 0x21 < 0x5e is 0x21..=0x7e), which the compiler vectorizes: the check
    // runs on every request, over query strings of any length.
    let graphic = path
        .bytes()
        .fold(true, |ok, b| ok & (b.wrapping_sub(0x21) < 0x5e));
    if !path.starts_with('/') || !graphic {
        return Err(SignerError::InvalidArgument(msg::BAD_REQUEST_PATH));
    }
    Ok(())
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

    /// RFC 4231 section 4, test cases 1–4, 6 and 7 (case 5 tests truncation, which HMAC-SHA256 here never does).
    #[test]
    fn rfc4231_hmac_sha256_vectors() {
        let cases: [(Vec<u8>, Vec<u8>, &str); 6] = [
            (vec![0x0b; 20], b"Hi There".to_vec(), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (vec![0xaa; 20], vec![0xdd; 50], "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
            (
                hex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
                vec![0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                vec![0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than block-size data. The key \
                  needs to be hashed before being used by the HMAC algorithm."
                    .to_vec(),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, data, expected) in cases {
            let b64 = hmac_sha256_base64(&key, &data);
            assert_eq!(B64.decode(b64).expect("base64"), hex(expected));
        }
    }

    #[test]
    fn exchange_signature_is_hmac_of_the_documented_prehash() {
        let secret = B64.encode([0x42u8; 64]);
        let signer = ExchangeSigner::new("key-id", &secret, "phrase").expect("signer");
        let sig = signer
            .sign("1700000000", "post", "/orders?x=1", br#"{"size":"1"}"#)
            .expect("sign");
        let expected = hmac_sha256_base64(&[0x42; 64], br#"1700000000POST/orders?x=1{"size":"1"}"#);
        assert_eq!(sig, expected);
    }

    #[test]
    fn exchange_rejects_unusable_credentials() {
        let secret = B64.encode([1u8; 64]);
        assert_eq!(
            ExchangeSigner::new("", &secret, "p").unwrap_err(),
            SignerError::KeyFormat(msg::KEY_EMPTY)
        );
        assert_eq!(
            ExchangeSigner::new("k", "", "p").unwrap_err(),
            SignerError::KeyFormat(msg::SECRET_EMPTY)
        );
        assert_eq!(
            ExchangeSigner::new("k", "%%%", "p").unwrap_err(),
            SignerError::KeyFormat(msg::SECRET_NOT_BASE64)
        );
        assert_eq!(
            ExchangeSigner::new("k", &secret, "").unwrap_err(),
            SignerError::KeyFormat(msg::PASSPHRASE_EMPTY)
        );
    }

    #[test]
    fn exchange_refuses_impossible_credential_text() {
        let secret = B64.encode([1u8; 64]);
        let cases: [(&str, &str, &str, &str); 8] = [
            ("k\0", &secret, "p", KEY_ID_TEXT.messages.bad_char),
            ("k\u{e9}", &secret, "p", KEY_ID_TEXT.messages.bad_char),
            ("k", "AAAA\0", "p", SECRET_TEXT.messages.bad_char),
            ("k", "AAAA\u{2028}", "p", SECRET_TEXT.messages.bad_char),
            (
                "k",
                &secret,
                "pass\r\nX-Evil: 1",
                PASSPHRASE_TEXT.messages.bad_char,
            ),
            ("k", &secret, "p\u{0}", PASSPHRASE_TEXT.messages.bad_char),
            ("k", &secret, "\u{ff}", PASSPHRASE_TEXT.messages.bad_char),
            ("k", &"A".repeat(2000), "p", SECRET_TEXT.messages.too_long),
        ];
        for (key, secret, passphrase, expected) in cases {
            assert_eq!(
                ExchangeSigner::new(key, secret, passphrase).unwrap_err(),
                SignerError::KeyFormat(expected)
            );
        }
    }

    #[test]
    fn timestamps_are_seconds_in_ascii_digits() {
        for good in [
            "0",
            "1700000000",
            "1700000000.5",
            "1700000000.123456",
            "9223372036854775807",
        ] {
            assert!(check_timestamp(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "nan",
            "NaN",
            "inf",
            "-1",
            "+1",
            "1e9",
            "1700000000.",
            ".5",
            "1.2.3",
            " 1",
            "1\r\n",
            "1\0",
            "１２",
            "0x10",
            "1_000",
            &"9".repeat(33),
        ] {
            assert_eq!(
                check_timestamp(bad).unwrap_err(),
                SignerError::InvalidArgument(msg::BAD_TIMESTAMP),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn sign_refuses_header_injection_in_method_and_path() {
        let signer = ExchangeSigner::new("k", &B64.encode([7u8; 64]), "p").expect("signer");
        for method in [
            "",
            "GET\r\n",
            "G ET",
            "GET\0",
            "P\u{d3}ST",
            "GETGETGETGETGETGET",
        ] {
            assert_eq!(
                signer.sign("1", method, "/x", b"").unwrap_err(),
                SignerError::InvalidArgument(msg::BAD_METHOD)
            );
        }
        for path in [
            "",
            "x",
            "/a\r\nHost: evil",
            "/a\nb",
            "/a\0",
            "/a b",
            "/\u{e9}",
            "/a\tb",
            "/a\x7f",
            "http://host/a",
        ] {
            assert_eq!(
                signer.sign("1", "GET", path, b"").unwrap_err(),
                SignerError::InvalidArgument(msg::BAD_REQUEST_PATH),
                "{path:?}"
            );
        }
    }
}
