//! Four eyes in the console: approve or reject a request from the ticket page.

use super::super::AppState;
use super::error::{Answer, ConsoleError};
use super::form::CheckedForm;
use super::session::CurrentAgent;
use crate::services::approvals;
use actix_web::http::header;
use actix_web::{HttpResponse, web};

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
        .call(move |conn, _| approvals::ticket_of(conn, id))
        .await
        .ok()
        .flatten()
}

pub async fn approve(form: CheckedForm, state: web::Data<AppState>, path: web::Path<i64>) -> Answer {
    decide(form.agent, state, path.into_inner(), None).await
}

pub async fn reject(form: CheckedForm, state: web::Data<AppState>, path: web::Path<i64>) -> Answer {
    let reason = form.fields.text("reason");
    decide(form.agent, state, path.into_inner(), Some(reason)).await
}

/// Approve (`reason` None) or reject; a refusal is shown on the ticket page with its reason.
async fn decide(agent: CurrentAgent, state: web::Data<AppState>, id: i64, reason: Option<String>) -> Answer {
    let Some(ticket_id) = ticket_of(&state, id).await else {
        return Err(ConsoleError::not_found("There is no such approval request."));
    };
    let actor = agent.actor();
    let approving = reason.is_none();
    let outcome = state
        .call(move |conn, desk| match &reason {
            None => approvals::approve(conn, desk, id, &actor),
            Some(reason) => approvals::reject(conn, desk, id, reason, &actor),
        })
        .await;
    Ok(match outcome {
        Ok(_) => back(&state, ticket_id, if approving { "approved" } else { "rejected" }),
        Err(e) => {
            let what = if approving { "The approval" } else { "The rejection" };
            let message = format!("{what} was refused ({}): {}", e.code, e.message);
            super::tickets::render_ticket(agent, &state, ticket_id, e.status, None, Some(message)).await
        }
    })
}

/// `GET /agent/tickets/{ref}/audit`: the ticket's chained events as JSON Lines, downloaded
/// with the console session (the same export as the API's).
pub async fn export_audit(_agent: CurrentAgent, state: web::Data<AppState>, path: web::Path<String>) -> Answer {
    let reference = path.into_inner();
    let Some(id) =
        crate::domain::ticket::TicketRef::parse(&reference, &state.desk.settings.ticket_prefix).map(|r| r.number())
    else {
        return Err(ConsoleError::not_found("There is no such ticket."));
    };
    let text = state
        .call(move |conn, desk| crate::services::audit::export(conn, desk, id))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/jsonl; charset=utf-8"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{reference}-audit.jsonl\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(text))
}
