//! Runs one signing operation N times inside `measured_region`, for valgrind's callgrind to count.
//!
//! Usage: `signer-callgrind <operation> <iterations>`, or `signer-callgrind --list`.
//!
//! The driver (`benches/callgrind/driver.py`) runs this under
//! `valgrind --tool=callgrind --toggle-collect=*measured_region*` at two iteration counts and divides the
//! difference by the difference in iterations: instructions per operation, with set-up (key generation,
//! first-call lazy initialisation) cancelled out. Instruction counts do not depend on what else the machine
//! is doing, so they catch a regression of a few percent that wall-clock timing on a shared box cannot.
//!
//! Every operation is checked after it is counted: tokens verify against the public key with the expected
//! claims, parsed keys have the generated public key, HMAC signatures equal an independent computation.
//! A fast wrong answer fails the run (exit status 1).

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use _signer::cdp::CdpKey;
use _signer::hmac::ExchangeSigner;
use _signer::keys::{Algorithm, PrivateKey};
use _signer::verify::Verifier;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use sec1::der::{Decode, Encode};

const HOST: &str = "api.coinbase.com";
const ORDER_PATH: &str = "/api/v3/brokerage/orders";
const KEY_NAME: &str = "organizations/00000000-0000-0000-0000-000000000000/apiKeys/callgrind-bench";
const ORDER_BODY: &[u8] = br#"{"client_order_id":"bench-0001","product_id":"BTC-USD","side":"BUY","order_configuration":{"limit_limit_gtc":{"base_size":"0.001","limit_price":"50000.00","post_only":false}}}"#;
/// The pool is filled to this depth before counting; takes stay above half of it, so the refill
/// thread stays parked while instructions are counted.
const POOL_DEPTH: usize = 256;
const MAX_POOLED_TAKES: u64 = POOL_DEPTH as u64 / 2 - 1;

/// (name, what it measures)
const OPERATIONS: &[(&str, &str)] = &[
    (
        "parse-es256-sec1",
        "parse a P-256 key from SEC1 PEM (as the CDP portal issues it)",
    ),
    (
        "parse-eddsa-b64",
        "parse an Ed25519 key from base64 of seed||public (64 bytes)",
    ),
    (
        "rest-jwt-es256",
        "mint a REST JWT on the spot, ES256 (CdpKey::rest_jwt, no pool)",
    ),
    (
        "rest-jwt-eddsa",
        "mint a REST JWT on the spot, EdDSA (CdpKey::rest_jwt, no pool)",
    ),
    ("ws-jwt-es256", "mint a WebSocket JWT (no uri claim), ES256"),
    (
        "pooled-jwt-es256",
        "take a pre-minted REST JWT from the pool (CdpKey::rest_jwt, pooled uri)",
    ),
    (
        "hmac-exchange",
        "Exchange CB-ACCESS-SIGN over an order body (ExchangeSigner::sign)",
    ),
];

/// The only code callgrind counts (`--toggle-collect=*measured_region*`).
#[inline(never)]
fn measured_region<T>(iterations: u64, mut operation: impl FnMut() -> T) -> Option<T> {
    let mut last = None;
    for _ in 0..iterations {
        last = Some(black_box(operation()));
    }
    last
}

struct Keys {
    es256_sec1_pem: String,
    es256_public: Vec<u8>,
    eddsa_b64: String,
    eddsa_public: Vec<u8>,
}

/// Fresh keys for this run only (no key material is ever committed), in the forms Coinbase issues.
fn generate_keys(rng: &SystemRandom) -> Result<Keys, String> {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng)
        .map_err(|_| "P-256 key generation failed")?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), rng)
        .map_err(|_| "generated P-256 key does not load")?;
    let info =
        pkcs8::PrivateKeyInfo::from_der(pkcs8.as_ref()).map_err(|e| format!("PKCS#8: {e}"))?;
    let inner = sec1::EcPrivateKey::from_der(info.private_key).map_err(|e| format!("SEC1: {e}"))?;
    let p256 = sec1::der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    let sec1_der = sec1::EcPrivateKey {
        private_key: inner.private_key,
        parameters: Some(sec1::EcParameters::NamedCurve(p256)),
        public_key: inner.public_key,
    }
    .to_der()
    .map_err(|e| format!("SEC1 encode: {e}"))?;
    let es256_sec1_pem =
        pem_rfc7468::encode_string("EC PRIVATE KEY", pem_rfc7468::LineEnding::LF, &sec1_der)
            .map_err(|e| format!("PEM encode: {e}"))?;

    let mut seed = [0u8; 32];
    rng.fill(&mut seed).map_err(|_| "OS random failed")?;
    let eddsa = PrivateKey::from_ed25519_seed(&seed).map_err(|e| e.to_string())?;
    let eddsa_public = eddsa.public_key_raw().to_vec();
    let mut seed_and_public = seed.to_vec();
    seed_and_public.extend_from_slice(&eddsa_public);
    Ok(Keys {
        es256_sec1_pem,
        es256_public: pair.public_key().as_ref().to_vec(),
        eddsa_b64: STANDARD.encode(&seed_and_public),
        eddsa_public,
    })
}

fn check(condition: bool, what: &str) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(format!("incorrect result: {what}"))
    }
}

