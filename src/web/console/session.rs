//! The agent's session: a private (encrypted and authenticated) cookie holding the agent id,
//! when it was issued and the CSRF token. Nothing is kept in process memory, so any instance
//! can serve any request; the agent row is read on every request, so a deactivated agent is
//! out at once.

use super::super::AppState;
use crate::db::agents::AgentRow;
use crate::error::ApiError;
use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;

pub const COOKIE: &str = "rd_session";
/// A session ends after this long, however active.
pub const SESSION_HOURS: i64 = 12;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    pub agent_id: i64,
    pub csrf: String,
    pub issued_at: i64,
    /// The agent's session generation when this was issued; sign-out and a password change
    /// move the agent on, and the cookie is void (compared exactly, not by time).
    #[serde(default)]
    pub generation: i64,
}

/// The cookie key, derived from the desk's secret so every instance shares it.
pub fn cookie_key(state: &AppState) -> Key {
    let derived = crate::crypto::hmac_token(state.desk.secret.bytes(), &["session-cookie-key"]);
    let mut material = derived.into_bytes();
    material.extend_from_slice(state.desk.secret.bytes());
    Key::derive_from(&material)
}

pub fn read(req: &HttpRequest, state: &AppState) -> Option<SessionData> {
    let cookie = req.cookie(COOKIE)?;
    let mut jar = CookieJar::new();
    jar.add_original(cookie);
    let plain = jar.private(&cookie_key(state)).get(COOKIE)?;
    let data: SessionData = serde_json::from_str(plain.value()).ok()?;
    let age = chrono::Utc::now().timestamp() - data.issued_at;
    (0..SESSION_HOURS * 3600).contains(&age).then_some(data)
}

/// A fresh session (new CSRF token, new issue time): sign-in renews everything.
pub fn new_session_cookie(state: &AppState, agent_id: i64, generation: i64) -> Cookie<'static> {
    let data = SessionData {
        agent_id,
        csrf: crate::crypto::random_token(),
        issued_at: chrono::Utc::now().timestamp(),
        generation,
    };
    private_cookie(
        state,
        COOKIE,
        serde_json::to_string(&data).unwrap_or_default(),
        "/agent",
    )
}

/// One of the console's cookies, encrypted and authenticated with the desk's key: script
/// cannot read it, no other site's request carries it, and it is `Secure` on an https desk.
fn private_cookie(state: &AppState, name: &'static str, value: String, path: &'static str) -> Cookie<'static> {
    let mut jar = CookieJar::new();
    let cookie = Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.desk.settings.base_url.starts_with("https://"))
        .max_age(actix_web::cookie::time::Duration::hours(SESSION_HOURS))
        .finish();
    jar.private_mut(&cookie_key(state)).add(cookie);
    jar.delta().next().cloned().unwrap_or_else(|| Cookie::new(name, ""))
}

pub fn removal_cookie() -> Cookie<'static> {
    let mut cookie = Cookie::build(COOKIE, "")
        .path("/agent")
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish();
    cookie.make_removal();
    cookie
}

/// The signed-in agent, as every console handler receives it.
#[derive(Debug, Clone)]
pub struct CurrentAgent {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub admin: bool,
    pub csrf: String,
    pub generation: i64,
}

impl CurrentAgent {
    pub fn actor(&self) -> crate::services::Actor {
        crate::services::Actor::Agent {
            id: self.id,
            email: self.email.clone(),
            admin: self.admin,
        }
    }
}

/// Anonymous or expired: to the sign-in page (303), whatever was asked.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleAuthError {
    #[error("sign in first")]
    SignIn,
    /// Signed in with a one-time password: nothing but the change form until it is replaced.
    #[error("choose a new password first")]
    ChangePassword,
    #[error(transparent)]
    Unavailable(#[from] ApiError),
}

impl ResponseError for ConsoleAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleAuthError::SignIn | ConsoleAuthError::ChangePassword => StatusCode::SEE_OTHER,
            ConsoleAuthError::Unavailable(e) => e.status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ConsoleAuthError::SignIn => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/agent/login"))
                .cookie(removal_cookie())
                .finish(),
            ConsoleAuthError::ChangePassword => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, PASSWORD_PATH))
                .finish(),
            ConsoleAuthError::Unavailable(e) => e.error_response(),
        }
    }
}

