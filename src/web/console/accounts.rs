//! `GET /agent/accounts`: the account search, and the way an agent links an account to a
//! ticket by finding it (`?link=RD-12`) instead of typing its id.

use super::super::AppState;
use super::error::{Answer, ConsoleError};
use super::page;
use super::session::CurrentAgent;
use crate::domain::ticket::TicketRef;
use crate::services::console::{self as views, AccountListing};
use actix_web::http::StatusCode;
use actix_web::web;
use askama::Template;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct AccountsQuery {
    #[serde(default)]
    q: String,
    /// The ticket an account is being chosen for.
    #[serde(default)]
    link: String,
}

#[derive(Template)]
#[template(path = "console/accounts.html")]
pub struct AccountsTemplate {
    pub agent: CurrentAgent,
    pub q: String,
    /// The ticket's reference when choosing an account for it.
    pub link: Option<String>,
    pub accounts: Vec<AccountListing>,
    pub limit: usize,
}

pub async fn show_accounts(
    agent: CurrentAgent,
    state: web::Data<AppState>,
    query: web::Query<AccountsQuery>,
) -> Answer {
    let AccountsQuery { q, link } = query.into_inner();
    let link = match link.trim() {
        "" => None,
        text => match TicketRef::parse(text, &state.desk.settings.ticket_prefix) {
            Some(r) => Some(state.desk.ticket_ref(r.number())),
            None => return Err(ConsoleError::not_found("There is no such ticket.")),
        },
    };
    let text = q.clone();
    let accounts = state
        .call(move |conn, _desk| views::account_search(conn, &text))
        .await?;
    Ok(page(
        StatusCode::OK,
        &AccountsTemplate {
            agent,
            q,
            link,
            accounts,
            limit: views::ACCOUNT_SEARCH_LIMIT,
        },
    ))
}
