//! `/api/v1/canned`: the canned answers (docs/reference.md#canned-answers). Every agent reads
//! them; only admins write. A body is read strictly (422 `invalid_input` for anything that is
//! not the object described), like every API body.

use super::super::AppState;
use super::super::security::ApiAgent;
use crate::db::canned::CannedRow;
use crate::error::ApiError;
use crate::services::canned as service;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

fn answer_json(row: &CannedRow) -> Value {
    json!({"id": row.id, "title": row.title, "body": row.body, "account_dependent": row.account_dependent})
}

/// Writes are for admins: said before the body is even read.
fn admin(agent: &ApiAgent) -> Result<(), ApiError> {
    if agent.admin {
        Ok(())
    } else {
        Err(ApiError::forbidden("only admins manage canned answers"))
    }
}

/// An id that is not a number names no answer: 404, as an unknown number does.
fn answer_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>().map_err(|_| ApiError::not_found("canned answer"))
}

/// The fields of a write: `title` and `body` (strings), `account_dependent` (a boolean,
/// false when left out). Another field is refused, so a typo is not silently ignored.
struct Fields {
    title: String,
    body: String,
    account_dependent: bool,
}

fn fields(map: Map<String, Value>) -> Result<Fields, ApiError> {
    if let Some(unknown) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "title" | "body" | "account_dependent"))
    {
        return Err(ApiError::invalid(format!(
            "{unknown}: not a field of a canned answer (title, body, account_dependent)"
        )));
    }
    let text = |key: &str| match map.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(ApiError::invalid(format!("{key}: a string is required"))),
    };
    let account_dependent = match map.get("account_dependent") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::invalid("account_dependent: true or false")),
    };
    Ok(Fields {
        title: text("title")?,
        body: text("body")?,
        account_dependent,
    })
}

/// `GET /api/v1/canned`: every answer, by title.
pub async fn list_canned(_agent: ApiAgent, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rows = state.run(|conn, _| service::list(conn).map_err(Into::into)).await?;
    Ok(HttpResponse::Ok().json(json!({"canned": rows.iter().map(answer_json).collect::<Vec<_>>()})))
}

/// `POST /api/v1/canned` (admins): 201 and the answer.
pub async fn create_canned(
    agent: ApiAgent,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    admin(&agent)?;
    let body = super::read_body(&req, payload).await?;
    let f = fields(super::json_object(&req, &body, false)?)?;
    let actor = agent.actor();
    let row = state
        .run(move |conn, _| {
            let id = service::create(conn, &actor, &f.title, &f.body, f.account_dependent)?;
            service::find(conn, id).map_err(Into::into)
        })
        .await?;
    Ok(HttpResponse::build(StatusCode::CREATED).json(answer_json(&row)))
}

/// `PUT /api/v1/canned/{id}` (admins): the whole answer again; 200 and the answer.
pub async fn update_canned(
    agent: ApiAgent,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    admin(&agent)?;
    let id = answer_id(&path)?;
    let body = super::read_body(&req, payload).await?;
    let f = fields(super::json_object(&req, &body, false)?)?;
    let actor = agent.actor();
    let row = state
        .run(move |conn, _| {
            service::update(conn, &actor, id, &f.title, &f.body, f.account_dependent).map_err(Into::into)
        })
        .await?;
    Ok(HttpResponse::Ok().json(answer_json(&row)))
}

/// `DELETE /api/v1/canned/{id}` (admins): 204; 404 when there is no such answer.
pub async fn delete_canned(
    agent: ApiAgent,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin(&agent)?;
    let id = answer_id(&path)?;
    let actor = agent.actor();
    state
        .run(move |conn, _| service::delete(conn, &actor, id).map_err(Into::into))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
