use super::super::AppState;
use super::super::security::ApiAgent;
use crate::error::ApiError;
use crate::services::view;
use actix_web::{HttpResponse, web};

/// `GET /api/v1/accounts/{id}`: the directory record plus its effective status.
pub async fn show_account(
    _agent: ApiAgent,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let account = state
        .run(move |conn, _| view::account_details(conn, &id).map_err(Into::into))
        .await?;
    Ok(HttpResponse::Ok().json(account))
}
