//! JSON API v1 for integrations (docs/reference.md#json-api).

pub mod accounts;
pub mod approvals;
pub mod auth_events;
pub mod canned;
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

/// A request body that must be a JSON object, read strictly: a body that does not parse, is
/// not sent as JSON (`Content-Type: application/json`), or is JSON but not an object answers
/// 422 `invalid_input`, and the caller's request changes nothing. An empty body stands for
/// `{}` only where `empty_ok` says the route takes no parameters.
pub fn json_object(
    req: &actix_web::HttpRequest,
    body: &[u8],
    empty_ok: bool,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return if empty_ok {
            Ok(serde_json::Map::new())
        } else {
            Err(ApiError::invalid(
                "send the parameters as a JSON object ({} when there are none)",
            ))
        };
    }
    let is_json = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .is_some_and(|m| m == "application/json" || (m.starts_with("application/") && m.ends_with("+json")));
    if !is_json {
        return Err(ApiError::invalid("send JSON with Content-Type: application/json"));
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid("the body must be a JSON object")),
        // serde's message names the line and column, never echoes the input.
        Err(e) => Err(ApiError::invalid(format!("the body is not valid JSON: {e}"))),
    }
}

/// The largest JSON body the API reads (the same limit as `json_config`).
pub const MAX_JSON_BODY_BYTES: usize = 1024 * 1024;

/// Reads a request body of at most [`MAX_JSON_BODY_BYTES`]; more answers 413
/// `payload_too_large` (JSON, like every API error) without reading the rest.
pub async fn read_body(req: &actix_web::HttpRequest, mut payload: web::Payload) -> Result<web::BytesMut, ApiError> {
    use futures_util::StreamExt;
    let too_large = || {
        ApiError::new(
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than 1 MiB",
        )
    };
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_JSON_BODY_BYTES) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(MAX_JSON_BODY_BYTES));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > MAX_JSON_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("API route"))
}
