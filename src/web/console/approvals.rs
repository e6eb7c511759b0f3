//! Four eyes in the console: approve or reject a request from the ticket page.

use super::super::AppState;
use super::session::{CurrentAgent, csrf_ok};
use super::{expired_form, refused_page};
use crate::services::approvals;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use std::collections::HashMap;

fn back(state: &AppState, ticket_id: i64, done: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!("/agent/tickets/{}?done={done}", state.desk.ticket_ref(ticket_id)),
        ))
        .finish()
}

/// The ticket of a request, for the page a refusal is shown on.
async fn ticket_of(state: &web::Data<AppState>, id: i64) -> Option<i64> {
    state
        .run(move |conn, _| {
            crate::db::approvals::find(conn, id)
                .map(|r| r.map(|r| r.ticket_id))
                .map_err(|e| crate::services::ServiceError::from(e).into())
        })
        .await
        .ok()
        .flatten()
}

pub async fn approve(
    agent: CurrentAgent,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if !csrf_ok(&agent, form.get("csrf").map(String::as_str)) {
        return expired_form();
    }
    decide(agent, state, path.into_inner(), None).await
}

pub async fn reject(
    agent: CurrentAgent,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if !csrf_ok(&agent, form.get("csrf").map(String::as_str)) {
        return expired_form();
    }
    let reason = form.get("reason").cloned().unwrap_or_default();
    decide(agent, state, path.into_inner(), Some(reason)).await
}

/// Approve (`reason` None) or reject; a refusal is shown on the ticket page with its reason.
async fn decide(agent: CurrentAgent, state: web::Data<AppState>, id: i64, reason: Option<String>) -> HttpResponse {
    let Some(ticket_id) = ticket_of(&state, id).await else {
        return refused_page(StatusCode::NOT_FOUND, "There is no such approval request.");
    };
    let actor = agent.actor();
    let approving = reason.is_none();
    let outcome = state
        .run(move |conn, desk| {
            match &reason {
                None => approvals::approve(conn, desk, id, &actor),
                Some(reason) => approvals::reject(conn, desk, id, reason, &actor),
            }
            .map_err(Into::into)
        })
        .await;
    match outcome {
        Ok(_) => back(&state, ticket_id, if approving { "approved" } else { "rejected" }),
        Err(e) => {
            let what = if approving { "The approval" } else { "The rejection" };
            let message = format!("{what} was refused ({}): {}", e.code, e.message);
            super::tickets::render_ticket(agent, &state, ticket_id, e.status, None, Some(message)).await
        }
    }
}

/// `GET /agent/tickets/{ref}/audit`: the ticket's chained events as JSON Lines, downloaded
/// with the console session (the same export as the API's).
pub async fn export_audit(_agent: CurrentAgent, state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let reference = path.into_inner();
    let Some(id) =
        crate::domain::ticket::TicketRef::parse(&reference, &state.desk.settings.ticket_prefix).map(|r| r.number())
    else {
        return refused_page(StatusCode::NOT_FOUND, "There is no such ticket.");
    };
    match state
        .run(move |conn, desk| crate::services::audit::export(conn, desk, id).map_err(Into::into))
        .await
    {
        Ok(text) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "application/jsonl; charset=utf-8"))
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{reference}-audit.jsonl\""),
            ))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(text),
        Err(e) => refused_page(e.status, &e.message),
    }
}
