//! Sign-in and sign-out. Failed sign-ins are throttled per (email, client) and per client.

use super::super::AppState;
use super::super::security::client_ip;
use super::session::{self, CurrentAgent, csrf_ok};
use super::{expired_form, page, refused_page};
use crate::db::agents;
use crate::services::sign_in;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

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
    // Count and record first (a short transaction), then check the password with no
    // connection held, then mark the try succeeded if it did.
    let gate = state
        .run(move |conn, _| sign_in::begin(conn, &email, &client).map_err(Into::into))
        .await;
    let outcome = match gate {
        Ok(sign_in::Gate::Throttled) => Ok(Err(StatusCode::TOO_MANY_REQUESTS)),
        Ok(sign_in::Gate::Try(attempt)) => {
            let checked = web::block(move || (attempt.check(&password, &dummy_hash()), attempt.attempt_id())).await;
            match checked {
                Ok((Some(agent_id), attempt_id)) => state
                    .run(move |conn, _| sign_in::succeeded(conn, attempt_id).map_err(Into::into))
                    .await
                    .map(|()| Ok(agent_id)),
                Ok((None, _)) => Ok(Err(StatusCode::UNAUTHORIZED)),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e),
    };
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
        Ok(Err(_)) => page(
            StatusCode::UNAUTHORIZED,
            &LoginPage {
                email: typed,
                error: Some("That email and password do not match an active agent."),
            },
        ),
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
