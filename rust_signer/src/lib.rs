//! Coinbase request signing core.
//!
//! Pure-Rust modules know nothing of Python and return `Result`; `python` is the thin PyO3 layer
//! (built only with the `python` feature, which maturin enables).

pub mod cdp;
pub mod clock;
pub mod encoding;
pub mod error;
pub mod hmac;
pub mod jwt;
pub mod keys;
pub mod pool;
#[cfg(feature = "verify")]
pub mod verify;
mod wipe;

#[cfg(feature = "python")]
mod python;
