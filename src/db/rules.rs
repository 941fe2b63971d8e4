//! The audit's rules: pure judgement of a [`Catalog`] snapshot into results (run →
//! database layer → catalog → **rules** → results). No I/O here, so every rule is
//! unit-testable on a hand-built catalog.
//!
//! Rule ids are `schema.table.rule` for tenant tables (one result per table per rule,
//! passes included), `role.<name>.rule` for the app role, `schema.fn(args).rule` for
//! functions, `schema.view.rule` for views, matviews and foreign tables, and
//! `database.rule` for what concerns the whole database.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use super::catalog::{Catalog, ColRow, Oid, PolicyRow, RelRow, RoleRow};
use super::expr::{self, Judgement, KeySpec};
use super::{qualified, quote_ident};
use crate::outcome::{CheckResult, Layer, Verdict};

/// The rule names, in the order results are emitted for each tenant table.
pub const TABLE_RULES: &[&str] = &[
    "rls_enabled",
    "rls_forced",
    "policy_present",
    "command_coverage",
    "policy_tenant_key",
    "policy_fail_open",
    "policy_constant_true",
    "insert_with_check",
    "permissive_or",
    "unique_without_tenant",
    "app_role_owner",
    "app_role_truncate",
];

/// The audit's settings, already defaulted.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    /// Tenant column names, in order of preference.
    pub tenant_columns: &'a [String],
    /// Schemas to search (empty: see [`super::AuditConfig::schemas`]).
    pub schemas: &'a [String],
    /// Explicit extra tenant tables.
    pub tables: &'a [String],
    /// Tables removed from the set.
    pub exempt: &'a [String],
    /// The application's role, by name.
    pub app_role: Option<&'a str>,
    /// The tenant setting, lower case.
    pub tenant_setting: Option<&'a str>,
}

/// A tenant table as the probe needs it.
#[derive(Clone, Debug)]
pub struct TenantTable {
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// The tenant column used by the probe and its type (`format_type`), if any.
    pub column: Option<(String, String)>,
}

/// The results and the tenant tables they cover.
#[derive(Debug)]
pub struct Judged {
    /// Every result, in a stable order.
    pub results: Vec<CheckResult>,
    /// The tenant tables found (for the probe).
    pub tenant_tables: Vec<TenantTable>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Cmd {
    Select,
    Insert,
    Update,
    Delete,
}

const ALL_CMDS: [Cmd; 4] = [Cmd::Select, Cmd::Insert, Cmd::Update, Cmd::Delete];

impl Cmd {
    fn sql(self) -> &'static str {
        match self {
            Cmd::Select => "SELECT",
            Cmd::Insert => "INSERT",
            Cmd::Update => "UPDATE",
            Cmd::Delete => "DELETE",
        }
    }
}

fn cmds(polcmd: char) -> &'static [Cmd] {
    match polcmd {
        'r' => &[Cmd::Select],
        'a' => &[Cmd::Insert],
        'w' => &[Cmd::Update],
        'd' => &[Cmd::Delete],
        _ => &ALL_CMDS,
    }
}

fn cmd_name(polcmd: char) -> &'static str {
    match polcmd {
        'r' => "SELECT",
        'a' => "INSERT",
        'w' => "UPDATE",
        'd' => "DELETE",
        _ => "ALL",
    }
}

/// Role lookups: names, attribute checks and membership closures.
struct Roles<'a> {
    by_oid: HashMap<Oid, &'a RoleRow>,
    /// member → its grants.
    grants: HashMap<Oid, Vec<(Oid, bool, bool)>>,
}

impl<'a> Roles<'a> {
    fn new(cat: &'a Catalog) -> Self {
        let mut grants: HashMap<Oid, Vec<(Oid, bool, bool)>> = HashMap::new();
        for m in &cat.members {
            grants
                .entry(m.member)
                .or_default()
                .push((m.role, m.inherit, m.set));
        }
        Roles {
            by_oid: cat.roles.iter().map(|r| (r.oid, r)).collect(),
            grants,
        }
    }

    fn name(&self, oid: Oid) -> String {
        match oid {
            0 => "public".into(),
            _ => self
                .by_oid
                .get(&oid)
                .map(|r| r.name.clone())
                .unwrap_or_else(|| format!("role {oid}")),
        }
    }

    fn get(&self, oid: Oid) -> Option<&'a RoleRow> {
        self.by_oid.get(&oid).copied()
    }

    /// Roles reachable from `start` (itself included) through grants accepted by
    /// `follow(inherit, set)`, each with the role it was reached from.
    fn closure(&self, start: Oid, follow: impl Fn(bool, bool) -> bool) -> HashMap<Oid, Oid> {
        let mut seen = HashMap::from([(start, start)]);
        let mut queue = VecDeque::from([start]);
        while let Some(r) = queue.pop_front() {
            for &(role, inherit, set) in self.grants.get(&r).map(Vec::as_slice).unwrap_or(&[]) {
                if follow(inherit, set) && !seen.contains_key(&role) {
                    seen.insert(role, r);
                    queue.push_back(role);
                }
            }
        }
        seen
    }

    /// The roles whose privileges (and ownership) `oid` has: INHERIT grants only.
    fn privileges_of(&self, oid: Oid) -> HashSet<Oid> {
        self.closure(oid, |inherit, _| inherit)
            .into_keys()
            .collect()
    }

    /// The roles `oid` can act as: inherited or reachable with SET ROLE.
    fn reachable(&self, oid: Oid) -> HashMap<Oid, Oid> {
        self.closure(oid, |inherit, set| inherit || set)
    }

    /// `a → b → c` for a role found by [`Roles::reachable`].
    fn path(&self, reach: &HashMap<Oid, Oid>, to: Oid) -> String {
        let mut chain = vec![to];
        let mut cur = to;
        while let Some(&prev) = reach.get(&cur) {
            if prev == cur {
                break;
            }
            chain.push(prev);
            cur = prev;
        }
        chain.reverse();
        chain
            .iter()
            .map(|o| self.name(*o))
            .collect::<Vec<_>>()
            .join(" → ")
    }

    /// Why a role bypasses RLS everywhere (its own attributes: they are not inherited).
    fn attribute_bypass(&self, oid: Oid) -> Option<&'static str> {
        let r = self.get(oid)?;
        if r.superuser {
            Some("superuser")
        } else if r.bypassrls {
            Some("BYPASSRLS")
        } else {
            None
        }
    }
}

struct Table<'a> {
    rel: &'a RelRow,
    /// Tenant columns present, in configured order.
    columns: Vec<&'a ColRow>,
}

impl Table<'_> {
    fn id(&self) -> String {
        format!("{}.{}", self.rel.schema, self.rel.name)
    }
    fn sql(&self) -> String {
        qualified(&self.rel.schema, &self.rel.name)
    }
}

struct Emitter {
    out: Vec<CheckResult>,
}

impl Emitter {
    fn push(
        &mut self,
        object: &str,
        rule: &str,
        layer: Layer,
        verdict: Verdict,
        summary: impl Into<String>,
    ) -> &mut CheckResult {
        self.out.push(CheckResult::new(
            format!("{object}.{rule}"),
            object,
            rule,
            layer,
            verdict,
            summary,
        ));
        let n = self.out.len() - 1;
        &mut self.out[n]
    }

    fn db(
        &mut self,
        object: &str,
        rule: &str,
        verdict: Verdict,
        summary: impl Into<String>,
    ) -> &mut CheckResult {
        self.push(object, rule, Layer::Database, verdict, summary)
    }
}

