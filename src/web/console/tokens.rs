//! API tokens in the console (admins): every agent's tokens with their name, age, last use and
//! expiry, and a button that revokes one at once. The token itself is never shown again.

use super::super::AppState;
use super::error::Answer;
use super::form::CheckedForm;
use super::page;
use super::session::{AdminAgent, CurrentAgent};
use crate::db::agents::TokenRow;
use crate::services::agents;
use actix_web::http::StatusCode;
use actix_web::web;
use askama::Template;

/// A token as the page shows it.
pub struct TokenLine {
    pub id: i64,
    pub agent_email: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
    pub expires: String,
    pub status: &'static str,
    pub live: bool,
}

impl TokenLine {
    fn from_row(row: TokenRow, agent_email: String, now: chrono::NaiveDateTime) -> TokenLine {
        let when = |t: Option<chrono::NaiveDateTime>, none: &str| {
            t.map(|t| format!("{} UTC", t.format("%Y-%m-%d %H:%M")))
                .unwrap_or_else(|| none.to_string())
        };
        let status = match (row.revoked_at, row.expires_at) {
            (Some(_), _) => "revoked",
            (None, Some(until)) if until <= now => "expired",
            _ => "live",
        };
        TokenLine {
            id: row.id,
            agent_email,
            name: if row.name.is_empty() {
                "(unnamed)".into()
            } else {
                row.name
            },
            created: when(Some(row.created_at), ""),
            last_used: when(row.last_used_at, "never"),
            expires: when(row.expires_at, "never"),
            status,
            live: status == "live",
        }
    }
}

#[derive(Template)]
#[template(path = "console/tokens.html")]
pub struct TokensPage {
    pub agent: CurrentAgent,
    pub tokens: Vec<TokenLine>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

async fn render(
    agent: CurrentAgent,
    state: &AppState,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Answer {
    let tokens = state
        .call(|conn, desk| {
            let now = desk.settings.clock.naive_now();
            agents::all_tokens(conn).map(|all| {
                all.into_iter()
                    .map(|(row, email)| TokenLine::from_row(row, email, now))
                    .collect::<Vec<_>>()
            })
        })
        .await?;
    Ok(page(
        status,
        &TokensPage {
            agent,
            tokens,
            notice,
            error,
        },
    ))
}

pub async fn show_tokens(AdminAgent(agent): AdminAgent, state: web::Data<AppState>) -> Answer {
    render(agent, &state, StatusCode::OK, None, None).await
}

pub async fn revoke_token(form: CheckedForm<AdminAgent>, state: web::Data<AppState>, path: web::Path<i64>) -> Answer {
    let AdminAgent(agent) = form.agent;
    let id = path.into_inner();
    let outcome = state
        .call(move |conn, desk| agents::revoke_token(conn, id, desk.settings.clock.now()))
        .await;
    match outcome {
        Ok(()) => {
            render(
                agent,
                &state,
                StatusCode::OK,
                Some(format!("Token {id} revoked.")),
                None,
            )
            .await
        }
        Err(e) => render(agent, &state, e.status, None, Some(e.message)).await,
    }
}
