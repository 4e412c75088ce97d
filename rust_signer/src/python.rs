//! PyO3 binding layer: converts types and errors, nothing else.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::SignerError;
use crate::verify::Verifier;

pyo3::import_exception!(engine.errors, KeyFormatError);
pyo3::import_exception!(engine.errors, TokenInvalid);

impl From<SignerError> for PyErr {
    fn from(err: SignerError) -> PyErr {
        match err {
            SignerError::KeyFormat(m) => KeyFormatError::new_err(m),
            SignerError::TokenInvalid(fault, m) => TokenInvalid::new_err((m, fault.reason())),
            SignerError::InvalidArgument(m) => pyo3::exceptions::PyValueError::new_err(m),
            SignerError::Crypto(m) => pyo3::exceptions::PyRuntimeError::new_err(m),
        }
    }
}

/// Verifies CDP JWTs against registered public keys (used by the exchange simulator on every request).
#[pyclass(frozen, module = "engine._signer")]
struct JwtVerifier {
    inner: Verifier,
}

#[pymethods]
impl JwtVerifier {
    #[new]
    fn new() -> Self {
        Self {
            inner: Verifier::new(),
        }
    }

    /// Register a SubjectPublicKeyInfo PEM under `kid`; returns `"ES256"` or `"EdDSA"`.
    fn register(&self, kid: &str, public_key_pem: &str) -> PyResult<&'static str> {
        Ok(self.inner.register(kid, public_key_pem)?.jose_name())
    }

    fn unregister(&self, kid: &str) {
        self.inner.unregister(kid);
    }

    /// `(kid, header_json, claims_json)` of a token whose structure, kid, alg and signature hold.
    fn verify<'py>(
        &self,
        py: Python<'py>,
        token: &str,
    ) -> PyResult<(String, Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let verified = self.inner.verify(token)?;
        Ok((
            verified.kid,
            PyBytes::new(py, &verified.header),
            PyBytes::new(py, &verified.claims),
        ))
    }

    fn __repr__(&self) -> &'static str {
        "JwtVerifier()"
    }
}

/// base64(HMAC-SHA256(secret, message)).
#[pyfunction]
fn hmac_sha256_base64(secret: &[u8], message: &[u8]) -> String {
    crate::hmac::hmac_sha256_base64(secret, message)
}

#[pymodule(gil_used = false)]
fn _signer(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<JwtVerifier>()?;
    m.add_function(wrap_pyfunction!(hmac_sha256_base64, m)?)?;
    Ok(())
}