fn ev(r: &mut CheckResult, label: &str, text: impl Into<String>) {
    r.evidence.push(crate::outcome::Evidence::new(label, text));
}

/// Judges the snapshot. `elapsed` is the time the catalog took (shown on the
/// `database.tenant_tables_found` result).
pub fn judge(cat: &Catalog, opts: &Options<'_>, elapsed: Duration) -> Judged {
    let roles = Roles::new(cat);
    let mut em = Emitter { out: Vec::new() };
    let app = cat.app_role;
    let app_name = opts.app_role.unwrap_or("");
    let setting_label = opts
        .tenant_setting
        .map(str::to_string)
        .unwrap_or_else(|| "current_setting(...)".into());

    // --- discovery --------------------------------------------------------------
    let rel_by_oid: HashMap<Oid, &RelRow> = cat.relations.iter().map(|r| (r.oid, r)).collect();
    let mut cols_by_rel: HashMap<Oid, Vec<&ColRow>> = HashMap::new();
    for c in &cat.tenant_columns {
        cols_by_rel.entry(c.rel).or_default().push(c);
    }
    for v in cols_by_rel.values_mut() {
        v.sort_by_key(|c| {
            opts.tenant_columns
                .iter()
                .position(|n| *n == c.name)
                .unwrap_or(usize::MAX)
        });
    }
    let existing: HashSet<&str> = cat.schemas.iter().map(|s| s.name.as_str()).collect();
    let scope: HashSet<&str> = if !opts.schemas.is_empty() {
        for s in opts.schemas {
            if !existing.contains(s.as_str()) {
                let r = em.db(
                    &format!("schema.{s}"),
                    "schema_exists",
                    Verdict::Error,
                    format!("schema {s} does not exist: fix database.schemas"),
                );
                ev(
                    r,
                    "schemas",
                    cat.schemas
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                );
            }
        }
        opts.schemas.iter().map(String::as_str).collect()
    } else if app.is_some() {
        cat.schemas
            .iter()
            .filter(|s| s.app_usage == Some(true))
            .map(|s| s.name.as_str())
            .collect()
    } else {
        existing.clone()
    };
    let is_table = |r: &RelRow| r.kind == 'r' || r.kind == 'p';
    let mut tenant: BTreeSet<(String, String, Oid)> = cat
        .relations
        .iter()
        .filter(|r| {
            is_table(r) && scope.contains(r.schema.as_str()) && cols_by_rel.contains_key(&r.oid)
        })
        .map(|r| (r.schema.clone(), r.name.clone(), r.oid))
        .collect();
    for entry in opts.tables {
        let (want_schema, want_name) = split_name(entry);
        let found = match &want_schema {
            Some(s) => cat
                .relations
                .iter()
                .find(|r| is_table(r) && r.schema == *s && r.name == want_name),
            None => {
                let mut order: Vec<&str> = scope.iter().copied().collect();
                order.sort();
                order.push("public");
                order.iter().find_map(|s| {
                    cat.relations
                        .iter()
                        .find(|r| is_table(r) && r.schema == *s && r.name == want_name)
                })
            }
        };
        match found {
            Some(r) => {
                tenant.insert((r.schema.clone(), r.name.clone(), r.oid));
                em.db(
                    &format!("{}.{}", r.schema, r.name),
                    "table_exists",
                    Verdict::Pass,
                    "listed in tables and present",
                );
            }
            None => {
                let r = em.db(
                    entry,
                    "table_exists",
                    Verdict::Error,
                    format!("table {entry} listed in database.tables does not exist: fix the name or remove it"),
                );
                ev(
                    r,
                    "searched",
                    match &want_schema {
                        Some(s) => format!("schema {s}"),
                        None => "the audited schemas, then public".into(),
                    },
                );
            }
        }
    }
    tenant.retain(|(s, n, _)| {
        !opts.exempt.iter().any(|e| {
            let (es, en) = split_name(e);
            en == *n && es.is_none_or(|es| es == *s)
        })
    });
    let tables: Vec<Table<'_>> = tenant
        .iter()
        .filter_map(|(_, _, oid)| rel_by_oid.get(oid).copied())
        .map(|rel| Table {
            rel,
            columns: cols_by_rel.get(&rel.oid).cloned().unwrap_or_default(),
        })
        .collect();
    let tenant_oids: HashSet<Oid> = tables.iter().map(|t| t.rel.oid).collect();

    {
        let partitions = tables.iter().filter(|t| t.rel.parent.is_some()).count();
        let mut schemas: Vec<&str> = tables.iter().map(|t| t.rel.schema.as_str()).collect();
        schemas.dedup();
        let looked = format!(
            "columns {} in schemas {}",
            opts.tenant_columns.join(", "),
            {
                let mut s: Vec<&str> = scope.iter().copied().collect();
                s.sort();
                if s.is_empty() {
                    "(none)".to_string()
                } else {
                    s.join(", ")
                }
            }
        );
        let r = if tables.is_empty() {
            em.db(
                "database",
                "tenant_tables_found",
                Verdict::Error,
                "no tenant table found, so nothing was audited: set database.tenant_column, schemas or tables (and check app_role has USAGE on the schemas)",
            )
        } else {
            em.db(
                "database",
                "tenant_tables_found",
                Verdict::Pass,
                format!(
                    "{} tenant tables ({} partitions) in {}",
                    tables.len(),
                    partitions,
                    {
                        let s: BTreeSet<&str> = schemas.into_iter().collect();
                        s.into_iter().collect::<Vec<_>>().join(", ")
                    }
                ),
            )
        };
        ev(r, "looked for", looked);
        r.duration = elapsed;
    }

    // --- the app role -------------------------------------------------------------
    let app_privs: Option<HashSet<Oid>> = app.map(|a| roles.privileges_of(a));
    let app_reach: Option<HashMap<Oid, Oid>> = app.map(|a| roles.reachable(a));
    let no_app_reason = match (opts.app_role, app) {
        (None, _) => Some("no app_role configured: set database.app_role to check what the application's role can do".to_string()),
        (Some(name), None) => Some(format!("app role {name} does not exist")),
        _ => None,
    };
    if let (Some(name), None) = (opts.app_role, app) {
        em.db(
            &format!("role.{name}"),
            "app_role_exists",
            Verdict::Error,
            format!("role {name} does not exist: set database.app_role to the role the application connects as"),
        );
    }

    // --- per table -------------------------------------------------------------------
    let mut setting_functions: HashMap<String, Vec<Option<String>>> = HashMap::new();
    for f in &cat.setting_functions {
        setting_functions
            .entry(f.name.to_lowercase())
            .or_default()
            .extend(expr::settings_read_by(&f.source));
    }
    let mut policies_by_rel: HashMap<Oid, Vec<&PolicyRow>> = HashMap::new();
    for p in &cat.policies {
        policies_by_rel.entry(p.rel).or_default().push(p);
    }
    let mut indexes_by_rel: HashMap<Oid, Vec<&super::catalog::IndexRow>> = HashMap::new();
    for i in &cat.unique_indexes {
        indexes_by_rel.entry(i.rel).or_default().push(i);
    }
    let fix_setting = opts.tenant_setting.unwrap_or("app.current_org_id");
    let mut judgement_cache: HashMap<(String, String), Judgement> = HashMap::new();

    for t in &tables {
        let id = t.id();
        let col_names: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
        let key_col = t
            .columns
            .first()
            .map(|c| (c.name.as_str(), c.type_name.as_str()));
        let key_expr = match key_col {
            Some((c, ty)) => format!(
                "{} = current_setting('{fix_setting}', true)::{ty}",
                quote_ident(c)
            ),
            None => format!("<key> = current_setting('{fix_setting}', true)::<type>"),
        };
        let rel = t.rel;

        // rls_enabled
        if rel.rls {
            em.db(
                &id,
                "rls_enabled",
                Verdict::Pass,
                "row-level security is enabled",
            );
        } else {
            let r = em.db(
                &id,
                "rls_enabled",
                Verdict::Fail,
                "row-level security is disabled: every role with a grant sees every tenant's rows",
            );
            ev(
                r,
                "fix",
                format!("ALTER TABLE {} ENABLE ROW LEVEL SECURITY;", t.sql()),
            );
        }
        // rls_forced
        if rel.force {
            em.db(
                &id,
                "rls_forced",
                Verdict::Pass,
                "row-level security is forced (applies to the owner too)",
            );
        } else {
            let r = em.db(
                &id,
                "rls_forced",
                Verdict::Fail,
                format!(
                    "row-level security is not forced: the owner ({}) and its members bypass it",
                    roles.name(rel.owner)
                ),
            );
            ev(
                r,
                "fix",
                format!("ALTER TABLE {} FORCE ROW LEVEL SECURITY;", t.sql()),
            );
        }

        // Policies that apply to the app role (all, when it is unknown).
        let all_policies = policies_by_rel
            .get(&rel.oid)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let applies = |p: &PolicyRow| match &app_privs {
            None => true,
            Some(privs) => p.roles.iter().any(|r| *r == 0 || privs.contains(r)),
        };
        let spec = KeySpec {
            columns: &col_names,
            setting: opts.tenant_setting,
            setting_functions: &setting_functions,
        };
        // Schemas repeat the same policy text on many tables: judge each text once per
        // set of tenant columns.
        let mut judge_cached = |e: &'_ str| -> Judgement {
            let key = (e.to_string(), col_names.join("\u{0}"));
            judgement_cache
                .entry(key)
                .or_insert_with(|| expr::judge(e, &spec))
                .clone()
        };
        let judged: Vec<Judged1<'_>> = all_policies
            .iter()
            .filter(|p| applies(p))
            .map(|p| Judged1 {
                p,
                using: p.using.as_deref().map(&mut judge_cached),
                check: p.with_check.as_deref().map(&mut judge_cached),
            })
            .collect();
        let ignored: Vec<&PolicyRow> = all_policies
            .iter()
            .copied()
            .filter(|p| !applies(p))
            .collect();
        let pdef = |p: &PolicyRow| policy_def(p, &roles);
        let scope_note = |r: &mut CheckResult| {
            if !ignored.is_empty() {
                ev(
                    r,
                    "not applicable",
                    format!(
                        "{} (do not apply to {app_name})",
                        ignored
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        };

        // policy_present
        if !rel.rls {
            em.db(
                &id,
                "policy_present",
                Verdict::Skip,
                "row-level security is not enabled (see rls_enabled)",
            );
        } else if judged.is_empty() {
            let who = if app.is_some() {
                format!("applies to {app_name}")
            } else {
                "exists".into()
            };
            let r = em.db(
                &id,
                "policy_present",
                Verdict::Warn,
                format!(
                    "RLS is enabled but no policy {who}: PostgreSQL denies every row (fails closed)"
                ),
            );
            scope_note(r);
            ev(
                r,
                "fix",
                format!(
                    "CREATE POLICY tenant_isolation ON {} FOR ALL TO {} USING ({key_expr});",
                    t.sql(),
                    if app_name.is_empty() {
                        "<app_role>".to_string()
                    } else {
                        quote_ident(app_name)
                    }
                ),
            );
        } else {
            em.db(
                &id,
                "policy_present",
                Verdict::Pass,
                format!("{} policies apply", judged.len()),
            );
        }

        // command_coverage (needs the app role's privileges)
        if let (Some(_), Some(privs)) = (app, rel.privs) {
            if judged.is_empty() {
                em.db(
                    &id,
                    "command_coverage",
                    Verdict::Skip,
                    "no policy applies (see policy_present)",
                );
            } else {
                let granted: Vec<Cmd> = ALL_CMDS
                    .into_iter()
                    .filter(|c| match c {
                        Cmd::Select => privs.select,
                        Cmd::Insert => privs.insert,
                        Cmd::Update => privs.update,
                        Cmd::Delete => privs.delete,
                    })
                    .collect();
                let covered: HashSet<Cmd> = judged
                    .iter()
                    .filter(|j| j.p.permissive)
                    .flat_map(|j| cmds(j.p.cmd).iter().copied())
                    .collect();
                let missing: Vec<Cmd> = granted
                    .iter()
                    .copied()
                    .filter(|c| !covered.contains(c))
                    .collect();
                if missing.is_empty() {
                    em.db(
                        &id,
                        "command_coverage",
                        Verdict::Pass,
                        format!(
                            "a permissive policy covers every command {app_name} is granted ({})",
                            granted
                                .iter()
                                .map(|c| c.sql())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                } else {
                    let names = missing
                        .iter()
                        .map(|c| c.sql())
                        .collect::<Vec<_>>()
                        .join(", ");
                    let r = em.db(&id, "command_coverage", Verdict::Warn, format!(
                        "{app_name} may {names} but no permissive policy covers it: PostgreSQL denies it (fails closed)"
                    ));
                    for j in &judged {
                        ev(r, "policy", pdef(j.p));
                    }
                    let first = missing[0];
                    let clause = if first == Cmd::Insert {
                        "WITH CHECK"
                    } else {
                        "USING"
                    };
                    let app_sql = quote_ident(app_name);
                    ev(
                        r,
                        "fix",
                        format!(
                            "CREATE POLICY tenant_{} ON {} FOR {} TO {app_sql} {clause} ({key_expr}); \
                             -- one per command, or REVOKE {names} ON {} FROM {app_sql};",
                            first.sql().to_lowercase(),
                            t.sql(),
                            first.sql(),
                            t.sql(),
                        ),
                    );
                }
            }
        }

        // The policy rules.
        let gates = restrictive_gates(&judged);
        let covered_by_gate = |p: &PolicyRow, only: &[Cmd]| {
            let cs: Vec<Cmd> = cmds(p.cmd)
                .iter()
                .copied()
                .filter(|c| only.is_empty() || only.contains(c))
                .collect();
            !cs.is_empty() && cs.iter().all(|c| gates.contains(c))
        };
        let mut key_findings = Vec::new();
        let mut open_findings = Vec::new();
        let mut true_findings = Vec::new();
        let mut check_fail = Vec::new();
        let mut check_warn = Vec::new();
        for j in &judged {
            let p = j.p;
            let mitigated = p.permissive && covered_by_gate(p, &[]);
            let write_mitigated = p.permissive && covered_by_gate(p, &[Cmd::Insert, Cmd::Update]);
            match &j.using {
                Some(Judgement::FailOpen(why)) if !mitigated => {
                    open_findings.push((p, format!("USING: {why}")))
                }
                Some(Judgement::ConstantTrue) if p.permissive && !mitigated => {
                    true_findings.push(p)
                }
                Some(Judgement::NotKeyed(why)) if p.permissive && !mitigated => {
                    key_findings.push((p, format!("USING {why}")))
                }
                _ => {}
            }
            match &j.check {
                Some(Judgement::FailOpen(why)) if !write_mitigated => open_findings.push((p, format!("WITH CHECK: {why}"))),
                Some(Judgement::ConstantTrue) if p.permissive && !write_mitigated => {
                    check_fail.push((p, "WITH CHECK is constant true: rows can be written for any tenant".to_string()))
                }
                Some(Judgement::NotKeyed(why)) if p.permissive && !write_mitigated => {
                    check_fail.push((p, format!("WITH CHECK drops the tenant condition: it {why}")))
                }
                None if p.cmd == 'a' && p.permissive => check_warn.push((p, "INSERT policy without WITH CHECK: PostgreSQL rejects every insert through it (fails closed)".to_string())),
                _ => {}
            }
        }
        let no_policy_skip = |em: &mut Emitter, rule: &str| {
            em.db(
                &id,
                rule,
                Verdict::Skip,
                "no policy applies (see policy_present)",
            );
        };
        // policy_tenant_key
        if judged.is_empty() {
            no_policy_skip(&mut em, "policy_tenant_key");
        } else if key_findings.is_empty() {
            let r = em.db(
                &id,
                "policy_tenant_key",
                Verdict::Pass,
                format!(
                    "every permissive policy is keyed on {} and {setting_label}{}",
                    if col_names.is_empty() {
                        "the table".to_string()
                    } else {
                        col_names.join("/")
                    },
                    if gates.is_empty() {
                        ""
                    } else {
                        " (or gated by a restrictive tenant policy)"
                    }
                ),
            );
            scope_note(r);
        } else {
            let r = em.db(
                &id,
                "policy_tenant_key",
                Verdict::Fail,
                format!(
                    "policy {} is not keyed on the tenant: {}",
                    key_findings[0].0.name, key_findings[0].1
                ),
            );
            for (p, why) in &key_findings {
                ev(r, "policy", pdef(p));
                ev(r, "why", why.clone());
            }
            ev(
                r,
                "fix",
                format!(
                    "ALTER POLICY {} ON {} USING ({key_expr});",
                    quote_ident(&key_findings[0].0.name),
                    t.sql()
                ),
            );
        }
        // policy_fail_open
        if judged.is_empty() {
            no_policy_skip(&mut em, "policy_fail_open");
        } else if open_findings.is_empty() {
            em.db(
                &id,
                "policy_fail_open",
                Verdict::Pass,
                "no policy lets an unset or empty setting through",
            );
        } else {
            let r = em.db(
                &id,
                "policy_fail_open",
                Verdict::Fail,
                format!(
                    "policy {} fails open: {}",
                    open_findings[0].0.name, open_findings[0].1
                ),
            );
            for (p, why) in &open_findings {
                ev(r, "policy", pdef(p));
                ev(r, "why", why.clone());
            }
            ev(
                r,
                "fix",
                format!(
                    "ALTER POLICY {} ON {} USING ({key_expr}); -- an unset setting must match nothing",
                    quote_ident(&open_findings[0].0.name),
                    t.sql()
                ),
            );
        }
        // policy_constant_true
        if judged.is_empty() {
            no_policy_skip(&mut em, "policy_constant_true");
        } else if true_findings.is_empty() {
            em.db(
                &id,
                "policy_constant_true",
                Verdict::Pass,
                "no permissive USING (true) without a restrictive tenant policy",
            );
        } else {
            let p = true_findings[0];
            let r = em.db(&id, "policy_constant_true", Verdict::Fail, format!(
                "permissive policy {} is USING (true) for {} and no restrictive tenant policy applies: every tenant's rows",
                p.name, cmd_name(p.cmd)
            ));
            for p in &true_findings {
                ev(r, "policy", pdef(p));
            }
            ev(
                r,
                "fix",
                format!(
                    "ALTER POLICY {} ON {} USING ({key_expr}); -- or add: CREATE POLICY tenant_gate ON {} AS RESTRICTIVE FOR ALL TO {} USING ({key_expr});",
                    quote_ident(&p.name),
                    t.sql(),
                    t.sql(),
                    if app_name.is_empty() {
                        "<app_role>".to_string()
                    } else {
                        quote_ident(app_name)
                    }
                ),
            );
        }
        // insert_with_check
        if judged.is_empty() {
            no_policy_skip(&mut em, "insert_with_check");
        } else if check_fail.is_empty() && check_warn.is_empty() {
            em.db(
                &id,
                "insert_with_check",
                Verdict::Pass,
                "every WITH CHECK keeps the tenant condition",
            );
        } else {
            let (verdict, first) = if let Some(f) = check_fail.first() {
                (Verdict::Fail, f)
            } else {
                (Verdict::Warn, &check_warn[0])
            };
            let r = em.db(
                &id,
                "insert_with_check",
                verdict,
                format!("policy {}: {}", first.0.name, first.1),
            );
            for (p, why) in check_fail.iter().chain(check_warn.iter()) {
                ev(r, "policy", pdef(p));
                ev(r, "why", why.clone());
            }
            ev(
                r,
                "fix",
                format!(
                    "ALTER POLICY {} ON {} WITH CHECK ({key_expr});",
                    quote_ident(&first.0.name),
                    t.sql()
                ),
            );
        }
        // permissive_or
        if judged.is_empty() {
            no_policy_skip(&mut em, "permissive_or");
        } else {
            let mut per_cmd: Vec<(Cmd, Vec<&PolicyRow>)> = Vec::new();
            for c in ALL_CMDS {
                let ps: Vec<&PolicyRow> = judged
                    .iter()
                    .filter(|j| j.p.permissive && cmds(j.p.cmd).contains(&c))
                    .map(|j| j.p)
                    .collect();
                if ps.len() > 1 {
                    per_cmd.push((c, ps));
                }
            }
            if per_cmd.is_empty() {
                em.db(
                    &id,
                    "permissive_or",
                    Verdict::Pass,
                    "at most one permissive policy per command",
                );
            } else {
                let r = em.db(
                    &id,
                    "permissive_or",
                    Verdict::Warn,
                    format!(
                        "{} permissive policies are OR-ed for {}: any one of them admits a row",
                        per_cmd[0].1.len(),
                        per_cmd
                            .iter()
                            .map(|(c, _)| c.sql())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                let mut shown = HashSet::new();
                for (_, ps) in &per_cmd {
                    for p in ps {
                        if shown.insert(p.name.as_str()) {
                            ev(r, "policy", pdef(p));
                        }
                    }
                }
                ev(
                    r,
                    "fix",
                    "merge them into one permissive policy, or make the extra conditions AS RESTRICTIVE",
                );
            }
        }
        // unique_without_tenant
        if col_names.is_empty() {
            em.db(
                &id,
                "unique_without_tenant",
                Verdict::Skip,
                "the table has no tenant column",
            );
        } else {
            let bad: Vec<&&super::catalog::IndexRow> = indexes_by_rel
                .get(&rel.oid)
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .filter(|i| {
                    let in_cols = i.columns.iter().any(|c| col_names.contains(c));
                    let in_expr = i
                        .expression
                        .as_deref()
                        .is_some_and(|d| col_names.iter().any(|c| contains_word(d, c)));
                    !in_cols && !in_expr
                })
                .collect();
            if bad.is_empty() {
                em.db(
                    &id,
                    "unique_without_tenant",
                    Verdict::Pass,
                    "every unique key includes the tenant column",
                );
            } else {
                let i = bad[0];
                let r = em.db(&id, "unique_without_tenant", Verdict::Warn, format!(
                    "unique index {} ({}) does not include {}: a duplicate-key error tells one tenant that another has that value",
                    i.name, describe_index(i), col_names[0]
                ));
                for i in &bad {
                    ev(r, "index", format!("{} ({})", i.name, describe_index(i)));
                }
                ev(
                    r,
                    "fix",
                    format!(
                        "ALTER TABLE {} ADD UNIQUE ({}, {}); -- then drop {} (ALTER TABLE ... DROP CONSTRAINT, or DROP INDEX for a bare index)",
                        t.sql(),
                        quote_ident(&col_names[0]),
                        i.columns
                            .iter()
                            .map(|c| quote_ident(c))
                            .collect::<Vec<_>>()
                            .join(", "),
                        quote_ident(&i.name),
                    ),
                );
            }
        }
        // app_role_owner / app_role_truncate
        if let (Some(reach), Some(privs)) = (&app_reach, rel.privs) {
            if reach.contains_key(&rel.owner) {
                let how = if Some(rel.owner) == app {
                    format!("{app_name} owns it")
                } else {
                    format!(
                        "{app_name} acts as its owner through {}",
                        roles.path(reach, rel.owner)
                    )
                };
                if rel.force {
                    let r = em.db(
                        &id,
                        "app_role_owner",
                        Verdict::Pass,
                        format!("{how}, but RLS is forced"),
                    );
                    ev(
                        r,
                        "note",
                        "an owner can still ALTER TABLE ... NO FORCE ROW LEVEL SECURITY; prefer a separate owner role",
                    );
                } else {
                    let r = em.db(
                        &id,
                        "app_role_owner",
                        Verdict::Fail,
                        format!("{how} and RLS is not forced: the owner bypasses every policy"),
                    );
                    ev(r, "role", how.clone());
                    ev(
                        r,
                        "fix",
                        format!(
                            "ALTER TABLE {} FORCE ROW LEVEL SECURITY; -- better: ALTER TABLE {} OWNER TO <a role the app cannot use>;",
                            t.sql(),
                            t.sql()
                        ),
                    );
                }
            } else {
                em.db(
                    &id,
                    "app_role_owner",
                    Verdict::Pass,
                    format!("owned by {}, not {app_name}", roles.name(rel.owner)),
                );
            }
            if privs.truncate {
                let r = em.db(&id, "app_role_truncate", Verdict::Fail, format!(
                    "{app_name} may TRUNCATE it, and TRUNCATE is not subject to RLS: one tenant can erase every tenant's rows"
                ));
                ev(
                    r,
                    "fix",
                    format!(
                        "REVOKE TRUNCATE ON {} FROM {};",
                        t.sql(),
                        quote_ident(app_name)
                    ),
                );
            } else {
                em.db(
                    &id,
                    "app_role_truncate",
                    Verdict::Pass,
                    format!("{app_name} has no TRUNCATE"),
                );
            }
        }
    }

    // --- role-wide results ------------------------------------------------------------
    match (app, &app_reach) {
        (Some(a), Some(reach)) => {
            let object = format!("role.{app_name}");
            let via = |pred: &dyn Fn(&RoleRow) -> bool| {
                let mut found: Vec<Oid> = reach
                    .keys()
                    .copied()
                    .filter(|o| roles.get(*o).is_some_and(pred))
                    .collect();
                found.sort_by_key(|o| (*o != a, roles.path(reach, *o).len()));
                found.first().copied()
            };
            let superuser = via(&|r: &RoleRow| r.superuser);
            match superuser {
                Some(s) => {
                    let path = roles.path(reach, s);
                    let summary = if s == a {
                        format!("{app_name} is a superuser: it bypasses RLS and every other check")
                    } else {
                        format!("{app_name} can act as superuser {} ({path})", roles.name(s))
                    };
                    let r = em.db(&object, "app_role_superuser", Verdict::Fail, summary);
                    ev(r, "role", path);
                    ev(
                        r,
                        "fix",
                        if s == a {
                            format!("ALTER ROLE {} NOSUPERUSER;", quote_ident(app_name))
                        } else {
                            format!(
                                "REVOKE {} FROM {};",
                                quote_ident(&roles.name(s)),
                                quote_ident(app_name)
                            )
                        },
                    );
                }
                None => {
                    em.db(
                        &object,
                        "app_role_superuser",
                        Verdict::Pass,
                        format!("{app_name} is not a superuser, directly or through membership"),
                    );
                }
            }
            match via(&|r: &RoleRow| r.bypassrls) {
                _ if superuser == Some(a) => {
                    em.db(
                        &object,
                        "app_role_bypassrls",
                        Verdict::Skip,
                        format!("{app_name} is a superuser (see app_role_superuser)"),
                    );
                }
                Some(b) => {
                    let path = roles.path(reach, b);
                    let summary = if b == a {
                        format!("{app_name} has BYPASSRLS: no policy applies to it")
                    } else {
                        format!(
                            "{app_name} can act as {} which has BYPASSRLS ({path})",
                            roles.name(b)
                        )
                    };
                    let r = em.db(&object, "app_role_bypassrls", Verdict::Fail, summary);
                    ev(r, "role", path);
                    ev(
                        r,
                        "fix",
                        if b == a {
                            format!("ALTER ROLE {} NOBYPASSRLS;", quote_ident(app_name))
                        } else {
                            format!(
                                "REVOKE {} FROM {}; -- or ALTER ROLE {} NOBYPASSRLS;",
                                quote_ident(&roles.name(b)),
                                quote_ident(&roles.name(*reach.get(&b).unwrap_or(&a))),
                                quote_ident(&roles.name(b))
                            )
                        },
                    );
                }
                None => {
                    em.db(
                        &object,
                        "app_role_bypassrls",
                        Verdict::Pass,
                        format!("{app_name} has no BYPASSRLS, directly or through membership"),
                    );
                }
            }
        }
        _ => {
            let why = no_app_reason.clone().unwrap_or_default();
            for rule in [
                "app_role_superuser",
                "app_role_bypassrls",
                "app_role_owner",
                "app_role_truncate",
                "command_coverage",
            ] {
                em.db("database", rule, Verdict::Skip, why.clone());
            }
        }
    }

    // --- objects that lead around RLS ------------------------------------------------
    let tenant_rel = |oid: Oid| {
        tenant_oids
            .contains(&oid)
            .then(|| rel_by_oid.get(&oid).copied())
            .flatten()
    };
    // Why `owner` (running a view or a definer function) bypasses RLS on `table`.
    let owner_bypass = |owner: Oid, table: &RelRow| -> Option<String> {
        if let Some(a) = roles.attribute_bypass(owner) {
            return Some(format!("{} is {a}", roles.name(owner)));
        }
        if !table.force && roles.privileges_of(owner).contains(&table.owner) {
            return Some(format!(
                "{} owns {}.{} (directly or by membership) and its RLS is not forced",
                roles.name(owner),
                table.schema,
                table.name
            ));
        }
        None
    };
    let mut deps_of: HashMap<Oid, Vec<Oid>> = HashMap::new();
    let mut dependents: HashMap<Oid, Vec<Oid>> = HashMap::new();
    for d in &cat.deps {
        deps_of.entry(d.view).or_default().push(d.relation);
        dependents.entry(d.relation).or_default().push(d.view);
    }
    // Can the app role read `oid`, directly or through views over it?
    let app_can_read = |oid: Oid| -> bool {
        if app.is_none() {
            return true;
        }
        let mut seen = HashSet::from([oid]);
        let mut queue = VecDeque::from([oid]);
        while let Some(o) = queue.pop_front() {
            if rel_by_oid
                .get(&o)
                .and_then(|r| r.privs)
                .is_some_and(|p| p.select)
            {
                return true;
            }
            for d in dependents.get(&o).map(Vec::as_slice).unwrap_or(&[]) {
                if seen.insert(*d) {
                    queue.push_back(*d);
                }
            }
        }
        false
    };
    let reader = if app.is_some() {
        app_name.to_string()
    } else {
        "anyone with SELECT".into()
    };

    // view_bypass
    let mut views: Vec<&RelRow> = cat.relations.iter().filter(|r| r.kind == 'v').collect();
    views.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
    let mut any_view = false;
    for v in views {
        let under: Vec<&RelRow> = deps_of
            .get(&v.oid)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .filter_map(|o| tenant_rel(*o))
            .collect();
        if under.is_empty() {
            continue;
        }
        any_view = true;
        let id = format!("{}.{}", v.schema, v.name);
        let sql = qualified(&v.schema, &v.name);
        if v.security_invoker {
            em.db(
                &id,
                "view_bypass",
                Verdict::Pass,
                "security_invoker: RLS applies as the caller",
            );
            continue;
        }
        let bypass: Vec<String> = under
            .iter()
            .filter_map(|t| owner_bypass(v.owner, t))
            .collect();
        if bypass.is_empty() {
            em.db(
                &id,
                "view_bypass",
                Verdict::Pass,
                format!(
                    "owner {} is subject to RLS on every tenant table it reads",
                    roles.name(v.owner)
                ),
            );
            continue;
        }
        let readable = app_can_read(v.oid);
        let r = em.db(
            &id,
            "view_bypass",
            if readable {
                Verdict::Fail
            } else {
                Verdict::Warn
            },
            format!(
                "view reads {} as its owner, who bypasses RLS ({}){}",
                under
                    .iter()
                    .map(|t| format!("{}.{}", t.schema, t.name))
                    .collect::<Vec<_>>()
                    .join(", "),
                bypass[0],
                if readable {
                    format!(": {reader} sees every tenant's rows through it")
                } else {
                    format!(" ({app_name} cannot read it today)")
                }
            ),
        );
        ev(r, "role", format!("owner {}", roles.name(v.owner)));
        ev(
            r,
            "fix",
            format!("ALTER VIEW {sql} SET (security_invoker = true);"),
        );
    }
    if !any_view {
        em.db(
            "database",
            "view_bypass",
            Verdict::Pass,
            "no view reads a tenant table",
        );
    }

    // matview_tenant_data
    let mut any_mat = false;
    let mut mats: Vec<&RelRow> = cat.relations.iter().filter(|r| r.kind == 'm').collect();
    mats.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
    for m in mats {
        // Tenant tables read directly or through views.
        let mut sources = BTreeSet::new();
        let mut seen = HashSet::from([m.oid]);
        let mut queue = VecDeque::from([m.oid]);
        while let Some(o) = queue.pop_front() {
            for d in deps_of.get(&o).map(Vec::as_slice).unwrap_or(&[]) {
                if let Some(t) = tenant_rel(*d) {
                    sources.insert(format!("{}.{}", t.schema, t.name));
                }
                if seen.insert(*d)
                    && rel_by_oid
                        .get(d)
                        .is_some_and(|r| r.kind == 'v' || r.kind == 'm')
                {
                    queue.push_back(*d);
                }
            }
        }
        let has_col = cols_by_rel.contains_key(&m.oid);
        if sources.is_empty() && !has_col {
            continue;
        }
        any_mat = true;
        let id = format!("{}.{}", m.schema, m.name);
        let readable = app_can_read(m.oid);
        let what = if sources.is_empty() {
            "has a tenant column".to_string()
        } else {
            format!(
                "copies {}",
                sources.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        };
        let r = em.db(
            &id,
            "matview_tenant_data",
            if readable {
                Verdict::Fail
            } else {
                Verdict::Warn
            },
            format!(
                "materialized view {what}; RLS never applies to materialized views{}",
                if readable {
                    format!(": {reader} reads every tenant's rows")
                } else {
                    format!(" ({app_name} cannot read it today)")
                }
            ),
        );
        ev(
            r,
            "fix",
            format!(
                "REVOKE ALL ON {} FROM {}; -- serve it through a security_invoker view or a function that filters on the tenant",
                qualified(&m.schema, &m.name),
                if app_name.is_empty() {
                    "PUBLIC".to_string()
                } else {
                    quote_ident(app_name)
                }
            ),
        );
    }
    if !any_mat {
        em.db(
            "database",
            "matview_tenant_data",
            Verdict::Pass,
            "no materialized view holds tenant data",
        );
    }

    // foreign_table_tenant_data
    let mut any_foreign = false;
    let mut foreign: Vec<&RelRow> = cat
        .relations
        .iter()
        .filter(|r| r.kind == 'f' && cols_by_rel.contains_key(&r.oid))
        .collect();
    foreign.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
    for f in foreign {
        any_foreign = true;
        let id = format!("{}.{}", f.schema, f.name);
        let readable = app_can_read(f.oid);
        let r = em.db(
            &id,
            "foreign_table_tenant_data",
            if readable {
                Verdict::Fail
            } else {
                Verdict::Warn
            },
            format!(
                "foreign table with a tenant column: RLS is not enforced on it here{}",
                if readable {
                    format!("; {reader} reads every tenant's rows")
                } else {
                    format!(" ({app_name} cannot read it today)")
                }
            ),
        );
        ev(
            r,
            "fix",
            format!(
                "REVOKE ALL ON {} FROM {}; -- expose it through a security_invoker view keyed on the tenant",
                qualified(&f.schema, &f.name),
                if app_name.is_empty() {
                    "PUBLIC".to_string()
                } else {
                    quote_ident(app_name)
                }
            ),
        );
    }
    if !any_foreign {
        em.db(
            "database",
            "foreign_table_tenant_data",
            Verdict::Pass,
            "no foreign table holds tenant data",
        );
    }

    // definer_function
    let mut funcs: Vec<&super::catalog::FuncRow> = cat.definer_functions.iter().collect();
    funcs.sort_by(|a, b| (&a.schema, &a.name, &a.args).cmp(&(&b.schema, &b.name, &b.args)));
    if funcs.is_empty() {
        em.db(
            "database",
            "definer_function",
            Verdict::Pass,
            "no SECURITY DEFINER function",
        );
    }
    let executor = if app.is_some() {
        app_name.to_string()
    } else {
        "PUBLIC".into()
    };
    for f in funcs {
        let object = format!("{}.{}({})", f.schema, f.name, f.args);
        let bypass = roles
            .attribute_bypass(f.owner)
            .map(|a| format!("{} is {a}", roles.name(f.owner)))
            .or_else(|| {
                let owned: Vec<String> = tables
                    .iter()
                    .filter(|t| !t.rel.force)
                    .filter_map(|t| owner_bypass(f.owner, t.rel).map(|_| t.id()))
                    .collect();
                (!owned.is_empty()).then(|| {
                    format!(
                        "{} owns {} whose RLS is not forced",
                        roles.name(f.owner),
                        owned.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
                            + if owned.len() > 3 { ", ..." } else { "" }
                    )
                })
            });
        match (f.executable, bypass) {
            (false, _) => {
                em.db(
                    &object,
                    "definer_function",
                    Verdict::Pass,
                    format!("{executor} cannot execute it"),
                );
            }
            (true, None) => {
                em.db(
                    &object,
                    "definer_function",
                    Verdict::Pass,
                    format!(
                        "runs as {}, which is subject to forced RLS on every tenant table",
                        roles.name(f.owner)
                    ),
                );
            }
            (true, Some(why)) => {
                let r = em.db(&object, "definer_function", Verdict::Fail, format!(
                    "SECURITY DEFINER and {executor} may execute it, but it runs as a role that bypasses RLS ({why})"
                ));
                ev(r, "role", format!("owner {}", roles.name(f.owner)));
                ev(
                    r,
                    "fix",
                    format!(
                        "ALTER FUNCTION {}.{}({}) OWNER TO <a role subject to forced RLS>; -- or REVOKE EXECUTE ON FUNCTION ... FROM PUBLIC, {}",
                        quote_ident(&f.schema),
                        quote_ident(&f.name),
                        f.args,
                        if app_name.is_empty() {
                            "<app_role>".to_string()
                        } else {
                            quote_ident(app_name)
                        }
                    ),
                );
            }
        }
    }

    let tenant_tables = tables
        .iter()
        .map(|t| TenantTable {
            schema: t.rel.schema.clone(),
            name: t.rel.name.clone(),
            column: t
                .columns
                .first()
                .map(|c| (c.name.clone(), c.type_name.clone())),
        })
        .collect();
    Judged {
        results: em.out,
        tenant_tables,
    }
}

/// One applicable policy with its judged expressions.
struct Judged1<'a> {
    p: &'a PolicyRow,
    using: Option<Judgement>,
    check: Option<Judgement>,
}

/// Commands on which a restrictive policy keyed on the tenant applies: restrictive
/// policies are AND-ed with the permissive ones, so they gate every row.
fn restrictive_gates(judged: &[Judged1<'_>]) -> HashSet<Cmd> {
    let mut gates = HashSet::new();
    for j in judged.iter().filter(|j| !j.p.permissive) {
        let using_keyed = j.using == Some(Judgement::Keyed);
        let check_keyed = match &j.check {
            Some(c) => *c == Judgement::Keyed,
            None => using_keyed,
        };
        for c in cmds(j.p.cmd) {
            let ok = match c {
                Cmd::Select | Cmd::Delete => using_keyed,
                Cmd::Insert => check_keyed,
                Cmd::Update => using_keyed && check_keyed,
            };
            if ok {
                gates.insert(*c);
            }
        }
    }
    gates
}

/// `name [AS RESTRICTIVE] FOR cmd TO roles USING (...) WITH CHECK (...)`.
fn policy_def(p: &PolicyRow, roles: &Roles<'_>) -> String {
    let mut s = quote_ident(&p.name);
    if !p.permissive {
        s.push_str(" AS RESTRICTIVE");
    }
    s.push_str(" FOR ");
    s.push_str(cmd_name(p.cmd));
    s.push_str(" TO ");
    s.push_str(
        &p.roles
            .iter()
            .map(|r| roles.name(*r))
            .collect::<Vec<_>>()
            .join(", "),
    );
    if let Some(u) = &p.using {
        s.push_str(&format!(" USING {}", parenthesized(u)));
    }
    if let Some(c) = &p.with_check {
        s.push_str(&format!(" WITH CHECK {}", parenthesized(c)));
    }
    s
}

fn parenthesized(e: &str) -> String {
    let t = e.trim();
    if t.starts_with('(') && t.ends_with(')') {
        // Only when the outer pair encloses everything.
        let mut depth = 0i32;
        let mut encloses = true;
        for (i, ch) in t.char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 && i < t.len() - 1 {
                encloses = false;
                break;
            }
        }
        if encloses {
            return t.to_string();
        }
    }
    format!("({t})")
}

fn describe_index(i: &super::catalog::IndexRow) -> String {
    match &i.expression {
        Some(d) => d.clone(),
        None => i.columns.join(", "),
    }
}

fn contains_word(hay: &str, word: &str) -> bool {
    hay.match_indices(word).any(|(at, _)| {
        let before = hay[..at].chars().next_back();
        let after = hay[at + word.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

/// `schema.table` → (Some(schema), table); `table` → (None, table). Quotes removed.
fn split_name(s: &str) -> (Option<String>, String) {
    let unq = |x: &str| x.trim().trim_matches('"').to_string();
    match s.split_once('.') {
        Some((a, b)) => (Some(unq(a)), unq(b)),
        None => (None, unq(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::catalog::*;
    use super::*;

    fn rel(oid: Oid, name: &str, owner: Oid) -> RelRow {
        RelRow {
            oid,
            schema: "public".into(),
            name: name.into(),
            kind: 'r',
            rls: true,
            force: true,
            owner,
            parent: None,
            security_invoker: false,
            privs: Some(Privs {
                select: true,
                insert: true,
                update: true,
                delete: true,
                truncate: false,
            }),
        }
    }

    fn role(oid: Oid, name: &str) -> RoleRow {
        RoleRow {
            oid,
            name: name.into(),
            superuser: false,
            bypassrls: false,
            inherit: true,
        }
    }

    fn policy(
        rel: Oid,
        name: &str,
        cmd: char,
        permissive: bool,
        using: Option<&str>,
        check: Option<&str>,
    ) -> PolicyRow {
        PolicyRow {
            rel,
            name: name.into(),
            cmd,
            permissive,
            roles: vec![0],
            using: using.map(str::to_string),
            with_check: check.map(str::to_string),
        }
    }

    const KEY: &str = "(org_id = (current_setting('app.current_org_id'::text, true))::uuid)";

    fn base() -> Catalog {
        Catalog {
            server_version_num: 150000,
            current_user: "postgres".into(),
            roles: vec![role(10, "owner"), role(20, "app"), role(30, "admin")],
            app_role: Some(20),
            schemas: vec![SchemaRow {
                name: "public".into(),
                app_usage: Some(true),
            }],
            relations: vec![rel(100, "brands", 10)],
            tenant_columns: vec![ColRow {
                rel: 100,
                name: "org_id".into(),
                type_name: "uuid".into(),
            }],
            ..Default::default()
        }
    }

    fn run(cat: &Catalog) -> Vec<CheckResult> {
        let cols = vec!["org_id".to_string()];
        let opts = Options {
            tenant_columns: &cols,
            schemas: &[],
            tables: &[],
            exempt: &[],
            app_role: Some("app"),
            tenant_setting: Some("app.current_org_id"),
        };
        judge(cat, &opts, Duration::ZERO).results
    }

    fn findings(rs: &[CheckResult]) -> Vec<(String, Verdict)> {
        let mut v: Vec<_> = rs
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Fail | Verdict::Warn | Verdict::Error))
            .map(|r| (r.id.clone(), r.verdict))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn sound_all_policy_without_with_check_is_clean() {
        let mut cat = base();
        cat.policies
            .push(policy(100, "tenant", '*', true, Some(KEY), None));
        let rs = run(&cat);
        assert_eq!(findings(&rs), vec![]);
        // One result per rule per table.
        let n = rs.iter().filter(|r| r.check == "public.brands").count();
        assert_eq!(n, TABLE_RULES.len());
    }

    #[test]
    fn restrictive_gate_makes_using_true_sound() {
        let mut cat = base();
        cat.policies
            .push(policy(100, "read_all", 'r', true, Some("true"), None));
        cat.policies
            .push(policy(100, "gate", '*', false, Some(KEY), None));
        cat.policies
            .push(policy(100, "ins", 'a', true, None, Some(KEY)));
        cat.policies
            .push(policy(100, "upd", 'w', true, Some(KEY), None));
        cat.policies
            .push(policy(100, "del", 'd', true, Some(KEY), None));
        assert_eq!(findings(&run(&cat)), vec![]);
    }

    #[test]
    fn using_true_without_gate_fails() {
        let mut cat = base();
        cat.policies
            .push(policy(100, "open", '*', true, Some("true"), None));
        assert_eq!(
            findings(&run(&cat)),
            vec![("public.brands.policy_constant_true".into(), Verdict::Fail)]
        );
    }

    #[test]
    fn insert_checks() {
        let mut cat = base();
        cat.policies
            .push(policy(100, "sel", 'r', true, Some(KEY), None));
        cat.policies.push(policy(100, "ins", 'a', true, None, None));
        cat.policies
            .push(policy(100, "upd", 'w', true, Some(KEY), None));
        cat.policies
            .push(policy(100, "del", 'd', true, Some(KEY), None));
        assert_eq!(
            findings(&run(&cat)),
            vec![("public.brands.insert_with_check".into(), Verdict::Warn)]
        );
        cat.policies[1].with_check = Some("true".into());
        assert_eq!(
            findings(&run(&cat)),
            vec![("public.brands.insert_with_check".into(), Verdict::Fail)]
        );
        // ALL with a WITH CHECK that drops the tenant.
        cat.policies = vec![policy(
            100,
            "all",
            '*',
            true,
            Some(KEY),
            Some("(name IS NOT NULL)"),
        )];
        assert_eq!(
            findings(&run(&cat)),
            vec![("public.brands.insert_with_check".into(), Verdict::Fail)]
        );
    }

    #[test]
    fn policies_for_other_roles_are_ignored() {
        let mut cat = base();
        cat.policies
            .push(policy(100, "tenant", '*', true, Some(KEY), None));
        let mut admin = policy(100, "admin_all", '*', true, Some("true"), None);
        admin.roles = vec![30];
        cat.policies.push(admin.clone());
        assert_eq!(findings(&run(&cat)), vec![]);
        // ...unless the app inherits that role.
        cat.members.push(MemberRow {
            role: 30,
            member: 20,
            inherit: true,
            set: true,
        });
        let f = findings(&run(&cat));
        assert!(
            f.contains(&("public.brands.policy_constant_true".into(), Verdict::Fail)),
            "{f:?}"
        );
        assert!(
            f.contains(&("public.brands.permissive_or".into(), Verdict::Warn)),
            "{f:?}"
        );
    }

    #[test]
    fn bypassrls_through_two_hops_with_set_only() {
        let mut cat = base();
        cat.policies
            .push(policy(100, "tenant", '*', true, Some(KEY), None));
        cat.roles.push(RoleRow {
            bypassrls: true,
            ..role(40, "etl")
        });
        cat.members.push(MemberRow {
            role: 30,
            member: 20,
            inherit: false,
            set: true,
        });
        cat.members.push(MemberRow {
            role: 40,
            member: 30,
            inherit: false,
            set: true,
        });
        let rs = run(&cat);
        let r = rs
            .iter()
            .find(|r| r.id == "role.app.app_role_bypassrls")
            .expect("result");
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(
            r.evidence.iter().any(|e| e.text == "app → admin → etl"),
            "{:?}",
            r.evidence
        );
    }

    #[test]
    fn owner_membership_counts_for_unforced_tables() {
        let mut cat = base();
        cat.policies
            .push(policy(100, "tenant", '*', true, Some(KEY), None));
        cat.relations[0].force = false;
        cat.members.push(MemberRow {
            role: 10,
            member: 20,
            inherit: true,
            set: true,
        });
        assert_eq!(
            findings(&run(&cat)),
            vec![
                ("public.brands.app_role_owner".into(), Verdict::Fail),
                ("public.brands.rls_forced".into(), Verdict::Fail),
            ]
        );
    }

    #[test]
    fn definer_function_owner_judgement() {
        let mut cat = base();
        cat.policies
            .push(policy(100, "tenant", '*', true, Some(KEY), None));
        cat.definer_functions.push(FuncRow {
            schema: "public".into(),
            name: "signup".into(),
            args: "text".into(),
            owner: 10,
            executable: true,
        });
        assert_eq!(findings(&run(&cat)), vec![]);
        cat.relations[0].force = false; // now the owner bypasses on brands
        let f = findings(&run(&cat));
        assert!(
            f.contains(&("public.signup(text).definer_function".into(), Verdict::Fail)),
            "{f:?}"
        );
    }

    #[test]
    fn no_app_role_skips_role_checks() {
        let mut cat = base();
        cat.app_role = None;
        cat.policies
            .push(policy(100, "tenant", '*', true, Some(KEY), None));
        let cols = vec!["org_id".to_string()];
        let opts = Options {
            tenant_columns: &cols,
            schemas: &[],
            tables: &[],
            exempt: &[],
            app_role: None,
            tenant_setting: None,
        };
        let rs = judge(&cat, &opts, Duration::ZERO).results;
        for rule in [
            "app_role_superuser",
            "app_role_bypassrls",
            "app_role_owner",
            "app_role_truncate",
            "command_coverage",
        ] {
            let r = rs
                .iter()
                .find(|r| r.id == format!("database.{rule}"))
                .expect(rule);
            assert_eq!(r.verdict, Verdict::Skip);
        }
        assert!(
            !rs.iter()
                .any(|r| r.variant.starts_with("app_role") && r.verdict == Verdict::Pass)
        );
    }

    #[test]
    fn nothing_found_is_an_error_and_missing_tables_too() {
        let mut cat = base();
        cat.tenant_columns.clear();
        let cols = vec!["org_id".to_string()];
        let tables = vec!["public.nope".to_string()];
        let opts = Options {
            tenant_columns: &cols,
            schemas: &[],
            tables: &tables,
            exempt: &[],
            app_role: Some("app"),
            tenant_setting: None,
        };
        let rs = judge(&cat, &opts, Duration::ZERO).results;
        let f = findings(&rs);
        assert!(
            f.contains(&("database.tenant_tables_found".into(), Verdict::Error)),
            "{f:?}"
        );
        assert!(
            f.contains(&("public.nope.table_exists".into(), Verdict::Error)),
            "{f:?}"
        );
    }

    #[test]
    fn exempt_removes_tables() {
        let mut cat = base();
        cat.relations[0].rls = false;
        let cols = vec!["org_id".to_string()];
        let exempt = vec!["brands".to_string()];
        let opts = Options {
            tenant_columns: &cols,
            schemas: &[],
            tables: &[],
            exempt: &exempt,
            app_role: Some("app"),
            tenant_setting: None,
        };
        let rs = judge(&cat, &opts, Duration::ZERO).results;
        assert!(!rs.iter().any(|r| r.check == "public.brands"));
    }

    #[test]
    fn policy_text_is_readable() {
        let cat = base();
        let roles = Roles::new(&cat);
        let p = PolicyRow {
            roles: vec![20],
            ..policy(100, "Tenant", '*', false, Some(KEY), Some("true"))
        };
        assert_eq!(
            policy_def(&p, &roles),
            format!("\"Tenant\" AS RESTRICTIVE FOR ALL TO app USING {KEY} WITH CHECK (true)")
        );
        assert_eq!(parenthesized("(a) OR (b)"), "((a) OR (b))");
    }
}
