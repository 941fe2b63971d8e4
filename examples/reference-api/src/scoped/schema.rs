//! The scoped target's roles, tables and membership-keyed Row-Level Security: the
//! database layer of isolation, prepared once per launch (before the API serves).
//!
//! RLS here is keyed on the *user*, not the org: every request sets `app.user_id`
//! transaction-locally, and a row of an org is visible when the user is a member of
//! that org. API keys are users too (one bot user per key, member of its one org), so a
//! key is scoped by the same policies as a person.
//!
//! | table | tenant key | policy |
//! |---|---|---|
//! | `users`, `sessions` | none (identity, not tenant data) | no RLS; the app reads them to log in |
//! | `orgs` | `id` | a member, or the creator while signing up |
//! | `memberships` | `org_id` | a user sees their own memberships; an org admin adds members |
//! | `api_keys`, `projects`, `invoices` | `org_id` | a member of `org_id` |
//!
//! Like [`crate::schema`] it converges: run again with another bug set, the policies
//! are rebuilt; tables are created if missing and never dropped.

use tokio_postgres::NoTls;

use super::bugs::{ScopedBug, ScopedBugs};
use crate::Error;
use crate::schema::{AppRole, url_for, validate_role_prefix};

/// The tables with an `org_id` column: what a database audit finds as tenant tables.
pub const SCOPED_TENANT_TABLES: [&str; 4] = ["memberships", "api_keys", "projects", "invoices"];

/// The setting every request sets, transaction-locally, to the caller's user id.
pub const USER_SETTING: &str = "app.user_id";

/// Creates or updates roles, tables, policies and grants of the scoped target in the
/// database `superuser_url` points at; returns the app role with a fresh password.
pub async fn prepare_scoped_database(
    superuser_url: &str,
    role_prefix: &str,
    bugs: &ScopedBugs,
) -> Result<AppRole, Error> {
    validate_role_prefix(role_prefix)?;
    let (client, connection) = tokio_postgres::connect(superuser_url, NoTls)
        .await
        .map_err(|e| Error::db("connecting as the superuser", e))?;
    let conn = tokio::spawn(connection);
    let password = crate::pg::random_hex(24);
    let script = migration_sql(role_prefix, &password, bugs);
    // One transaction: a failure leaves the database as it was, never half-secured.
    let result = client
        .batch_execute(&format!("BEGIN;\n{script}\nCOMMIT;"))
        .await;
    drop(client);
    let _ = conn.await;
    result.map_err(|e| Error::db("preparing the scoped schema", e))?;
    let name = format!("{role_prefix}_app");
    let app_url = url_for(superuser_url, &name, &password)?;
    Ok(AppRole {
        name,
        password,
        app_url,
    })
}

/// The caller's user id as the policies read it: unset or empty means no user, so no
/// rows.
const ME: &str = "NULLIF(current_setting('app.user_id', true), '')::bigint";

/// "The caller is a member of this row's org", for a table keyed by `org_id`. Planted:
/// the unqualified `org_id` inside the subquery binds to the membership row itself.
fn member_of(table: &str, bugs: &ScopedBugs) -> String {
    let outer = if bugs.contains(ScopedBug::MembershipPolicyTypo) {
        "org_id".to_string()
    } else {
        format!("{table}.org_id")
    };
    format!("EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = {outer} AND m.user_id = {ME})")
}

