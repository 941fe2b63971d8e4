//! The org scope of a request: the `{slug}` of `/orgs/{slug}/...`, resolved *as the
//! caller* to an org they are a member of, after authentication and before any handler
//! touches data.
//!
//! The rules of the correct app, which every handler follows:
//! 1. The org comes only from the path, and only if the caller is a member of it (an
//!    API key's bot user is a member of its own org only). Headers, query parameters
//!    and body fields naming an org are ignored.
//! 2. Every query runs in a transaction that sets `app.user_id` transaction-locally
//!    (`begin_as`) *and* filters by the resolved org id, so either layer alone still
//!    isolates orgs.
//! 3. An org the caller is not a member of, a never-issued slug, another org's id and
//!    a malformed id are all the same `404 {"error":"not_found"}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tokio_postgres::{Client, GenericClient, Transaction};

use super::ScopedState;
use super::auth::Caller;
use super::bugs::ScopedBug;
use crate::api::ApiError;
use crate::db::PooledClient;

/// Opens a transaction in which RLS sees `user_id` as the caller: `app.user_id` is set
/// with `set_config(..., true)`, i.e. only until this transaction ends.
pub(crate) async fn begin_as(
    client: &mut Client,
    user_id: i64,
) -> Result<Transaction<'_>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT set_config('app.user_id', $1, true)",
        &[&user_id.to_string()],
    )
    .await?;
    Ok(tx)
}

/// A JSON body whose rejections are all `400` with a JSON error.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<JsonBody<T>, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

/// A required, non-blank text field, trimmed.
pub fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, ApiError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(ApiError::BadRequest(format!("{field} is required"))),
    }
}

/// A slug as orgs are created with: 2-40 of `a-z`, `0-9`, `-`, starting with a letter
/// or digit.
pub fn valid_slug(slug: &str) -> Result<String, ApiError> {
    let ok = (2..=40).contains(&slug.len())
        && slug.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(slug.to_string())
    } else {
        Err(ApiError::BadRequest(
            "org_slug must be 2-40 characters of a-z, 0-9 and -".into(),
        ))
    }
}

/// An org as the API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Org {
    /// The integer id.
    pub id: i64,
    /// The slug in paths.
    pub slug: String,
    /// The display name.
    pub name: String,
}

/// Which family of routes a request is on: planted bugs are route-specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// The org itself, its members and API keys.
    Org,
    /// `/orgs/{slug}/projects...`.
    Projects,
    /// `/orgs/{slug}/invoices...`.
    Invoices,
}

/// A resolved scope: who is calling, in which org, with what role.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The caller.
    pub caller: Caller,
    /// The org the data comes from.
    pub org: Org,
    /// The caller's role in it; `None` only when a planted bug skipped the check.
    pub role: Option<String>,
    /// Whether this request runs on the privileged connection (planted bugs only).
    pub privileged: bool,
}

impl Ctx {
    /// A connection for this request: the app role's, or (planted bugs) the privileged.
    pub(crate) async fn client<'s>(
        &self,
        state: &'s ScopedState,
    ) -> Result<PooledClient<'s>, ApiError> {
        let pool = if self.privileged {
            &state.admin
        } else {
            &state.app
        };
        Ok(pool.get().await?)
    }

    /// The request's transaction, as the caller.
    pub(crate) async fn begin<'c>(
        &self,
        client: &'c mut Client,
    ) -> Result<Transaction<'c>, ApiError> {
        Ok(begin_as(client, self.caller.user_id).await?)
    }

    /// The caller's role, which must be one of `roles`. A member without it gets 403:
    /// they can see the org, so this reveals nothing across orgs.
    pub fn require_role(&self, roles: &[&str]) -> Result<(), ApiError> {
        match &self.role {
            Some(role) if roles.contains(&role.as_str()) => Ok(()),
            _ => Err(ApiError::Forbidden),
        }
    }
}

/// The scope parts of a request: the path's slug, its `{id}` if any, and the org hint a
/// client may have sent (read only by a planted bug).
pub struct ScopedPath {
    slug: String,
    id: Option<String>,
    hint: Option<String>,
}

