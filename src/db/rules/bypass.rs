//! Objects that lead around RLS (database layer → rules → **bypassing objects**):
//! views that run as an owner who bypasses RLS, materialized views and foreign tables
//! holding tenant data, and SECURITY DEFINER functions running as such a role.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use super::super::catalog::{Catalog, FuncRow, Oid, RelRow};
use super::super::sql::{qualified, quote_ident};
use super::context::{Emitter, Finding};
use super::discovery::Discovered;
use super::policies::CallerCheck;
use super::roles::{App, Roles};
use super::rule::Rule;
use crate::outcome::Verdict;

/// What the bypass rules share.
pub(super) struct BypassCtx<'a> {
    cat: &'a Catalog,
    found: &'a Discovered<'a>,
    roles: &'a Roles<'a>,
    app: &'a App<'a>,
    tenant_oids: HashSet<Oid>,
    /// view → the relations it reads.
    deps_of: HashMap<Oid, Vec<Oid>>,
    /// relation → the views that read it.
    dependents: HashMap<Oid, Vec<Oid>>,
    caller: CallerCheck<'a>,
}

impl<'a> BypassCtx<'a> {
    pub fn new(
        cat: &'a Catalog,
        found: &'a Discovered<'a>,
        roles: &'a Roles<'a>,
        app: &'a App<'a>,
        caller: CallerCheck<'a>,
    ) -> BypassCtx<'a> {
        let mut deps_of: HashMap<Oid, Vec<Oid>> = HashMap::new();
        let mut dependents: HashMap<Oid, Vec<Oid>> = HashMap::new();
        for d in &cat.deps {
            deps_of.entry(d.view).or_default().push(d.relation);
            dependents.entry(d.relation).or_default().push(d.view);
        }
        BypassCtx {
            cat,
            found,
            roles,
            app,
            tenant_oids: found.tables.iter().map(|t| t.rel.oid).collect(),
            deps_of,
            dependents,
            caller,
        }
    }

    /// Emits every bypass rule.
    pub fn judge(&self, em: &mut Emitter) {
        self.view_bypass(em);
        self.matview_tenant_data(em);
        self.foreign_table_tenant_data(em);
        self.definer_function(em);
        self.derived_tenant_data(em);
    }

    /// Tables outside the tenant set that hold a foreign key to a tenant table (rows
    /// derived from a tenant's, such as per-user profiles of its members), readable
    /// by the app role, with RLS off: tenant data beyond the tenant column. Lookup
    /// tables that tenant tables merely reference point the other way and are not.
    fn derived_tenant_data(&self, em: &mut Emitter) {
        let mut children: std::collections::BTreeMap<
            (String, String),
            (&RelRow, BTreeSet<String>),
        > = Default::default();
        for fk in &self.cat.foreign_keys {
            let Some(parent) = self.tenant_rel(fk.references) else {
                continue;
            };
            let Some(child) = self.found.rel_by_oid.get(&fk.rel).copied() else {
                continue;
            };
            let excluded = self.tenant_oids.contains(&child.oid)
                || self.found.cols_by_rel.contains_key(&child.oid)
                || !(child.kind == 'r' || child.kind == 'p')
                || self.found.is_exempt(&child.schema, &child.name);
            if excluded {
                continue;
            }
            children
                .entry((child.schema.clone(), child.name.clone()))
                .or_insert((child, BTreeSet::new()))
                .1
                .insert(format!("{}.{}", parent.schema, parent.name));
        }
        let mut any = false;
        for ((schema, name), (child, parents)) in &children {
            let readable = child.privs.is_none_or(|p| p.select) && self.app_can_read(child.oid);
            if child.rls || !readable {
                continue;
            }
            any = true;
            let f = Finding::new(
                Rule::DerivedTenantData,
                format!(
                    "references tenant table {} but has no tenant column and RLS is off: {} reads every tenant's rows of it",
                    parents.iter().cloned().collect::<Vec<_>>().join(", "),
                    self.app.reader()
                ),
            )
            .fix(format!(
                "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY; ALTER TABLE {t} FORCE ROW LEVEL SECURITY; -- and a policy through its parent, or list it in database.exempt",
                t = qualified(schema, name)
            ));
            em.finding(&format!("{schema}.{name}"), Rule::DerivedTenantData, f);
        }
        if !any {
            em.pass(
                "database",
                Rule::DerivedTenantData,
                "no table readable by the app role derives from a tenant table without RLS",
            );
        }
    }

    fn tenant_rel(&self, oid: Oid) -> Option<&'a RelRow> {
        self.found.tenant_rel(oid, &self.tenant_oids)
    }

    /// Why `owner` (running a view or a definer function) bypasses RLS on `table`.
    fn owner_bypass(&self, owner: Oid, table: &RelRow) -> Option<String> {
        if let Some(a) = self.roles.attribute_bypass(owner) {
            return Some(format!("{} is {a}", self.roles.name(owner)));
        }
        if !table.force && self.roles.privileges_of(owner).contains(&table.owner) {
            return Some(format!(
                "{} owns {}.{} (directly or by membership) and its RLS is not forced",
                self.roles.name(owner),
                table.schema,
                table.name
            ));
        }
        None
    }

    /// Can the app role read `oid`, directly or through views over it?
    fn app_can_read(&self, oid: Oid) -> bool {
        if self.app.oid.is_none() {
            return true;
        }
        let mut seen = HashSet::from([oid]);
        let mut queue = VecDeque::from([oid]);
        while let Some(o) = queue.pop_front() {
            if self
                .found
                .rel_by_oid
                .get(&o)
                .and_then(|r| r.privs)
                .is_some_and(|p| p.select)
            {
                return true;
            }
            for d in self.dependents.get(&o).map(Vec::as_slice).unwrap_or(&[]) {
                if seen.insert(*d) {
                    queue.push_back(*d);
                }
            }
        }
        false
    }

    /// Fail when the app role can read it, else Warn with why not; the summary tail.
    fn exposure(&self, readable: bool, sep: &str, what: &str) -> (Verdict, String) {
        if readable {
            (Verdict::Fail, format!("{sep} {} {what}", self.app.reader()))
        } else {
            (
                Verdict::Warn,
                format!(" ({} cannot read it today)", self.app.name),
            )
        }
    }

    fn sorted(&self, kind: char, keep: impl Fn(&RelRow) -> bool) -> Vec<&'a RelRow> {
        let mut v: Vec<&RelRow> = self
            .cat
            .relations
            .iter()
            .filter(|r| r.kind == kind && keep(r))
            .collect();
        v.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
        v
    }

    fn view_bypass(&self, em: &mut Emitter) {
        let mut any = false;
        for v in self.sorted('v', |_| true) {
            let under: Vec<&RelRow> = self
                .deps_of
                .get(&v.oid)
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .filter_map(|o| self.tenant_rel(*o))
                .collect();
            if under.is_empty() {
                continue;
            }
            any = true;
            let id = format!("{}.{}", v.schema, v.name);
            if v.security_invoker {
                em.pass(
                    &id,
                    Rule::ViewBypass,
                    "security_invoker: RLS applies as the caller",
                );
                continue;
            }
            let bypass: Vec<String> = under
                .iter()
                .filter_map(|t| self.owner_bypass(v.owner, t))
                .collect();
            let finding = bypass.first().map(|why| {
                let (verdict, tail) = self.exposure(
                    self.app_can_read(v.oid),
                    ":",
                    "sees every tenant's rows through it",
                );
                Finding::with_verdict(
                    verdict,
                    format!(
                        "view reads {} as its owner, who bypasses RLS ({why}){tail}",
                        under
                            .iter()
                            .map(|t| format!("{}.{}", t.schema, t.name))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                )
                .with("role", format!("owner {}", self.roles.name(v.owner)))
                .fix(format!(
                    "ALTER VIEW {} SET (security_invoker = true);",
                    qualified(&v.schema, &v.name)
                ))
            });
            em.judged(
                &id,
                Rule::ViewBypass,
                format!(
                    "owner {} is subject to RLS on every tenant table it reads",
                    self.roles.name(v.owner)
                ),
                finding,
            );
        }
        if !any {
            em.pass("database", Rule::ViewBypass, "no view reads a tenant table");
        }
    }

    /// Tenant tables a materialized view reads, directly or through views.
    fn matview_sources(&self, m: &RelRow) -> BTreeSet<String> {
        let mut sources = BTreeSet::new();
        let mut seen = HashSet::from([m.oid]);
        let mut queue = VecDeque::from([m.oid]);
        while let Some(o) = queue.pop_front() {
            for d in self.deps_of.get(&o).map(Vec::as_slice).unwrap_or(&[]) {
                if let Some(t) = self.tenant_rel(*d) {
                    sources.insert(format!("{}.{}", t.schema, t.name));
                }
                if seen.insert(*d)
                    && self
                        .found
                        .rel_by_oid
                        .get(d)
                        .is_some_and(|r| r.kind == 'v' || r.kind == 'm')
                {
                    queue.push_back(*d);
                }
            }
        }
        sources
    }

    fn matview_tenant_data(&self, em: &mut Emitter) {
        let mut any = false;
        for m in self.sorted('m', |_| true) {
            let sources = self.matview_sources(m);
            let has_col = self.found.cols_by_rel.contains_key(&m.oid);
            if sources.is_empty() && !has_col {
                continue;
            }
            any = true;
            let what = if sources.is_empty() {
                "has a tenant column".to_string()
            } else {
                format!(
                    "copies {}",
                    sources.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            let (verdict, tail) =
                self.exposure(self.app_can_read(m.oid), ":", "reads every tenant's rows");
            let f = Finding::with_verdict(
                verdict,
                format!("materialized view {what}; RLS never applies to materialized views{tail}"),
            )
            .fix(format!(
                "REVOKE ALL ON {} FROM {}; -- serve it through a security_invoker view or a function that filters on the tenant",
                qualified(&m.schema, &m.name),
                self.app.sql_or_public()
            ));
            em.finding(
                &format!("{}.{}", m.schema, m.name),
                Rule::MatviewTenantData,
                f,
            );
        }
        if !any {
            em.pass(
                "database",
                Rule::MatviewTenantData,
                "no materialized view holds tenant data",
            );
        }
    }

    fn foreign_table_tenant_data(&self, em: &mut Emitter) {
        let foreign = self.sorted('f', |r| self.found.cols_by_rel.contains_key(&r.oid));
        if foreign.is_empty() {
            em.pass(
                "database",
                Rule::ForeignTableTenantData,
                "no foreign table holds tenant data",
            );
        }
        for f in foreign {
            let (verdict, tail) =
                self.exposure(self.app_can_read(f.oid), ";", "reads every tenant's rows");
            let finding = Finding::with_verdict(
                verdict,
                format!("foreign table with a tenant column: RLS is not enforced on it here{tail}"),
            )
            .fix(format!(
                "REVOKE ALL ON {} FROM {}; -- expose it through a security_invoker view keyed on the tenant",
                qualified(&f.schema, &f.name),
                self.app.sql_or_public()
            ));
            em.finding(
                &format!("{}.{}", f.schema, f.name),
                Rule::ForeignTableTenantData,
                finding,
            );
        }
    }

    /// Why a definer function's owner bypasses RLS on some tenant table, if it does.
    fn definer_bypass(&self, f: &FuncRow) -> Option<String> {
        if let Some(a) = self.roles.attribute_bypass(f.owner) {
            return Some(format!("{} is {a}", self.roles.name(f.owner)));
        }
        let owned: Vec<String> = self
            .found
            .tables
            .iter()
            .filter(|t| !t.rel.force)
            .filter_map(|t| self.owner_bypass(f.owner, t.rel).map(|_| t.id()))
            .collect();
        (!owned.is_empty()).then(|| {
            format!(
                "{} owns {} whose RLS is not forced",
                self.roles.name(f.owner),
                owned.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
                    + if owned.len() > 3 { ", ..." } else { "" }
            )
        })
    }

    fn definer_function(&self, em: &mut Emitter) {
        let mut funcs: Vec<&FuncRow> = self.cat.definer_functions.iter().collect();
        funcs.sort_by(|a, b| (&a.schema, &a.name, &a.args).cmp(&(&b.schema, &b.name, &b.args)));
        if funcs.is_empty() {
            em.pass(
                "database",
                Rule::DefinerFunction,
                "no SECURITY DEFINER function",
            );
        }
        let executor = if self.app.oid.is_some() {
            self.app.name.to_string()
        } else {
            "PUBLIC".into()
        };
        for f in funcs {
            let object = format!("{}.{}({})", f.schema, f.name, f.args);
            if !f.executable {
                em.pass(
                    &object,
                    Rule::DefinerFunction,
                    format!("{executor} cannot execute it"),
                );
                continue;
            }
            let Some(why) = self.definer_bypass(f) else {
                let shadow = self.shadowable(f, &executor);
                em.judged(
                    &object,
                    Rule::DefinerFunction,
                    format!(
                        "runs as {}, which is subject to forced RLS on every tenant table",
                        self.roles.name(f.owner)
                    ),
                    shadow,
                );
                continue;
            };
            // Triage: what bypasses RLS but cannot be misused is not a finding.
            let owner = self.roles.name(f.owner);
            let pass = if f.trigger {
                Some(format!(
                    "runs as {owner}, which bypasses RLS, but returns trigger: only triggers call it"
                ))
            } else if !self.touches_tenant_table(f) {
                Some(format!(
                    "runs as {owner}, which bypasses RLS, but names no tenant table"
                ))
            } else if self.caller.checks(&f.source) {
                Some(format!(
                    "runs as {owner}, which bypasses RLS, and checks its caller (reads the caller's identity or tenant)"
                ))
            } else {
                None
            };
            if let Some(p) = pass {
                let shadow = self.shadowable(f, &executor);
                em.judged(&object, Rule::DefinerFunction, p, shadow);
                continue;
            }
            let f2 = Finding::new(
                Rule::DefinerFunction,
                format!("SECURITY DEFINER, {executor} may execute it, it runs as a role that bypasses RLS ({why}) and never checks its caller (no identity, setting or membership test): anyone who may call it reaches every tenant's rows"),
            )
            .with("role", format!("owner {owner}"))
            .fix(format!(
                "REVOKE EXECUTE ON FUNCTION {}.{}({}) FROM PUBLIC, {}; -- or check the caller in its body, or ALTER FUNCTION ... OWNER TO <a role subject to forced RLS>",
                quote_ident(&f.schema),
                quote_ident(&f.name),
                f.args,
                self.app.sql_or_placeholder()
            ));
            em.finding(&object, Rule::DefinerFunction, f2);
        }
    }

    /// Whether a function body names one of the tenant tables.
    fn touches_tenant_table(&self, f: &FuncRow) -> bool {
        let named = super::super::expr::tables_named(&f.source);
        self.found.tables.iter().any(|t| {
            named
                .iter()
                .any(|(s, n)| *n == t.rel.name && s.as_ref().is_none_or(|s| *s == t.rel.schema))
        }) || f.source.to_lowercase().contains("execute")
    }

    /// A definer function whose `search_path` lets `pg_temp` come first (unset, or
    /// without `pg_temp` listed last) and whose body names a table without its schema:
    /// a caller creates a temporary table of that name and the function uses it.
    fn shadowable(&self, f: &FuncRow, executor: &str) -> Option<Finding> {
        let path = f
            .config
            .iter()
            .find_map(|c| c.strip_prefix("search_path="))
            .map(|p| p.to_lowercase());
        let pg_temp_last = path.as_deref().is_some_and(|p| {
            p.split(',')
                .map(|x| x.trim().trim_matches('"'))
                .rfind(|x| !x.is_empty())
                == Some("pg_temp")
        });
        if pg_temp_last || f.trigger {
            return None;
        }
        let unqualified: Vec<String> = super::super::expr::tables_named(&f.source)
            .into_iter()
            .filter(|(s, _)| s.is_none())
            .map(|(_, n)| n)
            .collect();
        let first = unqualified.first()?;
        let setting = match &path {
            Some(p) => format!("search_path = {p} (pg_temp is searched first unless listed last)"),
            None => "no search_path set (the caller's applies)".to_string(),
        };
        Some(
            Finding::new(
                Rule::DefinerFunction,
                format!("SECURITY DEFINER with {setting}, and its body names `{first}` without a schema: {executor} can create a temporary table {first} that the function then uses as its owner"),
            )
            .with("role", format!("owner {}", self.roles.name(f.owner)))
            .fix(format!(
                "ALTER FUNCTION {}.{}({}) SET search_path = {}, pg_temp; -- and qualify the tables in its body",
                quote_ident(&f.schema),
                quote_ident(&f.name),
                f.args,
                path.as_deref()
                    .filter(|p| !p.trim().is_empty())
                    .map(|p| p.split(',').map(str::trim).filter(|x| *x != "pg_temp").collect::<Vec<_>>().join(", "))
                    .unwrap_or_else(|| quote_ident(&f.schema))
            )),
        )
    }
}
