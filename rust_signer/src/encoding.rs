//! Byte encodings shared by the token and HMAC paths: base64 engines, hex, JSON string escaping, and the
//! rules key text must meet before any parser sees it.

use base64::alphabet;
use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE_NO_PAD,
};
use base64::engine::DecodePaddingMode;

use crate::error::{Result, SignerError};

/// JOSE base64url: no padding, and canonical on decode (stray trailing bits are an error).
pub const B64URL: GeneralPurpose = URL_SAFE_NO_PAD;
/// Standard base64 for signatures Coinbase Exchange expects.
pub const B64: GeneralPurpose = STANDARD;
/// Standard base64 for keys pasted by people: padding optional.
pub const B64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Length of the unpadded base64url encoding of `n` bytes.
pub const fn b64url_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

/// Exact decoded length of unpadded base64url text of `n` characters, or `None` if no input has that length.
pub const fn b64url_decoded_len(n: usize) -> Option<usize> {
    match n % 4 {
        0 => Some(n / 4 * 3),
        2 => Some(n / 4 * 3 + 1),
        3 => Some(n / 4 * 3 + 2),
        _ => None,
    }
}

/// What one piece of key text (a key name, a private key, a passphrase...) may contain.
///
/// Every credential Coinbase issues is plain ASCII; anything else is damage (a byte the terminal or an
/// editor re-encoded, a NUL from a binary file) and is refused before parsing, with a fixed message that
/// names the field and never quotes it.
#[derive(Debug, Clone, Copy)]
pub struct TextRule {
    /// At most this many characters: far above any real key, low enough that no input is parsed at length.
    pub max_len: usize,
    /// Tab, CR and LF allowed (PEM blocks, wrapped base64); otherwise only printable ASCII and space.
    pub multiline: bool,
    pub messages: &'static TextMessages,
}

/// The fixed rejection messages of one field, one per way its text can be impossible.
#[derive(Debug)]
pub struct TextMessages {
    /// Not valid Unicode (a lone surrogate: what Python makes of an undecodable byte).
    pub undecodable: &'static str,
    /// A non-ASCII, NUL or other control character.
    pub bad_char: &'static str,
    pub too_long: &'static str,
    /// Not a string at all (e.g. a number or a list in a JSON key file).
    pub not_text: &'static str,
}

/// A `TextRule` whose messages are built, at compile time, from the field's name and its fix.
macro_rules! text_rule {
    ($what:literal, max_len = $max:literal, multiline = $multiline:literal, fix = $fix:literal) => {
        $crate::encoding::TextRule {
            max_len: $max,
            multiline: $multiline,
            messages: &$crate::encoding::TextMessages {
                undecodable: concat!(
                    $what,
                    " holds bytes that are not text (an undecodable byte, as from an environment variable \
                    or a file in another encoding): ",
                    $fix
                ),
                bad_char: concat!(
                    $what,
                    " contains a character no Coinbase credential has (non-ASCII, NUL or another control \
                    character): ",
                    $fix
                ),
                too_long: concat!(
                    $what,
                    " is longer than any Coinbase credential (at most ",
                    stringify!($max),
                    " characters): ",
                    $fix
                ),
                not_text: concat!($what, " must be a string: ", $fix),
            },
        }
    };
}
pub(crate) use text_rule;

impl TextRule {
    /// `Ok` when `text` is within the length and holds only the characters the field allows.
    pub fn check(&self, text: &str) -> Result<()> {
        let allowed = |b: u8| {
            (0x20..0x7f).contains(&b) || (self.multiline && matches!(b, b'\t' | b'\n' | b'\r'))
        };
        if !text.bytes().all(allowed) {
            return Err(SignerError::KeyFormat(self.messages.bad_char));
        }
        if text.len() > self.max_len {
            return Err(SignerError::KeyFormat(self.messages.too_long));
        }
        Ok(())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of `bytes`, appended to `out`.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0x0f)] as char);
    }
}

/// `s` as the body of a JSON string (RFC 8259 escaping), appended to `out` without the quotes.
pub fn push_json_str(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                out.push_str("\\u00");
                out.push(HEX[(u32::from(c) >> 4) as usize] as char);
                out.push(HEX[(u32::from(c) & 0x0f) as usize] as char);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn base64url_lengths_match_the_engine() {
        for n in 0..200 {
            let data = vec![0xa5u8; n];
            let text = B64URL.encode(&data);
            assert_eq!(text.len(), b64url_len(n));
            assert_eq!(b64url_decoded_len(text.len()), Some(n));
        }
        assert_eq!(b64url_decoded_len(5), None);
    }

    #[test]
    fn json_escaping_covers_quotes_backslashes_and_controls() {
        let mut out = String::new();
        push_json_str(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, "a\\\"b\\\\c\\nd\\u0001é");
    }

    #[test]
    fn hex_is_lower_case() {
        let mut out = String::new();
        push_hex(&mut out, &[0x00, 0x9f, 0xff]);
        assert_eq!(out, "009fff");
    }

    const ONE_LINE: TextRule =
        text_rule!("the field", max_len = 8, multiline = false, fix = "fix it");
    const BLOCK: TextRule = text_rule!("the block", max_len = 64, multiline = true, fix = "fix it");

    #[test]
    fn text_rules_refuse_impossible_characters_with_fixed_messages() {
        assert!(ONE_LINE.check("ab cd~!").is_ok());
        assert!(BLOCK.check("line\r\nline\tx").is_ok());
        for bad in [
            "a\0",
            "a\n",
            "a\r",
            "a\t",
            "\u{7f}",
            "\u{80}",
            "é",
            "\u{feff}x",
            "\u{2028}",
            "\u{1b}[",
        ] {
            assert_eq!(
                ONE_LINE.check(bad).unwrap_err(),
                SignerError::KeyFormat(ONE_LINE.messages.bad_char),
                "{bad:?}"
            );
        }
        assert_eq!(
            BLOCK.check("a\0b").unwrap_err(),
            SignerError::KeyFormat(BLOCK.messages.bad_char)
        );
        assert_eq!(
            ONE_LINE.check("123456789").unwrap_err(),
            SignerError::KeyFormat(ONE_LINE.messages.too_long)
        );
        assert_eq!(
            ONE_LINE.messages.too_long,
            "the field is longer than any Coinbase credential (at most 8 characters): fix it"
        );
        assert!(ONE_LINE
            .messages
            .undecodable
            .starts_with("the field holds bytes that are not text"));
    }
}
