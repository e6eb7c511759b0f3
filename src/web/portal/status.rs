//! `GET /t/{token}`: the customer's status page, with the reply form and, while the desk waits
//! for them, the form to report which allowlisted networks they tried.

use super::super::AppState;
use super::form_state::FormState;
use super::{not_found, render, status_page_error};
use crate::domain::ticket::State;
use crate::services::portal::{StatusView, status_view};
use crate::services::{ServiceError, tickets};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;
use std::collections::HashMap;

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
}

/// The state in plain words, and what the customer should do next. When the requester is not
/// the account's registered address, states that depend on the account read neutrally.
pub fn words_for(state: State, neutral: bool) -> (&'static str, &'static str) {
    use State::*;
    if neutral {
        return (
            "In progress",
            "Anything that depends on the account is sent only to the email address registered on it. If you need more help, reply below.",
        );
    }
    match state {
        AwaitingAgent => (
            "Waiting for our team",
            "An agent will look at your request and write to you by email. You don't need to do anything now.",
        ),
        AwaitingCustomer => (
            "Waiting for your answer",
            "We asked you something: please read our last message below and reply.",
        ),
        AwaitingAllowlistedAttempts => (
            "Waiting for you to try your allowlisted IPs",
            "Try to log in from an IP address already on your allowlist (another location, or a colleague on that network). Then tell us below what you tried and what happened.",
        ),
        AttemptsReported => (
            "Waiting for our team to verify ownership",
            "An agent will verify that the account is yours. We may write to the account's registered email address.",
        ),
        VerifyingOwnership => (
            "Verifying ownership of the account",
            "Check the mailbox registered on the account for a confirmation link, and answer any question we send you.",
        ),
        OwnershipVerified => (
            "Ownership verified",
            "We are restoring access. We will email you as soon as it is done.",
        ),
        AwaitingPayment => (
            "Waiting for payment",
            "The outstanding balance was sent to the account's registered email address. Once it is paid, reply with the payment reference.",
        ),
        PaymentConfirmed => (
            "Payment received",
            "Thank you. We are reactivating the account and will email you when it is done.",
        ),
        Resolved => (
            "Resolved",
            "We believe this is sorted. If you still need help, reply below and we will look again.",
        ),
        Refused => (
            "Closed",
            "We cannot go further with this request. The reason was sent by email. You can still reply below.",
        ),
    }
}

fn page(token: String, view: StatusView, reply: FormState, attempts: FormState, notice: Option<String>) -> StatusPage {
    // An agent's refusal is told in its reason's words to whoever asked (they depend on no
    // account); a policy's refusal keeps the neutral words.
    let (headline, next_step) = match view.refusal {
        Some(words) => ("Closed: we cannot take this request further", words),
        None => words_for(view.state, view.neutral),
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
    }
}

async fn load(state: &web::Data<AppState>, token: &str) -> Result<Option<StatusView>, ServiceError> {
    let token = token.to_string();
    state
        .run(move |conn, desk| status_view(conn, desk, &token).map_err(Into::into))
        .await
        .map_err(|e| ServiceError::Invalid(e.message))
}

pub async fn show_status(state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let token = path.into_inner();
    match load(&state, &token).await {
        Ok(Some(view)) => render(
            StatusCode::OK,
            &page(token, view, FormState::default(), FormState::default(), None),
        ),
        Ok(None) => not_found(),
        Err(e) => status_page_error(e),
    }
}

fn back_to(token: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/t/{token}")))
        .finish()
}

/// `POST /t/{token}/reply`: the customer's words join the ticket (and may reopen it).
pub async fn post_reply(state: web::Data<AppState>, path: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let token = path.into_inner();
    let values: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let mut reply = FormState::from_values(values);
    let view = match load(&state, &token).await {
        Ok(Some(view)) => view,
        Ok(None) => return not_found(),
        Err(e) => return status_page_error(e),
    };
    reply.limit("body", 20_000);
    if reply.trimmed("body").is_none() {
        reply.add_error("body", "Write a few words before sending.");
    }
    if reply.has_errors() {
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(token, view, reply, FormState::default(), None),
        );
    }
    let text = reply.value("body").to_string();
    let id = view.ticket_id;
    let outcome = state
        .run(move |conn, desk| tickets::customer_reply(conn, desk, id, &text).map_err(Into::into))
        .await;
    match outcome {
        Ok(_) => back_to(&token),
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
        .run(move |conn, desk| {
            match crate::services::portal::report_attempts(conn, desk, id, &tried_from, &outcome_text) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(refusal)) => Err(crate::error::ApiError::from(ServiceError::Refused(refusal))),
                Err(e) => Err(e.into()),
            }
        })
        .await;
    match outcome {
        Ok(_) => back_to(&token),
        Err(_) if view.neutral => {
            // Answer as if recorded, so the page tells nothing of the account; the words still
            // reach the agents as the customer's reply.
            let words = format!(
                "Allowlisted networks I tried: {}\nWhat happened: {}",
                attempts.value("tried_from").trim(),
                attempts.value("outcome").trim()
            );
            let id = view.ticket_id;
            match state
                .run(move |conn, desk| tickets::customer_reply(conn, desk, id, &words).map_err(Into::into))
                .await
            {
                Ok(_) => back_to(&token),
                Err(e) => status_page_error(e),
            }
        }
        Err(e) => {
            // The request moved on meanwhile: say so on the page, keep what they typed.
            let notice = Some(format!("We could not record this: {}", e.message));
            match load(&state, &token).await {
                Ok(Some(view)) => render(
                    StatusCode::CONFLICT,
                    &page(token, view, FormState::default(), attempts, notice),
                ),
                _ => not_found(),
            }
        }
    }
}
