//! The customer forms, black-box: what a customer sees, and what reaches which mailbox.

use crate::both_backends;
use crate::helpers::{Backend, TestApp, account};
use reqwest::StatusCode;
use serde_json::json;

both_backends!(
    forgot_username_form_outcomes_follow_the_directory,
    forgot_username_outcomes
);
both_backends!(
    every_form_answers_the_same_whether_or_not_an_account_matches,
    no_enumeration
);

fn mailed(app: &TestApp, reference: &str) -> Vec<(String, String)> {
    app.outbox_of(reference).into_iter().map(|(t, to, _)| (t, to)).collect()
}

use crate::diagnosis::reference_from;

async fn forgot(app: &TestApp, email: &str) -> (StatusCode, String) {
    let (status, _, page) = app
        .form("/help/forgot-username", &[("email", email), ("details", "")])
        .await;
    (status, reference_from(&page))
}

async fn forgot_username_outcomes(app: TestApp) {
    let app = app.respawn_with(&[("--form-rate-limit", "1000")]).await;
    let mut sub = account("acc_sub", "sub-user", "sub@x.test", "active");
    sub["parent_id"] = json!("acc_ban");
    app.import_accounts(&[
        account("acc_act", "active-user", "active@x.test", "active"),
        account("acc_pend", "pending-user", "pending@x.test", "pending_confirmation"),
        account("acc_term", "term-user", "term@x.test", "terminated"),
        account("acc_ban", "banned-user", "banned@x.test", "banned"),
        sub,
    ]);
    for (email, template, state) in [
        ("active@x.test", "username_delivery", "resolved"),
        ("pending@x.test", "unconfirmed_signup", "resolved"),
        ("term@x.test", "terminated_notice", "resolved"),
        ("banned@x.test", "banned_answer", "refused"),
        ("sub@x.test", "banned_answer", "refused"),
        ("nobody@x.test", "acknowledgement", "awaiting_agent"),
    ] {
        let (status, r) = forgot(&app, email).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{email}");
        assert_eq!(
            mailed(&app, &r),
            vec![(template.to_string(), email.to_string())],
            "{email}"
        );
        assert_eq!(app.ticket(&r).await["state"], state, "{email}");
    }
}

