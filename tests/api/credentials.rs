//! Agents' credentials: sessions end exactly at sign-out and at a password change, the sign-in
//! form is protected from login CSRF, and the first admin's one-time password must be replaced
//! and expires unused (docs/reference.md#agent-console, docs/security.md). API tokens and
//! `agents password`: `api_tokens.rs`.

use crate::both_backends;
use crate::helpers::{Backend, Console, TestApp};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};

/// The `name=value` part of the `Set-Cookie` for `name`.
pub(crate) fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")) && pair.len() > name.len() + 1)
        .map(str::to_string)
}

pub(crate) fn csrf_in(page: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = page.find(marker).expect("a form with a CSRF token") + marker.len();
    page[start..].split('"').next().unwrap_or_default().to_string()
}

/// A client that keeps no cookies: the test hands them over itself.
pub(crate) fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in by hand; returns the session cookie as a `Cookie` header value.
pub(crate) async fn session_cookie(app: &TestApp, email: &str, password: &str) -> String {
    let client = bare_client();
    let page = client.get(format!("{}/agent/login", app.address)).send().await.unwrap();
    let login_cookie = set_cookie(&page, "rd_login").expect("the sign-in page sets its CSRF cookie");
    let token = csrf_in(&page.text().await.unwrap());
    let response = client
        .post(format!("{}/agent/login", app.address))
        .header(COOKIE, login_cookie)
        .form(&[("email", email), ("password", password), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    set_cookie(&response, "rd_session").expect("a session cookie")
}

pub(crate) async fn get_with(app: &TestApp, cookie: &str, path: &str) -> (StatusCode, Option<String>, String) {
    crate::helpers::page_of(
        bare_client()
            .get(format!("{}{path}", app.address))
            .header(COOKIE, cookie),
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Sessions end exactly
// ---------------------------------------------------------------------------------------------

both_backends!(
    a_cookie_saved_before_a_sign_out_in_the_same_second_is_refused,
    saved_cookie_after_sign_out
);

async fn saved_cookie_after_sign_out(app: TestApp) {
    let saved = session_cookie(&app, "admin@localhost", &app.admin_password).await;
    let other = session_cookie(&app, "admin@localhost", &app.admin_password).await;
    let (status, _, page) = get_with(&app, &saved, "/agent").await;
    assert_eq!(status, StatusCode::OK);
    // Sign out at once (well within the second the cookies were issued in), with the other one.
    let (_, _, other_page) = get_with(&app, &other, "/agent").await;
    let response = bare_client()
        .post(format!("{}/agent/logout", app.address))
        .header(COOKIE, &other)
        .form(&[("csrf", csrf_in(&other_page))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    for cookie in [&saved, &other] {
        let (status, location, _) = get_with(&app, cookie, "/agent").await;
        assert_eq!(
            (status, location.as_deref()),
            (StatusCode::SEE_OTHER, Some("/agent/login")),
            "a cookie issued before the sign-out no longer opens the console"
        );
    }
    assert!(page.contains("Sign out"));
    // Signing in again works, in the new generation.
    let fresh = session_cookie(&app, "admin@localhost", &app.admin_password).await;
    assert_eq!(get_with(&app, &fresh, "/agent").await.0, StatusCode::OK);
}

both_backends!(
    changing_my_password_needs_the_current_one_and_ends_my_other_sessions,
    change_password
);

async fn change_password(app: TestApp) {
    let here = Console::new(&app);
    assert_eq!(
        here.sign_in("admin@localhost", &app.admin_password).await,
        StatusCode::SEE_OTHER
    );
    let elsewhere = session_cookie(&app, "admin@localhost", &app.admin_password).await;
    let new_password = "a brand new passphrase";
    let form = |current: &str, new: &str, again: &str| {
        vec![
            ("current_password", current.to_string()),
            ("new_password", new.to_string()),
            ("new_password_again", again.to_string()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>, csrf: Option<String>| {
        let here = &here;
        async move {
            let token = match csrf {
                Some(t) => t,
                None => here.csrf("/agent/password").await,
            };
            let mut all: Vec<(&str, &str)> = vec![("csrf", token.as_str())];
            all.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
            here.post("/agent/password", &all).await
        }
    };
    // Refusals: no CSRF token, a wrong current password, rules, a mismatch, the same password.
    let (status, _, _) = post(
        form(&app.admin_password, new_password, new_password),
        Some("forged".into()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, page) = post(form("not my password", new_password, new_password), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{page}");
    for (new, again) in [
        ("short", "short"),
        (&"x".repeat(257)[..], &"x".repeat(257)[..]),
        (" padded passphrase ", " padded passphrase "),
        (new_password, "something else entirely"),
        (app.admin_password.as_str(), app.admin_password.as_str()),
    ] {
        let (status, _, page) = post(form(&app.admin_password, new, again), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{new:?}: {page}");
        assert!(!page.contains(new) || new.len() < 6, "a password is never echoed back");
    }
    assert_eq!(
        get_with(&app, &elsewhere, "/agent").await.0,
        StatusCode::OK,
        "nothing changed yet"
    );

    let (status, location, _) = post(form(&app.admin_password, new_password, new_password), None).await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/agent/password?changed=1"))
    );
    assert_eq!(
        here.get("/agent").await.0,
        StatusCode::OK,
        "this browser stays signed in"
    );
    let (status, location, _) = get_with(&app, &elsewhere, "/agent").await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/agent/login")),
        "the other session ended"
    );
    let fresh = Console::new(&app);
    assert_eq!(
        fresh.sign_in("admin@localhost", &app.admin_password).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        fresh.sign_in("admin@localhost", new_password).await,
        StatusCode::SEE_OTHER
    );
}

// ---------------------------------------------------------------------------------------------
// Login CSRF
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_form_needs_its_token_its_cookie_and_our_origin() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let url = format!("{}/agent/login", app.address);
    let client = bare_client();
    let page = client.get(&url).send().await.unwrap();
    let login_cookie = set_cookie(&page, "rd_login").unwrap();
    let token = csrf_in(&page.text().await.unwrap());
    let creds = |csrf: &str| {
        vec![
            ("email", "admin@localhost".to_string()),
            ("password", app.admin_password.clone()),
            ("csrf", csrf.to_string()),
        ]
    };
    let attempts: Vec<(&str, Option<&str>, Option<&str>, String)> = vec![
        ("no token", Some(login_cookie.as_str()), None, String::new()),
        ("no cookie", None, None, token.clone()),
        ("a forged token", Some(login_cookie.as_str()), None, "A".repeat(43)),
        (
            "another site's page",
            Some(login_cookie.as_str()),
            Some("https://evil.example"),
            token.clone(),
        ),
        (
            "an opaque origin",
            Some(login_cookie.as_str()),
            Some("null"),
            token.clone(),
        ),
    ];
    for (what, cookie, origin, csrf) in attempts {
        let mut request = client.post(&url).form(&creds(&csrf));
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
        assert!(set_cookie(&response, "rd_session").is_none(), "{what}: no session");
        let page = response.text().await.unwrap();
        assert!(
            page.contains(r#"name="csrf""#),
            "{what}: the form comes back with a fresh token"
        );
    }
    let response = client
        .post(&url)
        .header(COOKIE, login_cookie)
        .header("origin", app.address.as_str())
        .form(&creds(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "our own origin is fine");
    assert!(set_cookie(&response, "rd_session").is_some());
}

// ---------------------------------------------------------------------------------------------
// The first admin's one-time password
// ---------------------------------------------------------------------------------------------

both_backends!(
    the_one_time_password_leads_only_to_the_change_form_until_replaced,
    forced_change
);

async fn forced_change(app: TestApp) {
    let app = {
        let backend = app.backend();
        drop(app);
        TestApp::spawn_with_one_time_password(backend).await.unwrap()
    };
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.one_time_password).await,
        StatusCode::SEE_OTHER
    );
    for path in [
        "/agent",
        "/agent/tickets/RD-1",
        "/agent/admin/agents",
        "/agent/admin/tokens",
    ] {
        let (status, location, _) = console.get(path).await;
        assert_eq!(
            (status, location.as_deref()),
            (StatusCode::SEE_OTHER, Some("/agent/password")),
            "{path}"
        );
    }
    let (status, page) = {
        let (status, _, page) = console.get("/agent/password").await;
        (status, page)
    };
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("one-time password"), "{page}");
    let csrf = csrf_in(&page);
    let (status, location, _) = console
        .post(
            "/agent/admin/agents",
            &[
                ("csrf", csrf.as_str()),
                ("email", "sneaky@desk.test"),
                ("name", "Sneaky"),
                ("role", "admin"),
                ("password", "a long enough password"),
            ],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/agent/password")),
        "no state change before the password is replaced"
    );
    let new_password = "the admin's own passphrase";
    let (status, _, _) = console
        .post(
            "/agent/password",
            &[
                ("csrf", csrf.as_str()),
                ("current_password", app.one_time_password.as_str()),
                ("new_password", new_password),
                ("new_password_again", new_password),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, page) = console.get("/agent/admin/agents").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("sneaky@desk.test"));
    let fresh = Console::new(&app);
    assert_eq!(
        fresh.sign_in("admin@localhost", &app.one_time_password).await,
        StatusCode::UNAUTHORIZED,
        "the one-time password is gone"
    );
    assert_eq!(
        fresh.sign_in("admin@localhost", new_password).await,
        StatusCode::SEE_OTHER
    );
}

both_backends!(
    the_one_time_password_is_refused_after_24_hours_unused,
    one_time_password_expires
);

async fn one_time_password_expires(app: TestApp) {
    let app = {
        let backend = app.backend();
        drop(app);
        TestApp::spawn_with_one_time_password(backend).await.unwrap()
    };
    app.clock
        .advance(chrono::Duration::hours(24) + chrono::Duration::seconds(1));
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.one_time_password).await,
        StatusCode::UNAUTHORIZED,
        "24 hours unused: it no longer signs in"
    );
    // `agents password` (here its service) is the way back in.
    let mut conn = app.conn();
    recoverydesk::services::agents::set_password(&mut conn, "admin@localhost", "set by the operator").unwrap();
    assert_eq!(
        console.sign_in("admin@localhost", "set by the operator").await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        console.get("/agent").await.0,
        StatusCode::OK,
        "and no forced change after that"
    );

    // Used once before the 24 hours are out, it stays usable (to reach the change form).
    let used = TestApp::spawn_with_one_time_password(app.backend()).await.unwrap();
    used.clock.advance(chrono::Duration::hours(23));
    let console = Console::new(&used);
    assert_eq!(
        console.sign_in("admin@localhost", &used.one_time_password).await,
        StatusCode::SEE_OTHER
    );
    used.clock.advance(chrono::Duration::hours(2));
    let again = Console::new(&used);
    assert_eq!(
        again.sign_in("admin@localhost", &used.one_time_password).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        again.get("/agent").await.1.as_deref(),
        Some("/agent/password"),
        "still only the change form"
    );
}
