//! `GET/POST /verify/{token}`: the email challenge. A GET only shows the question (mail
//! scanners follow links); the POST records the answer.

use super::super::AppState;
use super::{render, status_page_error};
use crate::services::tickets::{self, ChallengeOutcome, ChallengePreview};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "portal/verify.html")]
pub struct VerifyPage {
    pub token: String,
    /// The request and the address that made it, while the question is open.
    pub asked: Option<(String, String)>,
    pub outcome: Option<ChallengeOutcome>,
}

fn closed(token: String, outcome: ChallengeOutcome) -> HttpResponse {
    let status = match outcome {
        ChallengeOutcome::Recorded { .. } => StatusCode::OK,
        ChallengeOutcome::UnknownToken => StatusCode::NOT_FOUND,
        _ => StatusCode::GONE,
    };
    render(
        status,
        &VerifyPage {
            token,
            asked: None,
            outcome: Some(outcome),
        },
    )
}

/// Shows the question, naming the request and who made it. Changes nothing.
pub async fn show_challenge(state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let token = path.into_inner();
    let t = token.clone();
    let preview = state
        .run(move |conn, desk| tickets::preview_email_challenge(conn, desk, &t).map_err(Into::into))
        .await;
    match preview {
        Ok(ChallengePreview::Open { ticket_ref, requester }) => render(
            StatusCode::OK,
            &VerifyPage {
                token,
                asked: Some((ticket_ref, requester)),
                outcome: None,
            },
        ),
        Ok(ChallengePreview::Closed(outcome)) => closed(token, outcome),
        Err(e) => status_page_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct ChallengeAnswer {
    #[serde(default)]
    answer: String,
}

/// Records the answer: "this was me" passes the email challenge, "this was not me" fails it
/// and flags the ticket. Single use.
pub async fn confirm_challenge(
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: Option<web::Form<ChallengeAnswer>>,
) -> HttpResponse {
    let token = path.into_inner();
    let passed = form.map(|f| f.answer != "not_me").unwrap_or(true);
    let t = token.clone();
    let outcome = state
        .run(move |conn, desk| tickets::confirm_email_challenge(conn, desk, &t, passed).map_err(Into::into))
        .await;
    match outcome {
        Ok(outcome) => closed(token, outcome),
        Err(e) => status_page_error(e),
    }
}