/// The token verifies against the key's public half and carries the expected `uri` claim (or none).
fn check_token(key: &CdpKey, token: &str, uri: Option<&str>) -> Result<(), String> {
    let verifier = Verifier::new();
    verifier
        .register(KEY_NAME, &key.public_key_pem())
        .map_err(|e| e.to_string())?;
    let verified = verifier
        .verify(token)
        .map_err(|e| format!("token does not verify: {e}"))?;
    let claims = String::from_utf8(verified.claims).map_err(|_| "claims are not UTF-8")?;
    check(verified.kid == KEY_NAME, "token kid")?;
    check(
        claims.contains(&format!("\"sub\":\"{KEY_NAME}\"")),
        "token sub claim",
    )?;
    match uri {
        Some(uri) => check(
            claims.contains(&format!("\"uri\":\"{uri}\"")),
            "token uri claim",
        ),
        None => check(
            !claims.contains("\"uri\""),
            "WebSocket token has no uri claim",
        ),
    }
}

fn check_key(parsed: &PrivateKey, algorithm: Algorithm, public: &[u8]) -> Result<(), String> {
    check(parsed.algorithm() == algorithm, "parsed key algorithm")?;
    check(parsed.public_key_raw() == public, "parsed key public half")
}

fn wait_for_pool(key: &CdpKey) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while key
        .pooled("POST", ORDER_PATH, HOST)
        .map_err(|e| e.to_string())?
        < POOL_DEPTH
    {
        if Instant::now() > deadline {
            return Err("the pre-mint pool did not fill within 10 minutes".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn run(operation: &str, iterations: u64) -> Result<(), String> {
    let rng = SystemRandom::new();
    let keys = generate_keys(&rng)?;
    let order_uri = format!("POST {HOST}{ORDER_PATH}");
    let err = |e: _signer::error::SignerError| e.to_string();
    match operation {
        "parse-es256-sec1" => {
            let pem = keys.es256_sec1_pem.as_str();
            let last = measured_region(iterations, || PrivateKey::parse(pem));
            let parsed = last
                .unwrap_or_else(|| PrivateKey::parse(pem))
                .map_err(err)?;
            check_key(&parsed, Algorithm::Es256, &keys.es256_public)
        }
        "parse-eddsa-b64" => {
            let b64 = keys.eddsa_b64.as_str();
            let last = measured_region(iterations, || PrivateKey::parse(b64));
            let parsed = last
                .unwrap_or_else(|| PrivateKey::parse(b64))
                .map_err(err)?;
            check_key(&parsed, Algorithm::EdDsa, &keys.eddsa_public)
        }
        "rest-jwt-es256" | "rest-jwt-eddsa" => {
            let secret = if operation == "rest-jwt-es256" {
                &keys.es256_sec1_pem
            } else {
                &keys.eddsa_b64
            };
            let key = CdpKey::new(KEY_NAME, secret).map_err(err)?;
            let mint = || key.rest_jwt("POST", ORDER_PATH, HOST);
            let token = measured_region(iterations, mint)
                .unwrap_or_else(mint)
                .map_err(err)?;
            check_token(&key, &token, Some(&order_uri))
        }
        "ws-jwt-es256" => {
            let key = CdpKey::new(KEY_NAME, &keys.es256_sec1_pem).map_err(err)?;
            let mint = || key.ws_jwt();
            let token = measured_region(iterations, mint)
                .unwrap_or_else(mint)
                .map_err(err)?;
            check_token(&key, &token, None)
        }
        "pooled-jwt-es256" => {
            if iterations > MAX_POOLED_TAKES {
                return Err(format!(
                    "pooled-jwt-es256 takes at most {MAX_POOLED_TAKES} tokens, so that the refill thread \
                     stays parked while instructions are counted"
                ));
            }
            let key = CdpKey::new(KEY_NAME, &keys.es256_sec1_pem).map_err(err)?;
            key.premint(
                &[("POST".to_owned(), ORDER_PATH.to_owned())],
                HOST,
                POOL_DEPTH,
                100.0,
            )
            .map_err(err)?;
            wait_for_pool(&key)?;
            let take = || key.rest_jwt("POST", ORDER_PATH, HOST);
            let token = measured_region(iterations, take)
                .unwrap_or_else(take)
                .map_err(err)?;
            let left = key.pooled("POST", ORDER_PATH, HOST).map_err(err)?;
            key.close();
            check_token(&key, &token, Some(&order_uri))?;
            let taken = usize::try_from(iterations.max(1)).map_err(|_| "iterations overflow")?;
            check(
                left + taken == POOL_DEPTH,
                "every counted token came from the pool",
            )
        }
        "hmac-exchange" => {
            let mut secret = [0u8; 64];
            rng.fill(&mut secret).map_err(|_| "OS random failed")?;
            let signer =
                ExchangeSigner::new("bench-key", &STANDARD.encode(secret), "bench-passphrase")
                    .map_err(err)?;
            let sign = || signer.sign("1700000000", "POST", "/orders", ORDER_BODY);
            let signature = measured_region(iterations, sign)
                .unwrap_or_else(sign)
                .map_err(err)?;
            let mut message = b"1700000000POST/orders".to_vec();
            message.extend_from_slice(ORDER_BODY);
            let expected = ring::hmac::sign(
                &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret),
                &message,
            );
            check(
                signature == STANDARD.encode(expected.as_ref()),
                "HMAC signature",
            )
        }
        other => Err(format!(
            "unknown operation {other:?}; try --list for the operations"
        )),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--list") {
        for (name, description) in OPERATIONS {
            println!("{name}\t{description}");
        }
        return ExitCode::SUCCESS;
    }
    let [operation, iterations] = args.as_slice() else {
        eprintln!("usage: signer-callgrind <operation> <iterations> | --list");
        return ExitCode::from(2);
    };
    let Ok(iterations) = iterations.parse::<u64>() else {
        eprintln!("iterations must be a whole number, not {iterations:?}");
        return ExitCode::from(2);
    };
    match run(operation, iterations) {
        Ok(()) => {
            println!("{operation} x{iterations}: correct");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{operation}: {message}");
            ExitCode::FAILURE
        }
    }
}
