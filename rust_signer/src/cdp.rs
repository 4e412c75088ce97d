//! A CDP API key as the engine uses it: the parsed key, the exchange clock it mints on, and its optional
//! pre-mint pool.

use std::sync::{Arc, PoisonError, RwLock};

use crate::clock::Clock;
use crate::encoding::{text_rule, TextRule};
use crate::error::Result;
use crate::jwt::{OwnedRequestUri, RequestUri, TokenMinter};
use crate::keys::{Algorithm, PrivateKey};
use crate::pool::{Premint, PremintConfig};

/// A key name: `organizations/{org_id}/apiKeys/{key_id}`, or the id of an Ed25519 key, about 100 characters.
pub const NAME_TEXT: TextRule = text_rule!(
    "the CDP key name",
    max_len = 1024,
    multiline = false,
    fix = "pass the name (organizations/…/apiKeys/…) or id from the CDP API key file unchanged"
);

#[derive(Debug)]
pub struct CdpKey {
    minter: Arc<TokenMinter>,
    clock: Arc<Clock>,
    premint: RwLock<Option<Premint>>,
}

impl CdpKey {
    pub fn new(name: &str, private_key: &str) -> Result<Self> {
        NAME_TEXT.check(name)?;
        let minter = TokenMinter::new(name, PrivateKey::parse(private_key)?)?;
        Ok(Self {
            minter: Arc::new(minter),
            clock: Arc::new(Clock::new()),
            premint: RwLock::new(None),
        })
    }

    pub fn name(&self) -> &str {
        self.minter.name()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.minter.algorithm()
    }

    pub fn public_key_pem(&self) -> String {
        self.minter.key().public_key_pem()
    }

    pub fn clock_offset(&self) -> f64 {
        self.clock.offset()
    }

    /// Shift `nbf`/`exp` onto the exchange's clock; pooled tokens minted on the old offset are retired.
    pub fn set_clock_offset(&self, seconds: f64) -> Result<()> {
        self.clock.set_offset(seconds)?;
        self.with_premint(Premint::wake);
        Ok(())
    }

    /// A REST token for `METHOD host path`: from the pool when the uri is pooled and a token is ready,
    /// otherwise minted on the spot.
    pub fn rest_jwt(&self, method: &str, path: &str, host: &str) -> Result<String> {
        let uri = RequestUri::new(method, path, host)?;
        if let Some(Some(token)) = self.with_premint(|p| p.take(&uri)) {
            return Ok(token);
        }
        self.minter.mint(self.clock.now_secs(), Some(&uri))
    }

    /// A WebSocket (and derivatives gateway `public/auth`) token: no `uri` claim.
    pub fn ws_jwt(&self) -> Result<String> {
        self.minter.mint(self.clock.now_secs(), None)
    }

    /// Start (or reconfigure) pre-minting for `(method, path)` pairs at `host`.
    pub fn premint(
        &self,
        requests: &[(String, String)],
        host: &str,
        depth: usize,
        max_age: f64,
    ) -> Result<()> {
        let uris = requests
            .iter()
            .map(|(method, path)| OwnedRequestUri::new(method, path, host))
            .collect::<Result<Vec<_>>>()?;
        let config = PremintConfig::new(uris, depth, max_age)?;
        let started = Premint::start(Arc::clone(&self.minter), Arc::clone(&self.clock), config)?;
        let previous = self
            .premint
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(started);
        retire(previous);
        Ok(())
    }

    /// Fresh tokens ready for a request (0 if it is not pooled).
    pub fn pooled(&self, method: &str, path: &str, host: &str) -> Result<usize> {
        let uri = RequestUri::new(method, path, host)?;
        Ok(self.with_premint(|p| p.ready(&uri)).flatten().unwrap_or(0))
    }

    /// Stop pre-minting (the key still mints on demand).
    pub fn close(&self) {
        let previous = self
            .premint
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        retire(previous);
    }

    /// Run `f` on this process's pool. A pool inherited across `fork()` is abandoned without touching its
    /// locks (the parent's thread may have held one) and a new one is started for the child.
    fn with_premint<R>(&self, f: impl FnOnce(&Premint) -> R) -> Option<R> {
        {
            let guard = self.premint.read().unwrap_or_else(PoisonError::into_inner);
            match guard.as_ref() {
                None => return None,
                Some(p) if p.is_from_this_process() => return Some(f(p)),
                Some(_) => {}
            }
        }
        let mut guard = self.premint.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(inherited) = guard.take_if(|p| !p.is_from_this_process()) {
            let config = inherited.config().clone();
            retire(Some(inherited));
            *guard = Premint::start(Arc::clone(&self.minter), Arc::clone(&self.clock), config).ok();
        }
        guard.as_ref().map(f)
    }
}

/// Stop a pool we own; leak one inherited from a parent process (its state may be mid-update).
fn retire(premint: Option<Premint>) {
    match premint {
        Some(p) if p.is_from_this_process() => p.stop(),
        Some(p) => std::mem::forget(p),
        None => {}
    }
}
