//! Bursts and races: throttles that count and record in one step, and balances that change by
//! the amount (the PostgreSQL-only lock and retry tests are in `races_pg`).

use crate::both_backends;
use crate::helpers::{Console, TestApp, account, reference};
use diesel::RunQueryDsl;
use recoverydesk::db::schema::{form_submissions, login_attempts, outbox};
use reqwest::StatusCode;
use serde_json::json;

both_backends!(
    parallel_wrong_sign_ins_get_at_most_five_password_checks,
    parallel_wrong_sign_ins
);
both_backends!(
    a_sign_in_lockout_lasts_fifteen_minutes_from_the_failure_that_reached_the_limit,
    lockout_does_not_slide
);
both_backends!(parallel_form_posts_never_exceed_the_limit, parallel_form_posts);
both_backends!(ipv6_clients_count_by_their_64_for_the_form_limit, ipv6_counts_by_64);
both_backends!(
    parallel_mail_from_one_sender_gets_at_most_three_acknowledgements,
    parallel_acknowledgements
);
both_backends!(concurrent_payments_on_one_account_both_count, concurrent_payments);

pub(crate) fn count(app: &TestApp, query: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.conn();
    diesel::sql_query(query).get_result::<N>(&mut *conn).expect("a count").n
}

async fn parallel_wrong_sign_ins(app: TestApp) {
    let mut tries = vec![];
    for _ in 0..30 {
        let console = Console::new(&app);
        tries.push(tokio::spawn(async move {
            console.sign_in("admin@localhost", "not the password at all").await
        }));
    }
    let mut statuses = vec![];
    for t in tries {
        statuses.push(t.await.expect("the sign-in task"));
    }
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let throttled = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(checked + throttled, 30, "{statuses:?}");
    assert!(checked <= 5, "{checked} passwords were checked: {statuses:?}");
    // Each recorded try is one argon2 run; the throttled ones never got that far.
    let recorded = count(&app, "SELECT count(*) AS n FROM login_attempts");
    assert!(recorded <= 5, "{recorded} tries recorded");
    // Locked out now, even with the right password.
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

fn insert_failures(app: &TestApp, minutes_ago: &[i64]) {
    use diesel::ExpressionMethods;
    let mut conn = app.conn();
    for m in minutes_ago {
        diesel::insert_into(login_attempts::table)
            .values((
                login_attempts::email_normalized.eq("admin@localhost"),
                login_attempts::client_ip.eq("127.0.0.1"),
                login_attempts::succeeded.eq(false),
                login_attempts::created_at.eq(recoverydesk::db::now() - chrono::Duration::minutes(*m)),
            ))
            .execute(&mut *conn)
            .expect("insert a failure");
    }
}

async fn lockout_does_not_slide(app: TestApp) {
    // Five failures within 14 minutes, the fifth 6 minutes ago: locked for 9 more minutes,
    // although only one of them is still within the last 15 minutes.
    insert_failures(&app, &[20, 19, 18, 17, 6]);
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // A lockout that ended (the fifth failure 21 minutes ago) lets the right password in.
    let app = app.respawn_with(&[]).await;
    insert_failures(&app, &[40, 39, 38, 37, 21]);
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        StatusCode::SEE_OTHER
    );
}

