//! The audit's rules: pure judgement of a [`Catalog`] snapshot into results (run →
//! database layer → catalog → **rules** → results). No I/O here, so every rule is
//! unit-testable on a hand-built catalog.
//!
//! Rule ids are `schema.table.rule` for tenant tables (one result per table per rule,
//! passes included), `role.<name>.rule` for the app role, `schema.fn(args).rule` for
//! functions, `schema.view.rule` for views, matviews and foreign tables, and
//! `database.rule` for what concerns the whole database. [`Rule`] is the one list of
//! them. The judgement runs top-down:
//! 1. `discovery`: which tables are tenant tables;
//! 2. `roles`: the app role, and whether it exists;
//! 3. `table`: every per-table rule, on each tenant table (policies judged by
//!    `policies` and [`super::expr`]);
//! 4. `roles` again: the role-wide rules;
//! 5. `bypass`: views, materialized views, foreign tables and definer functions.

mod bypass;
mod context;
mod discovery;
mod policies;
mod roles;
mod rule;
mod table;
#[cfg(test)]
mod tests;

use std::time::Duration;

use super::catalog::Catalog;
pub use context::{Judged, Options, TenantTable};
pub use rule::{APP_ROLE_RULES, Rule, Severity, TABLE_RULES};

/// Judges the snapshot. `elapsed` is the time the catalog took (shown on the
/// `database.tenant_tables_found` result).
pub fn judge(cat: &Catalog, opts: &Options<'_>, elapsed: Duration) -> Judged {
    let mut em = context::Emitter::new();
    let found = discovery::discover(cat, opts, elapsed, &mut em);
    let roles = roles::Roles::new(cat);
    let app = roles::App::new(cat, &roles, opts.app_role);
    roles::app_role_exists(&mut em, &app);

    let model = opts.model.filter(|m| m.has_identity());
    let shared = table::Shared::new(cat, &roles, &app, opts.tenant_setting, model);
    let mut policy_judge = policies::PolicyJudge::new(cat, opts.tenant_setting, opts.model);
    for t in &found.tables {
        table::TableCtx::new(&shared, t, &mut policy_judge).judge(&mut em);
    }

    roles::role_rules(&mut em, &roles, &app);
    bypass::BypassCtx::new(cat, &found, &roles, &app, policy_judge.caller_check()).judge(&mut em);

    Judged {
        results: em.out,
        tenant_tables: found.tables.iter().map(|t| t.tenant_table()).collect(),
    }
}