impl FromRequest for CurrentAgent {
    type Error = ConsoleAuthError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let session = state.as_ref().and_then(|s| read(req, s));
        let path = req.path().to_string();
        Box::pin(async move {
            let (Some(state), Some(session)) = (state, session) else {
                return Err(ConsoleAuthError::SignIn);
            };
            let id = session.agent_id;
            let agent = state
                .call(move |conn, _| crate::services::sign_in::session_agent(conn, id))
                .await?;
            // Exact: a sign-out (or password change) in the same second as this cookie was
            // issued still ends it.
            let still_valid = |a: &AgentRow| a.active && a.session_generation == session.generation;
            let Some(a) = agent.filter(still_valid) else {
                return Err(ConsoleAuthError::SignIn);
            };
            if a.password_must_change && !ALLOWED_BEFORE_CHANGE.contains(&path.as_str()) {
                return Err(ConsoleAuthError::ChangePassword);
            }
            Ok(CurrentAgent {
                id: a.id,
                admin: a.is_admin(),
                email: a.email,
                name: a.name,
                csrf: session.csrf,
                generation: a.session_generation,
            })
        })
    }
}

/// A signed-in admin. Admin pages and forms take this instead of [`CurrentAgent`]: any other
/// agent gets the 403 page before the handler runs, so no handler can forget the check.
#[derive(Debug, Clone)]
pub struct AdminAgent(pub CurrentAgent);

impl FromRequest for AdminAgent {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let agent = CurrentAgent::from_request(req, payload);
        Box::pin(async move {
            let agent = agent.await?;
            if agent.admin {
                Ok(AdminAgent(agent))
            } else {
                Err(super::error::ConsoleError::admins_only().into())
            }
        })
    }
}

/// The change-password page.
pub const PASSWORD_PATH: &str = "/agent/password";
/// What an agent whose password must change may still reach.
const ALLOWED_BEFORE_CHANGE: [&str; 2] = [PASSWORD_PATH, "/agent/logout"];

/// Every state-changing console form carries the session's CSRF token.
pub fn csrf_ok(agent: &CurrentAgent, given: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(agent.csrf.as_bytes())))
}

/// [`csrf_ok`] as a step of a handler that answers with [`ConsoleError`](super::error::ConsoleError).
pub fn check_csrf(agent: &CurrentAgent, given: Option<&str>) -> Result<(), super::error::ConsoleError> {
    if csrf_ok(agent, given) {
        Ok(())
    } else {
        Err(super::error::ConsoleError::expired_form())
    }
}

/// The sign-in form's CSRF token. There is no session yet, so the token is kept in a private
/// cookie of its own (SameSite=Strict, only for the sign-in path) and the form must carry the
/// same value: a page on another site can make a browser post the form, but cannot read or set
/// that cookie (login CSRF).
pub const LOGIN_COOKIE: &str = "rd_login";

pub fn login_csrf(req: &HttpRequest, state: &AppState) -> Option<String> {
    let cookie = req.cookie(LOGIN_COOKIE)?;
    let mut jar = CookieJar::new();
    jar.add_original(cookie);
    let plain = jar.private(&cookie_key(state)).get(LOGIN_COOKIE)?;
    crate::crypto::looks_like_token(plain.value()).then(|| plain.value().to_string())
}

/// A fresh sign-in token and the cookie that carries it.
pub fn new_login_cookie(state: &AppState) -> (String, Cookie<'static>) {
    let token = crate::crypto::random_token();
    let cookie = private_cookie(state, LOGIN_COOKIE, token.clone(), "/agent/login");
    (token, cookie)
}

/// Whether a sign-in post comes from the desk's own pages: an `Origin` header, when the browser
/// sends one, must name the desk (its base URL, or the host the request was sent to).
pub fn same_origin(req: &HttpRequest, base_url: &str) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim().trim_end_matches('/');
    if origin.eq_ignore_ascii_case(origin_of(base_url)) {
        return true;
    }
    let host = req.connection_info().host().to_string();
    let scheme = req.connection_info().scheme().to_string();
    ["http", "https"].contains(&scheme.as_str()) && origin.eq_ignore_ascii_case(&format!("{scheme}://{host}"))
}

/// `https://desk.example:8443/sub` → `https://desk.example:8443`.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

pub fn removal_login_cookie(state: &AppState) -> Cookie<'static> {
    let mut cookie = Cookie::build(LOGIN_COOKIE, "")
        .path("/agent/login")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.desk.settings.base_url.starts_with("https://"))
        .finish();
    cookie.make_removal();
    cookie
}

/// Both tokens present and equal (compared in constant time).
pub fn login_csrf_ok(expected: Option<&str>, given: &str) -> bool {
    use subtle::ConstantTimeEq;
    expected.is_some_and(|e| !given.is_empty() && bool::from(e.as_bytes().ct_eq(given.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn the_origin_of_a_base_url_is_its_scheme_and_authority() {
        assert_eq!(
            origin_of("https://desk.example:8443/sub/path"),
            "https://desk.example:8443"
        );
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }
}
