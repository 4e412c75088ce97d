//! Byte encodings shared by the token and HMAC paths: base64 engines, hex, and JSON string escaping.

use base64::alphabet;
use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE_NO_PAD,
};
use base64::engine::DecodePaddingMode;

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
}
