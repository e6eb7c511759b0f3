use super::super::AppState;
use super::super::security::ApiAgent;
use crate::db::tickets::TicketFilter;
use crate::domain::email_address::EmailAddress;
use crate::domain::ticket::{Kind, Problem, State, TicketRef};
use crate::domain::workflow::{ActionName, WaitingOn};
use crate::error::ApiError;
use crate::services::tickets::{self, Channel, RequestFields};
use crate::services::{Desk, view};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

fn parse_ref(desk: &Desk, text: &str) -> Result<i64, ApiError> {
    TicketRef::parse(text, &desk.settings.ticket_prefix)
        .map(|r| r.number())
        .ok_or_else(|| ApiError::not_found("ticket"))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    kind: Option<String>,
    state: Option<String>,
    q: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    waiting_on: Option<String>,
}

/// `GET /api/v1/tickets`: newest first, keyset pagination through `next_cursor`.
pub async fn list_tickets(
    _agent: ApiAgent,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let kind = match q.kind.as_deref().filter(|k| !k.is_empty()) {
        Some(k) => Some(Kind::parse(k).ok_or_else(|| ApiError::invalid(format!("kind: unknown kind {k:?}")))?),
        None => None,
    };
    let state_filter = match q.state.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(State::parse(s).ok_or_else(|| ApiError::invalid(format!("state: unknown state {s:?}")))?),
        None => None,
    };
    let limit = match q.limit.as_deref().filter(|l| !l.is_empty()) {
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=200).contains(l))
            .ok_or_else(|| ApiError::invalid("limit: a number from 1 to 200"))?,
        None => 50,
    };
    let before_id = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| ApiError::invalid("cursor: use the next_cursor of a previous page"))?,
        ),
        None => None,
    };
    let q_ticket_id =
        q.q.as_deref()
            .and_then(|text| TicketRef::parse(text, &state.desk.settings.ticket_prefix))
            .map(|r| r.number());
    let waiting_on = match q.waiting_on.as_deref().filter(|w| !w.is_empty()) {
        Some(w) => Some(
            WaitingOn::parse(w)
                .ok_or_else(|| ApiError::invalid(format!("waiting_on: {w:?} is not agent, customer or none")))?
                .as_str()
                .to_string(),
        ),
        None => None,
    };
    let filter = TicketFilter {
        kind,
        state: state_filter,
        assignee_id: None,
        q_ticket_id,
        q: q.q,
        before_id,
        limit,
        waiting_on,
    };
    let page = state
        .run(move |conn, desk| view::list_tickets(conn, desk, filter).map_err(Into::into))
        .await?;
    Ok(HttpResponse::Ok().json(json!({"tickets": page.tickets, "next_cursor": page.next_cursor})))
}

/// `POST /api/v1/tickets`: an agent opens a ticket for a customer (who phoned, say). The same
/// creation rules run as for the forms.
#[derive(Debug, Deserialize)]
pub struct CreateTicket {
    kind: String,
    requester: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    current_ip: Option<String>,
    #[serde(default)]
    tried_from: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    tried_allowlisted_ips: Option<Value>,
    #[serde(default)]
    smtp_username: Option<String>,
    #[serde(default)]
    failed_at: Option<String>,
    #[serde(default)]
    problem: Option<String>,
    #[serde(default)]
    error_text: Option<String>,
    #[serde(default)]
    details: Option<String>,
}