async fn parallel_form_posts(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let mut posts = vec![];
    for i in 0..20 {
        let app = app.clone();
        posts.push(tokio::spawn(async move {
            let details = format!("try {i}");
            app.form(
                "/help/forgot-username",
                &[("email", "burst@example.test"), ("details", &details)],
            )
            .await
            .0
        }));
    }
    let mut accepted = 0;
    for p in posts {
        let status = p.await.expect("the post task");
        assert!(
            status == StatusCode::SEE_OTHER || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
        accepted += usize::from(status == StatusCode::SEE_OTHER);
    }
    assert_eq!(accepted, 5, "the default limit is 5 an hour");
    let recorded = {
        use diesel::QueryDsl;
        let mut conn = app.conn();
        form_submissions::table
            .count()
            .get_result::<i64>(&mut *conn)
            .expect("count")
    };
    assert_eq!(recorded, 5);
}

async fn ipv6_counts_by_64(app: TestApp) {
    let app = app
        .respawn_with(&[("--form-rate-limit", "2"), ("--trusted-proxies", "127.0.0.1")])
        .await;
    // Three addresses of one /64: one client. Different emails, so only the client counts.
    for (i, status) in [
        StatusCode::SEE_OTHER,
        StatusCode::SEE_OTHER,
        StatusCode::TOO_MANY_REQUESTS,
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("v6-{i}@example.test");
        let client = format!("2001:db8:7:7::{:x}", i + 1);
        let (got, _, _) = app
            .form_from("/help/forgot-username", &[("email", &email)], Some(&client))
            .await;
        assert_eq!(got, status, "request {i} from {client}");
    }
    // The next /64 is another client.
    let (got, _, _) = app
        .form_from(
            "/help/forgot-username",
            &[("email", "v6-other@example.test")],
            Some("2001:db8:7:8::1"),
        )
        .await;
    assert_eq!(got, StatusCode::SEE_OTHER);
}

pub(crate) fn mail_from(sender: &str, n: usize) -> Vec<u8> {
    format!(
        "From: {sender}\r\nTo: support@recoverydesk.test\r\nSubject: question number {n}\r\n\
         Message-ID: <burst-{n}@example.test>\r\nDate: Sun, 06 Dec 2026 04:00:00 +0000\r\n\r\n\
         Hello, a question about my invoice, number {n}.\r\n"
    )
    .into_bytes()
}

async fn parallel_acknowledgements(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let mut deliveries = vec![];
    for n in 0..12 {
        let app = app.clone();
        deliveries.push(tokio::task::spawn_blocking(move || {
            app.ingest(&mail_from("someone@example.test", n));
        }));
    }
    for d in deliveries {
        d.await.expect("the delivery task");
    }
    let acks = {
        use diesel::{ExpressionMethods, QueryDsl};
        let mut conn = app.conn();
        outbox::table
            .filter(outbox::template.eq("acknowledgement"))
            .count()
            .get_result::<i64>(&mut *conn)
            .expect("count")
    };
    assert_eq!(acks, 3, "at most 3 acknowledgements to one sender in 24 hours");
}

async fn terminated_ticket(app: &TestApp, requester: &str) -> String {
    let ticket = app
        .create_ticket(json!({"kind": "account_terminated", "requester": requester,
                              "subject": "Account terminated", "body": "I will pay", "account": "acc_9"}))
        .await;
    assert_eq!(ticket["state"], "awaiting_payment", "{ticket}");
    reference(&ticket)
}

async fn concurrent_payments(app: TestApp) {
    let app = std::sync::Arc::new(app);
    for round in 0..8 {
        let mut line = account("acc_9", "payer", "payer@example.test", "terminated");
        line["balance_due_cents"] = json!(10_000);
        line["terminated_at"] = json!("2026-11-01T00:00:00Z");
        app.import_accounts(&[line]);
        let a = terminated_ticket(&app, "payer@example.test").await;
        let b = terminated_ticket(&app, "payer@example.test").await;
        let (first, second) = {
            let (app1, app2) = (app.clone(), app.clone());
            let p1 = tokio::spawn(async move {
                app1.action(&a, "record_payment", json!({"amount_cents": 3000, "reference": "r1"}))
                    .await
            });
            let p2 = tokio::spawn(async move {
                app2.action(&b, "record_payment", json!({"amount_cents": 2000, "reference": "r2"}))
                    .await
            });
            (p1.await.expect("task"), p2.await.expect("task"))
        };
        assert_eq!(first.0, StatusCode::OK, "round {round}: {}", first.1);
        assert_eq!(second.0, StatusCode::OK, "round {round}: {}", second.1);
        let (_, acc) = app.get("/api/v1/accounts/acc_9").await;
        assert_eq!(acc["balance_due_cents"], 5000, "round {round}: both payments count");
    }
}
