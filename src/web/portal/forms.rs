//! The four recovery forms of docs/reference.md#json-api: `GET` shows the form, `POST` validates it (422 with the
//! form again, messages next to the fields, values kept) or answers 303 to the confirmation
//! page. The answer never depends on the directory (no account enumeration).

use super::super::AppState;
use super::super::security::client_ip;
use super::form_state::FormState;
use super::{render, status_page_error};
use crate::domain::email_address::EmailAddress;
use crate::domain::ticket::Kind;
use crate::services::Actor;
use crate::services::portal::{self, Submitted};
use crate::services::tickets::{Channel, RequestFields};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use std::collections::HashMap;

const SHORT: usize = 320;
const LONG: usize = 20_000;

#[derive(Template)]
#[template(path = "portal/forgot_username.html")]
pub struct ForgotUsernamePage {
    pub form: FormState,
}

#[derive(Template)]
#[template(path = "portal/ip_lockout.html")]
pub struct IpLockoutPage {
    pub form: FormState,
}

#[derive(Template)]
#[template(path = "portal/account_terminated.html")]
pub struct AccountTerminatedPage {
    pub form: FormState,
}

#[derive(Template)]
#[template(path = "portal/login.html")]
pub struct LoginPage {
    pub form: FormState,
}

#[derive(Template)]
#[template(path = "portal/submitted.html")]
pub struct SubmittedPage {
    pub ticket_ref: String,
    pub email: String,
    pub username_notes: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "portal/rate_limited.html")]
pub struct RateLimitedPage {}

fn page(kind: Kind, form: FormState, status: StatusCode) -> HttpResponse {
    match kind {
        Kind::ForgotUsername => render(status, &ForgotUsernamePage { form }),
        Kind::IpLockout => render(status, &IpLockoutPage { form }),
        Kind::AccountTerminated => render(status, &AccountTerminatedPage { form }),
        _ => render(status, &LoginPage { form }),
    }
}

pub async fn show_forgot_username() -> HttpResponse {
    page(Kind::ForgotUsername, FormState::default(), StatusCode::OK)
}

pub async fn show_ip_lockout(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    // Prefilled with the address we see, which is usually the one to grant.
    let ip = client_ip(&req, &state.desk.settings.trusted_proxies)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    page(
        Kind::IpLockout,
        FormState::default().with_value("current_ip", ip),
        StatusCode::OK,
    )
}

pub async fn show_account_terminated() -> HttpResponse {
    page(Kind::AccountTerminated, FormState::default(), StatusCode::OK)
}

pub async fn show_login() -> HttpResponse {
    page(Kind::LoginHelp, FormState::default(), StatusCode::OK)
}

pub async fn submit_forgot_username(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    submit(Kind::ForgotUsername, req, state, body).await
}

pub async fn submit_ip_lockout(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    submit(Kind::IpLockout, req, state, body).await
}

pub async fn submit_account_terminated(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    submit(Kind::AccountTerminated, req, state, body).await
}

pub async fn submit_login(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    submit(Kind::LoginHelp, req, state, body).await
}

/// How long after a valid form arrives its answer goes out, at the earliest. The work behind the
/// answer differs with the directory (a known address links an account, logs a transition and
/// queues other mail than an unknown one), so the answer is held to this fixed moment, which
/// that work ends well before: the time of the answer says nothing about the directory
/// (docs/security.md, "Forms answer in the same time"; benches/form_timing.sh measures it).
pub const ANSWER_AFTER: std::time::Duration = std::time::Duration::from_millis(100);

async fn submit(kind: Kind, req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let answer_at = actix_web::rt::time::Instant::now() + ANSWER_AFTER;
    let answer = submit_valid(kind, req, state, body).await;
    // Invalid input is answered at once: it never reached the directory.
    if answer.status() != StatusCode::UNPROCESSABLE_ENTITY {
        actix_web::rt::time::sleep_until(answer_at).await;
    }
    answer
}

async fn submit_valid(kind: Kind, req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    // Parsed by hand so that a malformed body still gets the form back, not a bare error.
    let values: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let mut form = FormState::from_values(values);
    let metrics = state.desk.metrics.clone();
    let Some(request) = validate(kind, &mut form) else {
        metrics.form(kind.as_str(), "invalid");
        return page(kind, form, StatusCode::UNPROCESSABLE_ENTITY);
    };
    // Every field through the secret scanner here, before the service's transaction.
    let request = request.scrub();
    let email = request.requester.as_str().to_string();
    let username_notes = match &request.smtp_username {
        Some(name) => smtp_username_notes(name.as_str()),
        None => vec![],
    };
    let client = client_ip(&req, &state.desk.settings.trusted_proxies)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let outcome = state
        .run(move |conn, desk| portal::submit_form(conn, desk, request, &client).map_err(Into::into))
        .await;
    match outcome {
        Ok(Submitted::Accepted { ticket_ref }) => {
            metrics.form(kind.as_str(), "accepted");
            let mut query = vec![("ref", ticket_ref), ("email", email)];
            query.extend(username_notes.iter().map(|n| ("note", n.to_string())));
            let location = format!(
                "/help/submitted?{}",
                serde_urlencoded::to_string(query).unwrap_or_default()
            );
            HttpResponse::SeeOther()
                .insert_header((header::LOCATION, location))
                .finish()
        }
        Ok(Submitted::RateLimited) => {
            metrics.form(kind.as_str(), "rate_limited");
            render(StatusCode::TOO_MANY_REQUESTS, &RateLimitedPage {})
        }
        Err(e) => {
            metrics.form(kind.as_str(), "error");
            status_page_error(e)
        }
    }
}

