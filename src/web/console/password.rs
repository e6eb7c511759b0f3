//! "Change my password" (`/agent/password`): the current password is required, the new one
//! follows the rules, and the change ends every other session of the agent. An agent who
//! signed in with a one-time password is sent here before anything else.

use super::super::AppState;
use super::session::{self, CurrentAgent, csrf_ok};
use super::{expired_form, page, refused_page};
use crate::services::agents::{self, ChangeRefused, PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "console/password.html")]
pub struct PasswordPage {
    pub agent: CurrentAgent,
    pub forced: bool,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
    pub min: usize,
    pub max: usize,
}

#[derive(Deserialize)]
pub struct ChangeQuery {
    #[serde(default)]
    changed: String,
}

async fn must_change(state: &AppState, agent_id: i64) -> Result<bool, crate::error::ApiError> {
    state
        .call(move |conn, _| agents::must_change_password(conn, agent_id))
        .await
}

fn password_page(agent: CurrentAgent, forced: bool, status: StatusCode, error: Option<String>) -> HttpResponse {
    page(
        status,
        &PasswordPage {
            agent,
            forced,
            notice: None,
            error,
            min: PASSWORD_MIN_CHARS,
            max: PASSWORD_MAX_CHARS,
        },
    )
}

pub async fn show_password(
    agent: CurrentAgent,
    state: web::Data<AppState>,
    query: web::Query<ChangeQuery>,
) -> HttpResponse {
    let forced = match must_change(&state, agent.id).await {
        Ok(forced) => forced,
        Err(e) => return refused_page(e.status, &e.message),
    };
    let notice = (query.changed == "1").then_some("Your password was changed; other sessions were signed out.");
    page(
        StatusCode::OK,
        &PasswordPage {
            agent,
            forced,
            notice,
            error: None,
            min: PASSWORD_MIN_CHARS,
            max: PASSWORD_MAX_CHARS,
        },
    )
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_again: String,
}

pub async fn change_password(
    agent: CurrentAgent,
    state: web::Data<AppState>,
    form: web::Form<ChangeForm>,
) -> HttpResponse {
    if !csrf_ok(&agent, Some(&form.csrf)) {
        return expired_form();
    }
    let ChangeForm {
        current_password,
        new_password,
        new_password_again,
        ..
    } = form.into_inner();
    let id = agent.id;
    // argon2 twice (check, then hash): on the blocking pool, like every database call.
    let outcome = state
        .run(move |conn, _| {
            agents::change_password(conn, id, &current_password, &new_password, &new_password_again).map_err(Into::into)
        })
        .await;
    let forced = must_change(&state, agent.id).await.unwrap_or(false);
    match outcome {
        Ok(Ok(generation)) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/agent/password?changed=1"))
            // This browser stays signed in, in the new generation; every other session ended.
            .cookie(session::new_session_cookie(&state, agent.id, generation))
            .finish(),
        Ok(Err(refused)) => {
            let (status, text) = match refused {
                ChangeRefused::WrongCurrent => (
                    StatusCode::UNAUTHORIZED,
                    "The current password is not right.".to_string(),
                ),
                ChangeRefused::Mismatch => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "The two new passwords differ.".to_string(),
                ),
                ChangeRefused::SameAsCurrent => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "The new password must differ from the current one.".to_string(),
                ),
                ChangeRefused::Rules(text) => (StatusCode::UNPROCESSABLE_ENTITY, capitalised(&text)),
            };
            password_page(agent, forced, status, Some(text))
        }
        Err(e) => refused_page(e.status, &e.message),
    }
}

fn capitalised(text: &str) -> String {
    let text = text.strip_prefix("password: ").unwrap_or(text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}
