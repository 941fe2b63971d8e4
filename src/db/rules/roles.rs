//! Roles (database layer → rules → **roles**): names, attribute checks and membership
//! closures, the app role as the rules see it, and the role-wide rules
//! (`app_role_exists`, `app_role_superuser`, `app_role_bypassrls`).

use std::collections::{HashMap, HashSet, VecDeque};

use super::super::catalog::{Catalog, Oid, RoleRow};
use super::super::sql::quote_ident;
use super::context::{Emitter, Finding};
use super::rule::{APP_ROLE_RULES, Rule};

/// Role lookups: names, attribute checks and membership closures.
pub(super) struct Roles<'a> {
    by_oid: HashMap<Oid, &'a RoleRow>,
    /// member → its grants.
    grants: HashMap<Oid, Vec<(Oid, bool, bool)>>,
}

impl<'a> Roles<'a> {
    pub fn new(cat: &'a Catalog) -> Self {
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

    pub fn name(&self, oid: Oid) -> String {
        match oid {
            0 => "public".into(),
            _ => self
                .by_oid
                .get(&oid)
                .map(|r| r.name.clone())
                .unwrap_or_else(|| format!("role {oid}")),
        }
    }

    pub fn get(&self, oid: Oid) -> Option<&'a RoleRow> {
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
    pub fn privileges_of(&self, oid: Oid) -> HashSet<Oid> {
        self.closure(oid, |inherit, _| inherit)
            .into_keys()
            .collect()
    }

    /// The roles `oid` can act as: inherited or reachable with SET ROLE.
    pub fn reachable(&self, oid: Oid) -> HashMap<Oid, Oid> {
        self.closure(oid, |inherit, set| inherit || set)
    }

    /// `a → b → c` for a role found by [`Roles::reachable`].
    pub fn path(&self, reach: &HashMap<Oid, Oid>, to: Oid) -> String {
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
    pub fn attribute_bypass(&self, oid: Oid) -> Option<&'static str> {
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

/// The application's role as the rules see it.
pub(super) struct App<'a> {
    /// Its oid, when configured and present.
    pub oid: Option<Oid>,
    /// Its configured name, `""` when none.
    pub name: &'a str,
    /// The configured name, if any.
    pub configured: Option<&'a str>,
    /// The roles whose privileges and ownership it has (INHERIT grants).
    pub privs: Option<HashSet<Oid>>,
    /// The roles it can act as, each with the role it is reached from.
    pub reach: Option<HashMap<Oid, Oid>>,
}

impl<'a> App<'a> {
    pub fn new(cat: &Catalog, roles: &Roles<'_>, configured: Option<&'a str>) -> App<'a> {
        App {
            oid: cat.app_role,
            name: configured.unwrap_or(""),
            configured,
            privs: cat.app_role.map(|a| roles.privileges_of(a)),
            reach: cat.app_role.map(|a| roles.reachable(a)),
        }
    }

    /// Its name quoted for SQL, or `<app_role>` when none is configured.
    pub fn sql_or_placeholder(&self) -> String {
        if self.name.is_empty() {
            "<app_role>".to_string()
        } else {
            quote_ident(self.name)
        }
    }

    /// Its name quoted for SQL, or `PUBLIC` when none is configured.
    pub fn sql_or_public(&self) -> String {
        if self.name.is_empty() {
            "PUBLIC".to_string()
        } else {
            quote_ident(self.name)
        }
    }

    /// Who reads what a bypassing object exposes.
    pub fn reader(&self) -> String {
        if self.oid.is_some() {
            self.name.to_string()
        } else {
            "anyone with SELECT".into()
        }
    }

    /// Why the role checks are skipped, when they are.
    fn skip_reason(&self) -> Option<String> {
        match (self.configured, self.oid) {
            (None, _) => Some("no app_role configured: set database.app_role to check what the application's role can do".to_string()),
            (Some(name), None) => Some(format!("app role {name} does not exist")),
            _ => None,
        }
    }
}

/// `app_role_exists`: an Error when the configured role is missing.
pub(super) fn app_role_exists(em: &mut Emitter, app: &App<'_>) {
    if let (Some(name), None) = (app.configured, app.oid) {
        em.emit(
            &format!("role.{name}"),
            Rule::AppRoleExists,
            crate::outcome::Verdict::Error,
            format!("role {name} does not exist: set database.app_role to the role the application connects as"),
        );
    }
}

/// The role-wide rules; without an app role, every app-role rule is one Skip.
pub(super) fn role_rules(em: &mut Emitter, roles: &Roles<'_>, app: &App<'_>) {
    let (Some(a), Some(reach)) = (app.oid, &app.reach) else {
        let why = app.skip_reason().unwrap_or_default();
        for rule in APP_ROLE_RULES {
            em.skip("database", *rule, why.clone());
        }
        return;
    };
    let object = format!("role.{}", app.name);
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
    app_role_superuser(em, roles, app, &object, a, reach, superuser);
    if superuser == Some(a) {
        em.skip(
            &object,
            Rule::AppRoleBypassrls,
            format!("{} is a superuser (see app_role_superuser)", app.name),
        );
    } else {
        app_role_bypassrls(
            em,
            roles,
            app,
            &object,
            a,
            reach,
            via(&|r: &RoleRow| r.bypassrls),
        );
    }
}

fn app_role_superuser(
    em: &mut Emitter,
    roles: &Roles<'_>,
    app: &App<'_>,
    object: &str,
    a: Oid,
    reach: &HashMap<Oid, Oid>,
    superuser: Option<Oid>,
) {
    let app_name = app.name;
    let finding = superuser.map(|s| {
        let path = roles.path(reach, s);
        let summary = if s == a {
            format!("{app_name} is a superuser: it bypasses RLS and every other check")
        } else {
            format!("{app_name} can act as superuser {} ({path})", roles.name(s))
        };
        let fix = if s == a {
            format!("ALTER ROLE {} NOSUPERUSER;", quote_ident(app_name))
        } else {
            format!(
                "REVOKE {} FROM {};",
                quote_ident(&roles.name(s)),
                quote_ident(app_name)
            )
        };
        Finding::new(Rule::AppRoleSuperuser, summary)
            .with("role", path)
            .fix(fix)
    });
    em.judged(
        object,
        Rule::AppRoleSuperuser,
        format!("{app_name} is not a superuser, directly or through membership"),
        finding,
    );
}

fn app_role_bypassrls(
    em: &mut Emitter,
    roles: &Roles<'_>,
    app: &App<'_>,
    object: &str,
    a: Oid,
    reach: &HashMap<Oid, Oid>,
    bypass: Option<Oid>,
) {
    let app_name = app.name;
    let finding = bypass.map(|b| {
        let path = roles.path(reach, b);
        let summary = if b == a {
            format!("{app_name} has BYPASSRLS: no policy applies to it")
        } else {
            format!(
                "{app_name} can act as {} which has BYPASSRLS ({path})",
                roles.name(b)
            )
        };
        let fix = if b == a {
            format!("ALTER ROLE {} NOBYPASSRLS;", quote_ident(app_name))
        } else {
            format!(
                "REVOKE {} FROM {}; -- or ALTER ROLE {} NOBYPASSRLS;",
                quote_ident(&roles.name(b)),
                quote_ident(&roles.name(*reach.get(&b).unwrap_or(&a))),
                quote_ident(&roles.name(b))
            )
        };
        Finding::new(Rule::AppRoleBypassrls, summary)
            .with("role", path)
            .fix(fix)
    });
    em.judged(
        object,
        Rule::AppRoleBypassrls,
        format!("{app_name} has no BYPASSRLS, directly or through membership"),
        finding,
    );
}
