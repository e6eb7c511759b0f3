//! A customer's bad day on the forms: the rate-limit page, the confirmation page that trusts no
//! URL, the time of a failed attempt on the customer's own clock, the locked-out IP field
//! (docs/reference.md#customer-pages).

use crate::diagnosis::reference_from;
use crate::helpers::{Backend, TestApp};
use reqwest::StatusCode;

/// The set-cookie header of `name` in a response, if any.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_page_keeps_the_typed_text_says_when_to_come_back_and_sends_retry_after() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("--form-rate-limit", "2")])
        .await
        .unwrap();
    // Two colleagues in one office (one public address) send a request each.
    for email in ["alice@office.test", "bob@office.test"] {
        let (status, _, _) = app
            .form("/help/forgot-username", &[("email", email), ("details", "")])
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }
    // A third, first-time sender from the same office.
    let details = "Our <b>CRM</b> stopped sending at 09:12; nothing changed on our side.";
    let response = app
        .client
        .post(format!("{}/help/login", app.address))
        .form(&[
            ("email", "carol@office.test"),
            ("problem", "smtp_535"),
            ("smtp_username", "crm-mailer"),
            ("failed_at", "2026-11-20T09:12"),
            ("failed_at_zone", "Europe/Paris"),
            ("details", details),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (1..=3601).contains(&retry_after),
        "a place frees within the hour: {retry_after}"
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("You can send it again from"), "{page}");
    assert!(
        page.contains(" in Europe/Paris), in about "),
        "on the customer's clock too: {page}"
    );
    assert!(
        page.contains(&format!("in about {} minutes", retry_after.div_ceil(60))),
        "the wait in minutes, from the same figure as Retry-After: {page}"
    );
    // Everything typed is still in the form, escaped, and the choices are kept.
    assert!(
        page.contains("Our &#60;b&#62;CRM&#60;/b&#62; stopped sending at 09:12"),
        "{page}"
    );
    assert!(page.contains(r#"value="carol@office.test""#));
    assert!(page.contains(r#"value="crm-mailer""#));
    assert!(page.contains(r#"value="2026-11-20T09:12""#));
    assert!(page.contains(r#"<option value="Europe/Paris" selected>"#));
    assert!(page.contains(r#"value="smtp_535" checked"#));
    // Carol sent nothing before: the page must not say she did.
    let lower = page.to_lowercase();
    for claim in [
        "from you ",
        "from you.",
        "your requests",
        "several requests",
        "you sent",
        "you already",
    ] {
        assert!(!lower.contains(claim), "the page claims {claim:?}: {page}");
    }
    assert!(lower.contains("from your network or for this email address"));
    assert_eq!(app.outbox().iter().filter(|m| m.1 == "carol@office.test").count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_confirmation_page_reads_a_sealed_cookie_and_a_crafted_url_shows_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    // A crafted link shows neither the reference nor the address it carries.
    let (status, page) = app
        .page("/help/submitted?ref=RD-999&email=victim%40example.com&note=smtp_username_has_at")
        .await;
    assert_eq!(status, StatusCode::OK);
    for shown in ["RD-999", "victim", "example.com", "<code>@</code>"] {
        assert!(!page.contains(shown), "{shown} on {page}");
    }

    let response = app
        .client
        .post(format!("{}/help/login", app.address))
        .form(&[
            ("email", "dev@x.test"),
            ("problem", "smtp_535"),
            ("smtp_username", "crm@mailer"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, "/help/submitted", "no reference, no address in the URL");
    let cookie = set_cookie(&response, "rd_submitted").expect("a confirmation cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/help/submitted", "Max-Age=900"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    let pair = cookie.split(';').next().unwrap().to_string();
    assert!(
        !pair.contains("dev") && !pair.contains("%40") && !pair.contains("RD-"),
        "the cookie is sealed, not readable: {pair}"
    );

    let confirm = |cookie: String, path: &'static str| {
        let app = &app;
        async move {
            app.client
                .get(format!("{}{path}", app.address))
                .header("Cookie", cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let page = confirm(pair.clone(), "/help/submitted").await;
    let reference = reference_from(&page);
    assert!(page.contains("<strong>dev@x.test</strong>"), "{page}");
    assert!(
        page.contains("contains <code>@</code>"),
        "the username note travels sealed too"
    );

    // The URL never overrides the cookie.
    let page = confirm(pair.clone(), "/help/submitted?ref=RD-999&email=victim%40example.com").await;
    assert!(page.contains(&reference) && !page.contains("RD-999") && !page.contains("victim"));

    // A cookie altered by one character, or made up, opens nothing.
    let (name, value) = pair.split_once('=').unwrap();
    let mut bytes = value.as_bytes().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    let altered = format!("{name}={}", String::from_utf8(bytes).unwrap());
    for forged in [
        altered,
        format!(
            r#"rd_submitted={{"at":{},"value":{{"ticket_ref":"RD-999","email":"victim@example.com","notes":[]}}}}"#,
            chrono::Utc::now().timestamp()
        ),
        "rd_submitted=".to_string(),
        format!("rd_submitted={}", "A".repeat(10_000)),
    ] {
        let page = confirm(forged.clone(), "/help/submitted").await;
        assert!(
            !page.contains(&reference) && !page.contains("RD-999") && !page.contains("@"),
            "{forged}: {page}"
        );
        assert!(page.contains("Check your mailbox"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_of_a_failed_attempt_is_read_in_the_customers_zone_and_stored_in_utc() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("--form-rate-limit", "1000")])
        .await
        .unwrap();
    let (_, page) = app.page("/help/login").await;
    assert!(page.contains(r#"<select id="failed_at_zone" name="failed_at_zone" data-guess="browser""#));
    assert!(page.contains(r#"<option value="UTC" selected>UTC</option>"#));
    assert!(!page.contains("(UTC)"), "the time is no longer asked in UTC");

    for (i, (at, zone, stored)) in [
        ("2026-07-15T10:00", "Europe/Paris", "2026-07-15T08:00:00Z"),
        ("2026-01-15T10:00", "Europe/Paris", "2026-01-15T09:00:00Z"),
        ("2026-11-20T10:00", "America/New_York", "2026-11-20T15:00:00Z"),
        ("2026-11-20T10:00", "+05:30", "2026-11-20T04:30:00Z"),
        ("2026-11-20T10:00", "-03:00", "2026-11-20T13:00:00Z"),
        ("2026-11-20T10:00", "", "2026-11-20T10:00:00Z"),
        // The hour repeated when summer time ends: the earlier of the two.
        ("2026-10-25T02:30", "Europe/Paris", "2026-10-25T00:30:00Z"),
        // An explicit offset in the text wins over the zone.
        ("2026-11-20T10:00:00+01:00", "Asia/Tokyo", "2026-11-20T09:00:00Z"),
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("zone{i}@x.test");
        let (status, _, page) = app
            .form(
                "/help/login",
                &[
                    ("email", email.as_str()),
                    ("problem", "web_login"),
                    ("failed_at", at),
                    ("failed_at_zone", zone),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{at} {zone}: {page}");
        let t = app.ticket(&reference_from(&page)).await;
        assert_eq!(t["events"][0]["data"]["failed_at"], stored, "{at} in {zone:?}");
    }

    // The hour skipped when summer time begins, and hostile zones: the form comes back.
    let huge = "E".repeat(100_000);
    let huge_offset = format!("+{}", "0".repeat(5_000));
    for (at, zone, message) in [
        (
            "2026-03-29T02:30",
            "Europe/Paris",
            "The clocks skipped this time in Europe/Paris",
        ),
        ("2026-11-20T10:00", "+99:00", "No place uses this offset"),
        ("2026-11-20T10:00", "+14:30", "No place uses this offset"),
        ("2026-11-20T10:00", "-13:00", "No place uses this offset"),
        ("2026-11-20T10:00", "+05:99", "Choose your time zone from the list."),
        (
            "2026-11-20T10:00",
            "../../etc/localtime",
            "Choose your time zone from the list.",
        ),
        (
            "2026-11-20T10:00",
            "Europe/Atlantis",
            "Choose your time zone from the list.",
        ),
        (
            "2026-11-20T10:00",
            huge.as_str(),
            "Please keep this under 64 characters.",
        ),
        (
            "2026-11-20T10:00",
            huge_offset.as_str(),
            "Please keep this under 64 characters.",
        ),
        ("9999-11-20T10:00", "Europe/Paris", "between the years 2000 and 2100"),
        ("+275760-09-13T00:00", "UTC", "Use a date"),
    ] {
        let (status, _, page) = app
            .form(
                "/help/login",
                &[
                    ("email", "hostile@x.test"),
                    ("problem", "web_login"),
                    ("failed_at", at),
                    ("failed_at_zone", zone),
                ],
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{at} {}",
            &zone[..zone.len().min(40)]
        );
        assert!(page.contains(message), "{message}: {}", &page[..page.len().min(400)]);
        assert!(!page.contains(&huge), "a huge value is not echoed as a zone option");
    }
    assert!(
        !app.outbox().iter().any(|m| m.1 == "hostile@x.test"),
        "nothing was opened"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_locked_out_ip_field_starts_empty_with_a_hint_and_the_seen_address_as_a_suggestion() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("--trusted-proxies", "127.0.0.1")])
        .await
        .unwrap();
    let page = app
        .client
        .get(format!("{}/help/ip-lockout", app.address))
        .header("X-Forwarded-For", "198.51.100.77")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"id="current_ip" name="current_ip" value="""#),
        "the field is empty: {page}"
    );
    assert!(page.contains("The address of the network you are locked out from"));
    assert!(page.contains(r#"We see you connecting from <code class="ip">198.51.100.77</code>"#));
    assert!(page.contains(r#"list="current_ip-suggestions""#));
    assert!(
        page.contains(r#"<datalist id="current_ip-suggestions"><option value="198.51.100.77"></option></datalist>"#)
    );

    // Sent back with an error, what was typed stays and the suggestion is still offered.
    let (status, _, page) = app
        .form_from(
            "/help/ip-lockout",
            &[
                ("email", "ops@acme.test"),
                ("current_ip", "203.0.113.9"),
                ("tried_allowlisted_ips", "maybe"),
            ],
            Some("198.51.100.77"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains(r#"value="203.0.113.9""#));
    assert!(page.contains(r#"<option value="198.51.100.77">"#));

    // Left empty, the request is taken all the same (the agent asks).
    let (status, _, _) = app
        .form_from(
            "/help/ip-lockout",
            &[
                ("email", "ops@acme.test"),
                ("current_ip", ""),
                ("tried_allowlisted_ips", "yes"),
                ("tried_from", "the office VPN"),
            ],
            Some("198.51.100.77"),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}
