//! How a run behaves (run stage): the command line's options, the interrupt flag, and
//! the clock the reports are stamped with.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::http;
use crate::plan::{Partition, Selection};

/// How a run behaves (from the command line).
#[derive(Clone, Debug)]
pub struct Options {
    /// Checks run at once: `Some(n)` pins it (`--jobs N`); `None` adapts to the target
    /// (see [`super::adaptive`]).
    pub jobs: Option<usize>,
    /// Only the checks, variants and database results these patterns match (see
    /// [`Selection`]); empty: everything.
    pub filters: Vec<String>,
    /// Minus the results these patterns match.
    pub excludes: Vec<String>,
    /// Warnings fail the gate.
    pub deny_warnings: bool,
    /// Accept any TLS certificate (reported in every output).
    pub insecure: bool,
    /// Retries of provision, seed and teardown requests on transport errors and
    /// 429/502/503.
    pub setup_retries: u32,
    /// The first wait before a setup retry; each later one doubles (a longer
    /// `Retry-After` from the server wins, up to [`http::MAX_RETRY_AFTER`]).
    pub setup_backoff: Duration,
    /// Retries of a check's request on transport errors only (reported per result).
    pub check_retries: u32,
    /// Run only this slice of the planned checks (`--partition K/N`).
    pub partition: Option<Partition>,
    /// With a partition: audit the database in every slice, not only in slice 1.
    pub partition_db_all: bool,
    /// Results decided before anything is sent (the OpenAPI coverage gate), emitted first.
    pub coverage: Vec<crate::outcome::CheckResult>,
}

impl Options {
    /// The retry policy of setup steps.
    pub fn setup_policy(&self) -> http::RetryPolicy {
        http::RetryPolicy {
            retries: self.setup_retries,
            backoff: self.setup_backoff,
        }
    }

    /// Whether this run audits the database: always unpartitioned; with
    /// `--partition`, in slice 1 only unless `--partition-db all`.
    pub fn audits_database(&self) -> bool {
        self.partition_db_all || self.partition.is_none_or(|p| p.index == 1)
    }

    /// The results the command line selects.
    pub fn selection(&self) -> Selection {
        Selection::new(self.filters.clone(), self.excludes.clone())
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jobs: None,
            filters: Vec::new(),
            excludes: Vec::new(),
            deny_warnings: false,
            insecure: false,
            setup_retries: 3,
            setup_backoff: Duration::from_millis(100),
            check_retries: 0,
            partition: None,
            partition_db_all: false,
            coverage: Vec::new(),
        }
    }
}

/// Four checks per CPU: checks wait on the network, not the CPU. No longer the default
/// (the default adapts); kept for callers that want a fixed figure.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 4)
        .unwrap_or(8)
        .min(32)
}

/// Set on Ctrl-C / SIGTERM: no new check starts; teardown still runs.
#[derive(Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// RFC 3339 UTC for "now", to the second.
pub fn now_rfc3339() -> String {
    rfc3339(chrono::Utc::now().timestamp())
}

/// RFC 3339 UTC for seconds since the Unix epoch (`1970-01-01T00:00:00Z`).
pub fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_fixed_epochs() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (951_868_799, "2000-02-29T23:59:59Z"),
            (1_767_225_600, "2026-01-01T00:00:00Z"),
        ] {
            assert_eq!(rfc3339(secs), want, "{secs}");
        }
        assert_eq!(now_rfc3339().len(), 20);
    }
}
