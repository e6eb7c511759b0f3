//! `POST /inbound/email`: an inbound-parse webhook posts the raw message. 200 with the same JSON
//! line as the mailgate; 401 without the token; 413 too large; 503 when the sender must retry.
//! The provider webhooks (`/inbound/sendgrid`, `/inbound/mailgun`) live in `web::providers`.

use super::AppState;
use crate::error::ApiError;
use crate::services::inbound::IngestError;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use subtle::ConstantTimeEq;

pub(super) fn authorised(req: &HttpRequest, expected: Option<&str>) -> bool {
    let Some(expected) = expected else {
        tracing::warn!("inbound mail was posted but RECOVERYDESK_INBOUND_TOKEN is not set: refused");
        return false;
    };
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Providers post to a URL carrying credentials (`https://any:TOKEN@desk/…`): HTTP basic
    // auth with any user and the token as password is the same token.
    let given = match authorization.strip_prefix("Bearer ") {
        Some(token) => token.as_bytes().to_vec(),
        None => authorization
            .strip_prefix("Basic ")
            .and_then(|b| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b.trim()).ok())
            .and_then(|pair| pair.iter().position(|b| *b == b':').map(|at| pair[at + 1..].to_vec()))
            .unwrap_or_default(),
    };
    bool::from(given.ct_eq(expected.as_bytes()))
}

pub async fn receive_mail(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if !authorised(&req, state.desk.settings.inbound_token.as_deref()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid inbound token is required: Authorization: Bearer $RECOVERYDESK_INBOUND_TOKEN",
        ));
    }
    let limit = state.desk.settings.max_message_bytes;
    let too_large = move || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
            format!("the message is larger than {limit} bytes"),
        )
    };
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > limit)
    {
        return Err(too_large());
    }
    let mut raw = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid(format!("reading the message: {e}")))?;
        if (raw.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        raw.extend_from_slice(&chunk);
    }
    // Parsed and scanned on a blocking thread; written by the group-commit writer, which
    // answers after the durable commit of the group this message joined.
    let started = std::time::Instant::now();
    let desk = state.desk.clone();
    let prepared = web::block(move || crate::services::inbound::prepare(&desk, &raw))
        .await
        .map_err(|_| ApiError::unavailable("the message was not stored; try again shortly"))?;
    let answer = match prepared {
        Ok(prepared) => state
            .writer
            .submit(prepared, "webhook")
            .await
            .unwrap_or_else(|_| Err(IngestError::Temporary("the mail writer stopped".into()))),
        Err(e) => Err(e),
    };
    crate::services::group_commit::record(&state.desk, "webhook", &answer, started);
    let outcome = answer.map_err(|e| match e {
        IngestError::TooLarge { .. } => too_large(),
        IngestError::Temporary(reason) => {
            tracing::error!(%reason, "inbound mail not stored");
            ApiError::unavailable("the message was not stored; try again shortly")
        }
    })?;
    Ok(HttpResponse::Ok().json(outcome))
}
