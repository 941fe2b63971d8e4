//! tenantgate's reference target: a small multi-tenant JSON API on PostgreSQL Row-Level
//! Security, with switchable planted isolation bugs, plus a throwaway PostgreSQL cluster
//! for demos and tests.
//!
//! The pieces, in the order a launch uses them: [`pg`] starts a cluster,
//! [`schema::prepare_database`] creates roles, tables and policies (planting the
//! database-side [`bugs`]), [`serve`] starts the [`api`] on a socket (plain HTTP, or
//! TLS 1.3 with HSTS through [`tls`]). [`launch`] does all of it in one call for demos
//! and tests.

pub mod api;
pub mod apikey;
pub mod bugs;
mod db;
pub mod graphql;
pub mod password;
pub mod pg;
pub mod schema;
pub mod scoped;
pub mod tls;
pub mod token;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

pub use bugs::{Bug, Bugs};
pub use graphql::{GqlBug, GqlBugs, launch_graphql_at};
pub use schema::{AppRole, prepare_database};
pub use scoped::{ScopedBug, ScopedBugs, ScopedLaunched, launch_scoped, launch_scoped_at};
pub use tls::TlsFiles;

/// Why the API could not be prepared or started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is unusable (role prefix, database name, URL).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A database step failed; `detail` carries the server's message.
    #[error("database error while {context}: {detail}")]
    Db {
        /// What was being done.
        context: &'static str,
        /// The server's message, or the client-side cause.
        detail: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The app URL logs in as a role that RLS would not restrict.
    #[error(
        "the app role {0:?} is a superuser or has BYPASSRLS; the API refuses to run with it \
         (planted bugs included: they never make the app role itself privileged)"
    )]
    PrivilegedAppRole(String),
}

impl Error {
    pub(crate) fn db(context: &'static str, e: tokio_postgres::Error) -> Error {
        Error::Db {
            context,
            detail: db::describe(&e),
        }
    }
}

/// Everything [`serve`] needs. Its `Debug` output hides the URLs and the secret.
#[derive(Clone)]
pub struct Config {
    /// A superuser URL to the same database: planted bugs only.
    pub admin_url: String,
    /// The app role's URL: every query of the correct app.
    pub app_url: String,
    /// The HS256 secret tokens are signed with.
    pub jwt_secret: String,
    /// The planted bugs on the HTTP side (database-side ones were planted by
    /// [`prepare_database`]).
    pub bugs: Bugs,
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    pub tls: Option<TlsFiles>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("admin_url", &"***")
            .field("app_url", &"***")
            .field("jwt_secret", &"***")
            .field("bugs", &self.bugs)
            .field("listen", &self.listen)
            .field("tls", &self.tls)
            .finish()
    }
}

