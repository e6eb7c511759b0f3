//! The desk's clock: the system time, plus an offset that only tests move. Rules that expire
//! something (the one-time admin password, API tokens) read the time here, so a test can move
//! the clock by a day instead of waiting one. The offset is shared by every clone of the
//! settings, so a test and the app it started read the same time.

use chrono::{DateTime, Duration, NaiveDateTime, SubsecRound, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_micros: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::microseconds(self.offset_micros.load(Ordering::Relaxed))
    }

    /// Now as the database stores it (UTC, to the microsecond).
    pub fn naive_now(&self) -> NaiveDateTime {
        self.now().naive_utc().trunc_subsecs(6)
    }

    /// Moves this clock (and every clone of it) forward by `by`.
    pub fn advance(&self, by: Duration) {
        let micros = by.num_microseconds().unwrap_or(i64::MAX);
        self.offset_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_moved_time() {
        let clock = Clock::default();
        let copy = clock.clone();
        copy.advance(Duration::hours(25));
        let ahead = clock.now() - Utc::now();
        assert!(ahead > Duration::hours(24), "{ahead}");
    }
}
