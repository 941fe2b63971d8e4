//! The scoped target's planted isolation bugs: chosen once at launch (like the main
//! API's [`crate::bugs`]), each breaking exactly one thing and correct by default.
//!
//! The HTTP bugs that put a caller in an org it is not a member of run that request on
//! the privileged connection, as a route written against a service-role client would:
//! otherwise the membership-keyed RLS would hide the app's mistake, and the point is a
//! target where each mistake shows in HTTP answers. The one database bug changes only a
//! policy, so the API answers like the correct app and only a direct-SQL probe can tell.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::bugs::Layer;

/// One planted defect of the scoped target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScopedBug {
    /// The session id is the session row's serial number.
    GuessableSession,
    /// Session ids carry only 32 random bits.
    WeakSessionEntropy,
    /// Logout clears the cookie but leaves the session valid.
    LogoutKeepsSession,
    /// An org's API key works in any org's path.
    ApiKeyAnyOrg,
    /// An `X-Org` header or `org` query parameter replaces the path's org for the data.
    SlugHeaderOverride,
    /// The invoice routes check the session but not membership of the path's org.
    MemberCheckMissing,
    /// An invoice id of another org answers 403, a never-issued one 404.
    IntegerIdOracle,
    /// Another org's slug answers 403, a never-issued one 404.
    SlugExistenceOracle,
    /// Creating a project honours `org_id` / `org_slug` in the body.
    MassAssignment,
    /// Reading or renaming a project looks it up by id only, ignoring the path's org.
    CrossScopeId,
    /// The projects list of one org shows the projects of every org the caller is in.
    ListAllMemberOrgs,
    /// The membership policies compare `m.org_id = org_id`: every member sees every row.
    MembershipPolicyTypo,
}

impl ScopedBug {
    /// Every bug, in a stable order (the order of the README's table).
    pub const ALL: [ScopedBug; 12] = [
        ScopedBug::GuessableSession,
        ScopedBug::WeakSessionEntropy,
        ScopedBug::LogoutKeepsSession,
        ScopedBug::ApiKeyAnyOrg,
        ScopedBug::SlugHeaderOverride,
        ScopedBug::MemberCheckMissing,
        ScopedBug::IntegerIdOracle,
        ScopedBug::SlugExistenceOracle,
        ScopedBug::MassAssignment,
        ScopedBug::CrossScopeId,
        ScopedBug::ListAllMemberOrgs,
        ScopedBug::MembershipPolicyTypo,
    ];

    /// The name used in bug lists.
    pub fn name(self) -> &'static str {
        match self {
            ScopedBug::GuessableSession => "guessable-session",
            ScopedBug::WeakSessionEntropy => "weak-session-entropy",
            ScopedBug::LogoutKeepsSession => "logout-keeps-session",
            ScopedBug::ApiKeyAnyOrg => "api-key-any-org",
            ScopedBug::SlugHeaderOverride => "slug-header-override",
            ScopedBug::MemberCheckMissing => "member-check-missing",
            ScopedBug::IntegerIdOracle => "integer-id-oracle",
            ScopedBug::SlugExistenceOracle => "slug-existence-oracle",
            ScopedBug::ListAllMemberOrgs => "list-all-member-orgs",
            ScopedBug::MassAssignment => "mass-assignment",
            ScopedBug::CrossScopeId => "cross-scope-id",
            ScopedBug::MembershipPolicyTypo => "membership-policy-typo",
        }
    }

    /// What the bug does, in one line.
    pub fn description(self) -> &'static str {
        match self {
            ScopedBug::GuessableSession => {
                "the sid cookie is the session row's serial number: B's sid - 1 opens A's session"
            }
            ScopedBug::WeakSessionEntropy => {
                "sid cookies are 8 hex digits (32 random bits) instead of 256 bits"
            }
            ScopedBug::LogoutKeepsSession => {
                "POST /auth/logout clears the cookie but the session stays valid"
            }
            ScopedBug::ApiKeyAnyOrg => {
                "an org's X-Api-Key is accepted under any org's /orgs/{slug}/... path"
            }
            ScopedBug::SlugHeaderOverride => {
                "an X-Org header or ?org= naming another slug replaces the path's org for the data"
            }
            ScopedBug::MemberCheckMissing => {
                "/orgs/{slug}/invoices... checks the session but not membership of the org"
            }
            ScopedBug::IntegerIdOracle => {
                "GET /orgs/{slug}/invoices/{id} answers 403 for another org's id, 404 for a never-issued one"
            }
            ScopedBug::SlugExistenceOracle => {
                "/orgs/{slug}/... answers 403 for an org the caller is not in, 404 for a never-issued slug"
            }
            ScopedBug::ListAllMemberOrgs => {
                "GET /orgs/{slug}/projects lists the projects of every org the caller is a member of"
            }
            ScopedBug::MassAssignment => {
                "POST /orgs/{slug}/projects honours org_id / org_slug in the body"
            }
            ScopedBug::CrossScopeId => {
                "GET and PATCH /orgs/{slug}/projects/{id} find the project by id only"
            }
            ScopedBug::MembershipPolicyTypo => {
                "policies say m.org_id = org_id (both sides the membership row): any member sees every org (database only)"
            }
        }
    }

    /// Whether the bug changes HTTP answers or only the database.
    pub fn layer(self) -> Layer {
        match self {
            ScopedBug::MembershipPolicyTypo => Layer::Database,
            _ => Layer::Http,
        }
    }

    /// The tenantgate check expected to catch the bug.
    pub fn caught_by(self) -> &'static str {
        match self {
            ScopedBug::GuessableSession => "session attacks (neighbouring session ids)",
            ScopedBug::WeakSessionEntropy => "session attacks (low entropy)",
            ScopedBug::LogoutKeepsSession => "session attacks (logged-out session refused)",
            ScopedBug::ApiKeyAnyOrg => "reads and lists run under B's API key in A's scope",
            ScopedBug::SlugHeaderOverride => "tenant_override with A's slug (header, query)",
            ScopedBug::MemberCheckMissing => "read/list/write of invoices, B in A's scope",
            ScopedBug::IntegerIdOracle => "read invoice (existence oracle: 403 vs 404)",
            ScopedBug::SlugExistenceOracle => {
                "any check, B in A's scope (existence oracle: 403 vs 404)"
            }
            ScopedBug::ListAllMemberOrgs => "list projects as a user in both orgs, in B's scope",
            ScopedBug::MassAssignment => "mass assignment (B creates naming A's org)",
            ScopedBug::CrossScopeId => "read/write project, A's id in B's scope",
            ScopedBug::MembershipPolicyTypo => "database probe with app.user_id = B's user",
        }
    }
}

