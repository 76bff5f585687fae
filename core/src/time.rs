//! Time as the caller supplies it. The core never reads a clock.

use core::time::Duration;

/// A monotonic instant: microseconds since an epoch the adapter chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(pub u64);

impl Instant {
    /// The instant `d` after `self` (saturating).
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Self {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(micros))
    }

    /// How long after `earlier` this instant is (zero if it is before).
    #[must_use]
    pub fn saturating_since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

/// Wall-clock time in seconds since the Unix epoch, used only for expiries and certificate validity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(pub u64);

/// The current time, passed to every mutating call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Now {
    /// Monotonic time, for timers.
    pub mono: Instant,
    /// Wall-clock time, for expiries.
    pub unix: UnixTime,
}

impl Now {
    /// A `Now` from the standard clocks, with `epoch` as the monotonic origin.
    #[cfg(feature = "std")]
    #[must_use]
    pub fn from_std(epoch: std::time::Instant) -> Self {
        let mono = Instant(u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX));
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            mono,
            unix: UnixTime(unix),
        }
    }
}
