//! A console form post with its CSRF token checked before the handler runs: a handler that
//! takes a [`CheckedForm`] cannot forget the check, and every form answers a missing or
//! stale token with the same "expired form" page.

use super::error::ConsoleError;
use super::session::{AdminAgent, CurrentAgent, csrf_ok};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

/// Who may post the form: any signed-in agent, or (for the admin pages) an admin, checked
/// first so that an agent gets the admins' page whatever the token.
pub trait Poster {
    fn agent(&self) -> &CurrentAgent;
}

impl Poster for CurrentAgent {
    fn agent(&self) -> &CurrentAgent {
        self
    }
}

impl Poster for AdminAgent {
    fn agent(&self) -> &CurrentAgent {
        &self.0
    }
}

/// The form's fields by name (a repeated name keeps one value).
#[derive(Debug, Default)]
pub struct Fields(HashMap<String, String>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The field's text, empty when the form did not send it.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_string()
    }

    /// A checkbox: sent as "on" by browsers, "true" by scripts.
    pub fn is_on(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v == "on" || v == "true")
    }

    /// Every field but the CSRF token, for a handler that passes the rest on.
    pub fn without_csrf(self) -> HashMap<String, String> {
        let mut fields = self.0;
        fields.remove("csrf");
        fields
    }
}

/// A posted form whose token is this session's, with who posted it.
pub struct CheckedForm<A = CurrentAgent> {
    pub agent: A,
    pub fields: Fields,
}

impl<A> FromRequest for CheckedForm<A>
where
    A: FromRequest + Poster + 'static,
    A::Error: Into<actix_web::Error>,
{
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let agent = A::from_request(req, payload);
        let form = web::Form::<HashMap<String, String>>::from_request(req, payload);
        Box::pin(async move {
            // Who asks first: a stranger goes to the sign-in page, not to "expired form".
            let agent = agent.await.map_err(Into::into)?;
            let fields = Fields(form.await?.into_inner());
            if !csrf_ok(agent.agent(), fields.get("csrf")) {
                return Err(ConsoleError::expired_form().into());
            }
            Ok(CheckedForm { agent, fields })
        })
    }
}
