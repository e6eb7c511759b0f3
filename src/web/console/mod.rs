//! The agent console (`/agent/…`): sign-in, the queue, the ticket page, accounts, admin pages.
//! Handlers read as: the signed-in agent → parse the form → the same service the API calls →
//! render or redirect. Every state-changing form carries the CSRF token.

pub mod accounts;
pub mod admin;
pub mod approvals;
pub mod auth;
pub mod canned;
pub mod compose;
pub mod day;
pub mod erase;
pub mod error;
pub mod form;
pub mod password;
pub mod session;
pub mod tickets;
pub mod tokens;
pub mod words;

pub use error::{MessagePage, refused_page};

use super::AppState;
use crate::db::console::QueueFilter;
use crate::domain::ticket::{Kind, State};
use crate::domain::workflow::WaitingOn;
use crate::services::console::{self as views, QueuePage};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use session::CurrentAgent;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/agent/login", web::get().to(auth::show_login))
        .route("/agent/login", web::post().to(auth::sign_in))
        .route("/agent/logout", web::post().to(auth::sign_out))
        .route("/agent", web::get().to(show_queue))
        .route("/agent/", web::get().to(show_queue))
        .route("/agent/tickets/{ref}", web::get().to(tickets::show_ticket))
        .route(
            "/agent/tickets/{ref}/actions/{name}",
            web::post().to(tickets::apply_action),
        )
        .route("/agent/tickets/{ref}/reply", web::post().to(tickets::reply))
        .route("/agent/tickets/{ref}/note", web::post().to(tickets::add_note))
        .route("/agent/bulk", web::post().to(day::bulk_action))
        .route("/agent/tickets/{ref}/canned", web::post().to(canned::reply_with_canned))
        .route("/agent/admin/canned", web::get().to(canned::show_canned))
        .route("/agent/admin/canned", web::post().to(canned::add_canned))
        .route("/agent/admin/canned/{id}", web::post().to(canned::edit_canned))
        .route("/agent/admin/canned/{id}/delete", web::post().to(canned::delete_canned))
        .route("/agent/queue/events", web::get().to(day::queue_events))
        .route("/agent/tickets/{ref}/audit", web::get().to(approvals::export_audit))
        .route("/agent/approvals/{id}/approve", web::post().to(approvals::approve))
        .route("/agent/approvals/{id}/reject", web::post().to(approvals::reject))
        .route(
            "/agent/tickets/{ref}/events/{id}/redact",
            web::post().to(erase::erase_event),
        )
        .route(
            "/agent/tickets/{ref}/mail/{id}/release",
            web::post().to(tickets::release_mail),
        )
        .route("/agent/attachments/{id}", web::get().to(tickets::download_attachment))
        .route("/agent/accounts", web::get().to(accounts::show_accounts))
        .route("/agent/accounts/{id}", web::get().to(tickets::show_account))
        .route("/agent/quarantine", web::get().to(admin::show_quarantine))
        .route("/agent/quarantine/{id}/raw", web::get().to(admin::download_quarantined))
        .route("/agent/quarantine/{id}/retry", web::post().to(admin::retry_quarantined))
        .route("/agent/admin/agents", web::get().to(admin::show_agents))
        .route("/agent/admin/agents", web::post().to(admin::add_agent))
        .route(
            "/agent/admin/agents/{id}/deactivate",
            web::post().to(admin::deactivate_agent),
        )
        .route("/agent/password", web::get().to(password::show_password))
        .route("/agent/password", web::post().to(password::change_password))
        .route("/agent/admin/tokens", web::get().to(tokens::show_tokens))
        .route("/agent/admin/tokens/{id}/revoke", web::post().to(tokens::revoke_token));
}

pub fn page(status: StatusCode, template: &impl Template) -> HttpResponse {
    super::portal::render(status, template)
}

