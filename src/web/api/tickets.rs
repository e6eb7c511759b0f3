use super::super::AppState;
use super::super::filters;
use super::super::security::ApiAgent;
use crate::db::tickets::TicketFilter;
use crate::domain::email_address::EmailAddress;
use crate::domain::ticket::{Kind, Problem, TicketRef};
use crate::domain::workflow::ActionName;
use crate::domain::workflow::tried::{self, TriedAnswer};
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
    let kind = filters::kind(q.kind.as_deref().unwrap_or_default()).map_err(ApiError::invalid)?;
    let state_filter = filters::state(q.state.as_deref().unwrap_or_default()).map_err(ApiError::invalid)?;
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
            .and_then(|text| filters::ticket_named(text, &state.desk.settings.ticket_prefix));
    let waiting_on = filters::waiting_on(q.waiting_on.as_deref().unwrap_or_default())
        .map_err(ApiError::invalid)?
        .map(|w| w.as_str().to_string());
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
    // The form's question, read by the same rule as the form: "no" drops `tried_from`, "yes"
    // needs it; the API may leave the question out.
    let answer = match &b.tried_allowlisted_ips {
        None | Some(Value::Null) => None,
        Some(Value::Bool(true)) => Some(TriedAnswer::Yes),
        Some(Value::Bool(false)) => Some(TriedAnswer::No),
        Some(Value::String(s)) => Some(TriedAnswer::parse(s).ok_or_else(not_yes_or_no)?),
        Some(_) => return Err(not_yes_or_no()),
    };
    let tried_from = tried::tried_from(answer, b.tried_from.as_deref()).map_err(|_| {
        ApiError::invalid("tried_from: say where the customer tried from when tried_allowlisted_ips is yes")
    })?;
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
        tried_from,
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

fn not_yes_or_no() -> ApiError {
    ApiError::invalid("tried_allowlisted_ips: answer yes or no (or true or false)")
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
    /// Files that go out with a reply (or stay on a note), scanned as mail's are.
    #[serde(default)]
    attachments: Vec<ReplyFile>,
}

/// One file of a reply: its bytes in standard base64 (the whole body stays within 1 MiB).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyFile {
    filename: String,
    #[serde(default)]
    content_type: Option<String>,
    content_base64: String,
}

/// The files, decoded; a name that is empty, content that is not base64, or more files than
/// a customer may send is the caller's error (422).
fn reply_files(files: Vec<ReplyFile>) -> Result<Vec<crate::services::messages::Upload>, ApiError> {
    use base64::Engine;
    let max = crate::web::portal::status::MAX_FILES;
    if files.len() > max {
        return Err(ApiError::invalid(format!("attachments: at most {max} files")));
    }
    files
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            if f.filename.trim().is_empty() {
                return Err(ApiError::invalid(format!(
                    "attachments[{i}].filename: a name is required"
                )));
            }
            let data = base64::engine::general_purpose::STANDARD
                .decode(f.content_base64.trim())
                .map_err(|_| ApiError::invalid(format!("attachments[{i}].content_base64: not standard base64")))?;
            Ok(crate::services::messages::Upload {
                filename: f.filename,
                content_type: f
                    .content_type
                    .filter(|t| !t.trim().is_empty())
                    .unwrap_or_else(|| "application/octet-stream".into()),
                data,
            })
        })
        .collect()
}

/// `POST /api/v1/tickets/{ref}/replies`: a mailed reply, or an internal note.
pub async fn create_reply(
    agent: ApiAgent,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<CreateReply>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_ref(&state.desk, &path)?;
    let CreateReply {
        body,
        internal,
        attachments,
    } = body.into_inner();
    let internal = internal.ok_or_else(|| {
        ApiError::invalid(
            "internal: say true (an internal note, never mailed) or false (a reply mailed to the requester)",
        )
    })?;
    let files = reply_files(attachments)?;
    let actor = agent.actor();
    let ticket = state
        .run(move |conn, desk| {
            tickets::add_reply_with_files(conn, desk, id, &body, internal, files, &actor)?;
            view::ticket_details(conn, desk, id).map_err(Into::into)
        })
        .await?;
    Ok(HttpResponse::build(StatusCode::CREATED).json(ticket))
}
