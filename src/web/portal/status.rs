//! `GET /t/{token}`: the customer's status page, with the reply form (words and files) and,
//! while the desk waits for them, the form to report which allowlisted networks they tried.
//! Every action answers 303 back to the page, which then says it was sent (a private cookie
//! carries the notice: post, redirect, get).

use super::super::AppState;
use super::cookies;
use super::form_state::FormState;
use super::multipart;
use super::{not_found, render, status_page_error};
use crate::domain::ticket::State;
use crate::domain::workflow::customer_step::ReportOutcome;
use crate::domain::workflow::customer_step::Step;
use crate::services::portal::{StatusView, report_attempts, status_view};
use crate::services::{ServiceError, messages};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
use std::collections::HashMap;

/// Files one status-page reply may carry.
pub const MAX_FILES: usize = 5;
/// An automatic mail longer than this (characters or lines) is shown folded.
const FOLD_CHARS: usize = 600;
const FOLD_LINES: usize = 12;

#[derive(Template)]
#[template(path = "portal/status.html")]
pub struct StatusPage {
    pub token: String,
    pub view: StatusView,
    pub headline: &'static str,
    pub next_step: &'static str,
    pub reply: FormState,
    pub attempts: FormState,
    pub show_attempts_form: bool,
    pub notice: Option<String>,
    /// What the customer just did, said back once after the redirect.
    pub sent: Option<&'static str>,
    pub max_files: usize,
    pub max_file_mb: usize,
}

impl StatusPage {
    /// Long mails the desk wrote on its own fold away, so the customer's words stay in view.
    pub fn folded(&self, entry: &crate::services::portal::ThreadEntry) -> bool {
        entry.automatic && (entry.body.chars().count() > FOLD_CHARS || entry.body.lines().count() > FOLD_LINES)
    }
}

/// The step in plain words, and what the customer should do next.
pub fn words_for(step: Step) -> (&'static str, &'static str) {
    match step {
        Step::Neutral => (
            "In progress",
            "Anything that depends on the account is sent only to the email address registered on it. If you need more help, reply below.",
        ),
        Step::NeutralAfterYourMessage => (
            "In progress",
            "We received your message. Anything that depends on the account is sent only to the email address registered on it; everything else we answer by email and below.",
        ),
        Step::WaitingForUs => (
            "Waiting for our team",
            "An agent will look at your request and write to you by email. You don't need to do anything now.",
        ),
        Step::WaitingForUsAfterYourMessage => (
            "Waiting for our team",
            "We received your message. An agent will read it and answer by email. You don't need to do anything now.",
        ),
        Step::WaitingForYourAnswer => (
            "Waiting for your answer",
            "We asked you something: please read our last message below and reply.",
        ),
        Step::TryAllowlistedIps => (
            "Waiting for you to try your allowlisted IPs",
            "Try to log in from an IP address already on your allowlist (another location, or a colleague on that network). Then tell us below what you tried and what happened.",
        ),
        Step::AttemptsReported => (
            "Waiting for our team to verify ownership",
            "You told us which allowlisted networks you tried. An agent will verify that the account is yours. We may write to the account's registered email address.",
        ),
        Step::Verifying => (
            "Verifying ownership of the account",
            "An agent is verifying that the account is yours. We may email a confirmation link to the address registered on the account, and ask you questions here.",
        ),
        Step::ChallengeOpen => (
            "Please confirm by email",
            "We emailed a confirmation link to the address registered on the account. Open it and press \"Yes, this was me\". It works for 24 hours.",
        ),
        Step::ChallengeConfirmed => (
            "Confirmation received",
            "Thank you: the confirmation link was answered. An agent is finishing the other checks and will email you when access is restored. You don't need to do anything now.",
        ),
        Step::ChallengeExpired => (
            "The confirmation link expired",
            "The confirmation link we emailed to the registered address expired before it was used. Reply below and we will send a new one.",
        ),
        Step::ChallengeDenied => (
            "On hold: the link was answered \"not me\"",
            "The confirmation link was answered \"this was not me\", so nothing changes on the account. An agent will look into it and write to you.",
        ),
        Step::OwnershipVerified => (
            "Ownership verified",
            "We are restoring access. We will email you as soon as it is done.",
        ),
        Step::AwaitingPayment => (
            "Waiting for payment",
            "The outstanding balance was sent to the account's registered email address. Once it is paid, reply with the payment reference.",
        ),
        Step::PaymentMessageReceived => (
            "Waiting for payment",
            "We received your message. An agent will check the payment and reactivate the account once it has arrived.",
        ),
        Step::PaymentConfirmed => (
            "Payment received",
            "Thank you. We are reactivating the account and will email you when it is done.",
        ),
        Step::Resolved => (
            "Resolved",
            "We believe this is sorted. If you still need help, reply below and we will look again.",
        ),
        Step::Refused => (
            "Closed",
            "We cannot go further with this request. The reason was sent by email. You can still reply below.",
        ),
    }
}

