//! Coinbase request signing core.
//!
//! Pure-Rust modules know nothing of Python and return `Result`; `python` is the thin PyO3 layer
//! (built only with the `python` feature, which maturin enables).

#[cfg(feature = "python")]
mod python;
