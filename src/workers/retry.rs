//! The retry schedule of deliveries: exponential backoff from 200 ms,
//! doubling, capped (`AKM_RETRY_MAX_MS`), ±20 % jitter that never exceeds
//! the cap. A handler answers `Flow::RetryAfter(schedule.next(attempt))` (or
//! the peer's `Retry-After`), and the consume loop waits, not the handler.

use std::time::Duration;

/// The retry schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// The first wait (before jitter).
    pub first: Duration,
    /// The longest wait.
    pub cap: Duration,
    /// Relative jitter: 0.2 is ±20 %.
    pub jitter: f64,
}

impl Schedule {
    /// 200 ms, doubling, ±20 %, capped at `cap`.
    pub fn new(cap: Duration) -> Self {
        Schedule {
            first: Duration::from_millis(200).min(cap),
            cap,
            jitter: 0.2,
        }
    }

    /// The wait before retry `n` (0 = the first retry) without jitter:
    /// `first * 2^n`, at most the cap.
    pub fn base(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n.min(31));
        self.first.saturating_mul(factor).min(self.cap)
    }

    /// The wait before retry `n` with jitter `u` in `[0, 1)`: the base
    /// scaled by `1 - jitter + 2 * jitter * u`, at most the cap.
    pub fn delay(&self, n: u32, u: f64) -> Duration {
        let scale = 1.0 - self.jitter + 2.0 * self.jitter * u.clamp(0.0, 1.0);
        self.base(n).mul_f64(scale).min(self.cap)
    }

    /// The wait before retry `n`, with random jitter.
    pub fn next(&self, n: u32) -> Duration {
        self.delay(n, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn the_first_interval_is_200ms_and_it_doubles() {
        let s = Schedule::new(MS(60_000));
        assert_eq!(
            (0..5).map(|n| s.base(n)).collect::<Vec<_>>(),
            [MS(200), MS(400), MS(800), MS(1600), MS(3200)]
        );
        // the middle of the jitter range is the base
        assert_eq!(s.delay(0, 0.5), MS(200));
    }

    #[test]
    fn the_cap_bounds_every_wait_with_or_without_jitter() {
        let s = Schedule::new(MS(1000));
        assert_eq!(s.base(3), MS(1000));
        assert_eq!(s.base(u32::MAX), MS(1000));
        for u in [0.0, 0.5, 0.999_999] {
            assert!(s.delay(10, u) <= MS(1000), "{u}");
        }
        // a cap below the first interval lowers the first interval
        assert_eq!(Schedule::new(MS(50)).base(0), MS(50));
    }

    #[test]
    fn jitter_is_plus_minus_twenty_percent() {
        let s = Schedule::new(MS(60_000));
        assert_eq!(s.delay(2, 0.0), MS(640));
        assert_eq!(s.delay(2, 1.0), MS(960));
        for _ in 0..1000 {
            let d = s.next(2);
            assert!(d >= MS(640) && d <= MS(960), "{d:?}");
        }
    }
}
