//! PyO3 binding layer: converts types and errors, nothing else.

use std::borrow::Cow;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
#[cfg(feature = "verify")]
use pyo3::types::PyBytes;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString, PyTuple};

use crate::cdp;
use crate::clock::Clock;
use crate::encoding::TextRule;
use crate::error::SignerError;
#[cfg(feature = "verify")]
use crate::error::TokenFault;
use crate::hmac::{self, ExchangeSigner};
use crate::jwt;
use crate::keys::PUBLIC_KEY_TEXT;
use crate::pool;
#[cfg(feature = "verify")]
use crate::verify::{Verdict, Verifier, Window, MAX_TOKEN_LEN, TOO_LONG};

pyo3::import_exception!(engine.errors, KeyFormatError);
pyo3::import_exception!(engine.errors, TokenInvalid);
pyo3::import_exception!(engine.errors, InvalidRequest);

const DEFAULT_HOST: &str = "api.coinbase.com";

impl From<SignerError> for PyErr {
    fn from(err: SignerError) -> PyErr {
        match err {
            SignerError::KeyFormat(m) => KeyFormatError::new_err(m),
            SignerError::TokenInvalid(fault, m) => TokenInvalid::new_err((m, fault.reason())),
            SignerError::InvalidArgument(m) => InvalidRequest::new_err(m),
            SignerError::Crypto(m) | SignerError::Runtime(m) => PyRuntimeError::new_err(m),
        }
    }
}

/// Key text from Python, as UTF-8, or `KeyFormatError` naming the field.
///
/// The one door for credentials: PyO3's own `&str` conversion would raise `UnicodeEncodeError`, whose
/// `args` carry the whole string (a lone surrogate is what Python makes of an undecodable byte in an
/// environment variable), and a `TypeError` for a non-string. Here the length is checked before any copy,
/// the conversion's error is dropped unraised, and the field's rule runs before any parser sees the text.
fn key_text<'a>(value: &'a Bound<'_, PyAny>, rule: &TextRule) -> PyResult<&'a str> {
    let messages = rule.messages;
    let text = value
        .cast::<PyString>()
        .map_err(|_| KeyFormatError::new_err(messages.not_text))?;
    if text.len()? > rule.max_len {
        return Err(KeyFormatError::new_err(messages.too_long));
    }
    let utf8 = text
        .to_str()
        .map_err(|_| KeyFormatError::new_err(messages.undecodable))?;
    rule.check(utf8)?;
    Ok(utf8)
}

/// Request text that is signed and sent (method, path, host) as UTF-8; an undecodable string is an
/// `InvalidRequest`, never a `UnicodeEncodeError` repeating it.
fn request_text<'a>(value: &'a Bound<'_, PyAny>, what: &'static str) -> PyResult<&'a str> {
    let text = value
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err(what))?;
    text.to_str().map_err(|_| InvalidRequest::new_err(what))
}

/// A bearer token (or the request URI it must carry) as UTF-8 text, or `TokenInvalid("malformed")`.
///
/// A token comes off the wire: as `str` a header's latin-1 bytes arrive as surrogates, as `bytes` they may not
/// be UTF-8 at all. Neither can be a token Coinbase signed, so both are refused like any other malformed token,
/// never as PyO3's `UnicodeEncodeError` (which would carry the whole token) or a `TypeError`.
#[cfg(feature = "verify")]
fn token_text<'a>(value: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, str>> {
    const NOT_TEXT: &str = "a JWT is base64url text separated by dots";
    let refused = || TokenInvalid::new_err((NOT_TEXT, TokenFault::Malformed.reason()));
    if let Ok(text) = value.cast::<PyString>() {
        return text.to_str().map(Cow::Borrowed).map_err(|_| refused());
    }
    if let Ok(raw) = value.cast::<PyBytes>() {
        if raw.as_bytes().len() > MAX_TOKEN_LEN {
            // before the copy; the verifier refuses such a str the same way
            return Err(TokenInvalid::new_err((
                TOO_LONG,
                TokenFault::Malformed.reason(),
            )));
        }
        return std::str::from_utf8(raw.as_bytes())
            .map(|text| Cow::Owned(text.to_owned()))
            .map_err(|_| refused());
    }
    Err(refused())
}

