//! The rules' single source of truth (database layer → rules → **rule ids**): each
//! rule's id, the severity of its finding and the one-line text the docs carry.

use std::fmt;

use crate::outcome::Verdict;

/// How bad a finding of a rule is at most: `Error` findings fail the gate, `Warning`
/// ones are reported (and fail it only under `--deny-warnings`). Some rules lower a
/// finding to a warning when it fails closed or is out of the app role's reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// A proven way around tenant isolation.
    Error,
    /// A hazard that fails closed today, or a leak of existence rather than of rows.
    Warning,
}

impl Severity {
    /// The verdict of a finding of this severity.
    pub fn verdict(self) -> Verdict {
        match self {
            Severity::Error => Verdict::Fail,
            Severity::Warning => Verdict::Warn,
        }
    }
}

/// Every catalog rule of the audit. The id ([`Rule::id`]) is the result's variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// A schema listed in `database.schemas` exists.
    SchemaExists,
    /// A table listed in `database.tables` exists.
    TableExists,
    /// At least one tenant table was found.
    TenantTablesFound,
    /// The configured app role exists.
    AppRoleExists,
    /// Row-level security is enabled on the tenant table.
    RlsEnabled,
    /// Row-level security is forced on the tenant table.
    RlsForced,
    /// A policy applies to the app role.
    PolicyPresent,
    /// A permissive policy covers every command the app role is granted.
    CommandCoverage,
    /// Every permissive policy keys rows on the tenant.
    PolicyTenantKey,
    /// No policy lets an unset or empty tenant through.
    PolicyFailOpen,
    /// No permissive `USING (true)` without a restrictive tenant gate.
    PolicyConstantTrue,
    /// Every `WITH CHECK` keeps the tenant condition.
    InsertWithCheck,
    /// At most one permissive policy per command.
    PermissiveOr,
    /// Every unique key includes the tenant column.
    UniqueWithoutTenant,
    /// The app role does not own the table (or RLS is forced).
    AppRoleOwner,
    /// The app role may not TRUNCATE the table.
    AppRoleTruncate,
    /// The app role is not a superuser, directly or through membership.
    AppRoleSuperuser,
    /// The app role has no BYPASSRLS, directly or through membership.
    AppRoleBypassrls,
    /// No view reads tenant tables as an owner who bypasses RLS.
    ViewBypass,
    /// No materialized view holds tenant data.
    MatviewTenantData,
    /// No foreign table holds tenant data.
    ForeignTableTenantData,
    /// No SECURITY DEFINER function runs as a role that bypasses RLS.
    DefinerFunction,
    /// No table the app role reads holds rows derived from a tenant table (a foreign
    /// key to it) without a tenant column and without RLS.
    DerivedTenantData,
}

/// The rules judged on every tenant table, in the order their results are emitted.
pub const TABLE_RULES: &[Rule] = &[
    Rule::RlsEnabled,
    Rule::RlsForced,
    Rule::PolicyPresent,
    Rule::CommandCoverage,
    Rule::PolicyTenantKey,
    Rule::PolicyFailOpen,
    Rule::PolicyConstantTrue,
    Rule::InsertWithCheck,
    Rule::PermissiveOr,
    Rule::UniqueWithoutTenant,
    Rule::AppRoleOwner,
    Rule::AppRoleTruncate,
];

/// The rules about the app role that are skipped (never passed) without one.
pub const APP_ROLE_RULES: &[Rule] = &[
    Rule::AppRoleSuperuser,
    Rule::AppRoleBypassrls,
    Rule::AppRoleOwner,
    Rule::AppRoleTruncate,
    Rule::CommandCoverage,
];

