//! Policies as the rules read them (database layer → rules → **policies**): commands,
//! each applicable policy with its judged expressions ([`super::super::expr`]), the
//! restrictive gates, the per-table findings they add up to, and the policy's text as
//! evidence shows it.

use std::collections::{HashMap, HashSet};

use super::super::catalog::{Catalog, PolicyRow};
use super::super::config::TenantModel;
use super::super::expr::{self, FunctionBody, Helper, Judgement, KeySpec};
use super::super::sql::quote_ident;
use super::roles::Roles;

/// A command a policy can apply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Cmd {
    Select,
    Insert,
    Update,
    Delete,
}

pub(super) const ALL_CMDS: [Cmd; 4] = [Cmd::Select, Cmd::Insert, Cmd::Update, Cmd::Delete];

impl Cmd {
    pub fn sql(self) -> &'static str {
        match self {
            Cmd::Select => "SELECT",
            Cmd::Insert => "INSERT",
            Cmd::Update => "UPDATE",
            Cmd::Delete => "DELETE",
        }
    }
}

/// The commands of `pg_policy.polcmd`.
pub(super) fn cmds(polcmd: char) -> &'static [Cmd] {
    match polcmd {
        'r' => &[Cmd::Select],
        'a' => &[Cmd::Insert],
        'w' => &[Cmd::Update],
        'd' => &[Cmd::Delete],
        _ => &ALL_CMDS,
    }
}

/// `pg_policy.polcmd` as SQL.
pub(super) fn cmd_name(polcmd: char) -> &'static str {
    match polcmd {
        'r' => "SELECT",
        'a' => "INSERT",
        'w' => "UPDATE",
        'd' => "DELETE",
        _ => "ALL",
    }
}

/// One applicable policy with its judged expressions.
pub(super) struct JudgedPolicy<'a> {
    pub p: &'a PolicyRow,
    pub using: Option<Judgement>,
    pub check: Option<Judgement>,
}

/// Judges policy expressions, each distinct text once per set of tenant columns
/// (schemas repeat the same policy text on many tables).
pub(super) struct PolicyJudge<'a> {
    setting: Option<&'a str>,
    setting_functions: HashMap<String, Vec<Option<String>>>,
    model: Option<&'a TenantModel>,
    /// With an identity model: every readable function, and whether it reads the
    /// caller's identity (transitively).
    helpers: Option<HashMap<String, Helper>>,
    cache: HashMap<(String, String, String), Judgement>,
}

impl<'a> PolicyJudge<'a> {
    pub fn new(
        cat: &Catalog,
        setting: Option<&'a str>,
        model: Option<&'a TenantModel>,
    ) -> PolicyJudge<'a> {
        let model = model.filter(|m| m.has_identity());
        let helpers = model.map(|m| {
            let bodies: Vec<FunctionBody> = cat
                .setting_functions
                .iter()
                .map(|f| FunctionBody {
                    name: f.name.to_lowercase(),
                    source: f.source.clone(),
                    arg_names: f.arg_names.clone(),
                })
                .collect();
            expr::helpers(&bodies, setting, Some(m))
        });
        let mut setting_functions: HashMap<String, Vec<Option<String>>> = HashMap::new();
        for f in &cat.setting_functions {
            setting_functions
                .entry(f.name.to_lowercase())
                .or_default()
                .extend(expr::settings_read_by(&f.source));
        }
        PolicyJudge {
            setting,
            setting_functions,
            model,
            helpers,
            cache: HashMap::new(),
        }
    }

    /// What a function body needs to count as checking its caller.
    pub fn caller_check(&self) -> CallerCheck<'_> {
        CallerCheck {
            setting: self.setting,
            model: self.model,
            helpers: self.helpers.as_ref(),
        }
    }

    /// Judges one expression for table `table` whose tenant columns are `columns`.
    pub fn judge(&mut self, text: &str, columns: &[String], table: &str) -> Judgement {
        let spec = KeySpec {
            columns,
            setting: self.setting,
            setting_functions: &self.setting_functions,
            table: Some(table),
            model: self.model,
            identity_helpers: self.helpers.as_ref(),
        };
        // The table's name matters only inside sub-queries (`<table>.col` is the
        // row's own column there): key on it only then, so a policy text repeated on
        // many tables is still judged once.
        let table_key = if text.contains("SELECT") { table } else { "" };
        let key = (
            text.to_string(),
            columns.join("\u{0}"),
            table_key.to_string(),
        );
        self.cache
            .entry(key)
            .or_insert_with(|| expr::judge(text, &spec))
            .clone()
    }

    /// Every policy of `policies` that `applies`, judged.
    pub fn judge_all<'p>(
        &mut self,
        policies: &[&'p PolicyRow],
        columns: &[String],
        table: &str,
        applies: impl Fn(&PolicyRow) -> bool,
    ) -> Vec<JudgedPolicy<'p>> {
        policies
            .iter()
            .filter(|p| applies(p))
            .map(|p| JudgedPolicy {
                p,
                using: p.using.as_deref().map(|e| self.judge(e, columns, table)),
                check: p
                    .with_check
                    .as_deref()
                    .map(|e| self.judge(e, columns, table)),
            })
            .collect()
    }
}