/// The notice a sent action leaves for the next view of its page.
#[derive(serde::Serialize, serde::Deserialize)]
struct SentNotice {
    ticket: i64,
    what: String,
}

fn sent_words(what: &str) -> Option<&'static str> {
    match what {
        "reply" => Some("Your message was sent. It is at the end of the messages below."),
        "attempts" => Some("Thank you: what you tried is recorded. An agent takes it from here."),
        _ => None,
    }
}

fn page(token: String, view: StatusView, reply: FormState, attempts: FormState, notice: Option<String>) -> StatusPage {
    // An agent's refusal is told in its reason's words to whoever asked (they depend on no
    // account); a policy's refusal keeps the neutral words.
    let (headline, next_step) = match view.refusal {
        Some(words) => ("Closed: we cannot take this request further", words),
        None => words_for(view.step),
    };
    // For anyone but the account's owner the form's presence must not depend on the account
    // either. Whether attempts are on record does (a banned account's ticket records none), so
    // such a requester always has the form: a report the workflow cannot take joins the thread
    // as their words, and the page reads the same.
    let show_attempts_form = if view.neutral {
        view.kind == crate::domain::ticket::Kind::IpLockout
    } else {
        view.state == State::AwaitingAllowlistedAttempts
    };
    StatusPage {
        token,
        view,
        headline,
        next_step,
        reply,
        attempts,
        show_attempts_form,
        notice,
        sent: None,
        max_files: MAX_FILES,
        max_file_mb: messages::MAX_ATTACHMENT_BYTES / (1024 * 1024),
    }
}

async fn load(state: &web::Data<AppState>, token: &str) -> Result<Option<StatusView>, ServiceError> {
    let token = token.to_string();
    state
        .run(move |conn, desk| status_view(conn, desk, &token).map_err(Into::into))
        .await
        .map_err(|e| ServiceError::Invalid(e.message))
}

pub async fn show_status(req: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let token = path.into_inner();
    match load(&state, &token).await {
        Ok(Some(view)) => {
            let sent = cookies::open::<SentNotice>(&req, &state, cookies::NOTICE, cookies::NOTICE_SECONDS)
                .filter(|n| n.ticket == view.ticket_id)
                .and_then(|n| sent_words(&n.what));
            let mut status_page = page(token, view, FormState::default(), FormState::default(), None);
            status_page.sent = sent;
            let mut answer = render(StatusCode::OK, &status_page);
            if req.cookie(cookies::NOTICE).is_some() {
                let _ = answer.add_cookie(&cookies::removal(cookies::NOTICE, cookies::NOTICE_PATH));
            }
            answer
        }
        Ok(None) => not_found(),
        Err(e) => status_page_error(e),
    }
}

fn back_to(state: &AppState, token: &str, ticket: i64, what: &str) -> HttpResponse {
    let notice = SentNotice {
        ticket,
        what: what.to_string(),
    };
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/t/{token}")))
        .cookie(cookies::seal(
            state,
            cookies::NOTICE,
            cookies::NOTICE_PATH,
            cookies::NOTICE_SECONDS,
            notice,
        ))
        .finish()
}

