//! Request extractors: the authenticated caller, JSON bodies, and path ids.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::{ApiError, AppState};
use crate::bugs::Bug;
use crate::token;

/// The authenticated caller, from a verified bearer token.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The tenant every query is scoped to.
    pub org_id: Uuid,
    /// The user the token was issued to.
    pub user_id: Uuid,
    /// The user's role in the org.
    pub role: String,
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Caller, ApiError> {
        let value = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let (scheme, token) = value.split_once(' ').ok_or(ApiError::Unauthorized)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthorized);
        }
        let claims = token::verify(token.trim(), &state.jwt_secret, &state.bugs)
            .ok_or(ApiError::Unauthorized)?;
        let mut org_id = claims.org_id;
        if state.bugs.contains(Bug::TenantFromHeader) {
            // Planted: a client-supplied header outranks the signed token.
            if let Some(header_org) = parts
                .headers
                .get("x-org-id")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| Uuid::parse_str(v.trim()).ok())
            {
                org_id = header_org;
            }
        }
        Ok(Caller {
            org_id,
            user_id: claims.sub,
            role: claims.role,
        })
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
