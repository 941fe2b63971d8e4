//! Adaptive concurrency for the runner (run stage, between the plan and the HTTP
//! transport): how many checks run at once when `--jobs` is not given. It finds the
//! target's knee instead of a fixed multiple of the CPU count: it climbs while the
//! answers per second climb, settles where one more in flight no longer pays, and
//! backs off at once when the target answers 429 or 503 or stops answering, so
//! a slow target is not overrun and a fast one is not starved. `--jobs N` pins it
//! ([`Limiter::fixed`]).
//!
//! Why throughput and not latency: on a CPU-bound machine (tool and target sharing the
//! cores) latency doubles long before the rate stops rising (more in flight batches
//! the syscalls), so a latency rule either starves a fast target or, with a baseline
//! taken while connections were still being opened, never backs off at all.
//!
//! The controller ([`Limiter`]) is pure (the caller passes the time of each answer) so
//! its behaviour is tested deterministically; [`Gate`] applies its limit to a
//! `tokio::sync::Semaphore`. Decisions are taken once per *round*: at least
//! [`Config::min_round`] answers and twice the limit, so the pipeline has refilled after
//! a change and one slow answer does not decide.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What an answer says about the target's load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// An answer (any status but 429 and 503): it counts towards the rate.
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
    /// A higher limit is kept only when it raised the rate by at least this fraction (a
    /// lower one is taken when it lost nothing): more in flight must pay for itself.
    pub gain: f64,
    /// The fewest answers a round has.
    pub min_round: usize,
    /// The shortest a round lasts: a rate over a few milliseconds is the scheduler's
    /// noise, not the target's.
    pub min_round_time: Duration,
    /// Rounds at the settled limit between two probes (alternately up and down).
    pub probe_every: usize,
    /// The factor applied on a 429/503 or a failure.
    pub overload_backoff: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            initial: 4,
            min: 1,
            max: 64,
            gain: 0.05,
            min_round: 32,
            min_round_time: Duration::from_millis(50),
            probe_every: 4,
            overload_backoff: 0.5,
        }
    }
}

/// The limit controller: doubles while the rate rises (slow start), then holds the
/// best limit, probing a quarter up and a quarter down now and then (hill climbing on
/// the answers per second: up is kept when it gains [`Config::gain`], down when it
/// loses nothing); halves on overload.
#[derive(Clone, Debug)]
pub struct Limiter {
    cfg: Config,
    limit: usize,
    pinned: bool,
    slow_start: bool,
    /// The settled limit and its rate (answers per second, smoothed).
    best: Option<(usize, f64)>,
    /// When the round's first answer came, and how many answers since.
    round_start: Option<Duration>,
    round_len: usize,
    /// Rounds at the settled limit since the last probe, and the direction of the next.
    held: usize,
    probe_up: bool,
}

