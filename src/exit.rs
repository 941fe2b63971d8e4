//! Exit codes: the one place that says what each process status means (report stage).
//!
//! | code | meaning |
//! |---|---|
//! | 0 | isolation proven: every result passed (warnings allowed unless `--deny-warnings`; warnings the suite accepts with a reason always allowed), at least one check ran |
//! | 1 | a proven isolation failure, and nothing else |
//! | 2 | nothing failed, but something could not be decided; the suite could not be loaded; the command line was wrong; an internal error |
//!
//! Exit 1 is reserved for evidence of a cross-tenant leak: an unexpected internal
//! error, a panic or a bad flag must never produce it.

use std::process::ExitCode;

use crate::outcome::Counts;

/// Isolation was proven.
pub const PROVEN: u8 = 0;
/// At least one check proved an isolation failure.
pub const ISOLATION_FAILURE: u8 = 1;
/// Undecided: errors, bad input, bad command line, internal errors, interrupted runs.
pub const UNDECIDED: u8 = 2;

/// The exit status for a finished (or interrupted) run.
pub fn for_counts(counts: &Counts, deny_warnings: bool, interrupted: bool) -> u8 {
    if counts.fail > 0 || (deny_warnings && counts.warn > counts.accepted) {
        ISOLATION_FAILURE
    } else if counts.error > 0 || interrupted || counts.pass + counts.warn == 0 {
        UNDECIDED
    } else {
        PROVEN
    }
}

/// Converts one of the codes above into a process status.
pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pass: usize, fail: usize, error: usize, warn: usize, skip: usize) -> Counts {
        Counts {
            pass,
            fail,
            error,
            warn,
            skip,
            accepted: 0,
        }
    }

    #[test]
    fn accepted_warnings_do_not_fail_deny_warnings() {
        let mut c = counts(3, 0, 0, 2, 0);
        assert_eq!(for_counts(&c, true, false), ISOLATION_FAILURE);
        c.accepted = 1;
        assert_eq!(
            for_counts(&c, true, false),
            ISOLATION_FAILURE,
            "one is not accepted"
        );
        c.accepted = 2;
        assert_eq!(for_counts(&c, true, false), PROVEN);
        assert_eq!(for_counts(&c, false, false), PROVEN);
    }

    #[test]
    fn only_a_proven_failure_exits_one() {
        assert_eq!(for_counts(&counts(3, 0, 0, 0, 0), false, false), PROVEN);
        assert_eq!(
            for_counts(&counts(3, 1, 5, 0, 0), false, false),
            ISOLATION_FAILURE
        );
        assert_eq!(for_counts(&counts(3, 0, 1, 0, 0), false, false), UNDECIDED);
        assert_eq!(
            for_counts(&counts(0, 0, 0, 0, 4), false, false),
            UNDECIDED,
            "nothing ran"
        );
        assert_eq!(
            for_counts(&counts(0, 0, 0, 0, 0), false, false),
            UNDECIDED,
            "no checks"
        );
        assert_eq!(
            for_counts(&counts(3, 0, 0, 0, 0), false, true),
            UNDECIDED,
            "interrupted"
        );
    }

    #[test]
    fn warnings_fail_only_when_denied() {
        assert_eq!(for_counts(&counts(3, 0, 0, 2, 0), false, false), PROVEN);
        assert_eq!(
            for_counts(&counts(3, 0, 0, 2, 0), true, false),
            ISOLATION_FAILURE
        );
    }
}
