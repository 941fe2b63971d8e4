//! Discovery (database layer → rules → **discovery**): which tables are tenant tables
//! — found by their tenant column in the audited schemas, plus `database.tables`,
//! minus `database.exempt` — and the `schema_exists`, `table_exists` and
//! `tenant_tables_found` results.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use super::super::catalog::{Catalog, ColRow, Oid, RelRow};
use super::super::sql::split_name;
use super::context::{Emitter, Options, Table, ev};
use super::rule::Rule;
use crate::outcome::Verdict;

/// What discovery found.
pub(super) struct Discovered<'a> {
    /// The tenant tables, ordered by schema and name.
    pub tables: Vec<Table<'a>>,
    /// Relations by oid.
    pub rel_by_oid: HashMap<Oid, &'a RelRow>,
    /// Tenant columns by relation, in configured order.
    pub cols_by_rel: HashMap<Oid, Vec<&'a ColRow>>,
    /// `database.exempt`, split.
    exempt: Vec<(Option<String>, String)>,
}

impl<'a> Discovered<'a> {
    /// Whether `database.exempt` lists `schema.name`.
    pub fn is_exempt(&self, schema: &str, name: &str) -> bool {
        self.exempt
            .iter()
            .any(|(es, en)| en == name && es.as_deref().is_none_or(|es| es == schema))
    }

    /// The tenant table `oid`, if it is one.
    pub fn tenant_rel(&self, oid: Oid, tenant_oids: &HashSet<Oid>) -> Option<&'a RelRow> {
        tenant_oids
            .contains(&oid)
            .then(|| self.rel_by_oid.get(&oid).copied())
            .flatten()
    }
}

fn is_table(r: &RelRow) -> bool {
    r.kind == 'r' || r.kind == 'p'
}

/// Finds the tenant tables and emits the discovery results.
pub(super) fn discover<'a>(
    cat: &'a Catalog,
    opts: &Options<'_>,
    elapsed: Duration,
    em: &mut Emitter,
) -> Discovered<'a> {
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
    let scope = scope(cat, opts, em);
    let mut tenant: BTreeSet<(String, String, Oid)> = cat
        .relations
        .iter()
        .filter(|r| {
            is_table(r) && scope.contains(r.schema.as_str()) && cols_by_rel.contains_key(&r.oid)
        })
        .map(|r| (r.schema.clone(), r.name.clone(), r.oid))
        .collect();
    for entry in opts.tables {
        if let Some(r) = listed_table(cat, &scope, entry, em) {
            tenant.insert((r.schema.clone(), r.name.clone(), r.oid));
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
    tenant_tables_found(em, opts, &scope, &tables, elapsed);
    Discovered {
        tables,
        rel_by_oid,
        cols_by_rel,
        exempt: opts.exempt.iter().map(|e| split_name(e)).collect(),
    }
}

/// The schemas searched: those asked for (each must exist), else those the app role
/// can use, else every non-system schema.
fn scope<'a>(cat: &'a Catalog, opts: &Options<'a>, em: &mut Emitter) -> HashSet<&'a str> {
    let existing: HashSet<&str> = cat.schemas.iter().map(|s| s.name.as_str()).collect();
    if !opts.schemas.is_empty() {
        for s in opts.schemas {
            if !existing.contains(s.as_str()) {
                let r = em.emit(
                    &format!("schema.{s}"),
                    Rule::SchemaExists,
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
    } else if cat.app_role.is_some() {
        cat.schemas
            .iter()
            .filter(|s| s.app_usage == Some(true))
            .map(|s| s.name.as_str())
            .collect()
    } else {
        existing
    }
}

/// One entry of `database.tables`: found (a Pass) or not (an Error).
fn listed_table<'a>(
    cat: &'a Catalog,
    scope: &HashSet<&str>,
    entry: &str,
    em: &mut Emitter,
) -> Option<&'a RelRow> {
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
            em.pass(
                &format!("{}.{}", r.schema, r.name),
                Rule::TableExists,
                "listed in tables and present",
            );
        }
        None => {
            let r = em.emit(
                entry,
                Rule::TableExists,
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
    found
}

/// `tenant_tables_found`: an audit of nothing cannot pass.
fn tenant_tables_found(
    em: &mut Emitter,
    opts: &Options<'_>,
    scope: &HashSet<&str>,
    tables: &[Table<'_>],
    elapsed: Duration,
) {
    let partitions = tables.iter().filter(|t| t.rel.parent.is_some()).count();
    let schemas: BTreeSet<&str> = tables.iter().map(|t| t.rel.schema.as_str()).collect();
    let mut searched: Vec<&str> = scope.iter().copied().collect();
    searched.sort();
    let looked = format!(
        "columns {} in schemas {}",
        opts.tenant_columns.join(", "),
        if searched.is_empty() {
            "(none)".to_string()
        } else {
            searched.join(", ")
        }
    );
    let r = if tables.is_empty() {
        em.emit(
            "database",
            Rule::TenantTablesFound,
            Verdict::Error,
            "no tenant table found, so nothing was audited: set database.tenant_column, schemas or tables (and check app_role has USAGE on the schemas)",
        )
    } else {
        em.pass(
            "database",
            Rule::TenantTablesFound,
            format!(
                "{} tenant tables ({} partitions) in {}",
                tables.len(),
                partitions,
                schemas.into_iter().collect::<Vec<_>>().join(", ")
            ),
        )
    };
    ev(r, "looked for", looked);
    r.duration = elapsed;
}
