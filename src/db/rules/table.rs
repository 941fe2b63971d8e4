//! The per-table rules (database layer → rules → **tenant tables**): one function per
//! rule over a [`TableCtx`], each emitting exactly one result (or, for the app-role
//! rules without an app role, none: those are skipped once database-wide).

use std::collections::{HashMap, HashSet};

use super::super::catalog::{Catalog, IndexRow, Oid, PolicyRow};
use super::super::config::TenantModel;
use super::super::sql::{contains_word, quote_ident};
use super::context::{Emitter, Finding, Table, ev};
use super::policies::{
    ALL_CMDS, Cmd, JudgedPolicy, PolicyFindings, PolicyJudge, cmd_name, cmds, policy_def,
    restrictive_gates,
};
use super::roles::{App, Roles};
use super::rule::Rule;
use crate::outcome::{CheckResult, Verdict};

/// What every table shares: roles, the app role, the setting and the catalog's
/// per-table lookups.
pub(super) struct Shared<'a> {
    pub roles: &'a Roles<'a>,
    pub app: &'a App<'a>,
    /// The setting as summaries name it.
    pub setting_label: String,
    /// The setting fix SQL uses.
    pub fix_setting: &'a str,
    policies_by_rel: HashMap<Oid, Vec<&'a PolicyRow>>,
    indexes_by_rel: HashMap<Oid, Vec<&'a IndexRow>>,
    /// A tenant setting is configured.
    has_setting: bool,
    /// The caller's identity as fix SQL writes it (`(SELECT auth.uid())`), when the
    /// model declares one.
    identity: Option<String>,
}

impl<'a> Shared<'a> {
    pub fn new(
        cat: &'a Catalog,
        roles: &'a Roles<'a>,
        app: &'a App<'a>,
        setting: Option<&'a str>,
        model: Option<&TenantModel>,
    ) -> Shared<'a> {
        let mut policies_by_rel: HashMap<Oid, Vec<&PolicyRow>> = HashMap::new();
        for p in &cat.policies {
            policies_by_rel.entry(p.rel).or_default().push(p);
        }
        let mut indexes_by_rel: HashMap<Oid, Vec<&IndexRow>> = HashMap::new();
        for i in &cat.unique_indexes {
            indexes_by_rel.entry(i.rel).or_default().push(i);
        }
        Shared {
            roles,
            app,
            setting_label: setting
                .map(str::to_string)
                .unwrap_or_else(|| "current_setting(...)".into()),
            fix_setting: setting.unwrap_or("app.current_org_id"),
            policies_by_rel,
            indexes_by_rel,
            has_setting: setting.is_some(),
            identity: model.and_then(|m| {
                m.identity_functions
                    .first()
                    .map(|f| format!("(SELECT {f}())"))
                    .or_else(|| {
                        m.identity_settings.first().map(|s| {
                            format!(
                                "current_setting('{}', true)::<type>",
                                s.trim_end_matches('*').trim_end_matches('.')
                            )
                        })
                    })
            }),
        }
    }
}

impl Shared<'_> {
    /// The tenant condition fix SQL writes, in the schema's model: the tenant setting
    /// when there is one; with an identity model and no setting, membership bound to
    /// the caller (never a setting the schema does not use, never a user id compared
    /// with a tenant id).
    fn key_expr(&self, t: &Table<'_>) -> String {
        let (col, ty) = match t.columns.first() {
            Some(c) => (quote_ident(&c.name), c.type_name.clone()),
            None => ("<key>".to_string(), "<type>".to_string()),
        };
        if self.has_setting {
            return format!(
                "{col} = current_setting('{}', true)::{ty}",
                self.fix_setting
            );
        }
        match &self.identity {
            Some(caller) => format!(
                "{col} IN (SELECT m.{col} FROM <membership table> m WHERE m.user_id = {caller})"
            ),
            None => format!(
                "{col} = current_setting('{}', true)::{ty}",
                self.fix_setting
            ),
        }
    }
}

/// One tenant table with everything its rules need.
pub(super) struct TableCtx<'a> {
    s: &'a Shared<'a>,
    t: &'a Table<'a>,
    id: String,
    col_names: Vec<String>,
    /// The tenant condition fix SQL writes.
    key_expr: String,
    /// The policies that apply to the app role, judged.
    judged: Vec<JudgedPolicy<'a>>,
    /// The policies that do not apply to it.
    ignored: Vec<&'a PolicyRow>,
    gates: HashSet<Cmd>,
    findings: PolicyFindings<'a>,
}

