//! The HTTP API: routes, shared state, and the two rules every handler follows.
//!
//! 1. The tenant comes only from the verified token ([`Caller`]); headers, query strings
//!    and body fields naming an org are ignored.
//! 2. Every query runs in a tenant transaction (`db::begin_tenant`, which sets
//!    `app.current_org_id` transaction-locally) *and* filters by `org_id` itself, so
//!    either layer alone still isolates tenants.
//!
//! Anything not visible to the caller — a missing id, another org's id, a malformed id —
//! is the same `404 {"error":"not_found"}` ([`ApiError::NotFound`]).

mod audit;
mod auth;
mod brands;
mod error;
mod extract;
mod monitoring;
mod subscribers;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::bugs::Bugs;
use crate::db::Pool;
pub use error::ApiError;
pub use extract::Caller;

/// Connections the app role may hold at once.
const APP_POOL_SIZE: usize = 8;
/// Connections on the privileged URL, used for migrations and planted bugs only.
const ADMIN_POOL_SIZE: usize = 2;

/// What every handler can reach.
pub struct AppState {
    /// Connections as the app role: the only ones the correct app uses.
    pub(crate) app: Pool,
    /// Superuser connections. Only planted bugs touch these.
    pub(crate) admin: Pool,
    /// The HS256 signing secret.
    pub(crate) jwt_secret: String,
    /// The planted bugs in effect.
    pub(crate) bugs: Bugs,
}

impl AppState {
    /// State for an API connecting as the app role on `app_url`, with `admin_url` kept
    /// for planted bugs. Connections open lazily.
    pub fn new(app_url: String, admin_url: String, jwt_secret: String, bugs: Bugs) -> AppState {
        AppState {
            app: Pool::new(app_url, "app", APP_POOL_SIZE),
            admin: Pool::new(admin_url, "privileged", ADMIN_POOL_SIZE),
            jwt_secret,
            bugs,
        }
    }
}

/// The whole API.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/auth/signup", post(auth::signup))
        .route("/auth/login", post(auth::login))
        .route("/me", get(auth::me))
        .route("/orgs/{id}", delete(auth::delete_org))
        .route("/brands", post(brands::create).get(brands::list))
        .route(
            "/brands/{id}",
            get(brands::read)
                .patch(brands::rename)
                .delete(brands::remove),
        )
        .route(
            "/ghost-presence/{brand_id}/config",
            get(brands::read_config).patch(brands::update_config),
        )
        .route(
            "/monitoring/mentions",
            post(monitoring::create).get(monitoring::list),
        )
        .route("/monitoring/mentions/{id}", get(monitoring::read))
        .route(
            "/subscribers",
            post(subscribers::create).get(subscribers::list),
        )
        .route(
            "/subscribers/{id}",
            get(subscribers::read).delete(subscribers::remove),
        )
        .route("/audit-log", get(audit::list))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}
