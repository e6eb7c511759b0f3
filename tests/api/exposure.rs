//! What the desk lets others keep or count: `/metrics` only for local clients or with its
//! token, per-state ticket counts that one anonymous form post does not move, and
//! `Cache-Control: no-store` on every route family that shows a ticket, an account, a status
//! page or a challenge (docs/security.md).

use crate::both_backends;
use crate::helpers::{Backend, Console, TestApp, account, reference};
use crate::tokens::lockout_owner;
use reqwest::StatusCode;
use serde_json::json;

async fn metrics_status(app: &TestApp, headers: &[(&str, &str)]) -> StatusCode {
    let mut request = app.client.get(format!("{}/metrics", app.address));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_403_to_a_client_that_is_not_local() {
    // Behind a proxy on this host: the client is the address the proxy names.
    let app = TestApp::spawn_with(Backend::Sqlite, &[("--trusted-proxies", "127.0.0.1")])
        .await
        .unwrap();
    assert_eq!(
        metrics_status(&app, &[("x-forwarded-for", "203.0.113.9")]).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        metrics_status(&app, &[("x-forwarded-for", "127.0.0.1, 203.0.113.9")]).await,
        StatusCode::FORBIDDEN,
        "a loopback address the client wrote itself does not count"
    );
    assert_eq!(
        metrics_status(&app, &[("x-forwarded-for", "::1")]).await,
        StatusCode::OK,
        "a local client through the proxy"
    );
    assert_eq!(metrics_status(&app, &[]).await, StatusCode::OK, "the proxy host itself");

    // No trusted proxy: a forged header changes nothing, the socket peer (loopback) decides.
    let direct = TestApp::spawn(Backend::Sqlite).await.unwrap();
    assert_eq!(
        metrics_status(&direct, &[("x-forwarded-for", "203.0.113.9")]).await,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_with_a_token_configured_answer_401_without_it() {
    let secret = "metrics-scrape-token-0123456789";
    let app = TestApp::spawn_with(Backend::Sqlite, &[("--metrics-token", secret)])
        .await
        .unwrap();
    let bearer = format!("Bearer {secret}");
    let wrong = format!("Bearer {secret}x");
    for headers in [
        vec![],
        vec![("authorization", wrong.as_str())],
        vec![("authorization", "Bearer ")],
    ] {
        let response = app
            .client
            .get(format!("{}/metrics", app.address))
            .headers(
                headers
                    .iter()
                    .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
                    .collect(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{headers:?}");
        assert!(response.headers().contains_key("www-authenticate"));
        assert!(!response.text().await.unwrap().contains("recoverydesk_tickets"));
    }
    assert_eq!(
        metrics_status(&app, &[("authorization", bearer.as_str())]).await,
        StatusCode::OK,
        "from anywhere, with the token"
    );
}

fn ticket_lines(scrape: &str) -> Vec<String> {
    scrape
        .lines()
        .filter(|l| l.starts_with("recoverydesk_tickets{"))
        .map(str::to_string)
        .collect()
}

both_backends!(
    one_anonymous_form_post_moves_no_per_state_ticket_count,
    form_post_moves_no_count
);

async fn form_post_moves_no_count(app: TestApp) {
    app.import_accounts(&[
        account("acc_k", "known-user", "known@x.test", "active"),
        account("acc_b", "banned-user", "banned@x.test", "banned"),
    ]);
    let scrape = |app: &TestApp| {
        let request = app.client.get(format!("{}/metrics", app.address));
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let before = ticket_lines(&scrape(&app).await);
    for (path, fields) in [
        ("/help/forgot-username", vec![("email", "known@x.test")]),
        ("/help/forgot-username", vec![("email", "stranger@x.test")]),
        (
            "/help/account-terminated",
            vec![("email", "banned@x.test"), ("account", "banned-user")],
        ),
    ] {
        let (status, _, _) = app.form(path, &fields).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(ticket_lines(&scrape(&app).await), before, "after {path} {fields:?}");
    }
    // A minute later they are counted like every other ticket.
    app.clock.advance(chrono::Duration::seconds(61));
    let after = scrape(&app).await;
    assert!(
        after.contains("recoverydesk_tickets{kind=\"forgot_username\",state=\"resolved\"} 1"),
        "{after}"
    );
}

fn no_store(response: &reqwest::Response, what: &str) {
    assert_eq!(
        response.headers().get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "{what}"
    );
    assert_eq!(
        response.headers().get("pragma").and_then(|v| v.to_str().ok()),
        Some("no-cache"),
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_private_route_family_says_no_store() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.import_accounts(&[lockout_owner()]);
    // A status page, a challenge page, an API answer.
    let r = reference(
        &app.create_ticket(json!({"kind": "ip_lockout", "requester": "ops@acme.test",
                                  "tried_from": "office", "outcome": "blocked"}))
            .await,
    );
    let status_path = app.status_path_of(&r).await;
    app.act(&r, "start_ownership_verification", json!({})).await;
    app.act(&r, "send_email_challenge", json!({})).await;
    let challenge_path = app.latest_challenge_path().await;
    let raw = "From: kim@x.test\r\nTo: support@desk.test\r\nSubject: Locked out\r\nMessage-ID: <k1@x.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: text/plain; name=\"log.txt\"\r\nContent-Disposition: attachment; filename=\"log.txt\"\r\n\r\nconnection log\r\n--b--\r\n";
    let with_attachment = app.ingest(raw.as_bytes()).ticket.unwrap();
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        StatusCode::SEE_OTHER
    );
    let (_, _, ticket_page) = console.get(&format!("/agent/tickets/{with_attachment}")).await;
    let attachment = ticket_page
        .split("/agent/attachments/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("an attachment link")
        .to_string();
    let (_, location, _) = app.form("/help/forgot-username", &[("email", "who@x.test")]).await;
    let submitted = location.expect("the confirmation page");

    let anonymous = [
        ("status page", status_path),
        ("challenge page", challenge_path),
        ("form confirmation", submitted),
        ("sign-in page", "/agent/login".to_string()),
    ];
    for (what, path) in anonymous {
        let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{what}");
        no_store(&response, what);
    }
    let signed_in = [
        ("queue", "/agent".to_string()),
        ("ticket page", format!("/agent/tickets/{r}")),
        ("account page", "/agent/accounts/acc_1001".to_string()),
        ("attachment download", format!("/agent/attachments/{attachment}")),
        ("admin page", "/agent/admin/tokens".to_string()),
    ];
    for (what, path) in signed_in {
        let response = console
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{what}");
        no_store(&response, what);
    }
    for (what, path) in [
        ("API ticket", format!("/api/v1/tickets/{r}")),
        ("API list", "/api/v1/tickets".to_string()),
        ("API account", "/api/v1/accounts/acc_1001".to_string()),
        ("API error", "/api/v1/tickets/RD-999999".to_string()),
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        no_store(&response, what);
    }
    // A refusal and a redirect are not cached either.
    let response = app.client.get(format!("{}/agent", app.address)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    no_store(&response, "redirect to sign-in");
    // The stylesheet keeps its own caching: it shows nobody's data.
    let css = app
        .client
        .get(format!("{}/static/css/site.css", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        css.headers().get("cache-control").and_then(|v| v.to_str().ok()),
        Some("public, max-age=3600")
    );
}
