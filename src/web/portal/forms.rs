//! The four recovery forms of docs/reference.md#json-api: `GET` shows the form, `POST` validates it (422 with the
//! form again, messages next to the fields, values kept) or answers 303 to the confirmation
//! page. The answer never depends on the directory (no account enumeration).

use super::super::AppState;
use super::super::security::client_ip;
use super::cookies;
use super::form_state::FormState;
use super::{render, status_page_error};
use crate::domain::email_address::EmailAddress;
use crate::domain::local_time;
use crate::domain::ticket::{Kind, Problem};
use crate::domain::workflow::tried::{self, TriedAnswer};
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
    /// The address we see the customer connecting from: offered, never filled in.
    pub seen_ip: String,
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
    /// The zone the time of a failed attempt is read in (`UTC` unless chosen).
    pub zone: String,
    pub zone_names: &'static [&'static str],
    pub offsets: Vec<String>,
}

#[derive(Template)]
#[template(path = "portal/submitted.html")]
pub struct SubmittedPage {
    /// The reference, the address the link went to and the notes on an SMTP username, read
    /// from the private cookie the form's answer set; `None` without a valid one.
    pub submitted: Option<SubmittedCookie>,
}

/// What the confirmation page may show, sealed in a private cookie (never in the URL).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SubmittedCookie {
    pub ticket_ref: String,
    pub email: String,
    pub notes: Vec<String>,
}

impl SubmittedCookie {
    pub fn has_note(&self, note: &str) -> bool {
        self.notes.iter().any(|n| n == note)
    }
}

fn page(kind: Kind, form: FormState, status: StatusCode, seen_ip: String) -> HttpResponse {
    match kind {
        Kind::ForgotUsername => render(status, &ForgotUsernamePage { form }),
        Kind::IpLockout => render(status, &IpLockoutPage { form, seen_ip }),
        Kind::AccountTerminated => render(status, &AccountTerminatedPage { form }),
        _ => {
            let zone = match form.trimmed("failed_at_zone") {
                Some(z) => z,
                None => "UTC".to_string(),
            };
            render(
                status,
                &LoginPage {
                    form,
                    zone,
                    zone_names: local_time::zone_names(),
                    offsets: local_time::OFFSETS_MINUTES
                        .iter()
                        .map(|m| local_time::offset_name(*m))
                        .collect(),
                },
            )
        }
    }
}

impl LoginPage {
    pub fn is_zone(&self, name: &str) -> bool {
        self.zone == name
    }
}

fn seen_ip(req: &HttpRequest, state: &AppState) -> String {
    client_ip(req, &state.desk.settings.trusted_proxies)
        .map(|ip| ip.to_string())
        .unwrap_or_default()
}

pub async fn show_forgot_username() -> HttpResponse {
    page(
        Kind::ForgotUsername,
        FormState::default(),
        StatusCode::OK,
        String::new(),
    )
}

pub async fn show_ip_lockout(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    // The field starts empty: the address we see is often not the network that is locked out
    // (a phone on mobile data, a home line). It is offered beside the field instead.
    page(
        Kind::IpLockout,
        FormState::default(),
        StatusCode::OK,
        seen_ip(&req, &state),
    )
}

pub async fn show_account_terminated() -> HttpResponse {
    page(
        Kind::AccountTerminated,
        FormState::default(),
        StatusCode::OK,
        String::new(),
    )
}

