//! JWT verification against registered public keys: what the exchange simulator runs for every request.
//!
//! `verify` checks structure, that `kid` is registered, that `alg` is that key's algorithm, and the signature,
//! and returns the header and claims JSON for the caller to judge. `verify_request` does all of that and judges
//! the claims too, as Coinbase does (sub, iss, aud, the time window, the uri), returning only the `kid`, the
//! `nonce` and `exp` the caller needs for its replay check: one call per request, no JSON left to parse.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use base64::Engine;
use serde_json::{Map, Value};

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

/// The longest token looked at. Coinbase's are under 1 KiB; anything far longer is refused before it is
/// decoded, so a hostile request cannot make the verifier allocate and parse megabytes.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
pub const TOO_LONG: &str = "a JWT this long is not a Coinbase API token";

/// The issuers and audiences of the claim sets Coinbase accepts (cdp, coinbase-py and ccxt, cdp-sdk).
const ISSUERS: [&str; 2] = ["cdp", "coinbase-cloud"];
const AUDIENCES: [&str; 2] = ["retail_rest_api_proxy", "cdp_service"];

/// A request token's time window, judged against the caller's clock (seconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub now: f64,
    /// How far `nbf` may be ahead of `now` (clock skew allowed).
    pub nbf_leeway_s: f64,
    /// The longest a token may live: from `nbf`, and from `nbf` to `exp` (Coinbase: 120 s).
    pub max_lifetime_s: f64,
}

impl Window {
    /// Whether the clock and both bounds are finite numbers: a window that is not judges nothing.
    pub fn is_finite(&self) -> bool {
        self.now.is_finite() && self.nbf_leeway_s.is_finite() && self.max_lifetime_s.is_finite()
    }
}

/// Why a token whose signature verifies is still refused: one of Coinbase's claim rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimFault {
    /// `nbf` or `exp` is missing or not a number.
    Malformed,
    SubMismatch,
    BadIssuer,
    BadAudience,
    NotYetValid,
    Expired,
    MissingUri,
    UriMismatch,
    MissingNonce,
}

impl ClaimFault {
    /// The short code the simulator reports (as `TokenFault::reason` does for the signature checks).
    pub fn reason(self) -> &'static str {
        match self {
            ClaimFault::Malformed => "malformed",
            ClaimFault::SubMismatch => "sub_mismatch",
            ClaimFault::BadIssuer => "bad_issuer",
            ClaimFault::BadAudience => "bad_audience",
            ClaimFault::NotYetValid => "not_yet_valid",
            ClaimFault::Expired => "expired",
            ClaimFault::MissingUri => "missing_uri",
            ClaimFault::UriMismatch => "uri_mismatch",
            ClaimFault::MissingNonce => "missing_nonce",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            ClaimFault::Malformed => "the JWT claims lack a numeric nbf or exp",
            ClaimFault::SubMismatch => "the JWT sub is not its kid",
            ClaimFault::BadIssuer => "the JWT iss is not one Coinbase accepts",
            ClaimFault::BadAudience => "the JWT aud names no audience Coinbase accepts",
            ClaimFault::NotYetValid => "the JWT nbf is in the future",
            ClaimFault::Expired => "the JWT is past exp or older than its allowed lifetime",
            ClaimFault::MissingUri => "the JWT has no uri or uris claim",
            ClaimFault::UriMismatch => "the JWT uri is not this request's method, host and path",
            ClaimFault::MissingNonce => "the JWT header has no nonce",
        }
    }
}

/// A request token whose signature and claims hold: what the caller needs for its replay check.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    pub kid: String,
    pub nonce: String,
    pub exp: f64,
}

/// The outcome of `verify_request` once the signature verified: admitted, or refused by a claim rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Admitted(Admitted),
    Refused(ClaimFault),
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
        let signed = self.verify_signature(token)?;
        Ok(Verified {
            kid: signed.kid,
            header: signed.header,
            claims: signed.claims,
        })
    }

    /// Verify a request's bearer token and judge its claims: `expected_uri` is "<METHOD> <host><path>", or
    /// None for a WebSocket token (which carries no uri). Signature faults are errors; claim faults a verdict.
    pub fn verify_request(
        &self,
        token: &str,
        expected_uri: Option<&str>,
        window: &Window,
    ) -> Result<Verdict> {
        let signed = self.verify_signature(token)?;
        Ok(
            match judge(
                &signed.kid,
                &signed.fields,
                signed.nonce,
                expected_uri,
                window,
            ) {
                Ok((nonce, exp)) => Verdict::Admitted(Admitted {
                    kid: signed.kid,
                    nonce,
                    exp,
                }),
                Err(fault) => Verdict::Refused(fault),
            },
        )
    }

    fn verify_signature(&self, token: &str) -> Result<Signed> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(malformed(TOO_LONG));
        }
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
        let HeaderFields { alg, kid, nonce } = header_fields(&header)?;
        let claims = decode_part(claims_b64)?;
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&claims) else {
            return Err(malformed("the JWT claims are not a JSON object"));
        };
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
        Ok(Signed {
            kid,
            nonce,
            header,
            claims,
            fields,
        })
    }
}

