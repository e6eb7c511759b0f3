//! Admin pages: agents (add, deactivate) and quarantined mail. Every handler takes an
//! [`AdminAgent`], so the admin check is done before any of them runs.

use super::super::AppState;
use super::error::{Answer, ConsoleError};
use super::form::CheckedForm;
use super::page;
use super::session::{AdminAgent, CurrentAgent};
use crate::db::{console::AgentListing, inbound::QuarantineRow};
use crate::services::{agents, quarantine};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;

/// The console lists this many quarantined messages, newest first (the API pages through all).
const QUARANTINE_PAGE: usize = 200;

#[derive(Template)]
#[template(path = "console/agents.html")]
pub struct AgentsTemplate {
    pub agent: CurrentAgent,
    pub agents: Vec<AgentListing>,
    pub error: Option<String>,
    pub notice: Option<String>,
}

async fn render_agents(
    agent: CurrentAgent,
    state: &web::Data<AppState>,
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
) -> Answer {
    let list = state.call(|conn, _| agents::list(conn)).await?;
    Ok(page(
        status,
        &AgentsTemplate {
            agent,
            agents: list,
            error,
            notice,
        },
    ))
}

pub async fn show_agents(AdminAgent(agent): AdminAgent, state: web::Data<AppState>) -> Answer {
    render_agents(agent, &state, StatusCode::OK, None, None).await
}

pub async fn add_agent(form: CheckedForm<AdminAgent>, state: web::Data<AppState>) -> Answer {
    let (AdminAgent(agent), f) = (form.agent, form.fields);
    let (email, name, role, password) = (f.text("email"), f.text("name"), f.text("role"), f.text("password"));
    let added = email.clone();
    let outcome = state
        .call(move |conn, _| agents::add_agent(conn, &email, &name, &role, &password))
        .await;
    match outcome {
        Ok(_) => render_agents(agent, &state, StatusCode::OK, None, Some(format!("Added {added}."))).await,
        Err(e) => render_agents(agent, &state, e.status, Some(e.message), None).await,
    }
}

/// A deactivated agent's sessions and API tokens stop working at once (both check `active`).
pub async fn deactivate_agent(
    form: CheckedForm<AdminAgent>,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Answer {
    let AdminAgent(agent) = form.agent;
    let id = path.into_inner();
    if id == agent.id {
        let refused = Some("You cannot deactivate yourself.".into());
        return render_agents(agent, &state, StatusCode::CONFLICT, refused, None).await;
    }
    state.call(move |conn, _| agents::deactivate(conn, id)).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/agent/admin/agents"))
        .finish())
}

#[derive(Template)]
#[template(path = "console/quarantine.html")]
pub struct QuarantineTemplate {
    pub agent: CurrentAgent,
    pub rows: Vec<QuarantineRow>,
    pub notice: Option<String>,
}

async fn render_quarantine(agent: CurrentAgent, state: &AppState, notice: Option<String>) -> Answer {
    let listed = state
        .call(|conn, _| quarantine::page(conn, None, QUARANTINE_PAGE))
        .await?;
    Ok(page(
        StatusCode::OK,
        &QuarantineTemplate {
            agent,
            rows: listed.messages,
            notice,
        },
    ))
}

pub async fn show_quarantine(AdminAgent(agent): AdminAgent, state: web::Data<AppState>) -> Answer {
    render_quarantine(agent, &state, None).await
}

/// `GET /agent/quarantine/{id}/raw`: the message as kept (secrets redacted), as a download.
pub async fn download_quarantined(
    AdminAgent(_agent): AdminAgent,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Answer {
    let id = path.into_inner();
    let row = state
        .call(move |conn, _| quarantine::find(conn, &id))
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                ConsoleError::not_found("There is no such message.")
            } else {
                e.into()
            }
        })?;
    Ok(super::super::quarantined_message(row))
}

/// `POST /agent/quarantine/{id}/retry`: ingestion again; the list says what became of it.
pub async fn retry_quarantined(
    form: CheckedForm<AdminAgent>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Answer {
    let AdminAgent(agent) = form.agent;
    let id = path.into_inner();
    let actor = agent.actor();
    let outcome = state
        .call(move |conn, desk| quarantine::retry(conn, desk, &id, &actor))
        .await;
    let notice = match outcome {
        Ok(done) => match done.ticket {
            Some(t) => format!("Ingested again: {} ({}).", done.outcome.as_str(), t),
            None => format!("Still {}.", done.outcome.as_str()),
        },
        Err(e) if e.status == StatusCode::NOT_FOUND => "There is no such message.".to_string(),
        Err(e) => e.message,
    };
    render_quarantine(agent, &state, Some(notice)).await
}
