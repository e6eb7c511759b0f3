//! `POST /api/v1/auth-events`: authentication events as a JSON array (admins only).

use super::super::AppState;
use super::super::security::ApiAdmin;
use crate::error::ApiError;
use crate::services::diagnosis::import;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// Largest body accepted (about 50,000 events); larger loads go through `auth-log import`.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!(
            "the body is larger than {} MiB: send the events in smaller arrays, or use `recoverydesk auth-log import`",
            MAX_BODY_BYTES / (1024 * 1024)
        ),
    )
}

/// Answers 200 with the same report as the command: counts, and each refused element as
/// `{"line": N, "reason": …}` (N counts from 1). The good elements are kept.
pub async fn import_auth_events(
    _admin: ApiAdmin,
    state: web::Data<AppState>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(MAX_BODY_BYTES));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    // Never echo the input: a body with a secret in it must not come back in an error.
    let events: Vec<Value> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => items,
        Ok(_) => return Err(ApiError::invalid("send a JSON array of authentication events")),
        Err(e) => {
            return Err(ApiError::invalid(format!(
                "the body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            )));
        }
    };
    drop(body);
    let retention_days = state.desk.settings.auth_log_retention_days;
    let summary = state
        .run(move |conn, _| import::import_values(conn, retention_days, &events).map_err(Into::into))
        .await?;
    Ok(HttpResponse::Ok().json(json!(summary)))
}
