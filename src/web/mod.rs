//! HTTP: every route is registered here, in one place.

pub mod api;
pub mod console;
pub mod filters;
pub mod health;
pub mod inbound;
pub mod metrics;
pub mod portal;
pub mod providers;
pub mod security;

use crate::db::{Pool, PooledConnection};
use crate::error::ApiError;
use crate::services::Desk;
use actix_web::web;

/// Shared by every handler: the pool and the desk (settings + key).
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub desk: Desk,
    /// The writers of received mail (group commit).
    pub writer: crate::services::group_commit::Writer,
}

impl AppState {
    /// Runs blocking database work off the async executor.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut PooledConnection, &Desk) -> Result<T, ApiError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let desk = self.desk.clone();
        // The blocking thread is another thread: carry the request's span (its id) over.
        let span = tracing::Span::current();
        web::block(move || {
            let _request = span.enter();
            let mut conn = pool.get().map_err(|e| {
                tracing::error!(error = %e, "no database connection");
                ApiError::unavailable("the database is unavailable; try again shortly")
            })?;
            f(&mut conn, &desk)
        })
        .await?
    }

    /// [`run`](Self::run) for work that fails as the services and the database do: the error
    /// is mapped to its HTTP answer here, once (`From<ServiceError> for ApiError`), instead of
    /// by a `map_err` at every call.
    pub async fn call<T, E, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        E: Into<crate::services::ServiceError>,
        F: FnOnce(&mut PooledConnection, &Desk) -> Result<T, E> + Send + 'static,
    {
        self.run(move |conn, desk| f(conn, desk).map_err(|e| ApiError::from(e.into())))
            .await
    }
}

/// A stored file, served only as a download: never rendered by the browser (`nosniff`, an
/// octet stream), under a name reduced to printable ASCII without quotes or backslashes.
pub fn download(filename: &str, data: Vec<u8>) -> actix_web::HttpResponse {
    download_as(filename, "application/octet-stream", data)
}

/// [`download`] with its own content type, for a type the browser must still not render
/// (a quarantined message is `message/rfc822`).
pub fn download_as(filename: &str, content_type: &str, data: Vec<u8>) -> actix_web::HttpResponse {
    use actix_web::http::header;
    let safe_name: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    actix_web::HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{safe_name}\""),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(data)
}

/// A quarantined message as kept (secrets redacted): `message/rfc822`, only as a download.
pub fn quarantined_message(row: crate::db::inbound::QuarantineRow) -> actix_web::HttpResponse {
    download_as(&format!("{}.eml", row.id), "message/rfc822", row.raw)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    // The mail endpoints first: actix tries the routes in the order they are registered, and
    // each route with a `{segment}` is a regular expression run on the path (regex-lite's
    // PikeVM). Behind the console's two dozen, they cost a webhook delivery about 25 µs
    // (docs/benchmarks.md, "The router's regular expressions").
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/inbound/email", web::post().to(inbound::receive_mail))
        .route("/inbound/sendgrid", web::post().to(providers::receive_sendgrid))
        .route("/inbound/mailgun", web::post().to(providers::receive_mailgun))
        // Mailgun forwards `body-mime` only to a URL ending in "mime".
        .route("/inbound/mailgun/mime", web::post().to(providers::receive_mailgun));
    console::configure(cfg);
    cfg.route("/", web::get().to(portal::show_help_centre))
        .route(
            "/help/forgot-username",
            web::get().to(portal::forms::show_forgot_username),
        )
        .route(
            "/help/forgot-username",
            web::post().to(portal::forms::submit_forgot_username),
        )
        .route("/help/ip-lockout", web::get().to(portal::forms::show_ip_lockout))
        .route("/help/ip-lockout", web::post().to(portal::forms::submit_ip_lockout))
        .route(
            "/help/account-terminated",
            web::get().to(portal::forms::show_account_terminated),
        )
        .route(
            "/help/account-terminated",
            web::post().to(portal::forms::submit_account_terminated),
        )
        .route("/help/login", web::get().to(portal::forms::show_login))
        .route("/help/login", web::post().to(portal::forms::submit_login))
        .route("/help/submitted", web::get().to(portal::forms::show_submitted))
        .route("/static/js/portal.js", web::get().to(portal::script))
        .route("/t/{token}", web::get().to(portal::status::show_status))
        .route("/t/{token}/reply", web::post().to(portal::status::post_reply))
        .route("/t/{token}/files/{id}", web::get().to(portal::status::download_file))
        .route(
            "/t/{token}/allowlisted-attempts",
            web::post().to(portal::status::post_attempts),
        )
        .route("/verify/{token}", web::get().to(portal::verify::show_challenge))
        .route("/verify/{token}", web::post().to(portal::verify::confirm_challenge))
        .service(
            web::scope("/api/v1")
                .app_data(api::json_config())
                .route("/tickets", web::get().to(api::tickets::list_tickets))
                .route("/tickets", web::post().to(api::tickets::create_ticket))
                .route("/tickets/{ref}", web::get().to(api::tickets::show_ticket))
                .route(
                    "/tickets/{ref}/actions/{name}",
                    web::post().to(api::tickets::apply_action),
                )
                .route("/tickets/{ref}/replies", web::post().to(api::tickets::create_reply))
                .route("/tickets/{ref}/audit", web::get().to(api::approvals::export_audit))
                .route("/approvals", web::get().to(api::approvals::list_approvals))
                .route("/approvals/{id}/approve", web::post().to(api::approvals::approve))
                .route("/approvals/{id}/reject", web::post().to(api::approvals::reject))
                .route(
                    "/tickets/{ref}/events/{id}/redact",
                    web::post().to(api::erase::erase_event),
                )
                .route("/canned", web::get().to(api::canned::list_canned))
                .route("/canned", web::post().to(api::canned::create_canned))
                .route("/canned/{id}", web::put().to(api::canned::update_canned))
                .route("/canned/{id}", web::delete().to(api::canned::delete_canned))
                .route("/accounts/{id}", web::get().to(api::accounts::show_account))
                .route("/auth-events", web::post().to(api::auth_events::import_auth_events))
                .route("/quarantine", web::get().to(api::quarantine::list_quarantine))
                .route(
                    "/quarantine/{id}/raw",
                    web::get().to(api::quarantine::download_quarantined),
                )
                .route("/quarantine/{id}/retry", web::post().to(api::quarantine::retry))
                .default_service(web::to(api::not_found)),
        );
}
