//! Sign-in and sign-out. Failed sign-ins are throttled per (email, client) and per client.

use super::super::AppState;
use super::super::security::client_ip;
use super::session::{self, CurrentAgent, csrf_ok};
use super::{expired_form, page, refused_page};
use crate::db::{agents, console as queries};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

/// After this many failures for one email from one client within the window…
pub const FAILURES_PER_ACCOUNT: i64 = 5;
/// …or this many from one client, sign-in answers 429 for the window.
pub const FAILURES_PER_CLIENT: i64 = 20;
pub const WINDOW_MINUTES: i64 = 15;

#[derive(Template)]
#[template(path = "console/login.html")]
pub struct LoginPage {
    pub email: String,
    pub error: Option<&'static str>,
}

pub async fn show_login(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if session::read(&req, &state).is_some() {
        return HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/agent"))
            .finish();
    }
    page(
        StatusCode::OK,
        &LoginPage {
            email: String::new(),
            error: None,
        },
    )
}

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn sign_in(req: HttpRequest, state: web::Data<AppState>, form: web::Form<Credentials>) -> HttpResponse {
    let Credentials { email, password } = form.into_inner();
    let client = client_ip(&req, &state.desk.settings.trusted_proxies)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let typed = email.clone();
    let outcome = state
        .run(move |conn, _| {
            let (by_account, by_client) = queries::recent_failures(conn, &email, &client, WINDOW_MINUTES)
                .map_err(crate::services::ServiceError::from)?;
            if by_account >= FAILURES_PER_ACCOUNT || by_client >= FAILURES_PER_CLIENT {
                return Ok(Err(StatusCode::TOO_MANY_REQUESTS));
            }
            let agent = agents::find_by_email(conn, &email).map_err(crate::services::ServiceError::from)?;
            // Verify against a real hash even for unknown emails, so timing tells nothing.
            let hash = agent
                .as_ref()
                .map(|a| a.password_hash.clone())
                .unwrap_or_else(dummy_hash);
            let valid = crate::crypto::verify_password(&password, &hash) && agent.as_ref().is_some_and(|a| a.active);
            queries::record_login_attempt(conn, &email, &client, valid).map_err(crate::services::ServiceError::from)?;
            Ok(if valid {
                Ok(agent.map(|a| a.id).unwrap_or_default())
            } else {
                Err(StatusCode::UNAUTHORIZED)
            })
        })
        .await;
    match outcome {
        Ok(Ok(agent_id)) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/agent"))
            .cookie(session::new_session_cookie(&state, agent_id))
            .finish(),
        Ok(Err(StatusCode::TOO_MANY_REQUESTS)) => page(
            StatusCode::TOO_MANY_REQUESTS,
            &LoginPage {
                email: typed,
                error: Some("Too many failed sign-ins. Wait 15 minutes, then try again."),
            },
        ),
        Ok(Err(_)) => {
            state.desk.metrics.signin_failure();
            page(
                StatusCode::UNAUTHORIZED,
                &LoginPage {
                    email: typed,
                    error: Some("That email and password do not match an active agent."),
                },
            )
        }
        Err(e) => refused_page(e.status, &e.message),
    }
}

fn dummy_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| crate::crypto::hash_password("not a password anyone has").unwrap_or_default())
        .clone()
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// Ends every session of the agent, not only this browser's cookie.
pub async fn sign_out(agent: CurrentAgent, state: web::Data<AppState>, form: web::Form<CsrfOnly>) -> HttpResponse {
    if !csrf_ok(&agent, Some(&form.csrf)) {
        return expired_form();
    }
    let id = agent.id;
    if let Err(e) = state
        .run(move |conn, _| agents::end_sessions(conn, id).map_err(|e| crate::services::ServiceError::from(e).into()))
        .await
    {
        return refused_page(e.status, &e.message);
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/agent/login"))
        .cookie(session::removal_cookie())
        .finish()
}