impl Rule {
    /// The rule's id: the variant of its results (`schema.table.<id>`).
    pub const fn id(self) -> &'static str {
        match self {
            Rule::SchemaExists => "schema_exists",
            Rule::TableExists => "table_exists",
            Rule::TenantTablesFound => "tenant_tables_found",
            Rule::AppRoleExists => "app_role_exists",
            Rule::RlsEnabled => "rls_enabled",
            Rule::RlsForced => "rls_forced",
            Rule::PolicyPresent => "policy_present",
            Rule::CommandCoverage => "command_coverage",
            Rule::PolicyTenantKey => "policy_tenant_key",
            Rule::PolicyFailOpen => "policy_fail_open",
            Rule::PolicyConstantTrue => "policy_constant_true",
            Rule::InsertWithCheck => "insert_with_check",
            Rule::PermissiveOr => "permissive_or",
            Rule::UniqueWithoutTenant => "unique_without_tenant",
            Rule::AppRoleOwner => "app_role_owner",
            Rule::AppRoleTruncate => "app_role_truncate",
            Rule::AppRoleSuperuser => "app_role_superuser",
            Rule::AppRoleBypassrls => "app_role_bypassrls",
            Rule::ViewBypass => "view_bypass",
            Rule::MatviewTenantData => "matview_tenant_data",
            Rule::ForeignTableTenantData => "foreign_table_tenant_data",
            Rule::DefinerFunction => "definer_function",
            Rule::DerivedTenantData => "derived_tenant_data",
        }
    }

    /// The severity of the rule's findings at most (see [`Severity`]).
    pub const fn severity(self) -> Severity {
        match self {
            Rule::PolicyPresent
            | Rule::CommandCoverage
            | Rule::PermissiveOr
            | Rule::UniqueWithoutTenant => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// What the rule checks, in one sentence (the docs' rule table).
    pub const fn doc(self) -> &'static str {
        match self {
            Rule::SchemaExists => "every schema listed in database.schemas exists",
            Rule::TableExists => "every table listed in database.tables exists",
            Rule::TenantTablesFound => {
                "at least one tenant table was found (an audit of nothing cannot pass)"
            }
            Rule::AppRoleExists => "the configured app role exists",
            Rule::RlsEnabled => "row-level security is enabled on every tenant table",
            Rule::RlsForced => {
                "row-level security is forced, so the table's owner is subject to it too"
            }
            Rule::PolicyPresent => {
                "a policy applies to the app role (RLS without one denies every row: fails closed)"
            }
            Rule::CommandCoverage => {
                "a permissive policy covers every command the app role is granted"
            }
            Rule::PolicyTenantKey => {
                "every permissive policy compares the tenant column with the caller's tenant"
            }
            Rule::PolicyFailOpen => "no policy lets an unset or empty tenant see every row",
            Rule::PolicyConstantTrue => {
                "no permissive USING (true) without a restrictive tenant policy"
            }
            Rule::InsertWithCheck => {
                "every WITH CHECK keeps the tenant condition, so rows cannot be written for another tenant"
            }
            Rule::PermissiveOr => {
                "at most one permissive policy per command (permissive policies are OR-ed)"
            }
            Rule::UniqueWithoutTenant => {
                "every unique key includes the tenant column (or a duplicate-key error leaks existence)"
            }
            Rule::AppRoleOwner => "the app role does not own the table, or RLS is forced on it",
            Rule::AppRoleTruncate => "the app role may not TRUNCATE (not subject to RLS)",
            Rule::AppRoleSuperuser => {
                "the app role is not a superuser, directly or through membership"
            }
            Rule::AppRoleBypassrls => {
                "the app role cannot act as a BYPASSRLS role, directly or through membership"
            }
            Rule::ViewBypass => {
                "no view the app role can read runs as an owner who bypasses RLS on tenant tables"
            }
            Rule::MatviewTenantData => {
                "no materialized view the app role can read holds tenant data (RLS never applies)"
            }
            Rule::ForeignTableTenantData => {
                "no foreign table the app role can read holds tenant data"
            }
            Rule::DefinerFunction => {
                "no SECURITY DEFINER function the app role may execute runs as a role that bypasses RLS"
            }
            Rule::DerivedTenantData => {
                "no table the app role reads holds rows of a tenant table's children (a foreign key to it) without a tenant column and RLS"
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_snake_case() {
        let all = [
            Rule::SchemaExists,
            Rule::TableExists,
            Rule::TenantTablesFound,
            Rule::AppRoleExists,
            Rule::AppRoleSuperuser,
            Rule::AppRoleBypassrls,
            Rule::ViewBypass,
            Rule::MatviewTenantData,
            Rule::ForeignTableTenantData,
            Rule::DefinerFunction,
            Rule::DerivedTenantData,
        ];
        let mut ids: Vec<&str> = all.iter().chain(TABLE_RULES).map(|r| r.id()).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert!(
            ids.iter()
                .all(|i| i.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        assert!(all.iter().chain(TABLE_RULES).all(|r| !r.doc().is_empty()));
    }
}
