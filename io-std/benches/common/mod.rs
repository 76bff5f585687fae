//! Timing shared by the benches (`throughput`, `handshake_ecdhe`): repetitions of a fixed
//! length, ours and OpenSSL's interleaved, medians with their range. Settings:
//! `M2MSEC_BENCH_REP_MS` (default 500) and `M2MSEC_BENCH_REPS` (default 5).

use std::time::{Duration, Instant};

pub(crate) struct Timer {
    pub(crate) rep: Duration,
    pub(crate) reps: usize,
}

impl Timer {
    pub(crate) fn from_env() -> Self {
        let ms = std::env::var("M2MSEC_BENCH_REP_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(500);
        let reps = std::env::var("M2MSEC_BENCH_REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5usize)
            .max(1);
        Self {
            rep: Duration::from_millis(ms),
            reps,
        }
    }

    /// Iterations per second of one repetition of `f` (called in batches of `batch`).
    fn once(&self, batch: u64, f: &mut dyn FnMut()) -> f64 {
        let start = Instant::now();
        let mut n = 0u64;
        loop {
            for _ in 0..batch {
                f();
            }
            n += batch;
            let el = start.elapsed();
            if el >= self.rep {
                return n as f64 / el.as_secs_f64();
            }
        }
    }

    /// Medians of iterations per second of `a` and `b`, their repetitions interleaved so that
    /// drift in machine load hits both alike. Each is warmed up first.
    pub(crate) fn pair(
        &self,
        batch: u64,
        a: &mut dyn FnMut(),
        b: &mut dyn FnMut(),
    ) -> (Stat, Stat) {
        for _ in 0..batch.max(8) {
            a();
            b();
        }
        let (mut ra, mut rb) = (Vec::new(), Vec::new());
        for _ in 0..self.reps {
            ra.push(self.once(batch, a));
            rb.push(self.once(batch, b));
        }
        (Stat::of(ra), Stat::of(rb))
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Stat {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Stat {
    pub(crate) fn of(mut v: Vec<f64>) -> Self {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Self {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }
}