/// A running API. Dropping it asks the server to stop; [`RunningApi::shutdown`] also
/// waits until it has.
pub struct RunningApi {
    /// The bound address.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningApi {
    /// Stops accepting requests, lets in-flight ones finish (up to 5 s), and returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for RunningApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Binds `config.listen`, starts serving in a background task, and returns at once.
///
/// Before binding it connects once as the app role and refuses a superuser or BYPASSRLS
/// role: with one, RLS would be decoration. With [`Config::tls`] the certificate and key
/// are loaded first, so a bad file fails here rather than at the first handshake.
pub async fn serve(config: Config) -> Result<RunningApi, Error> {
    check_app_role(&config.app_url).await?;
    let tls = match &config.tls {
        Some(files) => Some(tls::server_config(files, &config.bugs)?),
        None => None,
    };
    let listen_error = |source| Error::Listen {
        addr: config.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(listen_error)?;
    let addr = listener.local_addr().map_err(listen_error)?;
    let hsts = !config.bugs.contains(Bug::NoHsts);
    let state = Arc::new(api::AppState::new(
        config.app_url,
        config.admin_url,
        config.jwt_secret,
        config.bugs,
    ));
    let (stop, stopped) = oneshot::channel::<()>();
    // A dropped sender also means stop.
    let stopped = async {
        let _ = stopped.await;
    };
    let router = api::router(state);
    let task = match tls {
        None => tokio::spawn(run_server(listener, router, stopped)),
        Some(tls_config) => {
            let listener = tls::TlsListener::new(listener, tls_config).map_err(listen_error)?;
            let router = if hsts {
                router.layer(axum::middleware::map_response(tls::add_hsts))
            } else {
                router
            };
            tokio::spawn(run_server(listener, router, stopped))
        }
    };
    Ok(RunningApi {
        addr,
        stop: Some(stop),
        task: Some(task),
    })
}

async fn run_server<L>(
    listener: L,
    router: axum::Router,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let server = axum::serve(listener, router).with_graceful_shutdown(stopped);
    if let Err(e) = server.await {
        eprintln!("reference-api: server stopped: {e}");
    }
}

async fn check_app_role(app_url: &str) -> Result<(), Error> {
    let (client, connection) = tokio_postgres::connect(app_url, NoTls)
        .await
        .map_err(|e| Error::db("connecting as the app role", e))?;
    let conn = tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT current_user::text, rolsuper OR rolbypassrls FROM pg_roles \
             WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| Error::db("checking the app role", e));
    drop(client);
    let _ = conn.await;
    let row = row?;
    if row.get::<_, bool>(1) {
        return Err(Error::PrivilegedAppRole(row.get(0)));
    }
    Ok(())
}

/// A launched API and how to reach it and its database.
pub struct Launched {
    /// The running server.
    pub api: RunningApi,
    /// `http://127.0.0.1:PORT` (`https://` when launched with TLS), no trailing slash.
    pub base_url: String,
    /// Superuser URL to this database.
    pub admin_url: String,
    /// The app role's URL to this database.
    pub app_url: String,
    /// The app role's name, `{role_prefix}_app`.
    pub app_role: String,
    /// The HS256 secret, random per launch.
    pub jwt_secret: String,
}

/// One call for demos and tests: a database `dbname` in the given cluster (created if
/// missing, dropped first if it exists), roles with `role_prefix`, schema with `bugs`,
/// and the API on 127.0.0.1 with a free port.
///
/// `dbname` follows the role prefix's rules (lowercase letters, digits, `_`). Use a
/// distinct `role_prefix` per database (see [`schema`]).
pub async fn launch(
    pg: &pg::TempPostgres,
    dbname: &str,
    role_prefix: &str,
    bugs: Bugs,
) -> Result<Launched, Error> {
    launch_at(&pg.superuser_url("postgres"), dbname, role_prefix, bugs).await
}

/// [`launch`] on any cluster reachable with a superuser URL (its database part is
/// replaced by `dbname`): tests use it to honour `DATABASE_URL`.
pub async fn launch_at(
    superuser_url: &str,
    dbname: &str,
    role_prefix: &str,
    bugs: Bugs,
) -> Result<Launched, Error> {
    launch_with(superuser_url, dbname, role_prefix, bugs, None).await
}

/// [`launch_at`], serving HTTPS with `tls` when given (the base URL is then
/// `https://127.0.0.1:PORT`: the certificate must name `127.0.0.1`).
pub async fn launch_with(
    superuser_url: &str,
    dbname: &str,
    role_prefix: &str,
    bugs: Bugs,
    tls: Option<TlsFiles>,
) -> Result<Launched, Error> {
    schema::validate_role_prefix(dbname).map_err(|_| {
        Error::Config(format!(
            "database name {dbname:?} must be like a role prefix"
        ))
    })?;
    recreate_database(&pg::with_database(superuser_url, "postgres"), dbname).await?;
    let admin_url = pg::with_database(superuser_url, dbname);
    let role = prepare_database(&admin_url, role_prefix, &bugs).await?;
    let jwt_secret = pg::random_hex(32);
    let api = serve(Config {
        admin_url: admin_url.clone(),
        app_url: role.app_url.clone(),
        jwt_secret: jwt_secret.clone(),
        bugs,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        tls: tls.clone(),
    })
    .await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    Ok(Launched {
        base_url: format!("{scheme}://{}", api.addr),
        api,
        admin_url,
        app_url: role.app_url,
        app_role: role.name,
        jwt_secret,
    })
}

/// Drops (disconnecting any sessions) and creates `dbname`. The name was validated as a
/// plain identifier.
async fn recreate_database(maintenance_url: &str, dbname: &str) -> Result<(), Error> {
    let (client, connection) = tokio_postgres::connect(maintenance_url, NoTls)
        .await
        .map_err(|e| Error::db("connecting as the superuser", e))?;
    let conn = tokio::spawn(connection);
    // Two round trips: a multi-statement string is one implicit transaction, and
    // neither statement may run inside one.
    let mut result = Ok(());
    for stmt in [
        format!("DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"),
        format!("CREATE DATABASE {dbname}"),
    ] {
        result = client.batch_execute(&stmt).await;
        if result.is_err() {
            break;
        }
    }
    let result = result.map_err(|e| Error::db("creating the database", e));
    drop(client);
    let _ = conn.await;
    result
}