impl<'a> TableCtx<'a> {
    pub fn new(s: &'a Shared<'a>, t: &'a Table<'a>, judge: &mut PolicyJudge<'_>) -> TableCtx<'a> {
        let col_names: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
        let key_expr = s.key_expr(t);
        let all: &[&PolicyRow] = s
            .policies_by_rel
            .get(&t.rel.oid)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        // Policies that apply to the app role (all, when it is unknown).
        let applies = |p: &PolicyRow| match &s.app.privs {
            None => true,
            Some(privs) => p.roles.iter().any(|r| *r == 0 || privs.contains(r)),
        };
        let judged = judge.judge_all(all, &col_names, &t.rel.name, applies);
        let ignored = all.iter().copied().filter(|p| !applies(p)).collect();
        let gates = restrictive_gates(&judged);
        let findings = PolicyFindings::of(&judged, &gates);
        TableCtx {
            s,
            t,
            id: t.id(),
            col_names,
            key_expr,
            judged,
            ignored,
            gates,
            findings,
        }
    }

    /// Emits every per-table rule, in [`super::rule::TABLE_RULES`] order.
    pub fn judge(&self, em: &mut Emitter) {
        self.rls_enabled(em);
        self.rls_forced(em);
        self.policy_present(em);
        self.command_coverage(em);
        for rule in [
            Rule::PolicyTenantKey,
            Rule::PolicyFailOpen,
            Rule::PolicyConstantTrue,
            Rule::InsertWithCheck,
            Rule::PermissiveOr,
        ] {
            if self.judged.is_empty() {
                em.skip(&self.id, rule, "no policy applies (see policy_present)");
                continue;
            }
            match rule {
                Rule::PolicyTenantKey => self.policy_tenant_key(em),
                Rule::PolicyFailOpen => self.policy_fail_open(em),
                Rule::PolicyConstantTrue => self.policy_constant_true(em),
                Rule::InsertWithCheck => self.insert_with_check(em),
                _ => self.permissive_or(em),
            }
        }
        self.unique_without_tenant(em);
        self.app_role_owner_and_truncate(em);
    }

    fn pdef(&self, p: &PolicyRow) -> String {
        policy_def(p, self.s.roles)
    }

    fn app_name(&self) -> &str {
        self.s.app.name
    }

    /// Names the policies that do not apply to the app role, when there are any.
    fn scope_note(&self, r: &mut CheckResult) {
        if !self.ignored.is_empty() {
            ev(
                r,
                "not applicable",
                format!(
                    "{} (do not apply to {})",
                    self.ignored
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    self.app_name()
                ),
            );
        }
    }

    fn rls_enabled(&self, em: &mut Emitter) {
        let finding =
            (!self.t.rel.rls).then(|| {
                Finding::new(
                Rule::RlsEnabled,
                "row-level security is disabled: every role with a grant sees every tenant's rows",
            )
            .fix(format!("ALTER TABLE {} ENABLE ROW LEVEL SECURITY;", self.t.sql()))
            });
        em.judged(
            &self.id,
            Rule::RlsEnabled,
            "row-level security is enabled",
            finding,
        );
    }

    fn rls_forced(&self, em: &mut Emitter) {
        let finding = (!self.t.rel.force).then(|| {
            let owner = self.t.rel.owner;
            let name = self.s.roles.name(owner);
            let app_acts_as_owner = self.s.app.reach.as_ref().is_some_and(|r| r.contains_key(&owner));
            // The real exposure: who bypasses because it is not forced.
            let (exposure, fix) = match self.s.roles.attribute_bypass(owner) {
                Some(attr) => (
                    format!("owner {name} is {attr}: FORCE cannot stop it (it bypasses RLS even when forced); the exposure is whoever can act as {name}"),
                    format!(
                        "ALTER TABLE {t} OWNER TO <a NOLOGIN owner role>; ALTER TABLE {t} FORCE ROW LEVEL SECURITY;",
                        t = self.t.sql()
                    ),
                ),
                None if app_acts_as_owner => (
                    format!("{} can act as the owner {name}: a live leak, the application bypasses every policy", self.app_name()),
                    format!("ALTER TABLE {} FORCE ROW LEVEL SECURITY;", self.t.sql()),
                ),
                None => (
                    format!("owner {name}, which the application's role cannot act as: any session as {name} (a migration, a job) sees every tenant"),
                    format!("ALTER TABLE {} FORCE ROW LEVEL SECURITY;", self.t.sql()),
                ),
            };
            Finding::new(
                Rule::RlsForced,
                format!(
                    "row-level security is not forced: the owner ({name}) and its members bypass it"
                ),
            )
            .with("owner", exposure)
            .fix(fix)
        });
        em.judged(
            &self.id,
            Rule::RlsForced,
            "row-level security is forced (applies to the owner too)",
            finding,
        );
    }

    fn policy_present(&self, em: &mut Emitter) {
        if !self.t.rel.rls {
            em.skip(
                &self.id,
                Rule::PolicyPresent,
                "row-level security is not enabled (see rls_enabled)",
            );
            return;
        }
        if !self.judged.is_empty() {
            em.pass(
                &self.id,
                Rule::PolicyPresent,
                format!("{} policies apply", self.judged.len()),
            );
            return;
        }
        if let (Some(_), Some(p)) = (self.s.app.oid, self.t.rel.privs)
            && !(p.select || p.insert || p.update || p.delete || p.truncate)
        {
            // A role with no privilege on the table needs no policy on it.
            em.pass(
                &self.id,
                Rule::PolicyPresent,
                format!("{} has no privilege on it", self.app_name()),
            );
            return;
        }
        let who = if self.s.app.oid.is_some() {
            format!("applies to {}", self.app_name())
        } else {
            "exists".into()
        };
        let mut f = Finding::new(
            Rule::PolicyPresent,
            format!(
                "RLS is enabled but no policy {who}: PostgreSQL denies every row (fails closed)"
            ),
        );
        if !self.ignored.is_empty() {
            f = f.with(
                "not applicable",
                format!(
                    "{} (do not apply to {})",
                    self.ignored
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    self.app_name()
                ),
            );
        }
        let f = f.fix(format!(
            "CREATE POLICY tenant_isolation ON {} FOR ALL TO {} USING ({});",
            self.t.sql(),
            self.s.app.sql_or_placeholder(),
            self.key_expr
        ));
        em.finding(&self.id, Rule::PolicyPresent, f);
    }

    /// Needs the app role's privileges: without them, skipped database-wide.
    fn command_coverage(&self, em: &mut Emitter) {
        let (Some(_), Some(privs)) = (self.s.app.oid, self.t.rel.privs) else {
            return;
        };
        if self.judged.is_empty() {
            em.skip(
                &self.id,
                Rule::CommandCoverage,
                "no policy applies (see policy_present)",
            );
            return;
        }
        let app_name = self.app_name();
        let granted: Vec<Cmd> = ALL_CMDS
            .into_iter()
            .filter(|c| match c {
                Cmd::Select => privs.select,
                Cmd::Insert => privs.insert,
                Cmd::Update => privs.update,
                Cmd::Delete => privs.delete,
            })
            .collect();
        let covered: HashSet<Cmd> = self
            .judged
            .iter()
            .filter(|j| j.p.permissive)
            .flat_map(|j| cmds(j.p.cmd).iter().copied())
            .collect();
        let missing: Vec<Cmd> = granted
            .iter()
            .copied()
            .filter(|c| !covered.contains(c))
            .collect();
        let join = |cs: &[Cmd]| cs.iter().map(|c| c.sql()).collect::<Vec<_>>().join(", ");
        let finding = missing.first().map(|&first| {
            let names = join(&missing);
            let mut f = Finding::new(
                Rule::CommandCoverage,
                format!("{app_name} may {names} but no permissive policy covers it: PostgreSQL denies it (fails closed)"),
            );
            for j in &self.judged {
                f = f.with("policy", self.pdef(j.p));
            }
            let clause = if first == Cmd::Insert { "WITH CHECK" } else { "USING" };
            let app_sql = quote_ident(app_name);
            f.fix(format!(
                "CREATE POLICY tenant_{} ON {} FOR {} TO {app_sql} {clause} ({}); \
                 -- one per command, or REVOKE {names} ON {} FROM {app_sql};",
                first.sql().to_lowercase(),
                self.t.sql(),
                first.sql(),
                self.key_expr,
                self.t.sql(),
            ))
        });
        em.judged(
            &self.id,
            Rule::CommandCoverage,
            format!(
                "a permissive policy covers every command {app_name} is granted ({})",
                join(&granted)
            ),
            finding,
        );
    }

    fn policy_tenant_key(&self, em: &mut Emitter) {
        let (key, unverified) = (&self.findings.key, &self.findings.unverified);
        let first = match (key.first(), unverified.first()) {
            (Some((p, why)), _) => Some((
                Verdict::Fail,
                p,
                format!("policy {} is not keyed on the tenant: {why}", p.name),
            )),
            (None, Some((p, why))) => Some((
                Verdict::Warn,
                p,
                format!("policy {} is unverified: {why}", p.name),
            )),
            (None, None) => None,
        };
        let finding = first.map(|(verdict, first, summary)| {
            Finding::with_verdict(verdict, summary)
                .policies(
                    key.iter()
                        .chain(unverified.iter())
                        .map(|(p, why)| (self.pdef(p), why.as_str())),
                )
                .fix(format!(
                    "ALTER POLICY {} ON {} USING ({});",
                    quote_ident(&first.name),
                    self.t.sql(),
                    self.key_expr
                ))
        });
        let pass = format!(
            "every permissive policy is keyed on {} and {}{}",
            if self.col_names.is_empty() {
                "the table".to_string()
            } else {
                self.col_names.join("/")
            },
            self.s.setting_label,
            if self.gates.is_empty() {
                ""
            } else {
                " (or gated by a restrictive tenant policy)"
            }
        );
        let passed = finding.is_none();
        let r = em.judged(&self.id, Rule::PolicyTenantKey, pass, finding);
        if passed {
            self.scope_note(r);
        }
    }

    fn policy_fail_open(&self, em: &mut Emitter) {
        let open = &self.findings.open;
        let finding = open.first().map(|(first, why)| {
            Finding::new(
                Rule::PolicyFailOpen,
                format!("policy {} fails open: {why}", first.name),
            )
            .policies(open.iter().map(|(p, why)| (self.pdef(p), why.as_str())))
            .fix(format!(
                "ALTER POLICY {} ON {} USING ({}); -- an unset setting must match nothing",
                quote_ident(&first.name),
                self.t.sql(),
                self.key_expr
            ))
        });
        em.judged(
            &self.id,
            Rule::PolicyFailOpen,
            "no policy lets an unset or empty setting through",
            finding,
        );
    }

    fn policy_constant_true(&self, em: &mut Emitter) {
        let all = &self.findings.constant_true;
        let finding = all.first().map(|p| {
            let mut f = Finding::new(
                Rule::PolicyConstantTrue,
                format!(
                    "permissive policy {} is USING (true) for {} and no restrictive tenant policy applies: every tenant's rows",
                    p.name,
                    cmd_name(p.cmd)
                ),
            );
            for q in all {
                f = f.with("policy", self.pdef(q));
            }
            f.fix(format!(
                "ALTER POLICY {} ON {} USING ({k}); -- or add: CREATE POLICY tenant_gate ON {} AS RESTRICTIVE FOR ALL TO {} USING ({k});",
                quote_ident(&p.name),
                self.t.sql(),
                self.t.sql(),
                self.s.app.sql_or_placeholder(),
                k = self.key_expr,
            ))
        });
        em.judged(
            &self.id,
            Rule::PolicyConstantTrue,
            "no permissive USING (true) without a restrictive tenant policy",
            finding,
        );
    }

    fn insert_with_check(&self, em: &mut Emitter) {
        let (fail, warn) = (&self.findings.check_fail, &self.findings.check_warn);
        let first = match (fail.first(), warn.first()) {
            (Some(f), _) => Some((Verdict::Fail, f)),
            (None, Some(w)) => Some((Verdict::Warn, w)),
            (None, None) => None,
        };
        let finding = first.map(|(verdict, (p, why))| {
            Finding::with_verdict(verdict, format!("policy {}: {why}", p.name))
                .policies(
                    fail.iter()
                        .chain(warn.iter())
                        .map(|(p, why)| (self.pdef(p), why.as_str())),
                )
                .fix(format!(
                    "ALTER POLICY {} ON {} WITH CHECK ({});",
                    quote_ident(&p.name),
                    self.t.sql(),
                    self.key_expr
                ))
        });
        em.judged(
            &self.id,
            Rule::InsertWithCheck,
            "every WITH CHECK keeps the tenant condition",
            finding,
        );
    }

    fn permissive_or(&self, em: &mut Emitter) {
        let mut per_cmd: Vec<(Cmd, Vec<&PolicyRow>)> = Vec::new();
        for c in ALL_CMDS {
            let ps: Vec<&PolicyRow> = self
                .judged
                .iter()
                .filter(|j| j.p.permissive && cmds(j.p.cmd).contains(&c))
                .map(|j| j.p)
                .collect();
            if ps.len() > 1 {
                per_cmd.push((c, ps));
            }
        }
        let finding = per_cmd.first().map(|(_, first)| {
            let mut f = Finding::new(
                Rule::PermissiveOr,
                format!(
                    "{} permissive policies are OR-ed for {}: any one of them admits a row",
                    first.len(),
                    per_cmd
                        .iter()
                        .map(|(c, _)| c.sql())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            let mut shown = HashSet::new();
            for p in per_cmd.iter().flat_map(|(_, ps)| ps) {
                if shown.insert(p.name.as_str()) {
                    f = f.with("policy", self.pdef(p));
                }
            }
            f.fix("merge them into one permissive policy, or make the extra conditions AS RESTRICTIVE")
        });
        em.judged(
            &self.id,
            Rule::PermissiveOr,
            "at most one permissive policy per command",
            finding,
        );
    }

    fn unique_without_tenant(&self, em: &mut Emitter) {
        let cols = &self.col_names;
        if cols.is_empty() {
            em.skip(
                &self.id,
                Rule::UniqueWithoutTenant,
                "the table has no tenant column",
            );
            return;
        }
        let bad: Vec<&IndexRow> = self
            .s
            .indexes_by_rel
            .get(&self.t.rel.oid)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .copied()
            .filter(|i| {
                let in_cols = i.columns.iter().any(|c| cols.contains(c));
                let in_expr = i
                    .expression
                    .as_deref()
                    .is_some_and(|d| cols.iter().any(|c| contains_word(d, c)));
                !in_cols && !in_expr
            })
            .collect();
        let finding = bad.first().map(|i| {
            let mut f = Finding::new(
                Rule::UniqueWithoutTenant,
                format!(
                    "unique index {} ({}) does not include {}: a duplicate-key error tells one tenant that another has that value",
                    i.name,
                    describe_index(i),
                    cols[0]
                ),
            );
            for b in &bad {
                f = f.with("index", format!("{} ({})", b.name, describe_index(b)));
            }
            f.fix(format!(
                "ALTER TABLE {} ADD UNIQUE ({}, {}); -- then drop {} (ALTER TABLE ... DROP CONSTRAINT, or DROP INDEX for a bare index)",
                self.t.sql(),
                quote_ident(&cols[0]),
                i.columns
                    .iter()
                    .map(|c| quote_ident(c))
                    .collect::<Vec<_>>()
                    .join(", "),
                quote_ident(&i.name),
            ))
        });
        em.judged(
            &self.id,
            Rule::UniqueWithoutTenant,
            "every unique key includes the tenant column",
            finding,
        );
    }

    /// `app_role_owner` and `app_role_truncate`: need the app role's privileges.
    fn app_role_owner_and_truncate(&self, em: &mut Emitter) {
        let (Some(reach), Some(privs)) = (&self.s.app.reach, self.t.rel.privs) else {
            return;
        };
        let rel = self.t.rel;
        let app_name = self.app_name();
        if !reach.contains_key(&rel.owner) {
            em.pass(
                &self.id,
                Rule::AppRoleOwner,
                format!("owned by {}, not {app_name}", self.s.roles.name(rel.owner)),
            );
        } else {
            let how = if Some(rel.owner) == self.s.app.oid {
                format!("{app_name} owns it")
            } else {
                format!(
                    "{app_name} acts as its owner through {}",
                    self.s.roles.path(reach, rel.owner)
                )
            };
            if rel.force {
                let r = em.pass(
                    &self.id,
                    Rule::AppRoleOwner,
                    format!("{how}, but RLS is forced"),
                );
                ev(
                    r,
                    "note",
                    "an owner can still ALTER TABLE ... NO FORCE ROW LEVEL SECURITY; prefer a separate owner role",
                );
            } else {
                let f = Finding::new(
                    Rule::AppRoleOwner,
                    format!("{how} and RLS is not forced: the owner bypasses every policy"),
                )
                .with("role", how.clone())
                .fix(format!(
                    "ALTER TABLE {} FORCE ROW LEVEL SECURITY; -- better: ALTER TABLE {} OWNER TO <a role the app cannot use>;",
                    self.t.sql(),
                    self.t.sql()
                ));
                em.finding(&self.id, Rule::AppRoleOwner, f);
            }
        }
        let finding = privs.truncate.then(|| {
            Finding::new(
                Rule::AppRoleTruncate,
                format!("{app_name} may TRUNCATE it, and TRUNCATE is not subject to RLS: one tenant can erase every tenant's rows"),
            )
            .fix(format!(
                "REVOKE TRUNCATE ON {} FROM {};",
                self.t.sql(),
                quote_ident(app_name)
            ))
        });
        em.judged(
            &self.id,
            Rule::AppRoleTruncate,
            format!("{app_name} has no TRUNCATE"),
            finding,
        );
    }
}

fn describe_index(i: &IndexRow) -> String {
    match &i.expression {
        Some(d) => d.clone(),
        None => i.columns.join(", "),
    }
}
