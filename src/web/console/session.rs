//! The agent's session: a private (encrypted and authenticated) cookie holding the agent id,
//! when it was issued and the CSRF token. Nothing is kept in process memory, so any instance
//! can serve any request; the agent row is read on every request, so a deactivated agent is
//! out at once.

use super::super::AppState;
use crate::db::agents;
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
pub fn new_session_cookie(state: &AppState, agent_id: i64) -> Cookie<'static> {
    let data = SessionData {
        agent_id,
        csrf: crate::crypto::random_token(),
        issued_at: chrono::Utc::now().timestamp(),
    };
    let mut jar = CookieJar::new();
    let cookie = Cookie::build(COOKIE, serde_json::to_string(&data).unwrap_or_default())
        .path("/agent")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.desk.settings.base_url.starts_with("https://"))
        .max_age(actix_web::cookie::time::Duration::hours(SESSION_HOURS))
        .finish();
    jar.private_mut(&cookie_key(state)).add(cookie);
    jar.delta().next().cloned().unwrap_or_else(|| Cookie::new(COOKIE, ""))
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
    #[error(transparent)]
    Unavailable(#[from] ApiError),
}

impl ResponseError for ConsoleAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleAuthError::SignIn => StatusCode::SEE_OTHER,
            ConsoleAuthError::Unavailable(e) => e.status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ConsoleAuthError::SignIn => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/agent/login"))
                .cookie(removal_cookie())
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
        Box::pin(async move {
            let (Some(state), Some(session)) = (state, session) else {
                return Err(ConsoleAuthError::SignIn);
            };
            let id = session.agent_id;
            let agent = state
                .run(move |conn, _| agents::find(conn, id).map_err(|e| crate::services::ServiceError::from(e).into()))
                .await?;
            let still_valid = |a: &crate::db::agents::AgentRow| {
                a.active
                    && a.sessions_valid_after
                        .is_none_or(|t| t.and_utc().timestamp() <= session.issued_at)
            };
            match agent.filter(still_valid) {
                Some(a) => Ok(CurrentAgent {
                    id: a.id,
                    admin: a.is_admin(),
                    email: a.email,
                    name: a.name,
                    csrf: session.csrf,
                }),
                None => Err(ConsoleAuthError::SignIn),
            }
        })
    }
}

/// Every state-changing console form carries the session's CSRF token.
pub fn csrf_ok(agent: &CurrentAgent, given: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(agent.csrf.as_bytes())))
}
