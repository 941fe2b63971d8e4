//! Roles, tables and Row-Level Security: everything the database layer of isolation is.
//!
//! [`prepare_database`] is idempotent and *converges*: run it again with another bug set
//! and ownership, RLS flags, policies, grants and role memberships are all reset to what
//! that set asks for. Tables are created if missing and never dropped, so data survives.
//!
//! Roles are cluster-wide while tests run many databases in one cluster, so every role
//! name carries a prefix (`tg` by default):
//!
//! | role | login | purpose |
//! |---|---|---|
//! | `{p}_owner` | no | owns every table; never used by the app |
//! | `{p}_app` | yes, random password | the app: DML on tenant tables, no TRUNCATE, no BYPASSRLS |
//! | `{p}_maintenance` | no | BYPASSRLS + the app's privileges; reachable by the app only through a planted bug |
//!
//! Use one prefix per database: preparing a second database with the same prefix gives
//! the app role a new password, and the first database's API can no longer open
//! connections.

use std::str::FromStr;

use tokio_postgres::NoTls;
use tokio_postgres::config::Host;

use crate::Error;
use crate::bugs::{Bug, Bugs};
use crate::db::describe;

/// The login role the API connects as. Its `Debug` output hides the password.
#[derive(Clone)]
pub struct AppRole {
    /// The role name, `{prefix}_app`.
    pub name: String,
    /// Its password, new on every [`prepare_database`].
    pub password: String,
    /// A connection URL for this role to the prepared database.
    pub app_url: String,
}

impl std::fmt::Debug for AppRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRole")
            .field("name", &self.name)
            .field("password", &"***")
            .field("app_url", &self.redacted_url())
            .finish()
    }
}

impl AppRole {
    /// [`AppRole::app_url`] with the password replaced by `***`, for printing.
    pub fn redacted_url(&self) -> String {
        self.app_url
            .replacen(&format!(":{}@", self.password), ":***@", 1)
    }
}

/// Every table holding tenant data, in creation order. `orgs` is keyed by `id`, the
/// others by `org_id`.
pub const TENANT_TABLES: [&str; 8] = [
    "orgs",
    "users",
    "brands",
    "mentions",
    "ghost_presence_configs",
    "subscribers",
    "audit_log",
    "api_keys",
];

/// Checks that a role prefix is safe to splice into SQL as part of an identifier.
pub fn validate_role_prefix(prefix: &str) -> Result<(), Error> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 40
        && prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "role prefix {prefix:?} must be 1-40 characters of a-z, 0-9 and _, starting with a letter"
        )))
    }
}

/// Creates or updates roles, tables, policies and grants in the database that
/// `superuser_url` points at, planting the database-side bugs in `bugs`.
///
/// Returns the app role with a fresh random password.
pub async fn prepare_database(
    superuser_url: &str,
    role_prefix: &str,
    bugs: &Bugs,
) -> Result<AppRole, Error> {
    validate_role_prefix(role_prefix)?;
    let (client, connection) = tokio_postgres::connect(superuser_url, NoTls)
        .await
        .map_err(|e| Error::db("connecting as the superuser", e))?;
    let conn = tokio::spawn(connection);

    let password = crate::pg::random_hex(24);
    let app = format!("{role_prefix}_app");
    let script = migration_sql(role_prefix, &password, bugs);
    // One transaction: a failure leaves the database as it was, never half-secured.
    let result = client
        .batch_execute(&format!("BEGIN;\n{script}\nCOMMIT;"))
        .await;
    drop(client);
    let _ = conn.await;
    result.map_err(|e| Error::db("preparing the schema", e))?;

    let app_url = url_for(superuser_url, &app, &password)?;
    Ok(AppRole {
        name: app,
        password,
        app_url,
    })
}