impl Limiter {
    /// An adaptive limiter.
    pub fn new(cfg: Config) -> Limiter {
        let min = cfg.min.max(1);
        let cfg = Config {
            min,
            max: cfg.max.max(min),
            min_round: cfg.min_round.max(1),
            ..cfg
        };
        Limiter {
            limit: cfg.initial.clamp(cfg.min, cfg.max),
            cfg,
            pinned: false,
            slow_start: true,
            best: None,
            round_start: None,
            round_len: 0,
            held: 0,
            probe_up: true,
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

    /// The settled limit and its rate in answers per second, once a round has ended.
    pub fn best(&self) -> Option<(usize, f64)> {
        self.best
    }

    /// Records one answer that came at `at` (any clock that only moves forward, e.g.
    /// the time since the run started); returns the limit after it.
    pub fn record(&mut self, at: Duration, signal: Signal) -> usize {
        if self.pinned {
            return self.limit;
        }
        if signal != Signal::Answered {
            // Acted on at once: waiting for the round would keep sending at the rate
            // the target just refused. The rate is measured again from there.
            let shrunk = (self.limit as f64 * self.cfg.overload_backoff).floor() as usize;
            self.set(shrunk);
            self.slow_start = false;
            self.best = None;
            return self.limit;
        }
        let start = *self.round_start.get_or_insert(at);
        self.round_len += 1;
        let elapsed = at.saturating_sub(start);
        // Slow start only asks whether doubling paid (by `gain`): its rounds may be a
        // quarter as long, so a short run against a fast target is not spent at 2 or
        // 4 in flight. The answer count still bounds a slow target's round.
        let min_time = if self.slow_start {
            self.cfg.min_round_time / 4
        } else {
            self.cfg.min_round_time
        };
        if self.round_len >= self.cfg.min_round.max(2 * self.limit) && elapsed >= min_time {
            // Answers after the first over the time since it.
            let secs = elapsed.as_secs_f64().max(1e-6);
            let rate = (self.round_len - 1) as f64 / secs;
            self.end_round(rate);
        }
        self.limit
    }

    fn set(&mut self, limit: usize) {
        self.limit = limit.clamp(self.cfg.min, self.cfg.max);
        self.round_start = None;
        self.round_len = 0;
    }

    fn step(&self) -> usize {
        (self.limit / 4).max(1)
    }

    fn end_round(&mut self, rate: f64) {
        self.round_start = None;
        self.round_len = 0;
        let gain = self.cfg.gain;
        let Some((best, best_rate)) = self.best else {
            self.best = Some((self.limit, rate));
            return self.grow();
        };
        if self.limit == best {
            // Holding: the rate is smoothed, so one noisy round neither pins nor drops it.
            self.best = Some((best, 0.5 * best_rate + 0.5 * rate));
            self.held += 1;
            if self.held >= self.cfg.probe_every {
                self.held = 0;
                let step = self.step();
                let probe = if self.probe_up {
                    best + step
                } else {
                    best.saturating_sub(step)
                };
                self.probe_up = !self.probe_up;
                self.set(probe);
            }
        } else if self.limit > best && rate >= best_rate * (1.0 + gain) {
            self.best = Some((self.limit, rate));
            self.grow();
        } else if self.limit < best && rate >= best_rate {
            // As good with fewer in flight: less load on the target for the same rate.
            self.best = Some((self.limit, rate));
        } else {
            self.slow_start = false;
            self.set(best);
        }
    }

    fn grow(&mut self) {
        let grown = if self.slow_start {
            self.limit * 2
        } else {
            self.limit + self.step()
        };
        if grown.min(self.cfg.max) == self.limit {
            // At the maximum: settle there.
            self.slow_start = false;
            return;
        }
        self.set(grown);
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
    /// The clock the limiter's answers are timed on.
    started: Instant,
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
            started: Instant::now(),
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
    /// Records one answer (any request of any check: the HTTP client calls this for
    /// every answer and every transport error) and resizes the gate. The latency is
    /// not what decides (the rate of answers is); it is kept for the callers' sake.
    pub fn record(&self, _latency: Duration, signal: Signal) {
        let mut st = self.lock();
        let before = st.limiter.limit();
        let at = self.started.elapsed();
        st.limiter.record(at, signal);
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

    /// Answers per second of a target with `capacity` workers of `service` each, at
    /// `n` in flight. Past the knee the rate stays flat, or with `thrash` > 0 falls (a
    /// small app overrun: context switches, a connection per request).
    fn rate(n: usize, capacity: usize, service: Duration, thrash: f64) -> f64 {
        let per = 1.0 / service.as_secs_f64();
        if n <= capacity {
            n as f64 * per
        } else {
            capacity as f64 * per / (1.0 + thrash * (n - capacity) as f64 / capacity as f64)
        }
    }

    /// The default configuration without the minimum round time (simulated rounds are
    /// counted in answers).
    fn cfg() -> Config {
        Config {
            min_round_time: Duration::ZERO,
            ..Config::default()
        }
    }

    /// Feeds `answers` answers timed as such a target would give them; the limit after
    /// each.
    fn simulate(
        l: &mut Limiter,
        answers: usize,
        capacity: usize,
        service: Duration,
        thrash: f64,
    ) -> Vec<usize> {
        let mut at = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..answers {
            at += Duration::from_secs_f64(1.0 / rate(l.limit(), capacity, service, thrash));
            seen.push(l.record(at, Signal::Answered));
        }
        seen
    }

    #[test]
    fn grows_while_the_rate_rises_up_to_the_maximum() {
        let mut l = Limiter::new(cfg());
        let seen = simulate(&mut l, 5_000, 1_000, ms(5), 0.0);
        assert_eq!(seen[0], 4, "{seen:?}");
        assert!(
            seen.contains(&8) && seen.contains(&16),
            "slow start doubles"
        );
        assert_eq!(l.limit(), 64);
    }

    #[test]
    fn settles_at_a_slow_targets_knee() {
        // Four workers of 300 ms: more than four in flight only queues.
        let mut l = Limiter::new(cfg());
        let seen = simulate(&mut l, 3_000, 4, ms(300), 0.0);
        let tail = &seen[1_000..];
        assert!(
            tail.iter().all(|n| (3..=5).contains(n)),
            "stays at the knee (4), probing one up and down: {:?}",
            &tail[..50]
        );
        let at_knee = tail.iter().filter(|n| **n == 4).count();
        assert!(at_knee * 10 >= tail.len() * 6, "mostly at 4: {at_knee}");
    }

    #[test]
    fn does_not_overrun_a_target_that_degrades_past_its_knee() {
        let mut l = Limiter::new(cfg());
        let seen = simulate(&mut l, 3_000, 4, ms(300), 1.0);
        assert!(
            seen[1_000..].iter().all(|n| (3..=5).contains(n)),
            "{seen:?}"
        );
    }

    #[test]
    fn a_fast_target_is_not_starved() {
        let mut l = Limiter::new(cfg());
        let seen = simulate(&mut l, 20_000, 32, ms(1), 0.0);
        assert!(
            seen[5_000..].iter().all(|n| (24..=40).contains(n)),
            "{:?}",
            &seen[5_000..5_100]
        );
    }

    #[test]
    fn a_flat_plateau_is_left_at_its_lower_edge() {
        // A CPU-bound pair of tool and target: the rate rises to 8 in flight, then
        // stays flat; holding more in flight only adds latency.
        let mut l = Limiter::new(cfg());
        let seen = simulate(&mut l, 20_000, 8, ms(1), 0.0);
        assert!(
            seen[5_000..].iter().all(|n| (6..=10).contains(n)),
            "{seen:?}"
        );
    }

    #[test]
    fn backs_off_at_once_on_429_and_503_and_failures() {
        let mut l = Limiter::new(Config {
            initial: 32,
            ..cfg()
        });
        assert_eq!(l.record(ms(1), Signal::of_status(429)), 16);
        assert_eq!(l.record(ms(2), Signal::of_status(503)), 8);
        assert_eq!(l.record(ms(3), Signal::Failed), 4);
        assert_eq!(Signal::of_status(404), Signal::Answered);
        for i in 0..10 {
            l.record(ms(4 + i), Signal::Overloaded);
        }
        assert_eq!(l.limit(), 1, "never below the minimum");
        // After a back-off the growth is additive: one more after a round.
        for i in 0..32 {
            l.record(ms(100 + i), Signal::Answered);
        }
        assert_eq!(l.limit(), 2);
    }

    #[test]
    fn a_round_lasts_at_least_the_minimum_time() {
        let mut l = Limiter::new(Config::default());
        // 1,000 answers within 10 ms: no decision yet (slow start: a quarter of 50 ms).
        for i in 0..1_000 {
            l.record(Duration::from_micros(10 * i), Signal::Answered);
        }
        assert_eq!(l.limit(), 4);
        l.record(ms(13), Signal::Answered);
        assert_eq!(l.limit(), 8);
        // Out of slow start (a 429), a round lasts the whole minimum time.
        l.record(ms(14), Signal::Overloaded);
        assert_eq!(l.limit(), 4);
        for i in 0..1_000 {
            l.record(ms(15) + Duration::from_micros(10 * i), Signal::Answered);
        }
        l.record(ms(40), Signal::Answered);
        assert_eq!(l.limit(), 4, "25 ms is not a round");
        l.record(ms(70), Signal::Answered);
        assert_eq!(l.limit(), 5, "a whole round: one step up, not a doubling");
    }

    #[test]
    fn a_pinned_limit_never_moves() {
        let mut l = Limiter::fixed(4);
        for i in 0..100 {
            l.record(ms(i), Signal::Answered);
        }
        l.record(ms(900), Signal::Overloaded);
        assert_eq!(l.limit(), 4);
        assert_eq!(Limiter::fixed(0).limit(), 1);
    }

    #[tokio::test]
    async fn the_gate_follows_the_limit_without_losing_slots() {
        let gate = Gate::new(Limiter::new(Config {
            initial: 4,
            min_round: 1,
            ..cfg()
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
        // Growth adds slots: a round (twice the limit) measures the rate, then one
        // more (additive after a back-off).
        for _ in 0..4 {
            gate.acquire().await.done(ms(1), Signal::Answered);
        }
        assert_eq!(gate.limit(), 3);
        assert_eq!(gate.sem.available_permits(), 3);
    }
}
