//! `POST /api/v1/tickets/{ref}/events/{id}/redact`: an admin erases a stored message or note.

use super::super::AppState;
use super::super::security::ApiAdmin;
use crate::domain::ticket::TicketRef;
use crate::error::ApiError;
use crate::services::{erase, view};
use actix_web::{HttpResponse, web};

pub async fn erase_event(
    ApiAdmin(agent): ApiAdmin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (reference, event) = path.into_inner();
    let ticket_id = TicketRef::parse(&reference, &state.desk.settings.ticket_prefix)
        .map(|r| r.number())
        .ok_or_else(|| ApiError::not_found("ticket"))?;
    let event_id: i64 = event.parse().map_err(|_| ApiError::not_found("event"))?;
    let actor = agent.actor();
    let ticket = state
        .run(move |conn, desk| {
            erase::erase_message(conn, ticket_id, event_id, &actor)?;
            view::ticket_details(conn, desk, ticket_id).map_err(Into::into)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ticket))
}
