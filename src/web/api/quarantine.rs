//! Quarantined mail, for admins: list, download the raw message, run ingestion again.

use super::super::AppState;
use super::super::security::ApiAgent;
use crate::db::inbound as store;
use crate::error::ApiError;
use crate::services::inbound::{IngestError, retry_quarantined};
use crate::services::view::rfc3339;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

fn admin_only(agent: &ApiAgent) -> Result<(), ApiError> {
    if agent.admin {
        Ok(())
    } else {
        Err(ApiError::forbidden("quarantined mail is for admins"))
    }
}

#[derive(Deserialize)]
pub struct Page {
    cursor: Option<String>,
}

/// `GET /api/v1/quarantine?cursor=`: newest first.
pub async fn list_quarantine(
    agent: ApiAgent,
    state: web::Data<AppState>,
    query: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&agent)?;
    let cursor = query.into_inner().cursor.filter(|c| !c.is_empty());
    let page = state
        .run(move |conn, _| {
            let before = match cursor {
                Some(id) => match store::quarantined(conn, &id).map_err(crate::services::ServiceError::from)? {
                    Some(row) => Some((row.received_at, row.id)),
                    None => return Err(ApiError::invalid("cursor: use the next_cursor of a previous page")),
                },
                None => None,
            };
            store::list_quarantine(conn, before, 51).map_err(|e| crate::services::ServiceError::from(e).into())
        })
        .await?;
    let more = page.len() > 50;
    let rows = &page[..page.len().min(50)];
    let messages: Vec<_> = rows
        .iter()
        .map(|q| {
            json!({"id": q.id, "received_at": rfc3339(q.received_at), "reason": q.reason,
                        "from": q.from_address, "subject": q.subject, "size": q.size, "channel": q.channel})
        })
        .collect();
    let next_cursor = if more { rows.last().map(|q| q.id.clone()) } else { None };
    Ok(HttpResponse::Ok().json(json!({"messages": messages, "next_cursor": next_cursor})))
}

/// `GET /api/v1/quarantine/{id}/raw`: the message as kept (secrets redacted), as a download.
pub async fn download_quarantined(
    agent: ApiAgent,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&agent)?;
    let id = path.into_inner();
    let row = state
        .run(move |conn, _| store::quarantined(conn, &id).map_err(|e| crate::services::ServiceError::from(e).into()))
        .await?
        .ok_or_else(|| ApiError::not_found("quarantined message"))?;
    Ok(HttpResponse::Ok()
        .content_type("message/rfc822")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}.eml\"", row.id),
        ))
        .body(row.raw))
}

/// `POST /api/v1/quarantine/{id}/retry`: ingestion again; answers with the mailgate's JSON.
pub async fn retry(
    agent: ApiAgent,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: actix_web::HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    admin_only(&agent)?;
    let body = super::read_body(&req, payload).await?;
    // No parameters: an empty body, or a JSON object (whose fields are ignored); nothing else.
    super::json_object(&req, &body, true)?;
    let id = path.into_inner();
    let outcome = state
        .run(move |conn, desk| {
            retry_quarantined(conn, desk, &id).map_err(|e| match e {
                IngestError::TooLarge { .. } => ApiError::invalid(e.to_string()),
                IngestError::Temporary(reason) => ApiError::unavailable(reason),
            })
        })
        .await?
        .ok_or_else(|| ApiError::not_found("quarantined message"))?;
    Ok(HttpResponse::Ok().json(outcome))
}