pub async fn show_login() -> HttpResponse {
    page(Kind::LoginHelp, FormState::default(), StatusCode::OK, String::new())
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
    let seen = seen_ip(&req, &state);
    let Some(request) = validate(kind, &mut form) else {
        metrics.form(kind.as_str(), "invalid");
        return page(kind, form, StatusCode::UNPROCESSABLE_ENTITY, seen);
    };
    // Every field through the secret scanner here, before the service's transaction.
    let request = request.scrub();
    let email = request.requester.as_str().to_string();
    let username_notes = match &request.smtp_username {
        Some(name) => smtp_username_notes(name.as_str()),
        None => vec![],
    };
    let client = seen.clone();
    let outcome = state
        .run(move |conn, desk| portal::submit_form(conn, desk, request, &client).map_err(Into::into))
        .await;
    match outcome {
        Ok(Submitted::Accepted { ticket_ref }) => {
            metrics.form(kind.as_str(), "accepted");
            // The confirmation page reads a sealed cookie: no address or reference in the URL
            // (nor so in any log), and a crafted URL shows nothing.
            let sealed = SubmittedCookie {
                ticket_ref,
                email,
                notes: username_notes.iter().map(|n| n.to_string()).collect(),
            };
            let cookie = cookies::seal(
                &state,
                cookies::SUBMITTED,
                cookies::SUBMITTED_PATH,
                cookies::SUBMITTED_SECONDS,
                sealed,
            );
            HttpResponse::SeeOther()
                .insert_header((header::LOCATION, cookies::SUBMITTED_PATH))
                .cookie(cookie)
                .finish()
        }
        Ok(Submitted::RateLimited { retry_after_secs }) => {
            metrics.form(kind.as_str(), "rate_limited");
            // The form again, everything typed kept, and when a place frees: the count is per
            // network and per address, so it says nothing of this person's own requests.
            let zone = local_time::parse_zone(form.value("failed_at_zone")).ok();
            form.set_notice(rate_limit_notice(retry_after_secs, chrono::Utc::now(), zone));
            let mut answer = page(kind, form, StatusCode::TOO_MANY_REQUESTS, seen);
            if let Ok(value) = header::HeaderValue::from_str(&retry_after_secs.to_string()) {
                answer.headers_mut().insert(header::RETRY_AFTER, value);
            }
            answer
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
            // The form always asks, so no answer is an error here; the rule is the domain's.
            match TriedAnswer::parse(form.value("tried_allowlisted_ips")) {
                None => form.add_error("tried_allowlisted_ips", "Please answer yes or no."),
                answer => match tried::tried_from(answer, form.trimmed("tried_from").as_deref()) {
                    Ok(t) => tried_from = t,
                    Err(tried::TriedFromMissing) => form.add_error(
                        "tried_from",
                        "Tell us where you tried from (which office, network or colleague), so we can move forward.",
                    ),
                },
            }
        }
        Kind::LoginHelp => {
            match Problem::parse(form.value("problem")) {
                Some(p) => problem = Some(p),
                None => form.add_error("problem", "Please choose what happens when you try to log in."),
            }
            form.limit("failed_at_zone", 64);
            match local_time::parse_zone(form.value("failed_at_zone")) {
                Ok(zone) => {
                    if let Some(text) = form.trimmed("failed_at") {
                        match local_time::parse_failed_at(&text, zone) {
                            Ok(t) => failed_at = Some(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                            Err(e) => form.add_error("failed_at", e.to_string()),
                        }
                    }
                }
                Err(local_time::ZoneError::OffsetOutOfRange) => form.add_error(
                    "failed_at_zone",
                    "No place uses this offset: choose one between UTC-12:00 and UTC+14:00.",
                ),
                Err(local_time::ZoneError::Unknown) => {
                    form.add_error("failed_at_zone", "Choose your time zone from the list.")
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
        // "Other" is also what a request without a problem is called.
        _ => problem.unwrap_or(Problem::Other).subject().to_string(),
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

/// The rate-limit notice: when to try again (in UTC, on the customer's clock when the form names
/// their zone, and in minutes), never a claim about who sent the earlier requests.
pub fn rate_limit_notice(
    retry_after_secs: u64,
    now: chrono::DateTime<chrono::Utc>,
    zone: Option<local_time::Zone>,
) -> String {
    let minutes = retry_after_secs.div_ceil(60).max(1);
    let at = now + chrono::Duration::seconds(i64::try_from(retry_after_secs).unwrap_or(3600));
    let wait = if minutes == 1 {
        "in about a minute".to_string()
    } else {
        format!("in about {minutes} minutes")
    };
    let local = match zone {
        Some(z @ local_time::Zone::Named(tz)) => {
            format!(" ({} in {})", at.with_timezone(&tz).format("%H:%M"), z.name())
        }
        Some(z @ local_time::Zone::Offset(offset)) => {
            format!(" ({} at UTC{})", at.with_timezone(&offset).format("%H:%M"), z.name())
        }
        _ => String::new(),
    };
    format!(
        "We cannot take this form right now: many requests reached us in the last hour from your network or for this email address (people in one office or on one mobile network share an address). You can send it again from {} UTC{local}, {wait}. Everything you typed is kept below. To add to an open request, reply to our email about it.",
        at.format("%H:%M")
    )
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

/// `GET /help/submitted`: the reference and where the link went, read from the private cookie
/// the form's answer set (valid for a few minutes). Query parameters are never read: without
/// the cookie the page names no reference and no address.
pub async fn show_submitted(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let submitted: Option<SubmittedCookie> =
        cookies::open(&req, &state, cookies::SUBMITTED, cookies::SUBMITTED_SECONDS);
    render(StatusCode::OK, &SubmittedPage { submitted })
}

#[cfg(test)]
mod tests {
    use super::{local_time, rate_limit_notice};

    #[test]
    fn the_rate_limit_notice_says_when_on_both_clocks_and_blames_nobody() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-07-15T10:00:00Z")
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_default();
        let paris = local_time::parse_zone("Europe/Paris").ok();
        let text = rate_limit_notice(1800, now, paris);
        assert!(
            text.contains("from 10:30 UTC (12:30 in Europe/Paris), in about 30 minutes"),
            "{text}"
        );
        let text = rate_limit_notice(59, now, local_time::parse_zone("+05:30").ok());
        assert!(
            text.contains("from 10:00 UTC (15:30 at UTC+05:30), in about a minute"),
            "{text}"
        );
        let text = rate_limit_notice(3600, now, None);
        assert!(text.contains("from 11:00 UTC, in about 60 minutes"), "{text}");
        assert!(text.contains("from your network or for this email address"));
        assert!(!text.contains("from you ") && !text.contains("you sent"));
    }
}
