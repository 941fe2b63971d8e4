//! What every rule works with (database layer → rules → **context**): the audit's
//! options, the tenant tables found, the results being emitted, and the one shape of a
//! finding (pass, or a verdict with evidence and the fixing SQL).

use crate::outcome::{CheckResult, Evidence, Layer, Verdict};

use super::super::catalog::{ColRow, RelRow};
use super::super::config::TenantModel;
use super::super::sql::qualified;
use super::rule::Rule;

/// The audit's settings, already defaulted.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    /// Tenant column names, in order of preference.
    pub tenant_columns: &'a [String],
    /// Schemas to search (empty: see [`crate::db::AuditConfig::schemas`]).
    pub schemas: &'a [String],
    /// Explicit extra tenant tables.
    pub tables: &'a [String],
    /// Tables removed from the set.
    pub exempt: &'a [String],
    /// The application's role, by name.
    pub app_role: Option<&'a str>,
    /// The tenant setting, lower case.
    pub tenant_setting: Option<&'a str>,
    /// The identity model, when one is declared.
    pub model: Option<&'a TenantModel>,
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

/// A tenant table found by discovery.
pub(super) struct Table<'a> {
    pub rel: &'a RelRow,
    /// Tenant columns present, in configured order.
    pub columns: Vec<&'a ColRow>,
}

impl Table<'_> {
    /// `schema.table`, as ids name it.
    pub fn id(&self) -> String {
        format!("{}.{}", self.rel.schema, self.rel.name)
    }

    /// `schema.table`, quoted for SQL.
    pub fn sql(&self) -> String {
        qualified(&self.rel.schema, &self.rel.name)
    }

    /// What the probe needs of it.
    pub fn tenant_table(&self) -> TenantTable {
        TenantTable {
            schema: self.rel.schema.clone(),
            name: self.rel.name.clone(),
            column: self
                .columns
                .first()
                .map(|c| (c.name.clone(), c.type_name.clone())),
        }
    }
}

/// A rule's finding: its verdict, summary and evidence; the fix is shown last.
pub(super) struct Finding {
    verdict: Verdict,
    summary: String,
    evidence: Vec<Evidence>,
    fix: Option<String>,
}

impl Finding {
    /// A finding with the rule's own severity.
    pub fn new(rule: Rule, summary: impl Into<String>) -> Finding {
        Finding::with_verdict(rule.severity().verdict(), summary)
    }

    /// A finding whose verdict the rule decided (a fail-closed or unreachable case).
    pub fn with_verdict(verdict: Verdict, summary: impl Into<String>) -> Finding {
        Finding {
            verdict,
            summary: summary.into(),
            evidence: Vec::new(),
            fix: None,
        }
    }

    /// Adds one piece of evidence.
    pub fn with(mut self, label: &str, text: impl Into<String>) -> Finding {
        self.evidence.push(Evidence::new(label, text));
        self
    }

    /// Adds `policy` and `why` evidence for each (policy text, reason) pair.
    pub fn policies<'a>(mut self, items: impl IntoIterator<Item = (String, &'a str)>) -> Finding {
        for (policy, why) in items {
            self.evidence.push(Evidence::new("policy", policy));
            self.evidence.push(Evidence::new("why", why));
        }
        self
    }

    /// The SQL (or advice) that fixes it, shown after the evidence.
    pub fn fix(mut self, sql: impl Into<String>) -> Finding {
        self.fix = Some(sql.into());
        self
    }
}

/// Collects the results in the order the rules emit them.
pub(super) struct Emitter {
    pub out: Vec<CheckResult>,
}

impl Emitter {
    pub fn new() -> Emitter {
        Emitter { out: Vec::new() }
    }

    /// A database-layer result of `rule` on `object`.
    pub fn emit(
        &mut self,
        object: &str,
        rule: Rule,
        verdict: Verdict,
        summary: impl Into<String>,
    ) -> &mut CheckResult {
        self.out.push(CheckResult::new(
            format!("{object}.{rule}"),
            object,
            rule.id(),
            Layer::Database,
            verdict,
            summary,
        ));
        let n = self.out.len() - 1;
        &mut self.out[n]
    }

    /// A pass.
    pub fn pass(
        &mut self,
        object: &str,
        rule: Rule,
        summary: impl Into<String>,
    ) -> &mut CheckResult {
        self.emit(object, rule, Verdict::Pass, summary)
    }

    /// A skip (never a pass: the rule could not be judged).
    pub fn skip(
        &mut self,
        object: &str,
        rule: Rule,
        summary: impl Into<String>,
    ) -> &mut CheckResult {
        self.emit(object, rule, Verdict::Skip, summary)
    }

    /// The one shape of a rule's outcome: a pass with `pass`, or the finding.
    pub fn judged(
        &mut self,
        object: &str,
        rule: Rule,
        pass: impl Into<String>,
        finding: Option<Finding>,
    ) -> &mut CheckResult {
        match finding {
            None => self.pass(object, rule, pass),
            Some(f) => self.finding(object, rule, f),
        }
    }

    /// A finding of `rule` on `object`.
    pub fn finding(&mut self, object: &str, rule: Rule, f: Finding) -> &mut CheckResult {
        let r = self.emit(object, rule, f.verdict, f.summary);
        r.evidence.extend(f.evidence);
        if let Some(fix) = f.fix {
            r.evidence.push(Evidence::new("fix", fix));
        }
        r
    }
}

/// Adds one piece of evidence to a result already emitted.
pub(super) fn ev(r: &mut CheckResult, label: &str, text: impl Into<String>) {
    r.evidence.push(Evidence::new(label, text));
}
