//! Shared test helpers: one PostgreSQL cluster per test binary, and a fresh database
//! with unique role names per test.
//!
//! `DATABASE_URL` (a superuser URL, `postgres://user:pw@host:port/db`) is used when set;
//! otherwise a throwaway cluster is started once ([`TempPostgres`]) and stopped by a
//! small watchdog process when this test binary exits (statics are never dropped).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use tenantgate_reference_api::pg::{TempPostgres, random_hex};
use tokio_postgres::{Client, NoTls};

/// Where the tests' databases live.
pub struct Cluster {
    /// A superuser URL (its database part is replaced per use).
    admin_url: String,
    _temp: Option<TempPostgres>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The cluster for this test binary: `DATABASE_URL`, else a throwaway one.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        if let Ok(url) = std::env::var("DATABASE_URL")
            && !url.trim().is_empty()
        {
            return Cluster {
                admin_url: url,
                _temp: None,
            };
        }
        let pg = TempPostgres::start().expect("start a throwaway PostgreSQL (or set DATABASE_URL)");
        let admin_url = pg.superuser_url("postgres");
        stop_at_exit(&admin_url);
        Cluster {
            admin_url,
            _temp: Some(pg),
        }
    })
}

/// Statics are never dropped, so the cluster would outlive the test binary: a detached
/// shell waits for this process to exit, then stops the cluster and removes its files.
pub fn stop_at_exit(admin_url: &str) {
    let data_dir = std::thread::spawn({
        let url = admin_url.to_string();
        move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let (c, conn) = tokio_postgres::connect(&url, NoTls).await.ok()?;
                tokio::spawn(conn);
                let row = c.query_one("SHOW data_directory", &[]).await.ok()?;
                row.try_get::<_, String>(0).ok()
            })
        }
    })
    .join()
    .ok()
    .flatten();
    let Some(data_dir) = data_dir else { return };
    let data = PathBuf::from(&data_dir);
    let Some(root) = data.parent().map(|p| p.to_path_buf()) else {
        return;
    };
    if !root
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("tenantgate-pg-"))
    {
        return;
    }
    let Some(bindir) = tenantgate_reference_api::pg::find_bindir() else {
        return;
    };
    let pg_ctl = bindir.join("pg_ctl");
    let run_as_postgres = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let stop = if run_as_postgres {
        format!(
            "runuser -u postgres -- '{}' stop -m immediate -D '{}'",
            pg_ctl.display(),
            data.display()
        )
    } else {
        format!(
            "'{}' stop -m immediate -D '{}'",
            pg_ctl.display(),
            data.display()
        )
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf '{root}'",
        pid = std::process::id(),
        root = root.display()
    );
    let _ = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

impl Cluster {
    /// The superuser URL for `database`.
    pub fn url(&self, database: &str) -> String {
        with_database(&self.admin_url, database)
    }

    /// A URL for `user`/`password` on `database`.
    pub fn role_url(&self, user: &str, password: &str, database: &str) -> String {
        with_user(&self.url(database), user, password)
    }

    /// The superuser URL as given (its own database).
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }
}

pub use tenantgate_reference_api::pg::with_database;

/// Replaces the user and password of a `postgres://user:pw@host/...` URL.
pub fn with_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let host_part = match rest.split_once('/') {
        Some((auth, _)) => auth.rsplit_once('@').map(|(_, h)| h).unwrap_or(auth),
        None => rest,
    };
    let tail = rest.split_once('/').map(|(_, t)| t).unwrap_or("");
    format!("{scheme}://{user}:{password}@{host_part}/{tail}")
}

/// Connects with a URL (panics: tests only).
pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    tokio::spawn(conn);
    client
}

/// A fresh database with unique role names, for one test.
pub struct TestDb {
    /// The database's name.
    pub name: String,
    suffix: String,
    /// Placeholder → value (role names, the password, the database).
    pub names: BTreeMap<String, String>,
    /// The app role's password.
    pub app_password: String,
}

impl TestDb {
    /// Creates the database `tg_<label>_<suffix>`.
    pub async fn create(label: &str) -> TestDb {
        let suffix = random_hex(4);
        let name = format!("tg_{label}_{suffix}");
        let admin = connect(cluster().admin_url()).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        let app_password = format!("pw-{}", random_hex(12));
        let mut names = BTreeMap::new();
        names.insert("database".to_string(), name.clone());
        names.insert("app_password".to_string(), app_password.clone());
        TestDb {
            name,
            suffix,
            names,
            app_password,
        }
    }

    /// The superuser URL of this database.
    pub fn url(&self) -> String {
        cluster().url(&self.name)
    }

    /// The role name a placeholder stands for (`app_role` → `tg_app_role_1a2b3c4d`).
    pub fn role(&mut self, placeholder: &str) -> String {
        let v = format!("tg_{placeholder}_{}", self.suffix);
        self.names
            .entry(placeholder.to_string())
            .or_insert(v)
            .clone()
    }

    /// The URL of the app role on this database.
    pub fn app_url(&mut self) -> String {
        let app = self.role("app_role");
        cluster().role_url(&app, &self.app_password, &self.name)
    }

    /// Replaces every `{{name}}` placeholder.
    pub fn render(&mut self, sql: &str) -> String {
        let mut out = String::with_capacity(sql.len());
        let mut rest = sql;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let key = after[..end].trim().to_string();
            let value = match self.names.get(&key) {
                Some(v) => v.clone(),
                None => self.role(&key),
            };
            out.push_str(&value);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }

    /// Runs `_setup.sql` and then each fixture of `fixtures/db/`, as the superuser.
    pub async fn load(&mut self, fixtures: &[&str]) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/db");
        let client = connect(&self.url()).await;
        for f in std::iter::once("_setup").chain(fixtures.iter().copied()) {
            let path = dir.join(format!("{f}.sql"));
            let sql = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            let sql = self.render(&sql);
            client
                .batch_execute(&sql)
                .await
                .unwrap_or_else(|e| panic!("fixture {f}: {e:?}"));
        }
    }

    /// Runs SQL as the superuser on this database.
    pub async fn exec(&self, sql: &str) {
        let client = connect(&self.url()).await;
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// Drops the database and the roles it created (best effort).
    pub async fn drop(self) {
        let admin = connect(cluster().admin_url()).await;
        let _ = admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
        for (k, v) in &self.names {
            if k != "database" && k != "app_password" {
                let _ = admin
                    .batch_execute(&format!("DROP ROLE IF EXISTS {v}"))
                    .await;
            }
        }
    }
}
