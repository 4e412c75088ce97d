//! The exchange's clock as the signer sees it: local time plus a measured offset, and a generation that
//! changes with every offset change so that tokens minted on the old clock can be recognised and dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Result, SignerError};

#[derive(Debug, Default)]
pub struct Clock {
    offset_bits: AtomicU64,
    generation: AtomicU64,
}

impl Clock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Seconds to add to local time to get the exchange's time.
    pub fn offset(&self) -> f64 {
        f64::from_bits(self.offset_bits.load(Ordering::Acquire))
    }

    pub fn set_offset(&self, seconds: f64) -> Result<()> {
        if !seconds.is_finite() || seconds.abs() > 86_400.0 * 365.0 {
            return Err(SignerError::InvalidArgument(
                "clock_offset must be a finite number of seconds",
            ));
        }
        // Offset first, generation second: whoever sees the new generation also sees the new offset.
        self.offset_bits.store(seconds.to_bits(), Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The exchange's time in seconds since the epoch, as a float.
    pub fn now(&self) -> f64 {
        let local = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        local + self.offset()
    }

    /// The exchange's time in whole seconds (a token's `nbf`).
    pub fn now_secs(&self) -> i64 {
        // Truncation is the intent: `nbf` is an integer second, never in the exchange's future.
        self.now().floor() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_shifts_time_and_bumps_generation() {
        let clock = Clock::new();
        let before = clock.now_secs();
        let generation = clock.generation();
        clock.set_offset(1000.5).unwrap();
        assert!(clock.now_secs() >= before + 1000);
        assert_eq!(clock.generation(), generation + 1);
        assert!(clock.set_offset(f64::NAN).is_err());
        assert!(clock.set_offset(f64::INFINITY).is_err());
    }
}