/// A token whose structure, kid, alg and signature hold; its claims not yet judged.
struct Signed {
    kid: String,
    nonce: Option<Value>,
    header: Vec<u8>,
    claims: Vec<u8>,
    fields: Map<String, Value>,
}

/// Coinbase's claim rules, in the order the simulator has always applied them: sub, iss, aud, the time
/// window, the uri, then the header's nonce. Returns the nonce and `exp`.
fn judge(
    kid: &str,
    claims: &Map<String, Value>,
    nonce: Option<Value>,
    expected_uri: Option<&str>,
    window: &Window,
) -> std::result::Result<(String, f64), ClaimFault> {
    if claims.get("sub").and_then(Value::as_str) != Some(kid) {
        return Err(ClaimFault::SubMismatch);
    }
    let issuer = claims.get("iss").and_then(Value::as_str);
    if !issuer.is_some_and(|iss| ISSUERS.contains(&iss)) {
        return Err(ClaimFault::BadIssuer);
    }
    match claims.get("aud") {
        None | Some(Value::Null) => {}
        Some(Value::String(aud)) if AUDIENCES.contains(&aud.as_str()) => {}
        Some(Value::Array(auds))
            if auds
                .iter()
                .any(|aud| aud.as_str().is_some_and(|a| AUDIENCES.contains(&a))) => {}
        Some(_) => return Err(ClaimFault::BadAudience),
    }
    let (Some(nbf), Some(exp)) = (number(claims, "nbf"), number(claims, "exp")) else {
        return Err(ClaimFault::Malformed);
    };
    if !window.is_finite() {
        // every comparison with NaN is false: judged against such a clock, any token would pass
        return Err(ClaimFault::Expired);
    }
    let now = window.now;
    if nbf > now + window.nbf_leeway_s {
        return Err(ClaimFault::NotYetValid);
    }
    if now >= exp || now > nbf + window.max_lifetime_s || exp - nbf > window.max_lifetime_s {
        return Err(ClaimFault::Expired);
    }
    if let Some(expected) = expected_uri {
        let matched = match (claims.get("uri"), claims.get("uris")) {
            (Some(uri), _) if !uri.is_null() => uri.as_str() == Some(expected),
            (_, Some(Value::Array(uris))) => uris.iter().any(|u| u.as_str() == Some(expected)),
            _ => return Err(ClaimFault::MissingUri),
        };
        if !matched {
            return Err(ClaimFault::UriMismatch);
        }
    }
    match nonce {
        Some(Value::String(nonce)) if !nonce.is_empty() => Ok((nonce, exp)),
        _ => Err(ClaimFault::MissingNonce),
    }
}

