//! Request extractors: the authenticated caller, JSON bodies, and path ids.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::apikeys::caller_for_key;
use super::{ApiError, AppState};
use crate::bugs::Bug;
use crate::token;

/// The authenticated caller: from a verified bearer token, or from one of the org's API
/// keys (`X-Api-Key: KEY` or `Authorization: ApiKey KEY`).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The tenant every query is scoped to.
    pub org_id: Uuid,
    /// The user the token was issued to (for an API key: the user who created it).
    pub user_id: Uuid,
    /// The user's role in the org (`api_key` for a key).
    pub role: String,
}

/// What the request offers as its identity.
enum Credential<'a> {
    Bearer(&'a str),
    ApiKey(&'a str),
}

/// The credential of a request: the `Authorization` header when present (bearer or
/// `ApiKey` scheme), else `X-Api-Key`. Anything else is no credential.
fn credential(parts: &Parts) -> Option<Credential<'_>> {
    if let Some(value) = parts.headers.get(AUTHORIZATION) {
        let (scheme, rest) = value.to_str().ok()?.split_once(' ')?;
        return if scheme.eq_ignore_ascii_case("bearer") {
            Some(Credential::Bearer(rest.trim()))
        } else if scheme.eq_ignore_ascii_case("apikey") {
            Some(Credential::ApiKey(rest.trim()))
        } else {
            None
        };
    }
    let key = parts.headers.get("x-api-key")?.to_str().ok()?;
    Some(Credential::ApiKey(key.trim()))
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Caller, ApiError> {
        let mut caller = match credential(parts).ok_or(ApiError::Unauthorized)? {
            Credential::Bearer(token) => {
                let claims = token::verify(token, &state.jwt_secret, &state.bugs)
                    .ok_or(ApiError::Unauthorized)?;
                Caller {
                    org_id: claims.org_id,
                    user_id: claims.sub,
                    role: claims.role,
                }
            }
            Credential::ApiKey(key) => caller_for_key(state, key)
                .await?
                .ok_or(ApiError::Unauthorized)?,
        };
        if state.bugs.contains(Bug::TenantFromHeader) {
            // Planted: a client-supplied header outranks the signed token.
            if let Some(header_org) = parts
                .headers
                .get("x-org-id")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| Uuid::parse_str(v.trim()).ok())
            {
                caller.org_id = header_org;
            }
        }
        Ok(caller)
    }
}

/// A JSON body whose rejections (bad syntax, wrong types, missing fields, wrong content
/// type) are all `400` with a JSON error, instead of axum's plain-text answers.
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

/// A resource id from the path's single parameter. A malformed (or undecodable) id is
/// [`ApiError::NotFound`], exactly like an id that does not exist, so the answer reveals
/// nothing about which ids are well-formed.
pub struct PathId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathId, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        Uuid::parse_str(&raw)
            .map(PathId)
            .map_err(|_| ApiError::NotFound)
    }
}

/// A required, non-blank text field, trimmed.
pub fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, ApiError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(ApiError::BadRequest(format!("{field} is required"))),
    }
}