/// Decides whether a function body checks who calls it (identity, setting, helpers).
#[derive(Clone, Copy)]
pub(super) struct CallerCheck<'a> {
    setting: Option<&'a str>,
    model: Option<&'a TenantModel>,
    helpers: Option<&'a HashMap<String, Helper>>,
}

impl CallerCheck<'_> {
    /// Whether `source` reads the caller's identity or the tenant setting.
    pub fn checks(&self, source: &str) -> bool {
        expr::body_checks_caller(source, self.setting, self.model, self.helpers)
    }
}

/// Commands on which a restrictive policy keyed on the tenant applies: restrictive
/// policies are AND-ed with the permissive ones, so they gate every row.
pub(super) fn restrictive_gates(judged: &[JudgedPolicy<'_>]) -> HashSet<Cmd> {
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

/// What a table's applicable policies add up to, per policy rule.
#[derive(Default)]
pub(super) struct PolicyFindings<'a> {
    /// `policy_tenant_key`: permissive policies not keyed on the tenant.
    pub key: Vec<(&'a PolicyRow, String)>,
    /// `policy_tenant_key`: permissive policies the analyzer cannot verify (a
    /// warning; the probe decides).
    pub unverified: Vec<(&'a PolicyRow, String)>,
    /// `policy_fail_open`.
    pub open: Vec<(&'a PolicyRow, String)>,
    /// `policy_constant_true`.
    pub constant_true: Vec<&'a PolicyRow>,
    /// `insert_with_check`, errors.
    pub check_fail: Vec<(&'a PolicyRow, String)>,
    /// `insert_with_check`, fail-closed warnings.
    pub check_warn: Vec<(&'a PolicyRow, String)>,
}

impl<'a> PolicyFindings<'a> {
    /// Classifies every judged expression; a permissive policy whose commands are all
    /// gated by a restrictive tenant policy is mitigated.
    pub fn of(judged: &[JudgedPolicy<'a>], gates: &HashSet<Cmd>) -> PolicyFindings<'a> {
        let covered_by_gate = |p: &PolicyRow, only: &[Cmd]| {
            let cs: Vec<Cmd> = cmds(p.cmd)
                .iter()
                .copied()
                .filter(|c| only.is_empty() || only.contains(c))
                .collect();
            !cs.is_empty() && cs.iter().all(|c| gates.contains(c))
        };
        let mut f = PolicyFindings::default();
        for j in judged {
            let p = j.p;
            let mitigated = p.permissive && covered_by_gate(p, &[]);
            let write_mitigated = p.permissive && covered_by_gate(p, &[Cmd::Insert, Cmd::Update]);
            match &j.using {
                Some(Judgement::FailOpen(why)) if !mitigated => {
                    f.open.push((p, format!("USING: {why}")))
                }
                Some(Judgement::ConstantTrue) if p.permissive && !mitigated => {
                    f.constant_true.push(p)
                }
                Some(Judgement::NotKeyed(why)) if p.permissive && !mitigated => {
                    f.key.push((p, format!("USING {why}")))
                }
                Some(Judgement::Unverified(why)) if p.permissive && !mitigated => {
                    f.unverified.push((p, format!("USING {why}")))
                }
                _ => {}
            }
            match &j.check {
                Some(Judgement::FailOpen(why)) if !write_mitigated => {
                    f.open.push((p, format!("WITH CHECK: {why}")))
                }
                Some(Judgement::ConstantTrue) if p.permissive && !write_mitigated => {
                    f.check_fail.push((
                        p,
                        "WITH CHECK is constant true: rows can be written for any tenant".to_string(),
                    ))
                }
                Some(Judgement::NotKeyed(why)) if p.permissive && !write_mitigated => f
                    .check_fail
                    .push((p, format!("WITH CHECK drops the tenant condition: it {why}"))),
                Some(Judgement::Unverified(why)) if p.permissive && !write_mitigated => f
                    .check_warn
                    .push((p, format!("WITH CHECK is unverified: it {why}"))),
                None if p.cmd == 'a' && p.permissive => f.check_warn.push((
                    p,
                    "INSERT policy without WITH CHECK: PostgreSQL rejects every insert through it (fails closed)".to_string(),
                )),
                _ => {}
            }
        }
        f
    }
}

/// `name [AS RESTRICTIVE] FOR cmd TO roles USING (...) WITH CHECK (...)`.
pub(super) fn policy_def(p: &PolicyRow, roles: &Roles<'_>) -> String {
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

/// `e` in parentheses, unless an outer pair already encloses all of it.
pub(super) fn parenthesized(e: &str) -> String {
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
