//! Quarantined mail, for admins: list, download the raw message, run ingestion again. The
//! console's pages call the same service (services::quarantine).

use super::super::AppState;
use super::super::security::ApiAdmin;
use crate::error::ApiError;
use crate::services::quarantine;
use crate::services::view::rfc3339;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

/// Messages per page of `GET /api/v1/quarantine`.
const PAGE: usize = 50;

#[derive(Deserialize)]
pub struct Page {
    cursor: Option<String>,
}

/// `GET /api/v1/quarantine?cursor=`: newest first.
pub async fn list_quarantine(
    _admin: ApiAdmin,
    state: web::Data<AppState>,
    query: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let cursor = query.into_inner().cursor;
    let page = state
        .call(move |conn, _| quarantine::page(conn, cursor.as_deref(), PAGE))
        .await?;
    let messages: Vec<_> = page
        .messages
        .iter()
        .map(|q| {
            json!({"id": q.id, "received_at": rfc3339(q.received_at), "reason": q.reason,
                   "from": q.from_address, "subject": q.subject, "size": q.size, "channel": q.channel})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"messages": messages, "next_cursor": page.next_cursor})))
}

/// `GET /api/v1/quarantine/{id}/raw`: the message as kept (secrets redacted), as a download.
pub async fn download_quarantined(
    _admin: ApiAdmin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let row = state.call(move |conn, _| quarantine::find(conn, &id)).await?;
    Ok(super::super::quarantined_message(row))
}

/// `POST /api/v1/quarantine/{id}/retry`: ingestion again; answers with the mailgate's JSON.
pub async fn retry(
    ApiAdmin(agent): ApiAdmin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: actix_web::HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = super::read_body(&req, payload).await?;
    // No parameters: an empty body, or a JSON object (whose fields are ignored); nothing else.
    super::json_object(&req, &body, true)?;
    let id = path.into_inner();
    let actor = agent.actor();
    let outcome = state
        .call(move |conn, desk| quarantine::retry(conn, desk, &id, &actor))
        .await?;
    Ok(HttpResponse::Ok().json(outcome))
}
