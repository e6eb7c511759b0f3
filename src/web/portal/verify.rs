//! `GET/POST /verify/{token}`: the email challenge. A GET only shows the question (mail
//! scanners follow links); the POST records the answer.

use super::super::AppState;
use super::render;
use crate::services::tickets::{self, ChallengeOutcome};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "portal/verify.html")]
pub struct VerifyPage {
    pub token: String,
    pub outcome: Option<ChallengeOutcome>,
}

pub async fn show_challenge(path: web::Path<String>) -> HttpResponse {
    render(
        StatusCode::OK,
        &VerifyPage {
            token: path.into_inner(),
            outcome: None,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct ChallengeAnswer {
    #[serde(default)]
    answer: String,
}

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
        Ok(outcome) => {
            let status = match outcome {
                ChallengeOutcome::Recorded { .. } => StatusCode::OK,
                ChallengeOutcome::UnknownToken => StatusCode::NOT_FOUND,
                _ => StatusCode::GONE,
            };
            render(
                status,
                &VerifyPage {
                    token,
                    outcome: Some(outcome),
                },
            )
        }
        Err(_) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("We could not record your answer just now. Please try the link again in a few minutes."),
    }
}