/// Everything a customer sees after submitting, with the reference and the typed address
/// masked, for one form post.
async fn what_the_customer_sees(app: &TestApp, path: &str, fields: &[(&str, &str)], email: &str) -> String {
    let (status, location, page) = app.form(path, fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let location = location.unwrap();
    let reference = reference_from(&page);
    let page_status = StatusCode::OK;
    let encoded_email = serde_urlencoded::to_string([("e", email)]).unwrap()[2..].to_string();
    let mask = |s: &str| {
        s.replace(&reference, "RD-?")
            .replace(email, "EMAIL")
            .replace(&encoded_email, "EMAIL")
    };
    format!("{status} {} | {page_status} {}", mask(&location), mask(&page))
}

async fn no_enumeration(app: TestApp) {
    let app = app.respawn_with(&[("--form-rate-limit", "1000")]).await;
    let mut term = account("acc_term", "late", "known-term@x.test", "terminated");
    term["balance_due_cents"] = json!(990);
    app.import_accounts(&[
        account("acc_known", "known-user", "known@x.test", "active"),
        account("acc_banned", "banned-user", "known-banned@x.test", "banned"),
        term,
    ]);
    let forms: [(&str, Vec<(&str, &str)>); 4] = [
        ("/help/forgot-username", vec![("details", "please")]),
        (
            "/help/ip-lockout",
            vec![
                ("tried_allowlisted_ips", "yes"),
                ("tried_from", "office"),
                ("current_ip", "198.51.100.7"),
            ],
        ),
        ("/help/account-terminated", vec![("details", "")]),
        ("/help/login", vec![("problem", "web_login")]),
    ];
    for (path, extra) in forms {
        let mut seen = vec![];
        for email in [
            "known@x.test",
            "known-banned@x.test",
            "known-term@x.test",
            "nobody-at-all@x.test",
        ] {
            let mut fields = vec![("email", email)];
            fields.extend(extra.iter().copied());
            seen.push(what_the_customer_sees(&app, path, &fields, email).await);
        }
        assert!(
            seen.iter().all(|s| s == &seen[0]),
            "{path}: the answers differ:\n{}",
            seen.join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_forms_come_back_with_messages_and_the_values_kept() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let typed = "<b>not-an-email</b>";
    let (status, _, body) = app
        .form(
            "/help/ip-lockout",
            &[
                ("email", typed),
                ("tried_allowlisted_ips", "yes"),
                ("current_ip", "999.1.1.1"),
                ("details", "<script>alert(1)</script>"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains("&#60;b&#62;not-an-email&#60;/b&#62;"),
        "the typed value is kept, escaped"
    );
    assert!(!body.contains("<script>alert(1)"), "nothing typed is ever markup");
    assert!(body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    for message in [
        "An email address needs an @",
        "Tell us where you tried from",
        "This is not an IP address",
    ] {
        assert!(body.contains(message), "missing {message:?}");
    }
    assert!(body.contains(r#"aria-invalid="true""#));
    assert!(app.outbox().is_empty(), "nothing was opened");

    let (status, _, body) = app
        .form("/help/login", &[("email", "a@b.test"), ("failed_at", "yesterday")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("Please choose what happens") && body.contains("Use a date and time"));
    let (status, _, _) = app.form("/help/forgot-username", &[]).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an empty post is a form with errors"
    );
    let (_, _, body) = app.form("/help/login", &[("email", "a@b.test")]).await;
    assert!(!body.contains(r#"type="password""#), "no password field anywhere");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_form_takes_smtp_usernames_as_typed_and_flags_common_mistakes() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let (status, _, page) = app
        .form(
            "/help/login",
            &[
                ("email", "dev@x.test"),
                ("problem", "smtp_535"),
                ("smtp_username", " crm@mailer "),
                ("failed_at", "2026-11-20T10:00"),
            ],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "an odd username is never a validation error"
    );
    assert!(
        page.contains("contains <code>@</code>") && page.contains("re-enter the credentials by hand"),
        "{page}"
    );
    let t = app.ticket(&reference_from(&page)).await;
    assert_eq!(t["events"][0]["data"]["smtp_username"], " crm@mailer ");
    assert_eq!(t["events"][0]["data"]["failed_at"], "2026-11-20T10:00:00Z");
    assert_eq!(t["subject"], "SMTP 535 Authentication failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_within_the_hour_attaches_and_the_sixth_submission_is_refused_kindly() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.import_accounts(&[account("acc_1", "user", "me@x.test", "active")]);
    let (_, first) = forgot(&app, "me@x.test").await;
    let (_, second) = forgot(&app, "ME@x.test").await;
    assert_eq!(first, second, "the same request attaches to its ticket");
    let usernames = app.outbox().iter().filter(|m| m.0 == "username_delivery").count();
    assert_eq!(usernames, 1, "account-dependent mail is not sent again");
    let t = app.ticket(&first).await;
    assert_eq!(
        t["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "message_in")
            .count(),
        2
    );
    for _ in 0..3 {
        assert_eq!(forgot(&app, "me@x.test").await.0, StatusCode::SEE_OTHER);
    }
    let (status, _, body) = app.form("/help/forgot-username", &[("email", "me@x.test")]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(body.contains("You can send it again from"), "{body}");
    // Per client address too: five other addresses from the same client are refused as well.
    let (status, _, _) = app.form("/help/forgot-username", &[("email", "other@x.test")]).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the same client address is over its limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    // Untrusted peer: X-Forwarded-For is ignored, so rotating it does not escape the limit.
    let app = TestApp::spawn_with(Backend::Sqlite, &[("--form-rate-limit", "2")])
        .await
        .unwrap();
    for (i, status) in [
        StatusCode::SEE_OTHER,
        StatusCode::SEE_OTHER,
        StatusCode::TOO_MANY_REQUESTS,
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("u{i}@x.test");
        let forged = format!("203.0.113.{i}");
        let (got, _, _) = app
            .form_from("/help/forgot-username", &[("email", &email)], Some(&forged))
            .await;
        assert_eq!(got, status, "request {i}");
    }
    let (_, page) = app.page("/help/ip-lockout").await;
    assert!(
        page.contains(r#"<option value="127.0.0.1">"#),
        "the peer address is offered"
    );

    // Behind a trusted proxy (the loopback peer), each forwarded client has its own limit.
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("--form-rate-limit", "2"), ("--trusted-proxies", "127.0.0.1")],
    )
    .await
    .unwrap();
    for i in 0..4 {
        let email = format!("v{i}@x.test");
        let client = format!("198.51.100.{i}, 127.0.0.1");
        let (got, _, _) = app
            .form_from("/help/forgot-username", &[("email", &email)], Some(&client))
            .await;
        assert_eq!(got, StatusCode::SEE_OTHER, "request {i} from its own client");
    }
    // The per-address limit holds whichever client sends.
    for (i, status) in [
        StatusCode::SEE_OTHER,
        StatusCode::SEE_OTHER,
        StatusCode::TOO_MANY_REQUESTS,
    ]
    .into_iter()
    .enumerate()
    {
        let client = format!("192.0.2.{i}");
        let (got, _, _) = app
            .form_from(
                "/help/login",
                &[("email", "same@x.test"), ("problem", "other")],
                Some(&client),
            )
            .await;
        assert_eq!(got, status, "submission {i} for one address");
    }
    let response = app
        .client
        .get(format!("{}/help/ip-lockout", app.address))
        .header("X-Forwarded-For", "198.51.100.77")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains(r#"<option value="198.51.100.77">"#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_pages_carry_the_security_headers_and_no_inline_script() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    for path in [
        "/",
        "/help/forgot-username",
        "/help/ip-lockout",
        "/help/account-terminated",
        "/help/login",
        "/help/submitted?ref=RD-1&email=a%40b.test",
        "/t/nope",
        "/static/css/site.css",
    ] {
        let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        let headers = response.headers().clone();
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(headers.contains_key("referrer-policy"), "{path}");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("script-src 'self'"),
            "{path}"
        );
        let body = response.text().await.unwrap();
        let inline_script = body
            .match_indices("<script")
            .any(|(at, _)| !body[at..].starts_with(r#"<script src="/static/js/portal.js" defer></script>"#));
        assert!(
            !inline_script && !body.contains(" style=\""),
            "{path}: no inline script or style"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_typed_into_a_form_is_never_stored_and_the_customer_is_told_to_change_it() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let (status, _, page) = app
        .form(
            "/help/login",
            &[
                ("email", "oops@x.test"),
                ("problem", "web_login"),
                ("details", "my password is Tr0ub4dor&3 and it fails"),
                ("error_text", "password=Tr0ub4dor&3"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let r = reference_from(&page);
    let t = app.ticket(&r).await;
    assert!(!t.to_string().contains("Tr0ub4dor"), "{t}");
    assert!(t.to_string().contains("[redacted]"));
    let notice = app
        .outbox_of(&r)
        .into_iter()
        .find(|m| m.0 == "redaction_notice")
        .expect("a redaction notice");
    assert_eq!(notice.1, "oops@x.test");
    // Not in the database file, nor in its write-ahead log.
    let db_file = std::path::PathBuf::from(app.database_url.trim_start_matches("sqlite://"));
    for entry in std::fs::read_dir(db_file.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        // The files (not the desk's mail socket beside them, which holds nothing).
        if !path.is_file() {
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        assert!(
            !raw.windows(9).any(|w| w == b"Tr0ub4dor"),
            "{} holds the password",
            path.display()
        );
    }
}