/// A Coinbase CDP API key, parsed once; mints ES256/EdDSA JWTs, optionally from a pre-minted pool.
#[pyclass(frozen, subclass, module = "engine._signer", name = "CdpKey")]
struct PyCdpKey {
    inner: cdp::CdpKey,
}

#[pymethods]
impl PyCdpKey {
    #[new]
    fn new(name: &Bound<'_, PyAny>, private_key: &Bound<'_, PyAny>) -> PyResult<Self> {
        let name = key_text(name, &cdp::NAME_TEXT)?;
        let private_key = key_text(private_key, &crate::keys::PRIVATE_KEY_TEXT)?;
        Ok(Self {
            inner: cdp::CdpKey::new(name, private_key)?,
        })
    }

    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    #[getter]
    fn algorithm(&self) -> &'static str {
        self.inner.algorithm().jose_name()
    }

    fn public_key_pem(&self) -> String {
        self.inner.public_key_pem()
    }

    #[getter]
    fn clock_offset(&self) -> f64 {
        self.inner.clock_offset()
    }

    #[setter]
    fn set_clock_offset(&self, seconds: f64) -> PyResult<()> {
        Ok(self.inner.set_clock_offset(seconds)?)
    }

    #[pyo3(signature = (method, path, host = DEFAULT_HOST))]
    fn rest_jwt(
        &self,
        method: &Bound<'_, PyAny>,
        path: &Bound<'_, PyAny>,
        host: &str,
    ) -> PyResult<String> {
        let method = request_text(method, jwt::msg::BAD_METHOD)?;
        let path = request_text(path, jwt::msg::BAD_PATH)?;
        Ok(self.inner.rest_jwt(method, path, host)?)
    }

    fn ws_jwt(&self) -> PyResult<String> {
        Ok(self.inner.ws_jwt()?)
    }

    #[pyo3(signature = (requests, *, depth = 16, max_age = 30.0, host = DEFAULT_HOST))]
    fn premint(
        &self,
        requests: Vec<(String, String)>,
        depth: usize,
        max_age: f64,
        host: &str,
    ) -> PyResult<()> {
        Ok(self.inner.premint(&requests, host, depth, max_age)?)
    }

    #[pyo3(signature = (method, path, host = DEFAULT_HOST))]
    fn pooled(
        &self,
        method: &Bound<'_, PyAny>,
        path: &Bound<'_, PyAny>,
        host: &str,
    ) -> PyResult<usize> {
        let method = request_text(method, jwt::msg::BAD_METHOD)?;
        let path = request_text(path, jwt::msg::BAD_PATH)?;
        Ok(self.inner.pooled(method, path, host)?)
    }

    fn close(&self) {
        self.inner.close();
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc_info))]
    fn __exit__(&self, _exc_info: &Bound<'_, PyTuple>) {
        self.inner.close();
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let inner = &slf.get().inner;
        let cls = slf.get_type().qualname()?;
        let name = PyString::new(slf.py(), inner.name()).repr()?;
        Ok(format!(
            "{cls}(name={name}, algorithm='{}')",
            inner.algorithm().jose_name()
        ))
    }
}

/// Coinbase Exchange HMAC credentials; `headers()` signs one request.
#[pyclass(frozen, module = "engine._signer", name = "ExchangeKey")]
struct PyExchangeKey {
    signer: ExchangeSigner,
    clock: Clock,
    /// The key id (not a secret) as a ready Python string: one object fewer per request.
    key_id: Py<PyString>,
}

