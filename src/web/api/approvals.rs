//! Four eyes and the audit trail in the JSON API (docs/reference.md#four-eyes-and-the-audit-trail).

use super::super::AppState;
use super::super::security::ApiAgent;
use crate::domain::ticket::TicketRef;
use crate::error::ApiError;
use crate::services::{approvals, audit, view};
use actix_web::{HttpResponse, http::header, web};
use serde_json::{Value, json};

fn parse_id(text: &str) -> Result<i64, ApiError> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::not_found("approval"))
}

/// `GET /api/v1/approvals`: pending requests, oldest first (unlike other lists).
pub async fn list_approvals(_agent: ApiAgent, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = state
        .run(move |conn, desk| {
            let rows = approvals::list_pending(conn)?;
            Ok(rows
                .iter()
                .map(|r| approvals::approval_json(desk, r))
                .collect::<Vec<Value>>())
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({"approvals": list})))
}

/// `POST /api/v1/approvals/{id}/approve` → 200 with the ticket, the action applied.
pub async fn approve(
    agent: ApiAgent,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let actor = agent.actor();
    let ticket = state
        .run(move |conn, desk| {
            let row = approvals::approve(conn, desk, id, &actor)?;
            view::ticket_details(conn, desk, row.id).map_err(Into::into)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ticket))
}

/// `POST /api/v1/approvals/{id}/reject {"reason"}` → 200 with the ticket, nothing applied.
pub async fn reject(
    agent: ApiAgent,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: actix_web::HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let body = super::read_body(&req, payload).await?;
    let params = super::json_object(&req, &body, true)?;
    let reason = match params.get("reason") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(_) => return Err(ApiError::invalid("reason: must be a string")),
    };
    let actor = agent.actor();
    let ticket = state
        .run(move |conn, desk| {
            let row = approvals::reject(conn, desk, id, &reason, &actor)?;
            view::ticket_details(conn, desk, row.id).map_err(Into::into)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ticket))
}

/// `GET /api/v1/tickets/{ref}/audit`: the ticket's chained events as JSON Lines.
pub async fn export_audit(
    _agent: ApiAgent,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = TicketRef::parse(&path, &state.desk.settings.ticket_prefix)
        .map(|r| r.number())
        .ok_or_else(|| ApiError::not_found("ticket"))?;
    let text = state
        .run(move |conn, desk| audit::export(conn, desk, id).map_err(Into::into))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/jsonl; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(text))
}
