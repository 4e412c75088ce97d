//! Pre-minted tokens: a token's `uri` does not cover the body, so one token shape serves every request to a
//! given uri, and tokens for it can be minted ahead by a background thread.
//!
//! Guarantees: a token is handed out at most once (taken under the slot's lock); never once older than
//! `max_age` or minted on a clock offset since replaced; never in a process other than the one that minted it
//! (a fork bumps `FORK_EPOCH`, and a pool from an older epoch is never touched again). The refill thread is
//! pure Rust and never takes the GIL; it stops on `stop()`, on drop, and on `stop_all()` at interpreter exit.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::error::{Result, SignerError};
use crate::jwt::{OwnedRequestUri, RequestUri, TokenMinter, TOKEN_LIFETIME_SECS};

/// Bumped in a forked child (from `os.register_at_fork`); pools of an older epoch belong to the parent.
static FORK_EPOCH: AtomicU64 = AtomicU64::new(0);
/// Every live pool, so interpreter exit can stop their threads.
static LIVE: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

/// Call in the child after `fork()`: every pool inherited from the parent is abandoned.
pub fn note_fork_in_child() {
    FORK_EPOCH.fetch_add(1, Ordering::SeqCst);
}

pub fn fork_epoch() -> u64 {
    FORK_EPOCH.load(Ordering::Acquire)
}

/// Stop every refill thread of this process (interpreter exit).
pub fn stop_all() {
    let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(PoisonError::into_inner));
    for shared in live.iter().filter_map(Weak::upgrade) {
        if shared.epoch == fork_epoch() {
            shared.request_stop();
        }
    }
}

/// What to pre-mint: the request lines, how many tokens to keep ready for each, and how old one may get.
#[derive(Debug, Clone)]
pub struct PremintConfig {
    uris: Vec<OwnedRequestUri>,
    depth: usize,
    max_age: Duration,
}

impl PremintConfig {
    pub const MAX_DEPTH: usize = 4096;

    pub fn new(uris: Vec<OwnedRequestUri>, depth: usize, max_age_secs: f64) -> Result<Self> {
        if uris.is_empty() {
            return Err(SignerError::InvalidArgument(
                "premint needs at least one (method, path) to pre-mint for",
            ));
        }
        if depth == 0 || depth > Self::MAX_DEPTH {
            return Err(SignerError::InvalidArgument(
                "premint depth must be between 1 and 4096",
            ));
        }
        // Leave a token at least 20 s of its 120 s life when it is handed out.
        let limit = (TOKEN_LIFETIME_SECS - 20) as f64;
        if !(max_age_secs > 0.0 && max_age_secs <= limit) {
            return Err(SignerError::InvalidArgument(
                "premint max_age must be more than 0 and at most 100 seconds",
            ));
        }
        let mut unique: Vec<OwnedRequestUri> = Vec::with_capacity(uris.len());
        for uri in uris {
            if !unique.contains(&uri) {
                unique.push(uri);
            }
        }
        Ok(Self {
            uris: unique,
            depth,
            max_age: Duration::from_secs_f64(max_age_secs),
        })
    }
}

struct Minted {
    token: String,
    minted_at: Instant,
    generation: u64,
}

struct Slot {
    uri: OwnedRequestUri,
    tokens: Mutex<VecDeque<Minted>>,
}

struct Shared {
    minter: Arc<TokenMinter>,
    clock: Arc<Clock>,
    slots: Vec<Slot>,
    depth: usize,
    max_age: Duration,
    epoch: u64,
    stop: AtomicBool,
    thread: OnceLock<Thread>,
}

impl Shared {
    fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake();
    }

    fn wake(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn is_fresh(&self, minted: &Minted, now: Instant, generation: u64) -> bool {
        minted.generation == generation
            && now.saturating_duration_since(minted.minted_at) < self.max_age
    }
}

/// A running pre-mint pool and its refill thread.
pub struct Premint {
    shared: Arc<Shared>,
    join: Mutex<Option<JoinHandle<()>>>,
    config: PremintConfig,
}