/// Turns the typed fields into a request, or leaves messages on the form.
fn validate(kind: Kind, form: &mut FormState) -> Option<RequestFields> {
    for field in [
        "email",
        "account",
        "current_ip",
        "tried_from",
        "smtp_username",
        "failed_at",
        "error_text",
    ] {
        form.limit(field, SHORT);
    }
    form.limit("details", LONG);
    let requester = match EmailAddress::parse(form.value("email")) {
        Ok(e) => Some(e),
        Err(message) => {
            form.add_error("email", capitalise(&message));
            None
        }
    };
    let mut tried_from = None;
    let mut problem = None;
    let mut failed_at = None;
    match kind {
        Kind::IpLockout => {
            if let Some(ip) = form.trimmed("current_ip")
                && ip.parse::<std::net::IpAddr>().is_err()
            {
                form.add_error("current_ip", "This is not an IP address (for example 203.0.113.7).");
            }
            match form.value("tried_allowlisted_ips") {
                "yes" => match form.trimmed("tried_from") {
                    Some(t) => tried_from = Some(t),
                    None => form.add_error(
                        "tried_from",
                        "Tell us where you tried from (which office, network or colleague), so we can move forward.",
                    ),
                },
                "no" => {}
                _ => form.add_error("tried_allowlisted_ips", "Please answer yes or no."),
            }
        }
        Kind::LoginHelp => {
            match form.value("problem") {
                p @ ("web_login" | "api_key" | "smtp_535" | "other") => problem = Some(p.to_string()),
                _ => form.add_error("problem", "Please choose what happens when you try to log in."),
            }
            if let Some(text) = form.trimmed("failed_at") {
                match parse_failed_at(&text) {
                    Some(t) => failed_at = Some(t),
                    None => form.add_error("failed_at", "Use a date and time such as 2026-11-20T10:00 (UTC)."),
                }
            }
        }
        _ => {}
    }
    if form.has_errors() {
        return None;
    }
    let requester = requester?;
    let details = form.value("details").trim().to_string();
    let subject = match kind {
        Kind::ForgotUsername => "Forgotten username".to_string(),
        Kind::IpLockout => "Locked out by IP access management".to_string(),
        Kind::AccountTerminated => "Account terminated for non-payment".to_string(),
        _ => match problem.as_deref() {
            Some("smtp_535") => "SMTP 535 Authentication failed".to_string(),
            Some("api_key") => "API: bad username/password".to_string(),
            Some("web_login") => "Cannot log in to the website".to_string(),
            _ => "Cannot log in".to_string(),
        },
    };
    Some(RequestFields {
        kind,
        requester,
        subject,
        body: details,
        account: form.trimmed("account"),
        current_ip: form.trimmed("current_ip"),
        tried_from,
        attempts_outcome: None,
        // Byte-exact: what the customer typed, spaces and all, is what the diagnosis judges.
        smtp_username: form.exact("smtp_username"),
        failed_at,
        problem,
        error_text: form.trimmed("error_text"),
        channel: Channel::Web,
        actor: Actor::Customer {
            email: form.value("email").trim().to_string(),
        },
    })
}

/// RFC 3339, or `YYYY-MM-DDTHH:MM` as a `datetime-local` field sends it (taken as UTC).
pub fn parse_failed_at(text: &str) -> Option<String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
    }
    None
}

/// What the articles call common causes, said back to the customer about what they typed
/// (never a validation error: the diagnosis judges it).
fn smtp_username_notes(name: &str) -> Vec<&'static str> {
    crate::domain::workflow::creation::smtp_username_flags(name)
}

fn capitalise(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str().trim_end_matches('.')),
        None => String::new(),
    }
}

#[derive(serde::Deserialize)]
pub struct SubmittedQuery {
    #[serde(rename = "ref", default)]
    ticket_ref: String,
    #[serde(default)]
    email: String,
}

/// `GET /help/submitted`: the reference and where the link went. Nothing else: the page must
/// read the same whatever the directory holds.
pub async fn show_submitted(req: HttpRequest) -> HttpResponse {
    let query: SubmittedQuery = web::Query::<SubmittedQuery>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or(SubmittedQuery {
            ticket_ref: String::new(),
            email: String::new(),
        });
    let notes: Vec<&'static str> = req
        .query_string()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("note="))
        .filter_map(|n| match n {
            "smtp_username_has_at" => Some("smtp_username_has_at"),
            "smtp_username_whitespace" => Some("smtp_username_whitespace"),
            _ => None,
        })
        .collect();
    render(
        StatusCode::OK,
        &SubmittedPage {
            ticket_ref: query.ticket_ref,
            email: query.email,
            username_notes: notes,
        },
    )
}
