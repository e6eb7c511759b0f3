//! The agent's day (docs/reference.md#agent-console): the refusal's confirmation page, bulk
//! assign and resolve, and the queue's live updates.

use super::super::AppState;
use super::session::{CurrentAgent, csrf_ok};
use super::{expired_form, page, refused_page};
use crate::domain::workflow::{ActionName, ErrorCode, RefuseReason};
use crate::error::ApiError;
use crate::services::bulk::{self, BulkOp};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Template)]
#[template(path = "console/refuse_confirm.html")]
pub struct RefuseConfirmTemplate {
    pub agent: CurrentAgent,
    pub ticket_ref: String,
    pub reason: RefuseReason,
    pub text: String,
}

/// The refusal's confirmation step: what the customer will read, and one button to do it.
pub fn confirm_refusal(agent: CurrentAgent, reference: &str, fields: &HashMap<String, String>) -> HttpResponse {
    let reason = match fields.get("category").map(String::as_str).unwrap_or("") {
        "" => Some(RefuseReason::Other),
        code => RefuseReason::parse(code),
    };
    let Some(reason) = reason else {
        return refused_page(StatusCode::UNPROCESSABLE_ENTITY, "Choose a reason from the list.");
    };
    page(
        StatusCode::OK,
        &RefuseConfirmTemplate {
            agent,
            ticket_ref: reference.to_string(),
            reason,
            text: fields.get("reason").map(|r| r.trim().to_string()).unwrap_or_default(),
        },
    )
}

pub struct BulkLine {
    pub ticket_ref: String,
    pub ok: bool,
    pub text: String,
    pub code: String,
}

#[derive(Template)]
#[template(path = "console/bulk.html")]
pub struct BulkTemplate {
    pub agent: CurrentAgent,
    pub title: String,
    pub results: Vec<BulkLine>,
    pub done: usize,
    pub not_done: usize,
}

/// `POST /agent/bulk`: `op` (`assign` or `resolve`), the `ticket` references, and the
/// action's field (`agent_email`, `note`).
pub async fn bulk_action(agent: CurrentAgent, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let pairs: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(p) => p,
        Err(_) => return refused_page(StatusCode::UNPROCESSABLE_ENTITY, "The form could not be read."),
    };
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if !csrf_ok(&agent, Some(field("csrf").as_str())) {
        return expired_form();
    }
    let refs: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "ticket")
        .map(|(_, v)| v.clone())
        .collect();
    let (op, title) = match field("op").as_str() {
        "assign" => (
            BulkOp::Assign {
                agent_email: field("agent_email"),
            },
            "Assign selected tickets",
        ),
        "resolve" => (
            BulkOp::Resolve {
                note: field("note").trim().to_string(),
            },
            "Resolve selected tickets",
        ),
        _ => {
            return refused_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Choose “Assign selected” or “Resolve selected”.",
            );
        }
    };
    let actor = agent.actor();
    let label = match op {
        BulkOp::Assign { .. } => ActionName::Assign.label(),
        BulkOp::Resolve { .. } => ActionName::Resolve.label(),
    };
    let outcome = state
        .run(move |conn, desk| bulk::apply_to_many(conn, desk, &refs, &op, &actor).map_err(Into::into))
        .await;
    let results: Vec<BulkLine> = match outcome {
        Ok(results) => results
            .into_iter()
            .map(|(ticket_ref, result)| match result {
                Ok(()) => BulkLine {
                    ticket_ref,
                    ok: true,
                    text: format!("{label}: done."),
                    code: String::new(),
                },
                Err(e) => {
                    let e = ApiError::from(e);
                    BulkLine {
                        ticket_ref,
                        ok: false,
                        text: format!("{}. {}", ErrorCode::label_of(e.code), e.message),
                        code: e.code.to_string(),
                    }
                }
            })
            .collect(),
        Err(e) => return refused_page(e.status, &e.message),
    };
    let done = results.iter().filter(|r| r.ok).count();
    let status = if results.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    page(
        status,
        &BulkTemplate {
            agent,
            title: title.to_string(),
            not_done: results.len() - done,
            done,
            results,
        },
    )
}

/// How often the live queue looks for new activity.
const POLL: Duration = Duration::from_secs(1);

/// `GET /agent/queue/events`: server-sent events. An `activity` event whenever anything
/// happened on any ticket since the last look; a comment line otherwise, so a dead
/// connection is noticed.
pub async fn queue_events(_agent: CurrentAgent, state: web::Data<AppState>) -> HttpResponse {
    let first = latest(&state).await;
    let stream = futures_util::stream::unfold((state, first, true), |(state, last, opening)| async move {
        if opening {
            let hello = web::Bytes::from_static(b"retry: 3000\n: watching the queue\n\n");
            return Some((Ok::<_, actix_web::Error>(hello), (state, last, false)));
        }
        tokio::time::sleep(POLL).await;
        let now = latest(&state).await;
        let chunk = if now != last {
            let stamp = now.map(|t| t.and_utc().timestamp_micros()).unwrap_or_default();
            web::Bytes::from(format!("event: activity\ndata: {stamp}\n\n"))
        } else {
            web::Bytes::from_static(b": quiet\n\n")
        };
        Some((Ok(chunk), (state, now, false)))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
}

async fn latest(state: &web::Data<AppState>) -> Option<chrono::NaiveDateTime> {
    state
        .call(|conn, _| crate::services::activity::latest(conn))
        .await
        .ok()
        .flatten()
}
