//! The check stage's scheduling (run stage): non-writes concurrently (bounded by
//! `--jobs N`, or by the adaptive gate of [`super::adaptive`] without `--jobs`), then
//! writes — one at a time on each resource, in plan order, so a write that leaks cannot
//! be blamed on another check's change, concurrently on resources that do not overlap,
//! and a write waiting for its resource does not hold back the others — and results
//! emitted in plan order, the non-writes first (they run first).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::adaptive::{Config, Gate, Limiter};
use super::checks::{self, Ctx};
use super::emit::Emitter;
use super::options::Cancel;
use crate::outcome::CheckResult;
use crate::plan::CheckPlan;
use crate::suite::model::Identity;

/// How often the check stage reports progress while checks run (the terminal redraws
/// its counter at this pace, and prints a line every few seconds when not a terminal).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Runs the planned checks: non-writes concurrently (at most `jobs` at once; `None`:
/// as many as the adaptive gate allows), then writes, one at a time per resource;
/// emits results in plan order, the non-writes first. Returns true when interrupted.
/// On an interrupt no check starts; the running ones finish (each is bounded by the
/// timeout).
pub(crate) async fn run_checks(
    ctx: &Arc<Ctx>,
    plans: Vec<CheckPlan>,
    jobs: Option<usize>,
    cancel: &Cancel,
    em: &mut Emitter<'_>,
) -> bool {
    let n = plans.len();
    em.phase(format!("running {n} checks as org b"));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Vec<CheckResult>)>();
    let gate = Gate::new(match jobs {
        Some(n) => Limiter::fixed(n),
        None => Limiter::new(Config::default()),
    });
    // Every answer of the checks' client now resizes the gate (pinned: it never moves).
    ctx.http.set_gate(gate.clone());
    let started = Arc::new(AtomicUsize::new(0));
    // Which plans are writes, known before the feeder takes the plans: results are
    // emitted in plan order, the reads and lists first (they run first), then the
    // writes. (Holding every read's results until the writes before it had run kept
    // two thirds of a 10,000-check run in memory.)
    let is_write: Vec<bool> = plans.iter().map(CheckPlan::is_write).collect();
    // A feeder spawns each check only once it has a slot: spawned all at once, 10,000
    // waiting tasks (each sized for a whole check's state) held most of the run's memory.
    let feeder = {
        let (ctx, tx, gate, cancel) = (ctx.clone(), tx.clone(), gate.clone(), cancel.clone());
        let started = started.clone();
        tokio::spawn(async move {
            // The plans move, one by one, into their tasks; only the writes are kept
            // for later (no second copy of every plan).
            // Their resources are interned: many writes share them, and the write
            // stage compares them often.
            let mut writes = Vec::new();
            let mut resources = Resources::default();
            for (i, p) in plans.into_iter().enumerate() {
                if p.is_write() {
                    let res = resources.intern(write_resources(&ctx, &p));
                    writes.push(Waiting {
                        pos: writes.len(),
                        index: i,
                        plan: p,
                        res,
                    });
                    continue;
                }
                let permit = gate.acquire().await;
                started.fetch_add(1, Ordering::Relaxed);
                let (ctx, tx, cancel) = (ctx.clone(), tx.clone(), cancel.clone());
                tokio::spawn(async move {
                    // Held for the whole check; answers are recorded by the client.
                    let _permit = permit;
                    let results = if cancel.is_cancelled() {
                        Vec::new()
                    } else {
                        guarded(ctx, p).await
                    };
                    let _ = tx.send((i, results));
                });
            }
            (writes, resources)
        })
    };
    // The channel closes once every task has reported.
    drop(tx);
    let mut slots: BTreeMap<usize, Vec<CheckResult>> = BTreeMap::new();
    let mut next = 0usize;
    // A slow target must never look like a hung run: a progress line every few seconds.
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    let mut done = 0usize;
    loop {
        tokio::select! {
            got = rx.recv() => match got {
                Some((i, rs)) => {
                    done += 1;
                    slots.insert(i, rs);
                    emit_ready(&mut slots, &mut next, n, |i| !is_write[i], em);
                }
                None => break,
            },
            _ = tick.tick() => {
                let in_flight = started.load(Ordering::Relaxed).saturating_sub(done);
                em.progress(done, n, in_flight);
            }
        }
    }
    // The feeder has ended (the channel closed after its last check). It cannot panic;
    // if it did, its writes would be lost, so that is an error result, not a pass.
    let (writes, resources) = match feeder.await {
        Ok(w) => w,
        Err(e) => {
            em.result(crate::run::emit::setup_error(
                "setup/scheduler",
                "scheduler",
                format!("internal error in tenantgate's scheduler ({e}); please report it"),
                vec![],
                &ctx.redactor,
            ));
            (Vec::new(), Resources::default())
        }
    };
    // Writes: one at a time on each resource, in plan order; writes on resources that
    // do not overlap run concurrently (see `write_resources`). A write waiting for its
    // resource does not hold back the writes after it on other resources
    // (`next_startable`).
    let mut next = 0usize;
    let (wtx, mut wrx) = tokio::sync::mpsc::unbounded_channel::<(usize, Vec<CheckResult>)>();
    // The writes waiting, in the feeder's vector (no copy of every plan).
    let mut pending = VecDeque::from(writes);
    let mut running: Vec<Running> = Vec::new();
    // A slot taken but not used: no waiting write could start with it yet.
    let mut spare = None;
    loop {
        if cancel.is_cancelled() {
            spare = None;
            for w in pending.drain(..) {
                done += 1;
                slots.insert(w.index, Vec::new());
            }
        }
        // Start every write that may start now, earliest in plan order first. A slot
        // first: looking for a write is only worth it when one may start.
        while !pending.is_empty() {
            let permit = match spare.take() {
                Some(p) => p,
                None => gate.acquire().await,
            };
            // The writes that finished meanwhile free their resources first (else the
            // write after the one that just finished would wait a round).
            while let Ok((i, rs)) = wrx.try_recv() {
                finished(&mut running, &mut slots, &mut done, i, rs);
                emit_ready(&mut slots, &mut next, n, |i| is_write[i], em);
            }
            let waiting = pending.iter().map(|w| (w.pos, w.res));
            let Some(k) = resources.next_startable(waiting, &running) else {
                spare = Some(permit);
                break;
            };
            let Some(w) = pending.remove(k) else {
                break;
            };
            running.push(Running {
                index: w.index,
                pos: w.pos,
                res: w.res,
            });
            let (ctx, wtx, i) = (ctx.clone(), wtx.clone(), w.index);
            tokio::spawn(async move {
                let _permit = permit;
                let _ = wtx.send((i, guarded(ctx, w.plan).await));
            });
        }
        if running.is_empty() {
            // Nothing runs, so the first waiting write could start: none waits.
            break;
        }
        tokio::select! {
            got = wrx.recv() => {
                // Never closed while `wtx` lives; each task sends once.
                let Some((i, rs)) = got else { break };
                finished(&mut running, &mut slots, &mut done, i, rs);
                emit_ready(&mut slots, &mut next, n, |i| is_write[i], em);
            }
            _ = tick.tick() => em.progress(done, n, running.len()),
        }
    }
    emit_ready(&mut slots, &mut next, n, |i| is_write[i], em);
    em.progress(done, n, 0);
    if jobs.is_none() {
        // So a slow run can be told from a slow target.
        em.phase(format!("jobs: adaptive, {} at the end", gate.limit()));
    }
    cancel.is_cancelled()
}

