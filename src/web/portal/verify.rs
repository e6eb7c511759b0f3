//! `GET/POST /verify/{token}`: the email challenge. A GET only shows the question (mail
//! scanners follow links); the POST records the answer.

use super::super::AppState;
use super::{render, status_page_error};
use crate::services::tickets::{self, ChallengeOutcome, ChallengePreview};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

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

/// The one field the answer form sends. Anything but exactly one `answer` that is `confirm`
/// or `not_me` is refused: the challenge fails closed, never taken for a "yes".
pub fn parse_answer(body: &[u8]) -> Option<bool> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    let mut answers = pairs.iter().filter(|(name, _)| name == "answer");
    let (_, answer) = answers.next()?;
    if answers.next().is_some() {
        return None;
    }
    match answer.as_str() {
        "confirm" => Some(true),
        "not_me" => Some(false),
        _ => None,
    }
}

/// Records the answer: `answer=confirm` passes the email challenge, `answer=not_me` fails it
/// and flags the ticket; anything else (an empty body included) answers 422 and records
/// nothing. Single use. No cookie or CSRF token: the token in the path is the secret.
pub async fn confirm_challenge(state: web::Data<AppState>, path: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let token = path.into_inner();
    let Some(passed) = parse_answer(&body) else {
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &super::MessagePage {
                title: "Please choose an answer",
                text: "Nothing was recorded. Open the link from the email again and press \"Yes, this was me\" or \"No, this was not me\".",
            },
        );
    };
    let t = token.clone();
    let outcome = state
        .run(move |conn, desk| tickets::confirm_email_challenge(conn, desk, &t, passed).map_err(Into::into))
        .await;
    match outcome {
        Ok(outcome) => closed(token, outcome),
        Err(e) => status_page_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_answer;

    #[test]
    fn only_confirm_or_not_me_is_an_answer() {
        assert_eq!(parse_answer(b"answer=confirm"), Some(true));
        assert_eq!(parse_answer(b"answer=not_me"), Some(false));
        for refused in [
            &b""[..],
            b"answer=",
            b"answer=yes",
            b"answer=CONFIRM",
            b"answer=confirm&answer=not_me",
            b"answer=confirm&answer=confirm",
            b"other=confirm",
            b"%%%",
            b"answer=confirm%",
        ] {
            assert_eq!(parse_answer(refused), None, "{}", String::from_utf8_lossy(refused));
        }
    }
}
