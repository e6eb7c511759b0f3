//! The console's one error type. Whatever stops a console request (a policy refusal, bad input,
//! a database that is down, an expired form, a page for admins) is answered here, once, as a
//! page that says why, with the status the API gives the same failure; handlers return it
//! with `?` instead of matching every error into a page themselves.

use crate::error::ApiError;
use crate::services::ServiceError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConsoleError {
    pub status: StatusCode,
    pub message: String,
}

/// What a console handler answers: its page, or the page of what stopped it.
pub type Answer = Result<HttpResponse, ConsoleError>;

impl ConsoleError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ConsoleError {
            status,
            message: message.into(),
        }
    }

    pub fn not_found(message: &str) -> Self {
        ConsoleError::new(StatusCode::NOT_FOUND, message)
    }

    /// A form whose CSRF token is missing or not this session's.
    pub fn expired_form() -> Self {
        ConsoleError::new(
            StatusCode::FORBIDDEN,
            "This form has expired. Reload the page and try again.",
        )
    }

    /// A signed-in agent who is not an admin, on an admin's page or form.
    pub fn admins_only() -> Self {
        ConsoleError::new(StatusCode::FORBIDDEN, "This is for admins.")
    }
}

/// The status and words the API gives the same failure (mapped there, once).
impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        ConsoleError::new(e.status, e.message)
    }
}

impl From<ServiceError> for ConsoleError {
    fn from(e: ServiceError) -> Self {
        ApiError::from(e).into()
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        refused_page(self.status, &self.message)
    }
}

#[derive(Template)]
#[template(path = "console/message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub text: &'a str,
}

/// A refusal or an error, as a page that says why.
pub fn refused_page(status: StatusCode, text: &str) -> HttpResponse {
    let title = match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::SERVICE_UNAVAILABLE => "Try again in a moment",
        _ => "That did not work",
    };
    crate::web::portal::render(status, &MessagePage { title, text })
}
