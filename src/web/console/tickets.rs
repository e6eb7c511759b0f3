//! The ticket page and its forms, the account page, attachment downloads.

use super::super::AppState;
use super::form::CheckedForm;
use super::session::{CurrentAgent, csrf_ok};
use super::{expired_form, page, refused_page};
use crate::domain::ticket::{Kind, TicketRef};
use crate::domain::verification::Method;
use crate::domain::workflow::{ActionName, ErrorCode, RefuseReason};
use crate::services::console::{self as views, AccountPage, TicketPage};
use crate::services::tickets as ticket_service;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;

#[derive(Template)]
#[template(path = "console/ticket.html")]
pub struct TicketTemplate {
    pub agent: CurrentAgent,
    pub t: TicketPage,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub kinds: Vec<Kind>,
    pub methods: Vec<Method>,
    pub refuse_reasons: Vec<RefuseReason>,
    /// (id, title) of the canned answers.
    pub canned: Vec<(i64, String)>,
    /// Text typed into the reply or note form that could not be sent, given back.
    pub draft: Draft,
}

/// What the reply and note forms held when they could not be sent.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    pub reply: String,
    pub note: String,
}

super::words::console_words!(TicketTemplate, AccountTemplate);

impl TicketTemplate {
    /// The current step's actions first (the kind's own), then the common ones.
    pub fn allowed_in_order(&self) -> Vec<&views::ActionEntry> {
        // Only admins reopen: nobody else is offered it.
        let allowed = self
            .t
            .actions
            .iter()
            .filter(|a| a.allowed && (a.name != ActionName::Reopen || self.agent.admin));
        let (own, common): (Vec<_>, Vec<_>) = allowed.partition(|a| a.name.is_recovery());
        own.into_iter().chain(common).collect()
    }

    /// Why the rest is not possible; `reopen` is listed only where it could apply.
    pub fn blocked(&self) -> Vec<&views::ActionEntry> {
        self.t
            .actions
            .iter()
            .filter(|a| !a.allowed && (a.name != ActionName::Reopen || self.t.state.is_terminal()))
            .collect()
    }

    pub fn is(&self, entry: &views::ActionEntry, name: &str) -> bool {
        entry.name.as_str() == name
    }

    pub fn max_files(&self) -> usize {
        super::compose::MAX_FILES
    }

    pub fn max_file_mb(&self) -> usize {
        crate::services::messages::MAX_ATTACHMENT_BYTES / (1024 * 1024)
    }
}

fn ticket_id(state: &AppState, reference: &str) -> Option<i64> {
    TicketRef::parse(reference, &state.desk.settings.ticket_prefix).map(|r| r.number())
}

