//! The second reference target, in the path-scoped style many real APIs have: tenants
//! by slug in the path (`/orgs/{slug}/projects/{id}`), integer ids, an HttpOnly session
//! cookie, per-org API keys, users in several orgs, and RLS keyed on the *user* through
//! the membership table — with its own switchable planted bugs ([`bugs`]).
//!
//! The pieces, in the order a launch uses them: [`crate::pg`] starts a cluster,
//! [`schema::prepare_scoped_database`] creates roles, tables and policies (planting the
//! database-side bug), [`serve_scoped`] starts the routes on a socket. [`launch_scoped`]
//! does all of it in one call for demos and tests.
//!
//! A request goes: [`auth::Caller`] (cookie or key) → [`scope::ScopedPath::resolve`]
//! (the path's org, as the caller) → the handler, in a transaction as the caller.

pub mod auth;
pub mod bugs;
mod invoices;
mod orgs;
mod projects;
pub mod schema;
pub mod scope;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::oneshot;

use crate::api::ApiError;
use crate::db::Pool;
use crate::{Error, RunningApi};
pub use bugs::{ScopedBug, ScopedBugs};
pub use schema::prepare_scoped_database;

/// Connections the app role may hold at once.
const APP_POOL_SIZE: usize = 8;
/// Privileged connections: planted bugs only.
const ADMIN_POOL_SIZE: usize = 2;

/// What every handler can reach.
pub struct ScopedState {
    /// Connections as the app role: the only ones the correct app uses.
    pub(crate) app: Pool,
    /// Superuser connections. Only planted bugs touch these.
    pub(crate) admin: Pool,
    /// The planted bugs in effect.
    pub(crate) bugs: ScopedBugs,
}

/// The whole scoped API.
pub fn scoped_router(state: Arc<ScopedState>) -> Router {
    Router::new()
        .route("/auth/signup", post(auth::signup))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/me", get(auth::me))
        .route("/orgs", post(orgs::create))
        .route("/orgs/{slug}", get(orgs::read).delete(orgs::remove))
        .route("/orgs/{slug}/members", post(orgs::add_member))
        .route(
            "/orgs/{slug}/api-keys",
            post(orgs::create_key).get(orgs::list_keys),
        )
        .route(
            "/orgs/{slug}/projects",
            get(projects::list).post(projects::create),
        )
        .route(
            "/orgs/{slug}/projects/{id}",
            get(projects::read)
                .patch(projects::rename)
                .delete(projects::remove),
        )
        .route(
            "/orgs/{slug}/invoices",
            get(invoices::list).post(invoices::create),
        )
        .route(
            "/orgs/{slug}/invoices/{id}",
            get(invoices::read).patch(invoices::update),
        )
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}

/// Everything [`serve_scoped`] needs. Its `Debug` output hides the URLs.
#[derive(Clone)]
pub struct ScopedConfig {
    /// A superuser URL to the same database: planted bugs only.
    pub admin_url: String,
    /// The app role's URL: every query of the correct app.
    pub app_url: String,
    /// The planted bugs on the HTTP side (the database-side one was planted by
    /// [`prepare_scoped_database`]).
    pub bugs: ScopedBugs,
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
}

impl std::fmt::Debug for ScopedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedConfig")
            .field("admin_url", &"***")
            .field("app_url", &"***")
            .field("bugs", &self.bugs)
            .field("listen", &self.listen)
            .finish()
    }
}

/// Binds `config.listen`, starts serving in a background task, and returns at once.
/// Refuses a superuser or BYPASSRLS app role, like [`crate::serve`].
pub async fn serve_scoped(config: ScopedConfig) -> Result<RunningApi, Error> {
    crate::check_app_role(&config.app_url).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Listen {
        addr: config.listen,
        source,
    })?;
    let state = Arc::new(ScopedState {
        app: Pool::new(config.app_url, "app", APP_POOL_SIZE),
        admin: Pool::new(config.admin_url, "privileged", ADMIN_POOL_SIZE),
        bugs: config.bugs,
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, scoped_router(state)).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = server.await {
            eprintln!("reference-api (scoped): server stopped: {e}");
        }
    });
    Ok(RunningApi {
        addr,
        stop: Some(stop),
        task: Some(task),
    })
}

/// A launched scoped API and how to reach it and its database.
pub struct ScopedLaunched {
    /// The running server.
    pub api: RunningApi,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    /// Superuser URL to this database.
    pub admin_url: String,
    /// The app role's URL to this database.
    pub app_url: String,
    /// The app role's name, `{role_prefix}_app`.
    pub app_role: String,
}

/// One call for demos and tests: database `dbname` in the cluster (dropped first if it
/// exists), roles with `role_prefix`, the scoped schema with `bugs`, and the API on
/// 127.0.0.1 with a free port. Use a distinct `role_prefix` per database.
pub async fn launch_scoped(
    pg: &crate::pg::TempPostgres,
    dbname: &str,
    role_prefix: &str,
    bugs: ScopedBugs,
) -> Result<ScopedLaunched, Error> {
    launch_scoped_at(&pg.superuser_url("postgres"), dbname, role_prefix, bugs).await
}

/// [`launch_scoped`] on any cluster reachable with a superuser URL (its database part
/// is replaced by `dbname`): tests use it to honour `DATABASE_URL`.
pub async fn launch_scoped_at(
    superuser_url: &str,
    dbname: &str,
    role_prefix: &str,
    bugs: ScopedBugs,
) -> Result<ScopedLaunched, Error> {
    crate::schema::validate_role_prefix(dbname).map_err(|_| {
        Error::Config(format!(
            "database name {dbname:?} must be like a role prefix"
        ))
    })?;
    crate::recreate_database(&crate::pg::with_database(superuser_url, "postgres"), dbname).await?;
    let admin_url = crate::pg::with_database(superuser_url, dbname);
    let role = prepare_scoped_database(&admin_url, role_prefix, &bugs).await?;
    let api = serve_scoped(ScopedConfig {
        admin_url: admin_url.clone(),
        app_url: role.app_url.clone(),
        bugs,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
    })
    .await?;
    Ok(ScopedLaunched {
        base_url: format!("http://{}", api.addr),
        api,
        admin_url,
        app_url: role.app_url,
        app_role: role.name,
    })
}
