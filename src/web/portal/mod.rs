//! Customer pages: server-rendered, usable without JavaScript, readable on a phone.

pub mod cookies;
pub mod form_state;
pub mod forms;
pub mod multipart;
pub mod status;
pub mod verify;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

/// Renders a page template; a render failure is a bug in a template, answered with a 500.
pub fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
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

#[derive(Template)]
#[template(path = "portal/help_centre.html")]
pub struct HelpCentrePage {}

/// `GET /`: the help centre.
pub async fn show_help_centre() -> HttpResponse {
    render(StatusCode::OK, &HelpCentrePage {})
}

#[derive(Template)]
#[template(path = "portal/message.html")]
pub struct MessagePage {
    pub title: &'static str,
    pub text: &'static str,
}

/// The same page for an unknown and a malformed link: nothing tells which.
pub fn not_found() -> HttpResponse {
    render(
        StatusCode::NOT_FOUND,
        &MessagePage {
            title: "We cannot find this page",
            text: "If you followed a link from one of our emails, check that you copied the whole address. Links to your request stay valid; if it still does not work, reply to our email.",
        },
    )
}

/// A temporary problem on our side: nothing the customer typed is lost by trying again.
pub fn status_page_error(error: impl std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %error, "customer page failed");
    render(
        StatusCode::SERVICE_UNAVAILABLE,
        &MessagePage {
            title: "We could not save this just now",
            text: "Something went wrong on our side. Please go back and send it again in a minute; nothing was recorded.",
        },
    )
}

/// The one script of the customer pages (compiled in, like the stylesheet): pages work without it.
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../../../static/js/portal.js"))
}

pub async fn default_not_found() -> HttpResponse {
    not_found()
}
