//! Adaptive concurrency for the runner (run stage, between the plan and the HTTP
//! transport): how many checks run at once when `--jobs` is not given. It finds the
//! target's knee instead of a fixed multiple of the CPU count: it grows while latency
//! holds, and backs off when latency climbs or the target answers 429 or 503, so a slow
//! target is not overrun and a fast one is not starved. `--jobs N` pins it
//! ([`Limiter::fixed`]).
//!
//! The controller ([`Limiter`]) is pure (no clock, no I/O) so its behaviour is tested
//! deterministically; [`Gate`] applies its limit to a `tokio::sync::Semaphore`.
//! Decisions are taken once per *round* (as many answers as the limit allowed in
//! flight), on the round's median latency compared with the lowest round median seen
//! (the target's latency with no queue in front of it).

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What an answer says about the target's load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// An answer (any status but 429 and 503): its latency counts.
    Answered,
    /// 429 or 503: the target asks for less; back off at once.
    Overloaded,
    /// A timeout or a transport error: counted as overload (a target that stops
    /// answering is not one to push harder).
    Failed,
}

impl Signal {
    /// The signal of an HTTP status.
    pub fn of_status(status: u16) -> Signal {
        match status {
            429 | 503 => Signal::Overloaded,
            _ => Signal::Answered,
        }
    }
}

/// The controller's bounds and thresholds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// The first limit.
    pub initial: usize,
    /// Never fewer in flight.
    pub min: usize,
    /// Never more in flight.
    pub max: usize,
    /// A round whose median latency is above `baseline × tolerance` backs off.
    pub tolerance: f64,
    /// The factor applied on a latency climb (multiplicative decrease).
    pub backoff: f64,
    /// The factor applied on a 429/503 or a failure.
    pub overload_backoff: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            initial: 4,
            min: 1,
            max: 64,
            tolerance: 1.5,
            backoff: 0.75,
            overload_backoff: 0.5,
        }
    }
}

/// The limit controller. Slow start (doubling) until the first back-off, then one more
/// per round while latency holds (additive increase, multiplicative decrease).
#[derive(Clone, Debug)]
pub struct Limiter {
    cfg: Config,
    limit: usize,
    pinned: bool,
    slow_start: bool,
    /// The lowest round median seen: the latency without queueing.
    baseline: Option<Duration>,
    round: Vec<Duration>,
    overloaded: bool,
}

impl Limiter {
    /// An adaptive limiter.
    pub fn new(cfg: Config) -> Limiter {
        let min = cfg.min.max(1);
        let cfg = Config {
            min,
            max: cfg.max.max(min),
            ..cfg
        };
        Limiter {
            limit: cfg.initial.clamp(cfg.min, cfg.max),
            cfg,
            pinned: false,
            slow_start: true,
            baseline: None,
            round: Vec::new(),
            overloaded: false,
        }
    }