/// The whole migration as one SQL script. Identifiers come from a validated prefix and
/// the password is hex, so plain interpolation is safe here.
fn migration_sql(p: &str, password: &str, bugs: &ScopedBugs) -> String {
    let (owner, app) = (format!("{p}_owner"), format!("{p}_app"));
    let mut sql = String::new();
    let mut push = |s: &str| {
        sql.push_str(s);
        sql.push('\n');
    };
    for (role, attrs) in [(&owner, "NOLOGIN"), (&app, "LOGIN")] {
        push(&format!(
            "DO $$ BEGIN CREATE ROLE {role} {attrs}; \
             EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
        ));
    }
    push(&format!(
        "ALTER ROLE {owner} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;"
    ));
    push(&format!(
        "ALTER ROLE {app} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE \
         PASSWORD '{password}';"
    ));
    push("REVOKE CREATE ON SCHEMA public FROM PUBLIC;");
    push(&format!("GRANT USAGE ON SCHEMA public TO {app};"));
    push(&format!(
        "DO $$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO {app}', current_database()); END $$;"
    ));
    push(TABLES_SQL);

    // Least privilege per table: each command the app may run has a policy.
    let grants = [
        ("users", "SELECT, INSERT"),
        ("sessions", "SELECT, INSERT, UPDATE"),
        ("orgs", "SELECT, INSERT, DELETE"),
        ("memberships", "SELECT, INSERT"),
        ("api_keys", "SELECT, INSERT"),
        ("projects", "SELECT, INSERT, UPDATE, DELETE"),
        ("invoices", "SELECT, INSERT, UPDATE"),
    ];
    for (table, privileges) in grants {
        push(&format!("ALTER TABLE {table} OWNER TO {owner};"));
        push(&format!("REVOKE ALL ON {table} FROM {app};"));
        push(&format!("GRANT {privileges} ON {table} TO {app};"));
    }
    for table in ["orgs", "memberships", "api_keys", "projects", "invoices"] {
        push(&format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;"));
        push(&format!("ALTER TABLE {table} FORCE ROW LEVEL SECURITY;"));
        // Drop whatever policies an earlier preparation left, then rebuild.
        push(&format!(
            "DO $$ DECLARE pol record; BEGIN FOR pol IN SELECT policyname FROM pg_policies \
             WHERE schemaname = 'public' AND tablename = '{table}' LOOP \
             EXECUTE format('DROP POLICY %I ON {table}', pol.policyname); END LOOP; END $$;"
        ));
    }
    let policy = |name: &str, table: &str, cmd: &str, clause: &str| {
        format!("CREATE POLICY {name} ON {table} FOR {cmd} TO {app} {clause};")
    };
    let member_orgs = format!(
        "EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = orgs.id AND m.user_id = {ME})"
    );
    let owner_of = format!(
        "EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = orgs.id \
         AND m.role = 'owner' AND m.user_id = {ME})"
    );
    let admin_of = format!(
        "EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = memberships.org_id \
         AND m.user_id = {ME} AND m.role IN ('owner', 'admin'))"
    );
    let creator = format!(
        "user_id = {ME} AND role = 'owner' AND EXISTS (SELECT 1 FROM orgs o \
         WHERE o.id = memberships.org_id AND o.created_by = {ME})"
    );
    for stmt in [
        // The creator clause lets sign-up read back the org it just made before its
        // owner membership exists.
        policy(
            "org_member",
            "orgs",
            "SELECT",
            &format!("USING ({member_orgs} OR created_by = {ME})"),
        ),
        policy(
            "org_create",
            "orgs",
            "INSERT",
            &format!("WITH CHECK (created_by = {ME})"),
        ),
        policy(
            "org_delete",
            "orgs",
            "DELETE",
            &format!("USING ({owner_of})"),
        ),
        // Sublink-free on purpose: the other policies read memberships, and a policy
        // on memberships that read memberships again would recurse.
        policy(
            "membership_self",
            "memberships",
            "SELECT",
            &format!("USING (user_id = {ME})"),
        ),
        policy(
            "membership_add",
            "memberships",
            "INSERT",
            &format!("WITH CHECK (({creator}) OR {admin_of})"),
        ),
        policy(
            "api_key_member",
            "api_keys",
            "SELECT",
            &format!("USING ({})", member_of("api_keys", bugs)),
        ),
        policy(
            "api_key_create",
            "api_keys",
            "INSERT",
            &format!("WITH CHECK ({})", member_of("api_keys", bugs)),
        ),
        policy(
            "project_member",
            "projects",
            "ALL",
            &format!("USING ({0}) WITH CHECK ({0})", member_of("projects", bugs)),
        ),
        policy(
            "invoice_member",
            "invoices",
            "ALL",
            &format!("USING ({0}) WITH CHECK ({0})", member_of("invoices", bugs)),
        ),
    ] {
        push(&stmt);
    }
    sql
}

/// The tables. Integer identity ids everywhere, in ranges that do not overlap for the
/// first thousands of rows (users from 10001, orgs from 1, projects from 101, invoices
/// from 501), as real databases' ids rarely line up: a probe that sets `app.user_id` to
/// an *org* id must not pass by the accident that user 2 owns org 2. Invoices reference projects by
/// `(org_id, project_id)`, so an invoice can never point at another org's project.
const TABLES_SQL: &str = r#"
CREATE TABLE IF NOT EXISTS users (
    id bigint GENERATED ALWAYS AS IDENTITY (START WITH 10001) PRIMARY KEY,
    kind text NOT NULL DEFAULT 'person' CHECK (kind IN ('person', 'api_key')),
    email text UNIQUE,
    password_hash text,
    api_key_hash text UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS sessions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sid_hash text NOT NULL UNIQUE,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL DEFAULT now() + interval '12 hours',
    revoked_at timestamptz
);
CREATE TABLE IF NOT EXISTS orgs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    name text NOT NULL,
    created_by bigint NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS memberships (
    org_id bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'api')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX IF NOT EXISTS memberships_user ON memberships (user_id, org_id);
CREATE TABLE IF NOT EXISTS api_keys (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL,
    created_by bigint NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS projects (
    id bigint GENERATED ALWAYS AS IDENTITY (START WITH 101) PRIMARY KEY,
    org_id bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, id)
);
CREATE TABLE IF NOT EXISTS invoices (
    id bigint GENERATED ALWAYS AS IDENTITY (START WITH 501) PRIMARY KEY,
    org_id bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    project_id bigint NOT NULL,
    customer text NOT NULL,
    amount_cents bigint NOT NULL,
    status text NOT NULL DEFAULT 'draft',
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, project_id) REFERENCES projects (org_id, id) ON DELETE CASCADE
);
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_typo_is_the_only_difference_and_unqualifies_the_outer_column() {
        let clean = migration_sql("tg", "00", &ScopedBugs::none());
        let typo = migration_sql("tg", "00", &ScopedBug::MembershipPolicyTypo.into());
        assert!(clean.contains("m.org_id = projects.org_id"));
        assert!(!clean.contains("m.org_id = org_id"));
        assert!(typo.contains("m.org_id = org_id AND"));
        for table in ["orgs", "memberships", "api_keys", "projects", "invoices"] {
            assert!(clean.contains(&format!("ALTER TABLE {table} FORCE ROW LEVEL SECURITY")));
        }
        assert!(!clean.contains("TRUNCATE"));
    }
}