/// The resources a write check may change or reads back, as URL paths (`None`: it must
/// run alone). Two write checks run concurrently only when no path of one equals or
/// contains a path of the other (`/items` contains `/items/1`), so the `verify` of one
/// cannot see the write of another; on a correct target B's writes change nothing, so
/// this never turns a pass into a failure. Alone: writes with an explicit control (it
/// may write as A), with variants that change the URL (`cross_scope`, `credential`),
/// and every other kind of write (mass assignment, unsafe requests, pool reuse).
fn write_resources(ctx: &Ctx, plan: &CheckPlan) -> Option<Vec<String>> {
    let checks::Kind::Write { write, verify } = &plan.kind else {
        return None;
    };
    if plan.control.is_some()
        || plan
            .variants
            .iter()
            .any(|v| !matches!(v, checks::Variant::Base | checks::Variant::Override(..)))
    {
        return None;
    }
    let w = ctx.prepare(write, Identity::B, None, None).ok()?;
    let v = ctx.prepare(verify, Identity::A, None, None).ok()?;
    Some(vec![path_of(&w.url), path_of(&v.url)])
}

/// The path of a rendered URL (relative or absolute), without query, fragment and
/// trailing `/`.
fn path_of(url: &str) -> String {
    let rest = match url.split_once("://") {
        Some((_, r)) => r.find('/').map_or("", |i| &r[i..]),
        None => url,
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let p = rest[..end].trim_end_matches('/');
    if p.starts_with('/') || p.is_empty() {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

/// Takes in a finished write: its resources are free, its results wait to be emitted.
fn finished(
    running: &mut Vec<Running>,
    slots: &mut BTreeMap<usize, Vec<CheckResult>>,
    done: &mut usize,
    i: usize,
    results: Vec<CheckResult>,
) {
    running.retain(|w| w.index != i);
    *done += 1;
    slots.insert(i, results);
}

/// A write check waiting for its turn.
struct Waiting {
    /// Its position among the suite's writes.
    pos: usize,
    /// Its position in the plan (results are emitted in that order).
    index: usize,
    plan: CheckPlan,
    /// Its resources ([`Resources`]).
    res: usize,
}

/// A write check running.
struct Running {
    index: usize,
    pos: usize,
    res: usize,
}

/// How far past the earliest write not finished (in the suite's order of writes) a
/// write may start, and so how many waiting writes the scheduler looks through for one
/// that may start. It bounds the scan (a suite of thousands of writes to one resource
/// must not be scanned whole after every write) and the results held: a write that
/// finishes early waits to be emitted, in plan order, until every write before it has.
const WRITE_LOOKAHEAD: usize = 64;

/// The write checks' resources ([`write_resources`]), each distinct set once.
#[derive(Default)]
struct Resources {
    sets: Vec<Option<Vec<String>>>,
    ids: HashMap<Option<Vec<String>>, usize>,
}

impl Resources {
    fn intern(&mut self, res: Option<Vec<String>>) -> usize {
        if let Some(&id) = self.ids.get(&res) {
            return id;
        }
        self.sets.push(res.clone());
        self.ids.insert(res, self.sets.len() - 1);
        self.sets.len() - 1
    }

    /// Whether writes on `a` and `b` may touch the same resource. A set always clashes
    /// with itself (it is `None`, or holds a path).
    fn clash(&self, a: usize, b: usize) -> bool {
        a == b || conflicts(&self.sets[a], &self.sets[b])
    }

    /// Which of the waiting writes (`(pos, res)`, in plan order) may start now: the
    /// first that clashes with no running write and with no write waiting before it, so
    /// that writes on one resource keep their plan order while a write waiting for its
    /// resource does not hold back the others. `None` when none may: within
    /// [`WRITE_LOOKAHEAD`] writes of the earliest one not finished, none can (a write
    /// that must run alone holds back every write after it).
    fn next_startable(
        &self,
        waiting: impl Iterator<Item = (usize, usize)>,
        running: &[Running],
    ) -> Option<usize> {
        let mut waiting = waiting.peekable();
        let first = waiting.peek()?.0;
        let horizon = running.iter().map(|r| r.pos).fold(first, usize::min) + WRITE_LOOKAHEAD;
        // The distinct resources of the writes passed over.
        let mut passed: Vec<usize> = Vec::new();
        for (k, (pos, res)) in waiting.enumerate() {
            if pos >= horizon {
                return None;
            }
            if passed.contains(&res) {
                continue;
            }
            if passed.iter().all(|&p| !self.clash(p, res))
                && running.iter().all(|r| !self.clash(r.res, res))
            {
                return Some(k);
            }
            // A write that must run alone (`None`) holds back every write after it.
            self.sets[res].as_ref()?;
            passed.push(res);
        }
        None
    }
}

/// Whether two writes may touch the same resource (either must run alone, or a path of
/// one equals or contains a path of the other).
fn conflicts(a: &Option<Vec<String>>, b: &Option<Vec<String>>) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        return true;
    };
    let within = |x: &str, y: &str| {
        x.strip_prefix(y)
            .is_some_and(|r| r.is_empty() || r.starts_with('/'))
    };
    a.iter()
        .any(|x| b.iter().any(|y| within(x, y) || within(y, x)))
}

/// Runs one check on its own task, so that a panic in it (a bug in tenantgate) becomes an
/// `error` result for each of its variants instead of a lost result or a hung run.
async fn guarded(ctx: Arc<Ctx>, plan: CheckPlan) -> Vec<CheckResult> {
    // Shared with the task, not copied: the plan is only read, and kept here to name
    // its variants if the task panics.
    let plan = Arc::new(plan);
    match tokio::spawn(checks::run_check(ctx.clone(), plan.clone())).await {
        Ok(results) => results,
        Err(e) => checks::all_error(
            &ctx,
            &plan,
            format!(
                "internal error in tenantgate while running this check ({e}); please report it"
            ),
        ),
    }
}

/// Emits, in plan order from `next` up to `n`, the results of the checks `this`
/// selects, as long as they are available (the others are passed over).
fn emit_ready(
    slots: &mut BTreeMap<usize, Vec<CheckResult>>,
    next: &mut usize,
    n: usize,
    this: impl Fn(usize) -> bool,
    em: &mut Emitter<'_>,
) {
    while *next < n {
        if this(*next) {
            match slots.remove(next) {
                Some(rs) => rs.into_iter().for_each(|r| em.result(r)),
                None => break,
            }
        }
        *next += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(paths: &[&str]) -> Option<Vec<String>> {
        Some(paths.iter().map(|p| path_of(p)).collect())
    }

    #[test]
    fn results_are_emitted_in_plan_order_non_writes_first_as_they_arrive() {
        use crate::outcome::{Event, Layer, Verdict};
        let one = |i: usize| {
            vec![CheckResult::new(
                format!("c{i}"),
                format!("c{i}"),
                "base",
                Layer::Http,
                Verdict::Pass,
                "ok",
            )]
        };
        // Plans 0..6; 1 and 4 are writes. The non-writes complete out of order.
        let is_write = [false, true, false, false, true, false];
        let n = is_write.len();
        let seen = std::sync::Mutex::new(Vec::<String>::new());
        let mut emitted_after_each = Vec::new();
        {
            let mut sink = |e: Event| {
                if let Event::Finished(r) = e {
                    seen.lock().unwrap().push(r.id);
                }
            };
            let mut em =
                Emitter::start(&mut sink, crate::report::tests::info(), &Default::default());
            let (mut slots, mut next) = (BTreeMap::new(), 0usize);
            for i in [3, 0, 5, 2] {
                slots.insert(i, one(i));
                emit_ready(&mut slots, &mut next, n, |i| !is_write[i], &mut em);
                emitted_after_each.push(seen.lock().unwrap().len());
            }
            // Nothing of the non-writes is held: 0 at once, 2 and 3 once 2 arrived.
            assert_eq!(emitted_after_each, [0, 1, 1, 4]);
            assert!(slots.is_empty());
            let mut next = 0usize;
            for i in [4, 1] {
                slots.insert(i, one(i));
                emit_ready(&mut slots, &mut next, n, |i| is_write[i], &mut em);
            }
            assert!(slots.is_empty());
        }
        assert_eq!(*seen.lock().unwrap(), ["c0", "c2", "c3", "c5", "c1", "c4"]);
    }

    #[test]
    fn a_write_waiting_for_its_resource_does_not_hold_back_writes_on_others() {
        let mut r = Resources::default();
        let mut id = |paths: Option<&[&str]>| {
            r.intern(paths.map(|p| p.iter().map(|p| path_of(p)).collect()))
        };
        let (one, two, two_name, three, alone) = (
            id(Some(&["/items/1"])),
            id(Some(&["/items/2"])),
            id(Some(&["/items/2/name"])),
            id(Some(&["/items/3"])),
            id(None),
        );
        let both = id(Some(&["/items/2", "/items/1"]));
        assert_eq!(one, id(Some(&["/items/1"])), "interned once");
        // Waiting writes at positions 0, 1, ...; the running ones before them.
        let next = |waiting: &[usize], running: &[usize]| {
            let running: Vec<Running> = running
                .iter()
                .map(|&res| Running {
                    index: 0,
                    pos: 0,
                    res,
                })
                .collect();
            r.next_startable(waiting.iter().copied().enumerate(), &running)
        };
        // The first two wait for /items/1; the third passes them.
        assert_eq!(next(&[one, one, two], &[one]), Some(2));
        // Nothing running on /items/1: the first in plan order.
        assert_eq!(next(&[one, one, two], &[three]), Some(0));
        // A write inside a busy path waits too: /items/2/name while /items/2 runs.
        assert_eq!(next(&[one, two, two_name], &[one, two]), None);
        assert_eq!(next(&[two, two_name, three], &[two]), Some(2));
        // A write never passes an earlier waiting write it clashes with, even when
        // nothing running touches it: the write on
        // /items/2 (verified on /items/1) waits for /items/1, and the next write on
        // /items/2 waits behind it although nothing running touches /items/2.
        assert_eq!(next(&[both, two], &[one]), None);
        assert_eq!(next(&[both, two, three], &[one]), Some(2));
        // A write that must run alone holds back every write after it...
        assert_eq!(next(&[one, alone, two], &[one]), None);
        assert_eq!(next(&[alone, two], &[]), Some(0));
        // ...and waits for every running write.
        assert_eq!(next(&[alone, two], &[three]), None);
        // The scan is bounded: a write beyond the lookahead is not found.
        let mut many = vec![one; WRITE_LOOKAHEAD];
        many.push(two);
        assert_eq!(next(&many, &[one]), None);
        assert_eq!(next(&many[1..], &[one]), Some(WRITE_LOOKAHEAD - 1));
        // ...and counted from the earliest write not finished, running or waiting.
        let far = |running_pos: usize| {
            let running = [Running {
                index: 0,
                pos: running_pos,
                res: one,
            }];
            r.next_startable([(100, two)].into_iter(), &running)
        };
        assert_eq!(far(0), None);
        assert_eq!(far(50), Some(0));
    }

    #[test]
    fn paths_drop_origin_query_fragment_and_trailing_slash() {
        assert_eq!(path_of("/items/1?x=2"), "/items/1");
        assert_eq!(path_of("https://api.example/items/1/#top"), "/items/1");
        assert_eq!(path_of("https://api.example"), "");
        assert_eq!(path_of("items/1"), "/items/1");
    }

    #[test]
    fn writes_conflict_when_a_path_equals_or_contains_another() {
        let one = res(&["/items/1", "/items/1"]);
        assert!(!conflicts(&one, &res(&["/items/2", "/items/2"])));
        // Segment-wise: /items/1 does not contain /items/10.
        assert!(!conflicts(&one, &res(&["/items/10", "/items/10"])));
        assert!(conflicts(&one, &res(&["/items/1", "/items/1"])));
        // A list verify covers every item under it; so does the root.
        assert!(conflicts(&one, &res(&["/items/2", "/items"])));
        assert!(conflicts(&one, &res(&["/items/1/name", "/other"])));
        assert!(conflicts(&one, &res(&["https://x.example/", "/b"])));
        // A write that must run alone conflicts with everything.
        assert!(conflicts(&one, &None));
        assert!(conflicts(&None, &None));
    }
}