/// A claim that is a finite JSON number (not a bool, not a string), as f64.
fn number(claims: &Map<String, Value>, name: &str) -> Option<f64> {
    claims
        .get(name)
        .and_then(Value::as_f64)
        .filter(|value| value.is_finite())
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

struct HeaderFields {
    alg: String,
    kid: String,
    nonce: Option<Value>,
}

fn header_fields(header: &[u8]) -> Result<HeaderFields> {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(header) else {
        return Err(malformed("the JWT header is not a JSON object"));
    };
    match (fields.remove("alg"), fields.remove("kid")) {
        (Some(Value::String(alg)), Some(Value::String(kid))) => Ok(HeaderFields {
            alg,
            kid,
            nonce: fields.remove("nonce"),
        }),
        _ => Err(malformed("the JWT header lacks a string alg or kid")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::jwt::{RequestUri, TokenMinter};
    use crate::keys::PrivateKey;
    use serde_json::json;

    const KID: &str = "organizations/org/apiKeys/key";
    const URI: &str = "POST 127.0.0.1:8443/api/v3/brokerage/orders";

    fn window(now: f64) -> Window {
        Window {
            now,
            nbf_leeway_s: 5.0,
            max_lifetime_s: 120.0,
        }
    }

    fn claims(value: serde_json::Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("claims are an object"),
        }
    }

    fn judged(
        value: serde_json::Value,
        nonce: Value,
        uri: Option<&str>,
    ) -> std::result::Result<(String, f64), ClaimFault> {
        judge(KID, &claims(value), Some(nonce), uri, &window(1000.0))
    }

    fn good() -> serde_json::Value {
        json!({"sub": KID, "iss": "cdp", "nbf": 1000, "exp": 1120, "uri": URI})
    }

    #[test]
    fn a_coinbase_token_is_admitted_with_its_nonce_and_exp() {
        assert_eq!(
            judged(good(), json!("n1"), Some(URI)),
            Ok(("n1".to_owned(), 1120.0))
        );
        // ccxt's EdDSA claim set: uris (a list), aud; coinbase-cloud iss with the legacy audience
        let ccxt = json!({"sub": KID, "iss": "cdp", "aud": ["cdp_service"], "nbf": 1000, "exp": 1120, "uris": [URI]});
        assert!(judged(ccxt, json!("n"), Some(URI)).is_ok());
        let legacy = json!({"sub": KID, "iss": "coinbase-cloud", "aud": "retail_rest_api_proxy", "nbf": 999.5, "exp": 1100, "uri": URI});
        assert!(judged(legacy, json!("n"), Some(URI)).is_ok());
        // a WebSocket token carries no uri and needs none
        let ws = json!({"sub": KID, "iss": "cdp", "nbf": 1000, "exp": 1120});
        assert!(judged(ws, json!("n"), None).is_ok());
    }

    #[test]
    fn each_claim_rule_refuses_with_its_own_fault() {
        let with = |name: &str, value: serde_json::Value| {
            let mut c = good();
            c[name] = value;
            c
        };
        let cases = [
            (with("sub", json!("someone else")), ClaimFault::SubMismatch),
            (with("sub", json!(7)), ClaimFault::SubMismatch),
            (with("iss", json!("evil")), ClaimFault::BadIssuer),
            (with("iss", json!(["cdp"])), ClaimFault::BadIssuer),
            (with("aud", json!(["elsewhere"])), ClaimFault::BadAudience),
            (with("aud", json!(3)), ClaimFault::BadAudience),
            (with("nbf", json!("1000")), ClaimFault::Malformed),
            (with("exp", json!(true)), ClaimFault::Malformed),
            (with("nbf", json!(1006)), ClaimFault::NotYetValid),
            (with("exp", json!(1000)), ClaimFault::Expired),
            (with("nbf", json!(879)), ClaimFault::Expired), // older than the 2-minute lifetime
            (with("exp", json!(1121)), ClaimFault::Expired), // a window longer than 2 minutes
            (
                with("uri", json!("GET 127.0.0.1:8443/api/v3/brokerage/orders")),
                ClaimFault::UriMismatch,
            ),
            (with("uri", json!(null)), ClaimFault::MissingUri),
        ];
        for (c, fault) in cases {
            assert_eq!(judged(c.clone(), json!("n"), Some(URI)), Err(fault), "{c}");
        }
        let mut c = good();
        c.as_object_mut().unwrap().remove("uri");
        assert_eq!(
            judged(c.clone(), json!("n"), Some(URI)),
            Err(ClaimFault::MissingUri)
        );
        c["uris"] = json!(["GET elsewhere/x"]);
        assert_eq!(
            judged(c, json!("n"), Some(URI)),
            Err(ClaimFault::UriMismatch)
        );
        assert_eq!(
            judged(good(), json!(""), Some(URI)),
            Err(ClaimFault::MissingNonce)
        );
        assert_eq!(
            judged(good(), json!(5), Some(URI)),
            Err(ClaimFault::MissingNonce)
        );
        assert_eq!(
            judge(KID, &claims(good()), None, Some(URI), &window(1000.0)),
            Err(ClaimFault::MissingNonce)
        );
    }

    #[test]
    fn the_time_window_takes_only_finite_numbers_within_it() {
        let with = |nbf: Value, exp: Value| {
            let mut c = good();
            c["nbf"] = nbf;
            c["exp"] = exp;
            c
        };
        let cases = [
            // floats within the window are numbers like any other (NumericDate allows fractions)
            (with(json!(1000.5), json!(1110.25)), Ok(())),
            (with(json!(999.999), json!(1000.001)), Ok(())),
            // huge, negative and tiny values are outside it
            (
                with(json!(1e300), json!(1e300)),
                Err(ClaimFault::NotYetValid),
            ),
            (
                with(json!(u64::MAX), json!(u64::MAX)),
                Err(ClaimFault::NotYetValid),
            ),
            (with(json!(1000), json!(1e300)), Err(ClaimFault::Expired)),
            (with(json!(1000), json!(u64::MAX)), Err(ClaimFault::Expired)),
            (with(json!(-1e300), json!(1120)), Err(ClaimFault::Expired)),
            (with(json!(i64::MIN), json!(1120)), Err(ClaimFault::Expired)),
            (with(json!(-1), json!(119)), Err(ClaimFault::Expired)),
            (with(json!(1000), json!(-1e300)), Err(ClaimFault::Expired)),
            (with(json!(5e-324), json!(1120)), Err(ClaimFault::Expired)),
            (with(json!(1120), json!(1000)), Err(ClaimFault::NotYetValid)),
            // what is not a number is malformed: strings (even of numbers), bool, null, arrays, objects
            (with(json!("1000"), json!(1120)), Err(ClaimFault::Malformed)),
            (with(json!(1000), json!("NaN")), Err(ClaimFault::Malformed)),
            (
                with(json!("Infinity"), json!(1120)),
                Err(ClaimFault::Malformed),
            ),
            (with(json!(null), json!(1120)), Err(ClaimFault::Malformed)),
            (with(json!(1000), json!(false)), Err(ClaimFault::Malformed)),
            (with(json!([1000]), json!(1120)), Err(ClaimFault::Malformed)),
            (
                with(json!(1000), json!({"exp": 1120})),
                Err(ClaimFault::Malformed),
            ),
        ];
        for (c, expected) in cases {
            let got = judged(c.clone(), json!("n"), Some(URI)).map(|_| ());
            assert_eq!(got, expected, "{c}");
        }
        for name in ["nbf", "exp"] {
            let mut c = good();
            c.as_object_mut().unwrap().remove(name);
            assert_eq!(judged(c, json!("n"), Some(URI)), Err(ClaimFault::Malformed));
        }
        // JSON cannot spell a non-finite number, and a literal beyond f64 is no JSON object of claims
        assert!(serde_json::from_str::<Value>(r#"{"nbf": 1e400}"#).is_err());
        assert_eq!(
            serde_json::from_str::<Value>(r#"{"nbf": 100000000000000000000000000000}"#).unwrap()
                ["nbf"]
                .as_f64(),
            Some(1e29)
        );
    }

    #[test]
    fn a_clock_that_is_not_a_finite_number_admits_nothing() {
        for now in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                judge(
                    KID,
                    &claims(good()),
                    Some(json!("n")),
                    Some(URI),
                    &window(now)
                ),
                Err(ClaimFault::Expired),
                "{now}"
            );
        }
        for (leeway, lifetime) in [
            (f64::NAN, 120.0),
            (5.0, f64::NAN),
            (f64::INFINITY, f64::INFINITY),
        ] {
            let window = Window {
                now: 1000.0,
                nbf_leeway_s: leeway,
                max_lifetime_s: lifetime,
            };
            assert_eq!(
                judge(KID, &claims(good()), Some(json!("n")), Some(URI), &window),
                Err(ClaimFault::Expired)
            );
        }
        // and a finite clock far from the token's window refuses it as it should
        assert_eq!(judged_at(f64::MAX), Err(ClaimFault::Expired));
        assert_eq!(judged_at(-f64::MAX), Err(ClaimFault::NotYetValid));
    }

    fn judged_at(now: f64) -> std::result::Result<(String, f64), ClaimFault> {
        judge(
            KID,
            &claims(good()),
            Some(json!("n")),
            Some(URI),
            &window(now),
        )
    }

    #[test]
    fn verify_request_checks_the_signature_before_the_claims() {
        let minter =
            TokenMinter::new(KID, PrivateKey::from_ed25519_seed(&[5u8; 32]).unwrap()).unwrap();
        let verifier = Verifier::new();
        verifier
            .register(KID, &minter.key().public_key_pem())
            .unwrap();
        let uri = RequestUri::new("POST", "/api/v3/brokerage/orders", "127.0.0.1:8443").unwrap();
        let token = minter.mint(1000, Some(&uri)).unwrap();
        let Verdict::Admitted(admitted) = verifier
            .verify_request(&token, Some(URI), &window(1001.0))
            .unwrap()
        else {
            panic!("a fresh engine token is admitted");
        };
        assert_eq!((admitted.kid.as_str(), admitted.exp), (KID, 1120.0));
        assert_eq!(admitted.nonce.len(), 64);
        assert_eq!(
            verifier
                .verify_request(&token, Some("GET 127.0.0.1:8443/x"), &window(1001.0))
                .unwrap(),
            Verdict::Refused(ClaimFault::UriMismatch)
        );
        assert_eq!(
            verifier
                .verify_request(&token, Some(URI), &window(1200.0))
                .unwrap(),
            Verdict::Refused(ClaimFault::Expired)
        );
        let mut tampered = token.into_bytes();
        tampered[12] = if tampered[12] == b'A' { b'B' } else { b'A' };
        assert!(matches!(
            verifier.verify_request(
                std::str::from_utf8(&tampered).unwrap(),
                Some(URI),
                &window(1001.0)
            ),
            Err(SignerError::TokenInvalid(
                TokenFault::BadSignature | TokenFault::Malformed,
                _
            ))
        ));
    }
}