    /// A limit that never changes (`--jobs N`).
    pub fn fixed(n: usize) -> Limiter {
        let n = n.max(1);
        Limiter {
            pinned: true,
            ..Limiter::new(Config {
                initial: n,
                min: n,
                max: n,
                ..Config::default()
            })
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The latency taken as "no queue" so far.
    pub fn baseline(&self) -> Option<Duration> {
        self.baseline
    }

    /// Records one answer; returns the limit after it.
    pub fn record(&mut self, latency: Duration, signal: Signal) -> usize {
        if self.pinned {
            return self.limit;
        }
        match signal {
            Signal::Answered => self.round.push(latency),
            Signal::Overloaded | Signal::Failed => self.overloaded = true,
        }
        // An overload is acted on at once: waiting for the round would keep sending at
        // the rate the target just refused.
        if self.overloaded {
            self.decrease(self.cfg.overload_backoff);
        } else if self.round.len() >= self.limit {
            self.end_round();
        }
        self.limit
    }

    fn end_round(&mut self) {
        let mut r = std::mem::take(&mut self.round);
        r.sort();
        let median = r[r.len() / 2];
        let baseline = *self.baseline.get_or_insert(median);
        if median.as_secs_f64() > baseline.as_secs_f64() * self.cfg.tolerance {
            self.decrease(self.cfg.backoff);
            return;
        }
        self.baseline = Some(baseline.min(median));
        let grown = if self.slow_start {
            self.limit * 2
        } else {
            self.limit + 1
        };
        self.limit = grown.min(self.cfg.max);
    }

    fn decrease(&mut self, factor: f64) {
        self.slow_start = false;
        self.overloaded = false;
        self.round.clear();
        let shrunk = (self.limit as f64 * factor).floor() as usize;
        self.limit = shrunk.clamp(self.cfg.min, self.cfg.max);
    }
}

struct GateState {
    limiter: Limiter,
    /// Permits handed out that must be forgotten instead of returned (the limit
    /// dropped below the number in flight).
    debt: usize,
}

/// A limiter applied to a semaphore: [`Gate::acquire`] waits for a slot (one per
/// check); [`Gate::record`] takes every answer's latency; dropping the [`Permit`]
/// frees the slot (or retires it when the limit dropped). Cloning shares the gate.
#[derive(Clone)]
pub struct Gate {
    sem: Arc<tokio::sync::Semaphore>,
    state: Arc<Mutex<GateState>>,
}

/// One slot in flight.
pub struct Permit {
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    gate: Gate,
}

impl Gate {
    /// A gate starting at the limiter's limit.
    pub fn new(limiter: Limiter) -> Gate {
        Gate {
            sem: Arc::new(tokio::sync::Semaphore::new(limiter.limit())),
            state: Arc::new(Mutex::new(GateState { limiter, debt: 0 })),
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.lock().limiter.limit()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot. The semaphore is never closed, so this only waits.
    pub async fn acquire(&self) -> Permit {
        let permit = self.sem.clone().acquire_owned().await.ok();
        Permit {
            permit,
            gate: self.clone(),
        }
    }

    fn apply(&self, st: &mut GateState, before: usize) {
        let after = st.limiter.limit();
        if after > before {
            // Growth first pays back slots still owed by an earlier drop.
            let grow = after - before;
            let paid = grow.min(st.debt);
            st.debt -= paid;
            self.sem.add_permits(grow - paid);
        } else if after < before {
            let shrink = before - after;
            let forgotten = self.sem.forget_permits(shrink);
            st.debt += shrink - forgotten;
        }
    }
}

impl Gate {
    /// Records one answer (any request of any check: the runner's `Sender` calls this
    /// for every answer and every transport error) and resizes the gate.
    pub fn record(&self, latency: Duration, signal: Signal) {
        let mut st = self.lock();
        let before = st.limiter.limit();
        st.limiter.record(latency, signal);
        self.apply(&mut st, before);
    }
}

impl Permit {
    /// Records one answer ([`Gate::record`]) and frees the slot.
    pub fn done(self, latency: Duration, signal: Signal) {
        self.gate.record(latency, signal);
    }

    fn release(&mut self, st: &mut GateState) {
        // Returned to the semaphore when dropped here, unless a slot is owed.
        if let Some(p) = self.permit.take()
            && st.debt > 0
        {
            st.debt -= 1;
            p.forget();
        }
    }
}

impl Drop for Permit {
    /// Dropping a permit frees its slot, or retires it while the limit is below the
    /// number in flight; also after a panic or a cancelled check (without a sample).
    fn drop(&mut self) {
        if self.permit.is_some() {
            let gate = self.gate.clone();
            let mut st = gate.lock();
            self.release(&mut st);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A target with `capacity` workers of `service` each: latency grows with the
    /// queue once more than `capacity` requests are in flight.
    fn latency_at(inflight: usize, capacity: usize, service: Duration) -> Duration {
        service.mul_f64((inflight as f64 / capacity as f64).max(1.0))
    }

    fn simulate(l: &mut Limiter, rounds: usize, capacity: usize, service: Duration) -> Vec<usize> {
        let mut seen = Vec::new();
        for _ in 0..rounds {
            let n = l.limit();
            for _ in 0..n {
                l.record(latency_at(n, capacity, service), Signal::Answered);
            }
            seen.push(l.limit());
        }
        seen
    }

    #[test]
    fn grows_while_latency_holds_up_to_the_maximum() {
        let mut l = Limiter::new(Config::default());
        let seen = simulate(&mut l, 20, 1000, ms(5));
        assert_eq!(seen[0], 8, "slow start doubles: {seen:?}");
        assert_eq!(l.limit(), 64, "{seen:?}");
    }

    #[test]
    fn settles_near_a_slow_targets_knee() {
        // Four workers of 300 ms: more than four in flight only queues.
        let mut l = Limiter::new(Config::default());
        let seen = simulate(&mut l, 60, 4, ms(300));
        let tail = &seen[30..];
        assert!(
            tail.iter().all(|n| (3..=8).contains(n)),
            "stays within twice the knee (4): {seen:?}"
        );
    }

    #[test]
    fn a_fast_target_is_not_starved() {
        let mut l = Limiter::new(Config::default());
        let seen = simulate(&mut l, 60, 32, ms(1));
        assert!(seen[40..].iter().all(|n| *n >= 16), "{seen:?}");
    }

    #[test]
    fn backs_off_at_once_on_429_and_503_and_failures() {
        let mut l = Limiter::new(Config {
            initial: 32,
            ..Config::default()
        });
        assert_eq!(l.record(ms(1), Signal::of_status(429)), 16);
        assert_eq!(l.record(ms(1), Signal::of_status(503)), 8);
        assert_eq!(l.record(ms(1), Signal::Failed), 4);
        assert_eq!(Signal::of_status(404), Signal::Answered);
        for _ in 0..10 {
            l.record(ms(1), Signal::Overloaded);
        }
        assert_eq!(l.limit(), 1, "never below the minimum");
        // After a back-off the growth is additive: one per round.
        for _ in 0..1 {
            l.record(ms(1), Signal::Answered);
        }
        assert_eq!(l.limit(), 2);
    }

    #[test]
    fn a_pinned_limit_never_moves() {
        let mut l = Limiter::fixed(4);
        for _ in 0..100 {
            l.record(ms(1), Signal::Answered);
        }
        l.record(ms(900), Signal::Overloaded);
        assert_eq!(l.limit(), 4);
        assert_eq!(Limiter::fixed(0).limit(), 1);
    }

    #[tokio::test]
    async fn the_gate_follows_the_limit_without_losing_slots() {
        let gate = Gate::new(Limiter::new(Config {
            initial: 4,
            ..Config::default()
        }));
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(gate.acquire().await);
        }
        assert_eq!(gate.sem.available_permits(), 0);
        // An overload halves the limit while four are in flight: two are owed.
        let mut held = held.into_iter();
        held.next().unwrap().done(ms(1), Signal::Overloaded);
        assert_eq!(gate.limit(), 2);
        // The first two slots back retire (that one included); then slots return.
        assert_eq!(gate.sem.available_permits(), 0);
        drop(held.next());
        assert_eq!(gate.sem.available_permits(), 0);
        drop(held.next());
        assert_eq!(gate.sem.available_permits(), 1);
        drop(held.next());
        assert_eq!(gate.sem.available_permits(), 2);
        // Growth adds slots.
        for _ in 0..2 {
            gate.acquire().await.done(ms(1), Signal::Answered);
        }
        assert_eq!(gate.limit(), 3);
        assert_eq!(gate.sem.available_permits(), 3);
    }
}
