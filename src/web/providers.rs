//! `POST /inbound/sendgrid` and `POST /inbound/mailgun` (docs/reference.md#provider-webhooks):
//! the inbound token (bearer, or basic auth with any user), the form read with a size cap,
//! the provider's post turned into one MIME message, and the one ingestion function. They
//! answer like `/inbound/email`: 200 with the JSON line, 401, 413 too large, 503 retry.

use super::AppState;
use super::inbound::authorised;
use crate::error::ApiError;
use crate::mail::inbound::form::{self, Field};
use crate::mail::inbound::provider::{self, MailgunError, ProviderPost};
use crate::services::inbound::{IngestError, ingest_from};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

/// What a form adds around the message (field names, boundaries, the provider's fields).
const FORM_OVERHEAD: u64 = 1024 * 1024;

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "message_too_large",
        format!("the message is larger than {limit} bytes"),
    )
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a valid inbound token is required: Authorization: Bearer $RECOVERYDESK_INBOUND_TOKEN, or basic auth with the token as password",
    )
}

/// Checks the token, then reads the form (multipart or URL-encoded) within the size cap.
async fn read_form(req: &HttpRequest, state: &AppState, mut payload: web::Payload) -> Result<Vec<Field>, ApiError> {
    if !authorised(req, state.desk.settings.inbound_token.as_deref()) {
        return Err(unauthorized());
    }
    let limit = state.desk.settings.max_message_bytes;
    let cap = limit.saturating_add(FORM_OVERHEAD);
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > cap)
    {
        return Err(too_large(limit));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid(format!("reading the post: {e}")))?;
        if (body.len() + chunk.len()) as u64 > cap {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(boundary) = form::boundary(content_type) {
        return form::parse(&body, &boundary).map_err(|e| ApiError::invalid(format!("the form: {e}")));
    }
    if content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        let fields: Vec<Field> = url::form_urlencoded::parse(&body)
            .take(form::MAX_FIELDS + 1)
            .map(|(name, value)| Field {
                name: name.into_owned(),
                filename: None,
                content_type: None,
                data: value.into_owned().into_bytes(),
            })
            .collect();
        if fields.len() > form::MAX_FIELDS {
            return Err(ApiError::invalid(format!(
                "the form has more than {} fields",
                form::MAX_FIELDS
            )));
        }
        return Ok(fields);
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "post multipart/form-data (or application/x-www-form-urlencoded)",
    ))
}

async fn ingest_post(
    state: web::Data<AppState>,
    post: ProviderPost,
    channel: &'static str,
) -> Result<HttpResponse, ApiError> {
    let limit = state.desk.settings.max_message_bytes;
    let outcome = state
        .run(move |conn, desk| {
            crate::db::with_durable_commits(conn, |conn| {
                ingest_from(conn, desk, &post.raw, channel, Some(&post.auth))
            })
            .map_err(|e| match e {
                IngestError::TooLarge { .. } => too_large(limit),
                IngestError::Temporary(reason) => {
                    tracing::error!(%reason, channel, "inbound mail not stored");
                    ApiError::unavailable("the message was not stored; try again shortly")
                }
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(outcome))
}

pub async fn receive_sendgrid(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let fields = read_form(&req, &state, payload).await?;
    let post = provider::sendgrid(&fields).map_err(|e| ApiError::invalid(format!("not an Inbound Parse post: {e}")))?;
    ingest_post(state, post, "sendgrid").await
}

pub async fn receive_mailgun(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let fields = read_form(&req, &state, payload).await?;
    let Some(key) = state.desk.settings.mailgun_signing_key.clone() else {
        tracing::warn!("a Mailgun post arrived but RECOVERYDESK_MAILGUN_SIGNING_KEY is not set: refused");
        return Err(unauthorized());
    };
    let post = provider::mailgun(&fields, &key).map_err(|e| match e {
        MailgunError::BadSignature => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "the Mailgun signature does not match RECOVERYDESK_MAILGUN_SIGNING_KEY",
        ),
        MailgunError::NoMessage => {
            ApiError::invalid("the post has no body-mime field (use a route that forwards MIME)")
        }
    })?;
    ingest_post(state, post, "mailgun").await
}