impl fmt::Display for ScopedBug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a scoped bug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownScopedBug(pub String);

impl fmt::Display for UnknownScopedBug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = ScopedBug::ALL.iter().map(|b| b.name()).collect();
        write!(
            f,
            "unknown scoped bug {:?}; known bugs: {} (or \"all\", \"none\")",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownScopedBug {}

impl FromStr for ScopedBug {
    type Err = UnknownScopedBug;

    fn from_str(s: &str) -> Result<ScopedBug, UnknownScopedBug> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        ScopedBug::ALL
            .into_iter()
            .find(|b| b.name() == wanted)
            .ok_or_else(|| UnknownScopedBug(s.trim().to_string()))
    }
}

/// A set of enabled scoped bugs. The empty set is the correct app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopedBugs(BTreeSet<ScopedBug>);

impl ScopedBugs {
    /// No bugs: the correct app.
    pub fn none() -> ScopedBugs {
        ScopedBugs::default()
    }

    /// Every bug at once.
    pub fn all() -> ScopedBugs {
        ScopedBug::ALL.into_iter().collect()
    }

    /// Parses a comma-separated list, like [`crate::Bugs::parse`].
    pub fn parse(list: &str) -> Result<ScopedBugs, UnknownScopedBug> {
        let mut set = BTreeSet::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.to_ascii_lowercase().as_str() {
                "none" => {}
                "all" => set.extend(ScopedBug::ALL),
                _ => {
                    set.insert(item.parse()?);
                }
            }
        }
        Ok(ScopedBugs(set))
    }

    /// Whether `bug` is enabled.
    pub fn contains(&self, bug: ScopedBug) -> bool {
        self.0.contains(&bug)
    }

    /// Whether no bug is enabled.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The enabled bugs, in [`ScopedBug::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = ScopedBug> + '_ {
        self.0.iter().copied()
    }
}

impl FromStr for ScopedBugs {
    type Err = UnknownScopedBug;

    fn from_str(s: &str) -> Result<ScopedBugs, UnknownScopedBug> {
        ScopedBugs::parse(s)
    }
}

impl From<ScopedBug> for ScopedBugs {
    fn from(bug: ScopedBug) -> ScopedBugs {
        ScopedBugs(BTreeSet::from([bug]))
    }
}

impl FromIterator<ScopedBug> for ScopedBugs {
    fn from_iter<I: IntoIterator<Item = ScopedBug>>(iter: I) -> ScopedBugs {
        ScopedBugs(iter.into_iter().collect())
    }
}

/// Renders the set the way [`ScopedBugs::parse`] reads it (`none` when empty).
impl fmt::Display for ScopedBugs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.iter().map(ScopedBug::name).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for bug in ScopedBug::ALL {
            assert_eq!(bug.name().parse::<ScopedBug>(), Ok(bug));
            assert!(!bug.description().is_empty() && !bug.caught_by().is_empty());
        }
        let all = ScopedBugs::all();
        assert_eq!(ScopedBugs::parse(&all.to_string()), Ok(all));
        assert_eq!(ScopedBugs::none().to_string(), "none");
        let err = ScopedBugs::parse("cross_scope_id,nope").unwrap_err();
        assert_eq!(err, UnknownScopedBug("nope".into()));
        assert!(err.to_string().contains("guessable-session"));
    }
}