impl FromRequestParts<Arc<ScopedState>> for ScopedPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ScopedState>,
    ) -> Result<ScopedPath, ApiError> {
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let slug = param("slug").ok_or(ApiError::NotFound)?;
        let hint = if state.bugs.contains(ScopedBug::SlugHeaderOverride) {
            org_hint(parts)
        } else {
            None
        };
        Ok(ScopedPath {
            slug,
            id: param("id"),
            hint,
        })
    }
}

/// An `X-Org` header, else an `org` query parameter.
fn org_hint(parts: &Parts) -> Option<String> {
    let header = parts
        .headers
        .get("x-org")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string());
    let query = parts.uri.query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "org")
            .map(|(_, v)| v.to_string())
    });
    header.or(query).filter(|v| !v.is_empty())
}

const ORG_COLUMNS: &str = "o.id, o.slug, o.name";

fn org_from(row: &tokio_postgres::Row) -> Org {
    Org {
        id: row.get(0),
        slug: row.get(1),
        name: row.get(2),
    }
}

/// An org by slug, and the user's role in it, read without RLS: planted bugs only.
async fn privileged_lookup(
    admin: &impl GenericClient,
    slug: &str,
    user_id: i64,
) -> Result<(Org, Option<String>), ApiError> {
    let row = admin
        .query_opt(
            &format!(
                "SELECT {ORG_COLUMNS}, m.role FROM orgs o LEFT JOIN memberships m \
                 ON m.org_id = o.id AND m.user_id = $2 WHERE o.slug = $1"
            ),
            &[&slug, &user_id],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((org_from(&row), row.get(3)))
}

impl ScopedPath {
    /// The answer for a slug the caller is not a member of: not found, exactly like a
    /// never-issued slug, unless the planted oracle tells the two apart.
    async fn not_a_member(&self, state: &ScopedState) -> Result<ApiError, ApiError> {
        if state.bugs.contains(ScopedBug::SlugExistenceOracle) {
            let admin = state.admin.get().await?;
            if admin
                .query_opt("SELECT 1 FROM orgs WHERE slug = $1", &[&self.slug])
                .await?
                .is_some()
            {
                return Ok(ApiError::Forbidden);
            }
        }
        Ok(ApiError::NotFound)
    }

    /// The path's `{id}` as an integer; anything else is not found.
    pub fn id(&self) -> Result<i64, ApiError> {
        self.id
            .as_deref()
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|id| *id > 0)
            .ok_or(ApiError::NotFound)
    }

    /// Resolves the path's org as `caller`: an org they are a member of, or 404.
    pub async fn resolve(
        &self,
        state: &ScopedState,
        caller: Caller,
        area: Area,
    ) -> Result<Ctx, ApiError> {
        let bugs = &state.bugs;
        let skip_member = (bugs.contains(ScopedBug::MemberCheckMissing) && area == Area::Invoices)
            || (bugs.contains(ScopedBug::ApiKeyAnyOrg) && caller.is_key());
        let mut ctx = if skip_member {
            // Planted: the org is looked up by slug alone and the membership is only
            // read, never required.
            let admin = state.admin.get().await?;
            let (org, role) = privileged_lookup(&*admin, &self.slug, caller.user_id).await?;
            Ctx {
                caller,
                org,
                role,
                privileged: true,
            }
        } else {
            let mut client = state.app.get().await?;
            let tx = begin_as(&mut client, caller.user_id).await?;
            let row = tx
                .query_opt(
                    &format!(
                        "SELECT {ORG_COLUMNS}, m.role FROM orgs o JOIN memberships m \
                         ON m.org_id = o.id AND m.user_id = $2 WHERE o.slug = $1"
                    ),
                    &[&self.slug, &caller.user_id],
                )
                .await?;
            tx.commit().await?;
            let Some(row) = row else {
                return Err(self.not_a_member(state).await?);
            };
            Ctx {
                caller,
                org: org_from(&row),
                role: row.get(3),
                privileged: false,
            }
        };
        if let Some(hint) = self.hint.as_deref().filter(|h| *h != ctx.org.slug) {
            // Planted: the path's org was authorized, but the data comes from the org
            // the client named.
            let admin = state.admin.get().await?;
            let (org, _) = privileged_lookup(&*admin, hint, caller.user_id).await?;
            ctx.org = org;
            ctx.privileged = true;
        }
        Ok(ctx)
    }
}
