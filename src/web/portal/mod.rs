//! Customer pages (server-rendered, no JavaScript needed).

pub mod verify;

use actix_web::HttpResponse;
use askama::Template;

/// Renders a page template; a render failure is a bug in a template, answered with a 500.
pub fn render(status: actix_web::http::StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Something went wrong on our side.")
        }
    }
}
