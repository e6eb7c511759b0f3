//! The console's erase button (admins): a confirmation step, then the erase itself.

use super::super::AppState;
use super::error::{Answer, ConsoleError};
use super::form::CheckedForm;
use super::page;
use super::session::{AdminAgent, CurrentAgent};
use crate::domain::ticket::TicketRef;
use crate::services::erase;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;

#[derive(Template)]
#[template(path = "console/erase_confirm.html")]
pub struct EraseConfirmPage {
    pub agent: CurrentAgent,
    pub ticket_ref: String,
    pub event_id: i64,
}

/// `POST /agent/tickets/{ref}/events/{id}/redact`: without `confirm=yes`, asks first; with
/// it, erases and goes back to the ticket.
pub async fn erase_event(
    form: CheckedForm<AdminAgent>,
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
) -> Answer {
    let AdminAgent(agent) = form.agent;
    let (reference, event_id) = path.into_inner();
    let Some(ticket_id) = TicketRef::parse(&reference, &state.desk.settings.ticket_prefix).map(|r| r.number()) else {
        return Err(ConsoleError::not_found("There is no such ticket."));
    };
    if form.fields.get("confirm") != Some("yes") {
        return Ok(page(
            StatusCode::OK,
            &EraseConfirmPage {
                agent,
                ticket_ref: reference,
                event_id,
            },
        ));
    }
    let actor = agent.actor();
    state
        .call(move |conn, _| erase::erase_message(conn, ticket_id, event_id, &actor))
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!("/agent/tickets/{reference}?done=erase#event-{event_id}"),
        ))
        .finish())
}