#[pymethods]
impl PyExchangeKey {
    #[new]
    fn new(
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        secret: &Bound<'_, PyAny>,
        passphrase: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let signer = ExchangeSigner::new(
            key_text(key, &hmac::KEY_ID_TEXT)?,
            key_text(secret, &hmac::SECRET_TEXT)?,
            key_text(passphrase, &hmac::PASSPHRASE_TEXT)?,
        )?;
        let key_id = PyString::new(py, signer.key()).unbind();
        Ok(Self {
            signer,
            clock: Clock::new(),
            key_id,
        })
    }

    #[getter]
    fn key(&self) -> &str {
        self.signer.key()
    }

    #[getter]
    fn clock_offset(&self) -> f64 {
        self.clock.offset()
    }

    #[setter]
    fn set_clock_offset(&self, seconds: f64) -> PyResult<()> {
        Ok(self.clock.set_offset(seconds)?)
    }

    /// The four `CB-ACCESS-*` headers. `path` includes the query string; `body` is the exact bytes sent;
    /// `timestamp` (seconds) defaults to now on the exchange's clock. Whatever the form, the timestamp sent
    /// is ASCII digits with an optional fraction, and method and path hold no CR, LF, NUL or space.
    #[pyo3(signature = (method, path, body = b"".as_slice(), timestamp = None))]
    fn headers<'py>(
        &self,
        py: Python<'py>,
        method: &Bound<'py, PyAny>,
        path: &Bound<'py, PyAny>,
        body: &[u8],
        timestamp: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let method = request_text(method, hmac::msg::BAD_METHOD)?;
        let path = request_text(path, hmac::msg::BAD_REQUEST_PATH)?;
        let mut digits = [0u8; 20];
        let bad_timestamp = || InvalidRequest::new_err(hmac::msg::BAD_TIMESTAMP);
        let timestamp: Cow<'_, str> = match timestamp {
            None => Cow::Borrowed(format_int(&mut digits, self.clock.now_secs())),
            Some(t) if t.is_instance_of::<PyString>() => {
                Cow::Borrowed(request_text(t, hmac::msg::BAD_TIMESTAMP)?)
            }
            Some(t) if t.is_instance_of::<PyBool>() => return Err(bad_timestamp()),
            Some(t) if t.is_instance_of::<PyInt>() => {
                let seconds = t.extract::<u64>().map_err(|_| bad_timestamp())?;
                Cow::Owned(seconds.to_string())
            }
            Some(t) if t.is_instance_of::<PyFloat>() => {
                let seconds = t.extract::<f64>()?;
                if !seconds.is_finite() || seconds < 0.0 {
                    return Err(bad_timestamp());
                }
                // Rust writes an f64 in positional notation (never `1e9`), which `sign` then checks.
                Cow::Owned(seconds.to_string())
            }
            Some(_) => {
                return Err(PyTypeError::new_err(
                    "timestamp must be int, float, str or None",
                ))
            }
        };
        let signature = self.signer.sign(&timestamp, method, path, body)?;
        let headers = PyDict::new(py);
        headers.set_item(intern!(py, "CB-ACCESS-KEY"), self.key_id.bind(py))?;
        headers.set_item(intern!(py, "CB-ACCESS-SIGN"), signature)?;
        headers.set_item(intern!(py, "CB-ACCESS-TIMESTAMP"), timestamp.as_ref())?;
        headers.set_item(
            intern!(py, "CB-ACCESS-PASSPHRASE"),
            self.signer.passphrase(),
        )?;
        Ok(headers)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "ExchangeKey(key={})",
            PyString::new(py, self.signer.key()).repr()?
        ))
    }
}

/// Decimal `value` written into `buf`: no heap allocation on the request path.
fn format_int(buf: &mut [u8; 20], value: i64) -> &str {
    use std::io::Write as _;
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    // 20 bytes hold any i64 in decimal, so the write cannot fail.
    let _ = write!(cursor, "{value}");
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    std::str::from_utf8(&buf[..len]).unwrap_or("0")
}

