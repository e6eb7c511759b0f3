//! Canned answers in the console: the admins' page, and a reply with one from the ticket page.

use super::super::AppState;
use super::error::Answer;
use super::form::{CheckedForm, Fields};
use super::session::{AdminAgent, CurrentAgent};
use super::{page, refused_page};
use crate::db::canned::CannedRow;
use crate::domain::ticket::TicketRef;
use crate::domain::workflow::canned::PLACEHOLDERS;
use crate::services::canned as service;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;

#[derive(Template)]
#[template(path = "console/canned.html")]
pub struct CannedTemplate {
    pub agent: CurrentAgent,
    pub answers: Vec<CannedRow>,
    pub placeholders: Vec<(&'static str, bool)>,
    pub error: Option<String>,
}

async fn render(agent: CurrentAgent, state: &web::Data<AppState>, status: StatusCode, error: Option<String>) -> Answer {
    let answers = state.call(|conn, _| service::list(conn)).await?;
    Ok(page(
        status,
        &CannedTemplate {
            agent,
            answers,
            placeholders: PLACEHOLDERS.to_vec(),
            error,
        },
    ))
}

/// `GET /agent/admin/canned`: the list and the form to add one (admins).
pub async fn show_canned(AdminAgent(agent): AdminAgent, state: web::Data<AppState>) -> Answer {
    render(agent, &state, StatusCode::OK, None).await
}

/// An answer's form: its title, its text, and whether it depends on a linked account.
fn answer_fields(fields: &Fields) -> (String, String, bool) {
    (
        fields.text("title"),
        fields.text("body"),
        fields.is_on("account_dependent"),
    )
}

fn to_list() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/agent/admin/canned"))
        .finish()
}

/// `POST /agent/admin/canned`: `title`, `body`, `account_dependent`, `csrf`.
pub async fn add_canned(CheckedForm { agent, fields }: CheckedForm, state: web::Data<AppState>) -> Answer {
    let actor = agent.actor();
    let (title, body, dependent) = answer_fields(&fields);
    let outcome = state
        .call(move |conn, _| service::create(conn, &actor, &title, &body, dependent))
        .await;
    match outcome {
        Ok(_) => Ok(to_list()),
        Err(e) if e.status == StatusCode::FORBIDDEN => Err(e.into()),
        Err(e) => render(agent, &state, e.status, Some(e.message)).await,
    }
}

/// `POST /agent/admin/canned/{id}`: `title`, `body`, `account_dependent`, `csrf`: an edit.
pub async fn edit_canned(
    CheckedForm { agent, fields }: CheckedForm,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Answer {
    let id = path.into_inner();
    let actor = agent.actor();
    let (title, body, dependent) = answer_fields(&fields);
    let outcome = state
        .call(move |conn, _| service::update(conn, &actor, id, &title, &body, dependent))
        .await;
    match outcome {
        Ok(_) => Ok(to_list()),
        Err(e) if e.status == StatusCode::FORBIDDEN || e.status == StatusCode::NOT_FOUND => Err(e.into()),
        Err(e) => render(agent, &state, e.status, Some(e.message)).await,
    }
}

/// `POST /agent/admin/canned/{id}/delete`.
pub async fn delete_canned(form: CheckedForm, state: web::Data<AppState>, path: web::Path<i64>) -> Answer {
    let id = path.into_inner();
    let actor = form.agent.actor();
    match state.call(move |conn, _| service::delete(conn, &actor, id)).await {
        // Already gone (a second click): the list says so by itself.
        Ok(()) => Ok(to_list()),
        Err(e) if e.status == StatusCode::NOT_FOUND => Ok(to_list()),
        Err(e) => Err(e.into()),
    }
}

/// `POST /agent/tickets/{ref}/canned`: `canned_id`, `csrf`: a mailed reply with that answer.
pub async fn reply_with_canned(form: CheckedForm, state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let reference = path.into_inner();
    let Some(id) = TicketRef::parse(&reference, &state.desk.settings.ticket_prefix).map(|r| r.number()) else {
        return refused_page(StatusCode::NOT_FOUND, "There is no such ticket.");
    };
    let Some(canned_id) = form.fields.get("canned_id").and_then(|v| v.trim().parse::<i64>().ok()) else {
        return refused_page(StatusCode::UNPROCESSABLE_ENTITY, "Choose a canned answer.");
    };
    let actor = form.agent.actor();
    let outcome = state
        .run(move |conn, desk| service::reply_with(conn, desk, id, canned_id, &actor).map_err(Into::into))
        .await;
    match outcome {
        Ok(_) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("/agent/tickets/{reference}?done=reply")))
            .finish(),
        Err(e) => refused_page(
            e.status,
            &format!("The canned answer was not sent: {} (code {})", e.message, e.code),
        ),
    }
}
