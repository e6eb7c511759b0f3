//! JSON API v1 for integrations (SPEC §5).

pub mod accounts;
pub mod auth_events;
pub mod erase;
pub mod quarantine;
pub mod tickets;

use crate::error::ApiError;
use actix_web::{HttpResponse, web};

/// Malformed JSON is the caller's error (422), with serde's explanation; oversized is 413.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().limit(1024 * 1024).error_handler(|err, _| {
        let api_error = match &err {
            actix_web::error::JsonPayloadError::Overflow { .. }
            | actix_web::error::JsonPayloadError::OverflowKnownLength { .. } => ApiError::new(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than 1 MiB",
            ),
            actix_web::error::JsonPayloadError::ContentType => {
                ApiError::invalid("send JSON with Content-Type: application/json")
            }
            other => ApiError::invalid(format!("the body is not valid JSON for this request: {other}")),
        };
        api_error.into()
    })
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("API route"))
}
