//! The check stage's scheduling (run stage): non-writes concurrently (bounded by
//! `--jobs N`, or by the adaptive gate of [`super::adaptive`] without `--jobs`), then
//! writes one at a time — so a write that leaks cannot be blamed on another variant's
//! change — and results emitted in plan order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::adaptive::{Config, Gate, Limiter};
use super::checks::{self, Ctx};
use super::emit::Emitter;
use super::options::Cancel;
use crate::outcome::CheckResult;
use crate::plan::CheckPlan;

/// How often the check stage reports progress while checks run (the terminal redraws
/// its counter at this pace, and prints a line every few seconds when not a terminal).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Runs the planned checks: non-writes concurrently (at most `jobs` at once; `None`:
/// as many as the adaptive gate allows), then writes one at a time; emits results in
/// plan order. Returns true when interrupted.
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
    let (writes, concurrent): (Vec<_>, Vec<_>) = plans
        .into_iter()
        .enumerate()
        .partition(|(_, p)| p.is_write());
    // A feeder spawns each check only once it has a slot: spawned all at once, 10,000
    // waiting tasks (each sized for a whole check's state) held most of the run's memory.
    let feeder = {
        let (ctx, tx, gate, cancel) = (ctx.clone(), tx.clone(), gate.clone(), cancel.clone());
        let started = started.clone();
        tokio::spawn(async move {
            for (i, p) in concurrent {
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
        })
    };
    // The channel closes once every task has reported.
    drop(tx);
    let mut slots: BTreeMap<usize, Vec<CheckResult>> = BTreeMap::new();
    let mut next = 0usize;
    // Emission holds at the first write until the concurrent phase is over.
    let first_write = writes.first().map(|(i, _)| *i).unwrap_or(n);
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
                    emit_ready(&mut slots, &mut next, first_write, em);
                }
                None => break,
            },
            _ = tick.tick() => {
                let in_flight = started.load(Ordering::Relaxed).saturating_sub(done);
                em.progress(done, n, in_flight);
            }
        }
    }
    // The feeder has ended (the channel closed after its last check).
    let _ = feeder.await;
    for (i, p) in writes {
        let rs = if cancel.is_cancelled() {
            Vec::new()
        } else {
            em.progress(done, n, 1);
            guarded(ctx.clone(), p).await
        };
        done += 1;
        slots.insert(i, rs);
    }
    emit_ready(&mut slots, &mut next, n, em);
    em.progress(done, n, 0);
    if jobs.is_none() {
        // So a slow run can be told from a slow target.
        em.phase(format!("jobs: adaptive, {} at the end", gate.limit()));
    }
    cancel.is_cancelled()
}

/// Runs one check on its own task, so that a panic in it (a bug in tenantgate) becomes an
/// `error` result for each of its variants instead of a lost result or a hung run.
async fn guarded(ctx: Arc<Ctx>, plan: CheckPlan) -> Vec<CheckResult> {
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

/// Emits the results of consecutive checks, from `next` up to (not including) `limit`,
/// as long as they are available.
fn emit_ready(
    slots: &mut BTreeMap<usize, Vec<CheckResult>>,
    next: &mut usize,
    limit: usize,
    em: &mut Emitter<'_>,
) {
    while *next < limit {
        match slots.remove(next) {
            Some(rs) => rs.into_iter().for_each(|r| em.result(r)),
            None => break,
        }
        *next += 1;
    }
}