pub(super) async fn render_ticket(
    agent: CurrentAgent,
    state: &web::Data<AppState>,
    id: i64,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> HttpResponse {
    render_with_draft(agent, state, id, status, notice, error, Draft::default()).await
}

pub(super) async fn render_with_draft(
    agent: CurrentAgent,
    state: &web::Data<AppState>,
    id: i64,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    draft: Draft,
) -> HttpResponse {
    match state
        .run(move |conn, desk| {
            let t = views::ticket_page(conn, desk, id)?;
            let canned = crate::services::canned::list(conn)?
                .into_iter()
                .map(|c| (c.id, c.title))
                .collect();
            Ok::<_, crate::services::ServiceError>((t, canned)).map_err(Into::into)
        })
        .await
    {
        Ok((t, canned)) => page(
            status,
            &TicketTemplate {
                agent,
                t,
                notice,
                error,
                kinds: Kind::ALL.to_vec(),
                methods: Method::ALL
                    .into_iter()
                    .filter(|m| *m != Method::EmailChallenge)
                    .collect(),
                refuse_reasons: RefuseReason::ALL.to_vec(),
                canned,
                draft,
            },
        ),
        Err(e) => refused_page(e.status, &e.message),
    }
}

#[derive(serde::Deserialize)]
pub struct Done {
    #[serde(default)]
    done: String,
}

pub async fn show_ticket(
    agent: CurrentAgent,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<Done>,
) -> HttpResponse {
    let Some(id) = ticket_id(&state, &path) else {
        return refused_page(StatusCode::NOT_FOUND, "There is no such ticket.");
    };
    let notice = ActionName::parse(&query.done)
        .ok()
        .map(|a| format!("Done: {}.", a.label()))
        .or_else(|| (query.done == "reply").then(|| "Your reply is on its way.".to_string()))
        .or_else(|| (query.done == "note").then(|| "Note added.".to_string()))
        .or_else(|| (query.done == "release").then(|| "The held mail is on its way.".to_string()))
        .or_else(|| (query.done == "erase").then(|| "Erased.".to_string()))
        .or_else(|| {
            (query.done == "held").then(|| "Recorded: waiting for a second agent's approval (four eyes).".to_string())
        })
        .or_else(|| (query.done == "approved").then(|| "Approved and applied.".to_string()))
        .or_else(|| (query.done == "rejected").then(|| "The request was rejected; nothing was applied.".to_string()));
    // The assignee has now seen the customer's activity so far.
    let agent_id = agent.id;
    let _ = state
        .run(move |conn, _| views::opened_by(conn, id, agent_id).map_err(Into::into))
        .await;
    render_ticket(agent, &state, id, StatusCode::OK, notice, None).await
}

fn back(reference: &str, done: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/agent/tickets/{reference}?done={done}")))
        .finish()
}

/// Every action button posts here; the engine decides, exactly as for the API. A refusal
/// re-renders the page with the engine's reason.
pub async fn apply_action(
    form: CheckedForm,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (reference, name) = path.into_inner();
    let agent = form.agent;
    let mut fields = form.fields.without_csrf();
    let Some(id) = ticket_id(&state, &reference) else {
        return refused_page(StatusCode::NOT_FOUND, "There is no such ticket.");
    };
    // A refusal is final for the customer: it is confirmed on a page of its own first.
    let confirmed = fields.remove("confirmed").is_some_and(|v| v == "yes");
    if name == "refuse" && !confirmed && fields.get("reason").is_some_and(|r| !r.trim().is_empty()) {
        return super::day::confirm_refusal(agent, &reference, &fields);
    }
    let params = serde_json::Value::Object(
        fields
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect(),
    );
    let actor = agent.actor();
    let action = name.clone();
    let outcome = state
        .run(move |conn, desk| {
            ticket_service::apply_action(conn, desk, id, &action, &params, &actor).map_err(Into::into)
        })
        .await;
    match outcome {
        Ok(ticket_service::Applied::Done(_)) => back(&reference, &name),
        // Four eyes: the guards passed; a second agent applies it.
        Ok(ticket_service::Applied::Held(_)) => back(&reference, "held"),
        Err(e) => {
            let label = ActionName::parse(&name).map(|a| a.label()).unwrap_or("That action");
            let message = format!(
                "“{label}” was not done: {}. {} (code {})",
                ErrorCode::label_of(e.code),
                e.message,
                e.code
            );
            render_ticket(agent, &state, id, e.status, None, Some(message)).await
        }
    }
}

/// `POST /agent/tickets/{ref}/reply`: a mailed reply, form-encoded or with files
/// (`multipart/form-data`, field `files`). `internal=on` still makes it a note, for old
/// bookmarks and scripts; the page's note has a form and an address of its own.
pub async fn reply(
    agent: CurrentAgent,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: actix_web::HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let composed = super::compose::read(&req, payload, &state).await;
    let internal = composed
        .fields
        .get("internal")
        .is_some_and(|v| v == "on" || v == "true" || v == "note");
    post_text(agent, state, path.into_inner(), composed, internal).await
}

/// `POST /agent/tickets/{ref}/note`: an internal note (with files, as a reply may have). This
/// address only ever writes notes, so a note can never be mailed because a box was left
/// unticked, and its files never leave the desk.
pub async fn add_note(
    agent: CurrentAgent,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: actix_web::HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let composed = super::compose::read(&req, payload, &state).await;
    post_text(agent, state, path.into_inner(), composed, true).await
}

/// The reply and the note, once their forms are read: the CSRF token, then the service.
pub(super) async fn post_text(
    agent: CurrentAgent,
    state: web::Data<AppState>,
    reference: String,
    composed: super::compose::Composed,
    internal: bool,
) -> HttpResponse {
    if !csrf_ok(&agent, composed.fields.get("csrf").map(String::as_str)) {
        return expired_form();
    }
    let Some(id) = ticket_id(&state, &reference) else {
        return refused_page(StatusCode::NOT_FOUND, "There is no such ticket.");
    };
    let body = composed.field("body");
    let draft = if internal {
        Draft {
            note: body.clone(),
            ..Draft::default()
        }
    } else {
        Draft {
            reply: body.clone(),
            ..Draft::default()
        }
    };
    if let Some((status, message)) = composed.problem {
        return render_with_draft(agent, &state, id, status, None, Some(message), draft).await;
    }
    let files = composed.files;
    let actor = agent.actor();
    let outcome = state
        .run(move |conn, desk| {
            ticket_service::add_reply_with_files(conn, desk, id, &body, internal, files, &actor).map_err(Into::into)
        })
        .await;
    match outcome {
        Ok(_) => back(&reference, if internal { "note" } else { "reply" }),
        Err(e) => render_with_draft(agent, &state, id, e.status, None, Some(e.message), draft).await,
    }
}

/// Sends a mail that waited in the outbox because of the per-recipient cap.
pub async fn release_mail(
    form: CheckedForm,
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
) -> HttpResponse {
    let agent = form.agent;
    let (reference, mail_id) = path.into_inner();
    let Some(id) = ticket_id(&state, &reference) else {
        return refused_page(StatusCode::NOT_FOUND, "There is no such ticket.");
    };
    let actor = agent.actor();
    let released = state
        .call(move |conn, _| crate::services::held_mail::release(conn, id, mail_id, &actor))
        .await;
    match released {
        Ok(true) => back(&reference, "release"),
        Ok(false) => {
            render_ticket(
                agent,
                &state,
                id,
                StatusCode::CONFLICT,
                None,
                Some("That mail is not held.".into()),
            )
            .await
        }
        Err(e) => refused_page(e.status, &e.message),
    }
}

/// Attachments are served only as downloads, never rendered on our origin.
pub async fn download_attachment(
    _agent: CurrentAgent,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> HttpResponse {
    let id = path.into_inner();
    let found = state
        .call(move |conn, _| crate::services::messages::attachment(conn, id))
        .await;
    match found {
        Ok(a) => crate::web::download(&a.filename, a.data),
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            refused_page(StatusCode::NOT_FOUND, "There is no such attachment.")
        }
        Err(e) => refused_page(e.status, &e.message),
    }
}

#[derive(Template)]
#[template(path = "console/account.html")]
pub struct AccountTemplate {
    pub agent: CurrentAgent,
    pub a: AccountPage,
}

pub async fn show_account(agent: CurrentAgent, state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let id = path.into_inner();
    match state
        .run(move |conn, desk| views::account_page(conn, desk, &id).map_err(Into::into))
        .await
    {
        Ok(a) => page(StatusCode::OK, &AccountTemplate { agent, a }),
        Err(e) => refused_page(e.status, &e.message),
    }
}
