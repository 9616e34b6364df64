//! The one error type at the HTTP edge: `{message, code}` bodies with ChatBotKit's codes.
use axum::http::{header::HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The cause of a 5xx, logged and never sent.
    source: Option<anyhow::Error>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            source: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "Not found")
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "CONFLICT", message)
    }
    pub fn not_authenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "NOT_AUTHENTICATED",
            "Not authenticated",
        )
    }
    /// 401 with the reason (a console login's wrong password).
    pub fn not_authenticated_because(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "NOT_AUTHENTICATED", message)
    }
    pub fn not_authorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "NOT_AUTHORIZED", message)
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "Method not allowed",
        )
    }
    /// 413 naming the limit, so a client knows what to send instead.
    pub fn too_large(limit_bytes: usize) -> Self {
        let size = if limit_bytes.is_multiple_of(1024 * 1024) {
            format!("{} MB", limit_bytes / (1024 * 1024))
        } else {
            format!("{} KB", limit_bytes / 1024)
        };
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "CONTENT_TOO_LARGE",
            format!("Request body too large: the limit is {size} ({limit_bytes} bytes)"),
        )
    }
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "BAD_GATEWAY", message)
    }
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "INTERNAL_SERVER_ERROR",
            message: "Internal server error".into(),
            source: Some(err.into()),
        }
    }
    /// The `{message, code}` body.
    pub fn body(&self) -> serde_json::Value {
        json!({ "message": self.message, "code": self.code })
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if crate::store::is_unique_violation(&err) {
            Self::conflict("Unique constraint violation")
        } else {
            Self::internal(err)
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        Self::internal(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(source) = &self.source {
            tracing::error!(error = format!("{source:#}"), "request failed");
        }
        let failure_code =
            matches!(self.code, "NOT_AUTHORIZED" | "LIMITS_REACHED").then_some(self.code);
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(code) = failure_code {
            response.headers_mut().insert(
                HeaderName::from_static("x-failure-code"),
                HeaderValue::from_static(code),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<crate::handoff::DeskError> for ApiError {
    fn from(err: crate::handoff::DeskError) -> Self {
        use crate::handoff::DeskError;
        match err {
            DeskError::NotFound => Self::not_found(),
            DeskError::Conflict(why) => Self::conflict(capitalized(&why)),
            DeskError::Forbidden(why) => Self::not_authorized(capitalized(&why)),
            DeskError::Invalid(why) => Self::bad_request(capitalized(&why)),
            DeskError::Store(err) => err.into(),
            DeskError::Other(err) => err.into(),
        }
    }
}

/// A reason as a sentence for the `message` field.
fn capitalized(why: &str) -> String {
    let mut chars = why.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
