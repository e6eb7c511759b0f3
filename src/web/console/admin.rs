//! Admin pages: agents (add, deactivate) and quarantined mail.

use super::super::AppState;
use super::session::{CurrentAgent, csrf_ok};
use super::{expired_form, page, refused_page};
use crate::db::{console as queries, inbound as store};
use crate::services::{ServiceError, agents};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;
use std::collections::HashMap;

/// For an admin's state-changing form: the refusal to answer with, if any (not an admin, or a
/// missing or foreign CSRF token).
fn refuse_admin_form(agent: &CurrentAgent, form: &HashMap<String, String>) -> Option<HttpResponse> {
    admin_only(agent).or_else(|| (!csrf_ok(agent, form.get("csrf").map(String::as_str))).then(expired_form))
}

fn admin_only(agent: &CurrentAgent) -> Option<HttpResponse> {
    (!agent.admin).then(|| refused_page(StatusCode::FORBIDDEN, "This page is for admins."))
}

#[derive(Template)]
#[template(path = "console/agents.html")]
pub struct AgentsTemplate {
    pub agent: CurrentAgent,
    pub agents: Vec<queries::AgentListing>,
    pub error: Option<String>,
    pub notice: Option<String>,
}

async fn render_agents(
    agent: CurrentAgent,
    state: &web::Data<AppState>,
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
) -> HttpResponse {
    match state
        .run(|conn, _| queries::agents(conn).map_err(|e| ServiceError::from(e).into()))
        .await
    {
        Ok(list) => page(
            status,
            &AgentsTemplate {
                agent,
                agents: list,
                error,
                notice,
            },
        ),
        Err(e) => refused_page(e.status, &e.message),
    }
}

pub async fn show_agents(agent: CurrentAgent, state: web::Data<AppState>) -> HttpResponse {
    if let Some(denied) = admin_only(&agent) {
        return denied;
    }
    render_agents(agent, &state, StatusCode::OK, None, None).await
}

pub async fn add_agent(
    agent: CurrentAgent,
    state: web::Data<AppState>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let f = form.into_inner();
    if let Some(refused) = refuse_admin_form(&agent, &f) {
        return refused;
    }
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let (email, name, role, password) = (get("email"), get("name"), get("role"), get("password"));
    let added = email.clone();
    let outcome = state
        .run(move |conn, _| agents::add_agent(conn, &email, &name, &role, &password).map_err(Into::into))
        .await;
    match outcome {
        Ok(_) => render_agents(agent, &state, StatusCode::OK, None, Some(format!("Added {added}."))).await,
        Err(e) => render_agents(agent, &state, e.status, Some(e.message), None).await,
    }
}

/// A deactivated agent's sessions and API tokens stop working at once (both check `active`).
pub async fn deactivate_agent(
    agent: CurrentAgent,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Some(refused) = refuse_admin_form(&agent, &form) {
        return refused;
    }
    let id = path.into_inner();
    if id == agent.id {
        return render_agents(
            agent,
            &state,
            StatusCode::CONFLICT,
            Some("You cannot deactivate yourself.".into()),
            None,
        )
        .await;
    }
    match state
        .run(move |conn, _| queries::deactivate_agent(conn, id).map_err(|e| ServiceError::from(e).into()))
        .await
    {
        Ok(_) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/agent/admin/agents"))
            .finish(),
        Err(e) => refused_page(e.status, &e.message),
    }
}

#[derive(Template)]
#[template(path = "console/quarantine.html")]
pub struct QuarantineTemplate {
    pub agent: CurrentAgent,
    pub rows: Vec<store::QuarantineRow>,
    pub notice: Option<String>,
}

pub async fn show_quarantine(agent: CurrentAgent, state: web::Data<AppState>) -> HttpResponse {
    if let Some(denied) = admin_only(&agent) {
        return denied;
    }
    match state
        .run(|conn, _| store::list_quarantine(conn, None, 200).map_err(|e| ServiceError::from(e).into()))
        .await
    {
        Ok(rows) => page(
            StatusCode::OK,
            &QuarantineTemplate {
                agent,
                rows,
                notice: None,
            },
        ),
        Err(e) => refused_page(e.status, &e.message),
    }
}

pub async fn download_quarantined(
    agent: CurrentAgent,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    if let Some(denied) = admin_only(&agent) {
        return denied;
    }
    let id = path.into_inner();
    match state
        .run(move |conn, _| store::quarantined(conn, &id).map_err(|e| ServiceError::from(e).into()))
        .await
    {
        Ok(Some(row)) => HttpResponse::Ok()
            .content_type("message/rfc822")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.eml\"", row.id),
            ))
            .body(row.raw),
        Ok(None) => refused_page(StatusCode::NOT_FOUND, "There is no such message."),
        Err(e) => refused_page(e.status, &e.message),
    }
}

pub async fn retry_quarantined(
    agent: CurrentAgent,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Some(refused) = refuse_admin_form(&agent, &form) {
        return refused;
    }
    let id = path.into_inner();
    let outcome = state
        .run(move |conn, desk| {
            crate::services::inbound::retry_quarantined(conn, desk, &id)
                .map_err(|e| crate::error::ApiError::unavailable(e.to_string()))
        })
        .await;
    let notice = match outcome {
        Ok(Some(done)) => match done.ticket {
            Some(t) => format!("Ingested again: {} ({}).", done.outcome.as_str(), t),
            None => format!("Still {}.", done.outcome.as_str()),
        },
        Ok(None) => "There is no such message.".to_string(),
        Err(e) => e.message,
    };
    match state
        .run(|conn, _| store::list_quarantine(conn, None, 200).map_err(|e| ServiceError::from(e).into()))
        .await
    {
        Ok(rows) => page(
            StatusCode::OK,
            &QuarantineTemplate {
                agent,
                rows,
                notice: Some(notice),
            },
        ),
        Err(e) => refused_page(e.status, &e.message),
    }
}
