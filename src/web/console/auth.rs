//! Sign-in and sign-out. Failed sign-ins are throttled per (email, client) and per client.

use super::super::AppState;
use super::super::security::client_ip;
use super::form::CheckedForm;
use super::session;
use super::{page, refused_page};
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
    pub csrf: String,
}

/// The sign-in page with its CSRF token: the one this browser's sign-in cookie holds (two tabs
/// share it), or a fresh one with the cookie that must come back with it.
fn login_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    email: String,
    error: Option<&'static str>,
) -> HttpResponse {
    let (csrf, cookie) = match session::login_csrf(req, state) {
        Some(csrf) => (csrf, None),
        None => {
            let (csrf, cookie) = session::new_login_cookie(state);
            (csrf, Some(cookie))
        }
    };
    let mut response = page(status, &LoginPage { email, error, csrf });
    if let Some(cookie) = cookie {
        // A cookie built here always has a valid name and value.
        let _ = response.add_cookie(&cookie);
    }
    // Under `no-referrer` a browser sends `Origin: null` with the form, even to us; this page's
    // URL holds nothing private, so it lets the browser name its origin to its own site (and
    // still nothing to others), and a post saying `null` can be refused.
    response
        .headers_mut()
        .insert(header::REFERRER_POLICY, header::HeaderValue::from_static("same-origin"));
    response
}

pub async fn show_login(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if session::read(&req, &state).is_some() {
        return HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/agent"))
            .finish();
    }
    login_page(&req, &state, StatusCode::OK, String::new(), None)
}

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

pub async fn sign_in(req: HttpRequest, state: web::Data<AppState>, form: web::Form<Credentials>) -> HttpResponse {
    let Credentials { email, password, csrf } = form.into_inner();
    // Login CSRF: the post must come from our own sign-in page, in this browser.
    let expected = session::login_csrf(&req, &state);
    if !session::same_origin(&req, &state.desk.settings.base_url) || !session::login_csrf_ok(expected.as_deref(), &csrf)
    {
        return login_page(
            &req,
            &state,
            StatusCode::FORBIDDEN,
            email,
            Some("This sign-in form has expired or came from another site. Sign in again."),
        );
    }
    let client = client_ip(&req, &state.desk.settings.trusted_proxies)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let typed = email.clone();
    // Count and record first (a short transaction), then check the password with no
    // connection held, then mark the try succeeded if it did.
    let gate = state
        .run(move |conn, desk| sign_in::begin(conn, &email, &client, &desk.settings.clock).map_err(Into::into))
        .await;
    let outcome = match gate {
        Ok(sign_in::Gate::Throttled) => Ok(Err(StatusCode::TOO_MANY_REQUESTS)),
        Ok(sign_in::Gate::Try(attempt)) => {
            let checked = web::block(move || (attempt.check(&password, &dummy_hash()), attempt.attempt_id())).await;
            match checked {
                Ok((Some(signed_in), attempt_id)) => state
                    .run(move |conn, _| sign_in::succeeded(conn, attempt_id, signed_in.agent_id).map_err(Into::into))
                    .await
                    .map(|()| Ok(signed_in)),
                Ok((None, _)) => Ok(Err(StatusCode::UNAUTHORIZED)),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e),
    };
    match outcome {
        // A one-time password leads on to the change form: `/agent` sends it there.
        Ok(Ok(signed_in)) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/agent"))
            .cookie(session::new_session_cookie(
                &state,
                signed_in.agent_id,
                signed_in.generation,
            ))
            .cookie(session::removal_login_cookie(&state))
            .finish(),
        Ok(Err(StatusCode::TOO_MANY_REQUESTS)) => login_page(
            &req,
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            typed,
            Some("Too many failed sign-ins. Wait 15 minutes, then try again."),
        ),
        Ok(Err(_)) => {
            state.desk.metrics.signin_failure();
            login_page(
                &req,
                &state,
                StatusCode::UNAUTHORIZED,
                typed,
                Some("That email and password do not match an active agent."),
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

/// Ends every session of the agent, not only this browser's cookie.
pub async fn sign_out(form: CheckedForm, state: web::Data<AppState>) -> HttpResponse {
    let id = form.agent.id;
    if let Err(e) = state.call(move |conn, _| sign_in::end_sessions(conn, id)).await {
        return refused_page(e.status, &e.message);
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/agent/login"))
        .cookie(session::removal_cookie())
        .finish()
}
