//! Errors at the HTTP edge. Layering: domain `Refusal` (policy, with the reference's code) and
//! database errors become `ServiceError` in the services; here each becomes exactly one HTTP
//! status and the body `{"error":{"code","message"}}`. Nothing else maps errors to statuses.

use crate::services::ServiceError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (a rate limit).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Too many API requests with one token: 429 `rate_limited`, and when to come back.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after_secs.max(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "too many requests with this token; try again in {} s",
                    retry_after_secs.max(1)
                ),
            )
        }
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API token is required: Authorization: Bearer <token> (see `recoverydesk agents token`)",
        )
    }

    pub fn forbidden(message: &str) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// A fault of ours, not of the caller and not an outage: retrying does not help.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            response.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        response.json(json!({"error": {"code": self.code, "message": self.message}}))
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Refused(r) => ApiError::new(
                StatusCode::from_u16(r.code.http_status()).unwrap_or(StatusCode::CONFLICT),
                r.code.as_str(),
                r.message,
            ),
            ServiceError::NotFound(what) => ApiError::not_found(&what),
            ServiceError::Conflict => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            ServiceError::Invalid(message) => ApiError::invalid(message),
            ServiceError::Database(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("a ban is permanent") =>
            {
                ApiError::new(StatusCode::CONFLICT, "account_banned", "a ban is permanent")
            }
            // A stored row this version cannot read (an unknown state, say): corruption or a
            // bug, which no retry mends. The log names the column and the value.
            ServiceError::Database(diesel::result::Error::DeserializationError(ref cause))
            | ServiceError::Db(crate::db::DbError::Query(diesel::result::Error::DeserializationError(ref cause))) => {
                tracing::error!(error = %cause, "a stored row could not be read");
                ApiError::internal("a stored record could not be read; the operators have been told")
            }
            ServiceError::Database(_) | ServiceError::Db(_) => {
                tracing::error!(error = %e, "database error");
                ApiError::unavailable("the database is unavailable; try again shortly")
            }
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        ApiError::unavailable("the server is shutting down")
    }
}