pub async fn create_ticket(
    agent: ApiAgent,
    state: web::Data<AppState>,
    body: web::Json<CreateTicket>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let kind = Kind::parse(b.kind.trim()).ok_or_else(|| {
        ApiError::invalid(format!(
            "kind: {:?} is not one of forgot_username, ip_lockout, account_terminated, login_help, general",
            b.kind
        ))
    })?;
    let requester = EmailAddress::parse(&b.requester).map_err(|e| ApiError::invalid(format!("requester: {e}")))?;
    let problem = match b.problem.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        // The value is not repeated: whatever a caller pasted there stays out of the answer.
        Some(p) => Some(
            Problem::parse(p)
                .ok_or_else(|| ApiError::invalid("problem: not one of web_login, api_key, smtp_535, other"))?,
        ),
        None => None,
    };
    // `tried_allowlisted_ips: no` means the customer has not tried yet, whatever else is sent.
    let said_no = matches!(&b.tried_allowlisted_ips, Some(Value::Bool(false)))
        || matches!(&b.tried_allowlisted_ips, Some(Value::String(s)) if s == "no");
    let body_text = [b.body, b.details]
        .into_iter()
        .flatten()
        .filter(|t| !t.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    let request = RequestFields {
        kind,
        requester,
        subject: b.subject.unwrap_or_default(),
        body: body_text,
        account: b.account,
        current_ip: b.current_ip,
        tried_from: if said_no { None } else { b.tried_from },
        attempts_outcome: b.outcome,
        smtp_username: b.smtp_username,
        failed_at: b.failed_at,
        problem,
        error_text: b.error_text,
        channel: Channel::Api,
        actor: agent.actor(),
    }
    // Every field through the secret scanner before the service's transaction.
    .scrub();
    let ticket = state
        .run(move |conn, desk| {
            let opened = tickets::open_ticket(conn, desk, request)?;
            view::ticket_details(conn, desk, opened.ticket.id).map_err(Into::into)
        })
        .await?;
    Ok(HttpResponse::build(StatusCode::CREATED).json(ticket))
}

/// `GET /api/v1/tickets/{ref}`: the ticket, its events and what the policy allows now.
pub async fn show_ticket(
    _agent: ApiAgent,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_ref(&state.desk, &path)?;
    let ticket = state
        .run(move |conn, desk| view::ticket_details(conn, desk, id).map_err(Into::into))
        .await?;
    Ok(HttpResponse::Ok().json(ticket))
}

/// `POST /api/v1/tickets/{ref}/actions/{name}` with the action's parameters as a JSON object.
/// A body that is malformed, not JSON or not an object answers 422 and changes nothing; an
/// empty body is accepted only for an action that has no parameters.
pub async fn apply_action(
    agent: ApiAgent,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: actix_web::HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (reference, name) = path.into_inner();
    let id = parse_ref(&state.desk, &reference)?;
    let body = super::read_body(&req, payload).await?;
    // An unknown name gets its 404 from the engine, whatever the body.
    let empty_ok = ActionName::parse(&name).map_or(true, |a| !a.takes_parameters());
    let params = Value::Object(super::json_object(&req, &body, empty_ok)?);
    let actor = agent.actor();
    let answer = state
        .run(
            move |conn, desk| match tickets::apply_action(conn, desk, id, &name, &params, &actor)? {
                tickets::Applied::Done(_) => Ok((StatusCode::OK, view::ticket_details(conn, desk, id)?)),
                // Four eyes: recorded for a second agent's approval.
                tickets::Applied::Held(row) => Ok((
                    StatusCode::ACCEPTED,
                    json!({"approval": crate::services::approvals::approval_json(desk, &row)}),
                )),
            },
        )
        .await?;
    Ok(HttpResponse::build(answer.0).json(answer.1))
}

#[derive(Debug, Deserialize)]
pub struct CreateReply {
    body: String,
    /// Required: a forgotten choice must never mail what was meant as a note.
    #[serde(default)]
    internal: Option<bool>,
}

/// `POST /api/v1/tickets/{ref}/replies`: a mailed reply, or an internal note.
pub async fn create_reply(
    agent: ApiAgent,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<CreateReply>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_ref(&state.desk, &path)?;
    let CreateReply { body, internal } = body.into_inner();
    let internal = internal.ok_or_else(|| {
        ApiError::invalid(
            "internal: say true (an internal note, never mailed) or false (a reply mailed to the requester)",
        )
    })?;
    let actor = agent.actor();
    let ticket = state
        .run(move |conn, desk| {
            tickets::add_reply(conn, desk, id, &body, internal, &actor)?;
            view::ticket_details(conn, desk, id).map_err(Into::into)
        })
        .await?;
    Ok(HttpResponse::build(StatusCode::CREATED).json(ticket))
}
