//! PyO3 binding layer: converts types and errors, nothing else.
use pyo3::prelude::*;

#[pymodule(gil_used = false)]
fn _signer(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