impl std::fmt::Debug for Premint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Premint")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Premint {
    pub fn start(
        minter: Arc<TokenMinter>,
        clock: Arc<Clock>,
        config: PremintConfig,
    ) -> Result<Self> {
        let slots = config
            .uris
            .iter()
            .map(|uri| Slot {
                uri: uri.clone(),
                tokens: Mutex::new(VecDeque::with_capacity(config.depth)),
            })
            .collect();
        let shared = Arc::new(Shared {
            minter,
            clock,
            slots,
            depth: config.depth,
            max_age: config.max_age,
            epoch: fork_epoch(),
            stop: AtomicBool::new(false),
            thread: OnceLock::new(),
        });
        let worker = Arc::clone(&shared);
        let handle = thread::Builder::new()
            .name("cdp-premint".into())
            .spawn(move || refill(&worker))
            .map_err(|_| SignerError::Runtime("could not start the token pre-mint thread"))?;
        let _ = shared.thread.set(handle.thread().clone());
        shared.wake();
        LIVE.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(&shared));
        Ok(Self {
            shared,
            join: Mutex::new(Some(handle)),
            config,
        })
    }

    pub fn config(&self) -> &PremintConfig {
        &self.config
    }

    /// Whether this pool was started in the current process (not inherited across `fork()`).
    pub fn is_from_this_process(&self) -> bool {
        self.shared.epoch == fork_epoch()
    }

    /// Pop a fresh token for `uri`, or `None` if the uri is not pooled or its pool is empty.
    pub fn take(&self, uri: &RequestUri<'_>) -> Option<String> {
        if !self.is_from_this_process() {
            return None;
        }
        let slot = self
            .shared
            .slots
            .iter()
            .find(|s| s.uri.as_ref().same_as(uri))?;
        let generation = self.shared.clock.generation();
        let now = Instant::now();
        let mut tokens = slot.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let token = loop {
            match tokens.pop_front() {
                Some(minted) if self.shared.is_fresh(&minted, now, generation) => {
                    break Some(minted.token)
                }
                Some(_) => {}
                None => break None,
            }
        };
        let low = tokens.len() * 2 < self.shared.depth;
        drop(tokens);
        if low {
            // Cheap unless the thread is parked, and it parks only once every pool is full.
            self.shared.wake();
        }
        token
    }

    /// How many fresh tokens are ready for `uri` (`None` if it is not pooled).
    pub fn ready(&self, uri: &RequestUri<'_>) -> Option<usize> {
        if !self.is_from_this_process() {
            return Some(0);
        }
        let slot = self
            .shared
            .slots
            .iter()
            .find(|s| s.uri.as_ref().same_as(uri))?;
        let generation = self.shared.clock.generation();
        let now = Instant::now();
        let tokens = slot.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        Some(
            tokens
                .iter()
                .filter(|m| self.shared.is_fresh(m, now, generation))
                .count(),
        )
    }

    /// Ask the refill thread to look again (e.g. the clock offset changed).
    pub fn wake(&self) {
        if self.is_from_this_process() {
            self.shared.wake();
        }
    }

    /// Stop the refill thread and wait for it (it never holds the GIL, so this cannot deadlock with Python).
    pub fn stop(&self) {
        if !self.is_from_this_process() {
            return;
        }
        self.shared.request_stop();
        let handle = self
            .join
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            if handle.thread().id() != thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

impl Drop for Premint {
    fn drop(&mut self) {
        if self.is_from_this_process() {
            self.stop();
        } else if let Some(handle) = self
            .join
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            // The thread lived in the parent process; joining its handle here would wait on nothing that exists.
            std::mem::forget(handle);
        }
    }
}

/// The refill thread: top every slot up to `depth` with fresh tokens, then park until the oldest token
/// would go stale, a consumer runs a pool low, or a stop is requested.
fn refill(shared: &Shared) {
    const IDLE: Duration = Duration::from_secs(1);
    run_on_spare_cpu_only();
    while !shared.stopping() {
        let mut sleep = IDLE;
        for slot in &shared.slots {
            loop {
                if shared.stopping() {
                    return;
                }
                // Generation before time: a token tagged with the current generation carries its offset.
                let generation = shared.clock.generation();
                let minted_at = Instant::now();
                let missing = {
                    let mut tokens = slot.tokens.lock().unwrap_or_else(PoisonError::into_inner);
                    // One producer pushes in minting order, so stale tokens (old age or old generation) are at
                    // the front.
                    while tokens
                        .front()
                        .is_some_and(|m| !shared.is_fresh(m, minted_at, generation))
                    {
                        tokens.pop_front();
                    }
                    if let Some(oldest) = tokens.front() {
                        let stale_in = (oldest.minted_at + shared.max_age)
                            .saturating_duration_since(minted_at);
                        sleep = sleep.min(stale_in);
                    }
                    shared.depth.saturating_sub(tokens.len())
                };
                if missing == 0 {
                    break;
                }
                let Ok(token) = shared
                    .minter
                    .mint(shared.clock.now_secs(), Some(&slot.uri.as_ref()))
                else {
                    break; // the OS generator failed: consumers mint on the spot (and see the error) meanwhile
                };
                let minted = Minted {
                    token,
                    minted_at,
                    generation,
                };
                slot.tokens
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push_back(minted);
            }
        }
        thread::park_timeout(sleep.max(Duration::from_millis(1)));
    }
}