/// The answer to a form whose CSRF token is missing or not this session's.
pub fn expired_form() -> HttpResponse {
    actix_web::ResponseError::error_response(&error::ConsoleError::expired_form())
}

#[derive(Deserialize, Default)]
pub struct QueueQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    waiting_on: String,
}

#[derive(Template)]
#[template(path = "console/queue.html")]
pub struct QueueTemplate {
    pub agent: CurrentAgent,
    pub page: QueuePage,
    pub kind: String,
    pub state: String,
    pub assignee: String,
    pub q: String,
    pub next_href: Option<String>,
    pub kinds: Vec<Kind>,
    pub states: Vec<State>,
    pub waiting_on: String,
    pub turns: Vec<WaitingOn>,
}

impl QueueTemplate {
    /// The count of tickets of a kind (open ones, or in the filtered state).
    pub fn count_kind(&self, kind: &Kind) -> i64 {
        self.page
            .counts
            .iter()
            .filter(|(k, s, _)| k == kind && self.state_matches(s))
            .map(|(_, _, n)| n)
            .sum()
    }

    pub fn count_state(&self, state: &State) -> i64 {
        self.page
            .counts
            .iter()
            .filter(|(_, s, _)| s == state)
            .map(|(_, _, n)| n)
            .sum()
    }

    fn state_matches(&self, s: &State) -> bool {
        match State::parse(&self.state) {
            Some(wanted) => *s == wanted,
            None => !s.is_terminal(),
        }
    }
}

/// `GET /agent`: open tickets, oldest waiting first, with filters, search and counts.
pub async fn show_queue(
    agent: CurrentAgent,
    state: web::Data<AppState>,
    query: web::Query<QueueQuery>,
) -> error::Answer {
    let q = query.into_inner();
    // A value the console does not know shows the list unfiltered (the API refuses it).
    let kind = super::filters::kind(&q.kind).ok().flatten();
    let state_filter = super::filters::state(&q.state).ok().flatten();
    let me = agent.id;
    let assignee_email = q.assignee.clone();
    let prefix = state.desk.settings.ticket_prefix.clone();
    let q_ticket_id = super::filters::ticket_named(&q.q, &prefix);
    let after = views::parse_cursor(&q.cursor);
    let before_id = views::parse_search_cursor(&q.cursor);
    let search = q.q.clone();
    let waiting_on = super::filters::waiting_on(&q.waiting_on)
        .ok()
        .flatten()
        .map(|w| w.as_str().to_string());
    let page_data = state
        .call(move |conn, desk| {
            let assignee = match assignee_email.as_str() {
                "" => None,
                "me" => Some(Some(me)),
                "none" => Some(None),
                // An unknown address matches no ticket (no agent has id -1).
                email => Some(crate::services::agents::id_by_email(conn, email)?.or(Some(-1))),
            };
            let filter = QueueFilter {
                kind,
                state: state_filter,
                assignee,
                q: Some(search),
                q_ticket_id,
                after,
                before_id,
                limit: 50,
                waiting_on,
            };
            views::queue(conn, desk, filter)
        })
        .await?;
    let next_href = page_data.next_cursor.as_ref().map(|cursor| {
        let query = serde_urlencoded::to_string([
            ("kind", q.kind.as_str()),
            ("state", q.state.as_str()),
            ("assignee", q.assignee.as_str()),
            ("q", q.q.as_str()),
            ("waiting_on", q.waiting_on.as_str()),
            ("cursor", cursor.as_str()),
        ])
        .unwrap_or_default();
        format!("/agent?{query}")
    });
    Ok(page(
        StatusCode::OK,
        &QueueTemplate {
            agent,
            page: page_data,
            kind: q.kind,
            state: q.state,
            assignee: q.assignee,
            q: q.q,
            next_href,
            kinds: Kind::ALL.to_vec(),
            states: State::ALL.to_vec(),
            waiting_on: q.waiting_on,
            turns: WaitingOn::ALL.to_vec(),
        },
    ))
}