/// Verifies CDP JWTs against registered public keys (used by the exchange simulator on every request).
#[cfg(feature = "verify")]
#[pyclass(frozen, module = "engine._signer")]
struct JwtVerifier {
    inner: Verifier,
}

#[cfg(feature = "verify")]
#[pymethods]
impl JwtVerifier {
    #[new]
    fn new() -> Self {
        Self {
            inner: Verifier::new(),
        }
    }

    /// Register a SubjectPublicKeyInfo PEM under `kid`; returns `"ES256"` or `"EdDSA"`.
    fn register(
        &self,
        kid: &Bound<'_, PyAny>,
        public_key_pem: &Bound<'_, PyAny>,
    ) -> PyResult<&'static str> {
        let kid = key_text(kid, &cdp::NAME_TEXT)?;
        let pem = key_text(public_key_pem, &PUBLIC_KEY_TEXT)?;
        Ok(self.inner.register(kid, pem)?.jose_name())
    }

    /// Forget `kid`; a kid that is not text was never registered, so there is nothing to forget.
    fn unregister(&self, kid: &Bound<'_, PyAny>) {
        if let Ok(Ok(kid)) = kid.cast::<PyString>().map(|kid| kid.to_str()) {
            self.inner.unregister(kid);
        }
    }

    /// `(kid, header_json, claims_json)` of a token whose structure, kid, alg and signature hold.
    fn verify<'py>(
        &self,
        py: Python<'py>,
        token: &Bound<'py, PyAny>,
    ) -> PyResult<(String, Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let verified = self.inner.verify(&token_text(token)?)?;
        Ok((
            verified.kid,
            PyBytes::new(py, &verified.header),
            PyBytes::new(py, &verified.claims),
        ))
    }

    /// `(kid, nonce, exp)` of a request token whose signature and claims hold, judged at `now`; raises
    /// `TokenInvalid` with the failed rule's reason. The nonce replay check is the caller's.
    #[pyo3(signature = (token, expected_uri, now, nbf_leeway_s, max_lifetime_s))]
    fn verify_request(
        &self,
        token: &Bound<'_, PyAny>,
        expected_uri: Option<&Bound<'_, PyAny>>,
        now: f64,
        nbf_leeway_s: f64,
        max_lifetime_s: f64,
    ) -> PyResult<(String, String, f64)> {
        let token = token_text(token)?;
        // a URI that is not text cannot be the one a token was signed for
        let expected_uri = expected_uri.map(token_text).transpose()?;
        let expected_uri = expected_uri.as_deref();
        let window = Window {
            now,
            nbf_leeway_s,
            max_lifetime_s,
        };
        match self.inner.verify_request(&token, expected_uri, &window)? {
            Verdict::Admitted(admitted) => Ok((admitted.kid, admitted.nonce, admitted.exp)),
            Verdict::Refused(fault) => {
                Err(TokenInvalid::new_err((fault.message(), fault.reason())))
            }
        }
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

/// `os.register_at_fork(after_in_child=...)`: the child abandons every pool inherited from its parent.
#[pyfunction]
fn _after_fork_in_child() {
    pool::note_fork_in_child();
}

/// `atexit`: stop every pre-mint thread before the interpreter finalizes.
#[pyfunction]
fn _stop_premint_threads() {
    pool::stop_all();
}

#[pymodule(gil_used = false)]
fn _signer(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyCdpKey>()?;
    m.add_class::<PyExchangeKey>()?;
    #[cfg(feature = "verify")]
    m.add_class::<JwtVerifier>()?;
    m.add_function(wrap_pyfunction!(hmac_sha256_base64, m)?)?;
    let after_fork = wrap_pyfunction!(_after_fork_in_child, m)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("after_in_child", after_fork)?;
    py.import("os")?
        .call_method("register_at_fork", (), Some(&kwargs))?;
    py.import("atexit")?
        .call_method1("register", (wrap_pyfunction!(_stop_premint_threads, m)?,))?;
    Ok(())
}