/// Put the calling thread (the refill thread) in the idle scheduling class.
///
/// A consumer wakes the thread when it takes a pool below half. At normal priority the woken thread may be
/// run at once on the consumer's own CPU, preempting the order path for a whole refill (a few hundred
/// microseconds of minting, measured as the tail of tick-to-wire). Idle class threads never preempt
/// others: minting uses spare CPU only, and if there is none a consumer mints on the spot, as without a pool.
#[cfg(target_os = "linux")]
#[allow(
    unsafe_code,
    reason = "sched_setscheduler has no safe wrapper in std; a plain syscall on the calling thread"
)]
fn run_on_spare_cpu_only() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid, initialised sched_param that outlives the call.
    // A failure (e.g. a seccomp filter) leaves the thread at normal priority, which is still correct.
    let _ = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
}

#[cfg(not(target_os = "linux"))]
fn run_on_spare_cpu_only() {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;
    use std::collections::HashSet;

    fn pool(depth: usize, max_age: f64) -> (Premint, Arc<Clock>) {
        let minter = Arc::new(
            TokenMinter::new("k", PrivateKey::from_ed25519_seed(&[5u8; 32]).unwrap()).unwrap(),
        );
        let clock = Arc::new(Clock::new());
        let uri =
            OwnedRequestUri::new("POST", "/api/v3/brokerage/orders", "api.coinbase.com").unwrap();
        let config = PremintConfig::new(vec![uri], depth, max_age).unwrap();
        (
            Premint::start(minter, Arc::clone(&clock), config).unwrap(),
            clock,
        )
    }

    fn wait_until(mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready() {
            assert!(Instant::now() < deadline, "pool never filled");
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn fills_hands_out_each_token_once_and_stops() {
        let (premint, _) = pool(8, 30.0);
        let uri = RequestUri::new(
            "post",
            "/api/v3/brokerage/orders?ignored",
            "api.coinbase.com",
        )
        .unwrap();
        wait_until(|| premint.ready(&uri) == Some(8));
        let mut seen = HashSet::new();
        for _ in 0..200 {
            if let Some(token) = premint.take(&uri) {
                assert!(seen.insert(token));
            }
        }
        assert!(!seen.is_empty());
        let other = RequestUri::new("GET", "/api/v3/brokerage/orders", "api.coinbase.com").unwrap();
        assert_eq!(premint.take(&other), None);
        premint.stop();
        premint.stop();
    }

    #[test]
    fn clock_change_and_age_retire_tokens() {
        let (premint, clock) = pool(4, 0.05);
        let uri = RequestUri::new("POST", "/api/v3/brokerage/orders", "api.coinbase.com").unwrap();
        wait_until(|| premint.ready(&uri) == Some(4));
        clock.set_offset(30.0).unwrap();
        assert_eq!(
            premint.ready(&uri),
            Some(0),
            "tokens on the old clock must not be handed out"
        );
        premint.wake();
        wait_until(|| premint.ready(&uri) == Some(4));
        let generation = clock.generation();
        thread::sleep(Duration::from_millis(60));
        // Whatever is handed out now was minted within max_age on the current clock.
        if let Some(token) = premint.take(&uri) {
            assert!(!token.is_empty());
        }
        assert_eq!(clock.generation(), generation);
    }

    #[test]
    fn config_is_validated() {
        let uri = OwnedRequestUri::new("POST", "/x", "h").unwrap();
        assert!(PremintConfig::new(vec![], 1, 1.0).is_err());
        assert!(PremintConfig::new(vec![uri.clone()], 0, 1.0).is_err());
        assert!(PremintConfig::new(vec![uri.clone()], 1, 0.0).is_err());
        assert!(PremintConfig::new(vec![uri.clone()], 1, 101.0).is_err());
        assert!(PremintConfig::new(vec![uri.clone()], 1, f64::NAN).is_err());
        assert_eq!(
            PremintConfig::new(vec![uri.clone(), uri], 1, 1.0)
                .unwrap()
                .uris
                .len(),
            1
        );
    }
}