/// The request body, or `None` when it is larger than `limit` bytes.
pub(crate) async fn read_body(req: &HttpRequest, mut payload: web::Payload, limit: u64) -> Option<web::BytesMut> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return None;
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.ok()?;
        if (body.len() + chunk.len()) as u64 > limit {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

/// The reply's fields and files from either encoding a browser may use.
fn reply_fields(req: &HttpRequest, body: &[u8], reply: &mut FormState) -> Vec<messages::Upload> {
    let Some(boundary) = multipart::boundary_of(req) else {
        let values: HashMap<String, String> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        *reply = FormState::from_values(values);
        return vec![];
    };
    let parts = match multipart::parse(body, &boundary, MAX_FILES + 4) {
        Ok(parts) => parts,
        Err(multipart::MultipartError::TooManyParts) => {
            reply.add_error("files", format!("Send at most {MAX_FILES} files with one message."));
            return vec![];
        }
        Err(_) => {
            reply.add_error(
                "body",
                "Your browser sent this form in a way we could not read. Please try again.",
            );
            return vec![];
        }
    };
    let mut values = HashMap::new();
    let mut files = vec![];
    for part in parts {
        match part.filename {
            // An empty file input sends a nameless, empty file: nothing was chosen.
            Some(name) if name.is_empty() && part.data.is_empty() => {}
            Some(name) if part.name == "files" => files.push(messages::Upload {
                filename: if name.is_empty() { "file".into() } else { name },
                content_type: part.content_type.unwrap_or_else(|| "application/octet-stream".into()),
                data: part.data.to_vec(),
            }),
            Some(_) => {}
            None => {
                values.insert(part.name, String::from_utf8_lossy(part.data).into_owned());
            }
        }
    }
    let errors = reply.errors().to_vec();
    *reply = FormState::from_values(values);
    for (name, message) in errors {
        reply.add_error(name, message);
    }
    if files.len() > MAX_FILES {
        reply.add_error("files", format!("Send at most {MAX_FILES} files with one message."));
    }
    let max_mb = messages::MAX_ATTACHMENT_BYTES / (1024 * 1024);
    if let Some(big) = files.iter().find(|f| f.data.len() > messages::MAX_ATTACHMENT_BYTES) {
        reply.add_error(
            "files",
            format!(
                "{} is larger than {max_mb} MB: send a smaller file, or leave it out.",
                big.filename
            ),
        );
    }
    files
}

/// `POST /t/{token}/reply`: the customer's words and files join the ticket (and may reopen
/// it). Form-encoded or `multipart/form-data`; the body is bounded like an inbound mail.
pub async fn post_reply(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let token = path.into_inner();
    let view = match load(&state, &token).await {
        Ok(Some(view)) => view,
        Ok(None) => return not_found(),
        Err(e) => return status_page_error(e),
    };
    let limit = state.desk.settings.max_message_bytes;
    let Some(body) = read_body(&req, payload, limit).await else {
        let size = crate::services::status_page::AttachmentLink {
            id: 0,
            filename: String::new(),
            size: i64::try_from(limit).unwrap_or(i64::MAX),
        }
        .size_words();
        let notice = format!(
            "Nothing was sent: your message and files together are larger than {size}. Send smaller files, or fewer at a time."
        );
        return render(
            StatusCode::PAYLOAD_TOO_LARGE,
            &page(token, view, FormState::default(), FormState::default(), Some(notice)),
        );
    };
    let mut reply = FormState::default();
    let files = reply_fields(&req, &body, &mut reply);
    reply.limit("body", 20_000);
    if reply.trimmed("body").is_none() && files.is_empty() && reply.error("body").is_none() {
        reply.add_error("body", "Write a few words before sending.");
    }
    if reply.has_errors() {
        let mut status_page = page(token, view, reply, FormState::default(), None);
        status_page.sent = None;
        return render(StatusCode::UNPROCESSABLE_ENTITY, &status_page);
    }
    let text = reply.value("body").to_string();
    let id = view.ticket_id;
    let outcome = state
        .run(move |conn, desk| messages::customer_reply_with_files(conn, desk, id, &text, files).map_err(Into::into))
        .await;
    match outcome {
        Ok(_) => back_to(&state, &token, id, "reply"),
        Err(e) => status_page_error(e),
    }
}

/// `POST /t/{token}/allowlisted-attempts`: the customer reports which allowlisted networks they
/// tried. The workflow engine decides, exactly as for an agent's `record_allowlisted_attempts`.
pub async fn post_attempts(state: web::Data<AppState>, path: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let token = path.into_inner();
    let values: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let mut attempts = FormState::from_values(values);
    let view = match load(&state, &token).await {
        Ok(Some(view)) => view,
        Ok(None) => return not_found(),
        Err(e) => return status_page_error(e),
    };
    attempts.limit("tried_from", 2_000);
    attempts.limit("outcome", 20_000);
    if attempts.trimmed("tried_from").is_none() {
        attempts.add_error(
            "tried_from",
            "Tell us which allowlisted networks you tried (an office, a VPN, a colleague's network).",
        );
    }
    if attempts.has_errors() {
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(token, view, FormState::default(), attempts, None),
        );
    }
    let tried_from = attempts.value("tried_from").trim().to_string();
    let outcome_text = attempts.value("outcome").trim().to_string();
    let id = view.ticket_id;
    let outcome = state
        .run(move |conn, desk| report_attempts(conn, desk, id, &tried_from, &outcome_text).map_err(Into::into))
        .await;
    match outcome {
        // A refusal hidden from a neutral reader reads as recorded (the service decides).
        Ok(ReportOutcome::Recorded | ReportOutcome::JoinsThread) => back_to(&state, &token, id, "attempts"),
        Ok(ReportOutcome::Refused(refusal)) => {
            // The request moved on meanwhile: say so on the page, keep what they typed.
            let notice = Some(format!("We could not record this: {}", refusal.message));
            match load(&state, &token).await {
                Ok(Some(view)) => render(
                    StatusCode::CONFLICT,
                    &page(token, view, FormState::default(), attempts, notice),
                ),
                Ok(None) => not_found(),
                Err(e) => status_page_error(e),
            }
        }
        Err(e) => status_page_error(e),
    }
}

/// `GET /t/{token}/files/{id}`: a file of a message this status page shows, as a download
/// only. Any other id (another ticket's, a note's, unknown) is the same 404 as a bad link.
pub async fn download_file(state: web::Data<AppState>, path: web::Path<(String, String)>) -> HttpResponse {
    let (token, id) = path.into_inner();
    let Ok(id) = id.parse::<i64>() else {
        return not_found();
    };
    let found = state
        .run(move |conn, _| crate::services::portal::status_attachment(conn, &token, id).map_err(Into::into))
        .await;
    match found {
        Ok(Some(file)) => crate::web::download(&file.filename, file.data),
        Ok(None) => not_found(),
        Err(e) => status_page_error(e),
    }
}
