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
//!
//! A caller is identified by a bearer JWT or by an org's API key ([`Caller`]). Two
//! routes need neither: the public featured-brands list (which sets no tenant, so under
//! RLS it is empty) and sign-up/login.

mod apikeys;
mod attestation;
mod audit;
mod auth;
mod brands;
mod error;
mod extract;
mod monitoring;
mod public;
mod subscribers;

use std::sync::Arc;

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodFilter, on};

use crate::bugs::{Bug, Bugs};
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
            app: Pool::new(app_url, "app", APP_POOL_SIZE)
                .with_session_level_tenant(bugs.contains(Bug::PoolSessionLeak)),
            admin: Pool::new(admin_url, "privileged", ADMIN_POOL_SIZE),
            jwt_secret,
            bugs,
        }
    }
}

/// One operation the API serves: an HTTP method and an axum path template
/// (`/brands/{id}`), and whether it is scoped to the caller's tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Operation {
    /// `GET`, `POST`, `PATCH` or `DELETE`.
    pub method: &'static str,
    /// The path template, parameters in braces.
    pub path: &'static str,
    /// Whether the operation reads or writes the caller's tenant data (it needs a token
    /// or an API key).
    pub tenant_scoped: bool,
}

/// The router under construction, recording every operation it is given so that the
/// list the OpenAPI document is checked against is the router itself.
struct Routes {
    router: Router<Arc<AppState>>,
    operations: Vec<Operation>,
}

impl Routes {
    fn new() -> Routes {
        Routes {
            router: Router::new(),
            operations: Vec::new(),
        }
    }

    /// Adds `method path` (axum merges several methods on one path).
    fn op<H, T>(mut self, method: &'static str, path: &'static str, scoped: bool, h: H) -> Routes
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        let filter = match method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PATCH" => MethodFilter::PATCH,
            "DELETE" => MethodFilter::DELETE,
            other => unreachable!("no route uses {other}"),
        };
        self.router = self.router.route(path, on(filter, h));
        self.operations.push(Operation {
            method,
            path,
            tenant_scoped: scoped,
        });
        self
    }
}

/// Marks an operation that needs a credential and touches the caller's tenant only.
const TENANT: bool = true;
/// Marks an operation open to anyone (it must not reveal any tenant's data).
const PUBLIC: bool = false;

/// Every route, in the README's order.
fn routes() -> Routes {
    Routes::new()
        .op("POST", "/auth/signup", PUBLIC, auth::signup)
        .op("POST", "/auth/login", PUBLIC, auth::login)
        .op("GET", "/me", TENANT, auth::me)
        .op("DELETE", "/orgs/{id}", TENANT, auth::delete_org)
        .op("POST", "/brands", TENANT, brands::create)
        .op("GET", "/brands", TENANT, brands::list)
        .op("GET", "/brands/{id}", TENANT, brands::read)
        .op("PATCH", "/brands/{id}", TENANT, brands::rename)
        .op("DELETE", "/brands/{id}", TENANT, brands::remove)
        .op(
            "GET",
            "/ghost-presence/{brand_id}/config",
            TENANT,
            brands::read_config,
        )
        .op(
            "PATCH",
            "/ghost-presence/{brand_id}/config",
            TENANT,
            brands::update_config,
        )
        .op("POST", "/monitoring/mentions", TENANT, monitoring::create)
        .op("GET", "/monitoring/mentions", TENANT, monitoring::list)
        .op("GET", "/monitoring/mentions/{id}", TENANT, monitoring::read)
        .op("POST", "/subscribers", TENANT, subscribers::create)
        .op("GET", "/subscribers", TENANT, subscribers::list)
        .op("GET", "/subscribers/{id}", TENANT, subscribers::read)
        .op("DELETE", "/subscribers/{id}", TENANT, subscribers::remove)
        .op("GET", "/audit-log", TENANT, audit::list)
        .op("POST", "/api-keys", TENANT, apikeys::create)
        .op("GET", "/api-keys", TENANT, apikeys::list)
        .op("DELETE", "/api-keys/{id}", TENANT, apikeys::remove)
        .op(
            "GET",
            "/.well-known/tenant-isolation",
            TENANT,
            attestation::report,
        )
        .op(
            "GET",
            "/public/featured-brands",
            PUBLIC,
            public::featured_brands,
        )
}

/// Every operation [`router`] serves, in registration order.
pub fn operations() -> Vec<Operation> {
    routes().operations
}

/// The whole API.
pub fn router(state: Arc<AppState>) -> Router {
    routes()
        .router
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}