/// The whole migration as one SQL script. Identifiers come from a validated prefix and
/// the password is hex, so plain interpolation is safe here.
fn migration_sql(p: &str, password: &str, bugs: &Bugs) -> String {
    let (owner, app, maint) = (
        format!("{p}_owner"),
        format!("{p}_app"),
        format!("{p}_maintenance"),
    );
    let mut sql = String::new();
    let mut push = |s: &str| {
        sql.push_str(s);
        sql.push('\n');
    };

    // Roles. CREATE ROLE has no IF NOT EXISTS; another session may create the same role
    // between the check and the create, hence the exception handler.
    for (role, attrs) in [
        (&owner, "NOLOGIN"),
        (&app, "LOGIN"),
        (&maint, "NOLOGIN BYPASSRLS"),
    ] {
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
    push(&format!(
        "ALTER ROLE {maint} NOLOGIN BYPASSRLS NOSUPERUSER;"
    ));
    if bugs.contains(Bug::AppRoleBypassrls) {
        push(&format!("GRANT {maint} TO {app};"));
    } else {
        // Only revoke an existing grant: REVOKE of a missing membership warns.
        push(&format!(
            "DO $$ BEGIN IF pg_has_role('{app}', '{maint}', 'MEMBER') THEN \
             REVOKE {maint} FROM {app}; END IF; END $$;"
        ));
    }

    // The app may use the schema but never create objects in it.
    push("REVOKE CREATE ON SCHEMA public FROM PUBLIC;");
    push(&format!("GRANT USAGE ON SCHEMA public TO {app};"));
    push(&format!(
        "DO $$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO {app}', current_database()); END $$;"
    ));

    push(TABLES_SQL);

    for table in TENANT_TABLES {
        let key = if table == "orgs" { "id" } else { "org_id" };
        push(&format!("ALTER TABLE {table} OWNER TO {owner};"));
        push(&format!("REVOKE ALL ON {table} FROM {app};"));
        // Immutable audit trail: the app can append and read, never rewrite (unless the
        // planted `audit-updatable` hands it UPDATE and DELETE too).
        let privileges = if table == "audit_log" && !bugs.contains(Bug::AuditUpdatable) {
            "SELECT, INSERT"
        } else {
            "SELECT, INSERT, UPDATE, DELETE"
        };
        push(&format!("GRANT {privileges} ON {table} TO {app};"));
        // The maintenance role is what operators would use for cross-tenant repairs; it
        // needs real privileges for the planted membership to matter.
        push(&format!("REVOKE ALL ON {table} FROM {maint};"));
        push(&format!("GRANT {privileges} ON {table} TO {maint};"));

        let rls_off = table == "mentions" && bugs.contains(Bug::MentionsRlsOff);
        push(&format!(
            "ALTER TABLE {table} {} ROW LEVEL SECURITY;",
            if rls_off { "DISABLE" } else { "ENABLE" }
        ));
        // Planted `attestation-overclaims`: one table loses FORCE, which the static
        // attestation keeps claiming. (The app role owns nothing, so its own queries are
        // still filtered; only the table owner would now skip the policy.)
        let unforced =
            table == "ghost_presence_configs" && bugs.contains(Bug::AttestationOverclaims);
        push(&format!(
            "ALTER TABLE {table} {} ROW LEVEL SECURITY;",
            if unforced { "NO FORCE" } else { "FORCE" }
        ));

        let tenant =
            format!("{key} = NULLIF(current_setting('app.current_org_id', true), '')::uuid");
        let using = if table == "brands" && bugs.contains(Bug::FailOpenPolicy) {
            // Planted: "no tenant set" is read as "every tenant".
            format!(
                "current_setting('app.current_org_id', true) IS NULL \
                 OR current_setting('app.current_org_id', true) = '' OR {tenant}"
            )
        } else {
            tenant.clone()
        };
        push(&format!(
            "DROP POLICY IF EXISTS tenant_isolation ON {table};"
        ));
        push(&format!(
            "CREATE POLICY tenant_isolation ON {table} FOR ALL TO {app} \
             USING ({using}) WITH CHECK ({tenant});"
        ));
    }
    push(&format!(
        "GRANT USAGE ON SEQUENCE audit_log_id_seq TO {app};"
    ));

    if bugs.contains(Bug::SubscribersNotForced) {
        // Planted: the app owns the table and, without FORCE, owners skip RLS.
        push(&format!("ALTER TABLE subscribers OWNER TO {app};"));
        push("ALTER TABLE subscribers NO FORCE ROW LEVEL SECURITY;");
    }
    sql
}

/// The tables. Child tables reference brands by `(org_id, brand_id)`, so a row can never
/// point at another org's brand: foreign-key checks bypass RLS, a composite key does not
/// need it.
const TABLES_SQL: &str = r#"
CREATE TABLE IF NOT EXISTS orgs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    email text NOT NULL,
    password_hash text NOT NULL,
    role text NOT NULL DEFAULT 'member',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, email)
);
CREATE TABLE IF NOT EXISTS brands (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, id)
);
CREATE TABLE IF NOT EXISTS mentions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    brand_id uuid NOT NULL,
    text text NOT NULL,
    source_url text,
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, brand_id) REFERENCES brands (org_id, id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS mentions_org_brand ON mentions (org_id, brand_id);
CREATE TABLE IF NOT EXISTS ghost_presence_configs (
    brand_id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    enabled boolean NOT NULL DEFAULT true,
    keywords jsonb NOT NULL DEFAULT '[]'::jsonb,
    updated_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, brand_id) REFERENCES brands (org_id, id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS subscribers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    brand_id uuid NOT NULL,
    email text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, brand_id) REFERENCES brands (org_id, id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS subscribers_org_brand ON subscribers (org_id, brand_id);
CREATE TABLE IF NOT EXISTS audit_log (
    id bigserial PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    actor uuid,
    action text NOT NULL,
    detail text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS audit_log_org ON audit_log (org_id, id);
CREATE TABLE IF NOT EXISTS api_keys (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL,
    key_hash text NOT NULL,
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS api_keys_org ON api_keys (org_id, id);
"#;

/// `base` (any libpq-style URL or key-value string) with another user and password, as a
/// `postgres://` URL.
pub(crate) fn url_for(base: &str, user: &str, password: &str) -> Result<String, Error> {
    let config = tokio_postgres::Config::from_str(base)
        .map_err(|e| Error::Config(format!("invalid database URL: {}", describe(&e))))?;
    let dbname = config.get_dbname().unwrap_or("postgres");
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let creds = format!("{}:{}", pct(user), pct(password));
    Ok(match config.get_hosts().first() {
        Some(Host::Tcp(host)) if host.contains(':') => {
            format!("postgres://{creds}@[{host}]:{port}/{}", pct(dbname))
        }
        Some(Host::Tcp(host)) => format!("postgres://{creds}@{host}:{port}/{}", pct(dbname)),
        Some(Host::Unix(dir)) => format!(
            "postgres://{creds}@/{}?host={}&port={port}",
            pct(dbname),
            pct(&dir.to_string_lossy())
        ),
        None => format!("postgres://{creds}@localhost:{port}/{}", pct(dbname)),
    })
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_prefixes_must_be_plain_identifiers() {
        for ok in ["tg", "t_1", "abc_def"] {
            assert!(validate_role_prefix(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1a", "Tg", "a-b", "a;drop", "a\"b", &"a".repeat(41)] {
            assert!(validate_role_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn builds_urls_for_other_roles() {
        let url = url_for(
            "postgres://postgres:pw@127.0.0.1:5433/db_1",
            "tg_app",
            "ab12",
        )
        .unwrap();
        assert_eq!(url, "postgres://tg_app:ab12@127.0.0.1:5433/db_1");
        let url = url_for("host=/run/pg port=5432 dbname=x user=postgres", "u", "p").unwrap();
        assert_eq!(url, "postgres://u:p@/x?host=%2Frun%2Fpg&port=5432");
        let parsed = tokio_postgres::Config::from_str(&url).unwrap();
        assert_eq!(parsed.get_hosts(), [Host::Unix("/run/pg".into())]);
        let role = AppRole {
            name: "u".into(),
            password: "p".into(),
            app_url: url,
        };
        assert!(!format!("{role:?}").contains(":p@"));
        assert_eq!(
            role.redacted_url(),
            "postgres://u:***@/x?host=%2Frun%2Fpg&port=5432"
        );
    }

    #[test]
    fn planted_grants_and_flags_appear_only_with_their_bug() {
        let clean = migration_sql("tg", "00", &Bugs::none());
        assert!(clean.contains("GRANT SELECT, INSERT ON audit_log TO tg_app;"));
        assert!(!clean.contains("NO FORCE"));
        let bugs = Bugs::parse("audit-updatable,attestation-overclaims").unwrap();
        let planted = migration_sql("tg", "00", &bugs);
        assert!(planted.contains("GRANT SELECT, INSERT, UPDATE, DELETE ON audit_log TO tg_app;"));
        assert!(
            planted.contains("ALTER TABLE ghost_presence_configs NO FORCE ROW LEVEL SECURITY;")
        );
    }

    #[test]
    fn the_clean_migration_forces_rls_everywhere() {
        let sql = migration_sql("tg", "00", &Bugs::none());
        for table in TENANT_TABLES {
            assert!(sql.contains(&format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")));
            assert!(sql.contains(&format!("ALTER TABLE {table} FORCE ROW LEVEL SECURITY")));
        }
        assert!(!sql.contains("GRANT tg_maintenance TO tg_app"));
        assert!(!sql.contains("TRUNCATE"));
    }
}
