//! The API's error answers. Each is a fixed JSON body, so two causes that must look
//! alike (a missing id and another org's id) cannot differ by a byte.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::db::describe;

/// Why a request failed, as the client sees it.
#[derive(Debug)]
pub enum ApiError {
    /// `404 {"error":"not_found"}`: missing, another org's, or malformed id.
    NotFound,
    /// `401 {"error":"unauthorized"}`: missing, invalid or expired token, or bad login.
    Unauthorized,
    /// `403 {"error":"forbidden"}`: only the planted `forbidden-not-404` bug answers this.
    Forbidden,
    /// `400 {"error":"bad_request","message":...}`: the body is not what the route takes.
    BadRequest(String),
    /// `409 {"error":"conflict"}`: a uniqueness rule within the caller's org.
    Conflict,
    /// `405 {"error":"method_not_allowed"}`.
    MethodNotAllowed,
    /// `500 {"error":"internal"}`: the cause was logged to stderr.
    Internal,
}

impl ApiError {
    /// Logs an unexpected failure and turns it into [`ApiError::Internal`].
    pub fn internal(context: &str, cause: impl std::fmt::Display) -> ApiError {
        eprintln!("reference-api: {context}: {cause}");
        ApiError::Internal
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> ApiError {
        use tokio_postgres::error::SqlState;
        match e.code() {
            Some(c) if *c == SqlState::UNIQUE_VIOLATION => ApiError::Conflict,
            // The referenced row vanished between our check and the insert: to the
            // caller it simply is not there.
            Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => ApiError::NotFound,
            _ => ApiError::internal("database error", describe(&e)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::NotFound => (StatusCode::NOT_FOUND, json!({"error": "not_found"})),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"})),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, json!({"error": "forbidden"})),
            ApiError::BadRequest(message) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_request", "message": message}),
            ),
            ApiError::Conflict => (StatusCode::CONFLICT, json!({"error": "conflict"})),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"error": "method_not_allowed"}),
            ),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "internal"}),
            ),
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
