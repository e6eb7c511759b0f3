//! Each finding reaches the agent through the API, the login form, mail and the agent's action;
//! the owner gets the guidance, anyone else the same checklist; a suspension reroutes.

use super::{OWNER, STRANGER, diagnosis_events, directory, failed_at, load, mailed, reference_from, rfc3339, the_log};
use crate::both_backends;
use crate::helpers::{TestApp, reference};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    each_finding_reaches_the_agent_through_every_channel,
    every_finding_everywhere
);
both_backends!(
    a_strangers_mail_is_the_same_whether_or_not_the_username_exists,
    strangers_cannot_tell
);
both_backends!(
    a_suspended_account_moves_the_ticket_to_the_termination_workflow,
    suspension_reroutes
);
both_backends!(
    the_agents_diagnosis_mails_only_when_asked_and_is_refused_where_the_policy_says,
    agents_action
);
both_backends!(it_works_again_offers_a_one_click_resolve, works_again_resolves);

/// One row of the reference's table as this log shows it.
struct Case {
    username: &'static str,
    /// `smtp_535` or `api_key` (the form's `problem`).
    problem: &'static str,
    finding: &'static str,
    /// What ops@acme.test (acc_1001's registered address) is mailed.
    owner_mail: &'static str,
}

const CASES: [Case; 12] = [
    Case {
        username: "crm-mailer",
        problem: "smtp_535",
        finding: "bad_password",
        owner_mail: "diagnosis_bad_password",
    },
    Case {
        username: "disabled-user",
        problem: "smtp_535",
        finding: "user_disabled",
        owner_mail: "diagnosis_user",
    },
    Case {
        username: "gone-user",
        problem: "smtp_535",
        finding: "unknown_user",
        owner_mail: "diagnosis_user",
    },
    Case {
        username: "office-mailer",
        problem: "smtp_535",
        finding: "ip_not_authorized",
        owner_mail: "diagnosis_ip_not_authorized",
    },
    Case {
        username: "old-client",
        problem: "smtp_535",
        finding: "mechanism_not_supported",
        owner_mail: "diagnosis_mechanism",
    },
    Case {
        username: "plain-client",
        problem: "smtp_535",
        finding: "tls_required",
        owner_mail: "diagnosis_mechanism",
    },
    Case {
        username: "fixed-mailer",
        problem: "smtp_535",
        finding: "succeeded_since",
        owner_mail: "diagnosis_succeeded",
    },
    Case {
        username: "quiet-mailer",
        problem: "smtp_535",
        finding: "request_not_seen",
        owner_mail: "diagnosis_not_seen",
    },
    Case {
        username: "ops@acme.test",
        problem: "smtp_535",
        finding: "username_has_at",
        owner_mail: "diagnosis_checklist",
    },
    Case {
        username: " crm-mailer",
        problem: "smtp_535",
        finding: "username_whitespace",
        owner_mail: "diagnosis_checklist",
    },
    Case {
        username: "crm mailer",
        problem: "smtp_535",
        finding: "bad_password",
        owner_mail: "diagnosis_bad_password",
    },
    Case {
        username: "souk-app",
        problem: "api_key",
        finding: "user_disabled",
        owner_mail: "diagnosis_user",
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Api,
    Form,
    Mail,
    Action,
}

/// Opens a login_help ticket from `requester` naming `username` at `failed_at()`; returns its
/// reference. `Via::Action` opens it without a username and has an agent run `diagnose_auth`
/// with `notify: true`.
async fn open_via(app: &TestApp, via: Via, requester: &str, username: &str, problem: &str, n: usize) -> String {
    let at = failed_at();
    match via {
        Via::Api => reference(
            &app.create_ticket(json!({"kind": "login_help", "requester": requester, "problem": problem,
                "smtp_username": username, "failed_at": rfc3339(at)}))
                .await,
        ),
        Via::Form => {
            super::forget_form_submissions(app);
            let at_local = at.format("%Y-%m-%dT%H:%M").to_string();
            let (status, _, body) = app
                .form(
                    "/help/login",
                    &[
                        ("email", requester),
                        ("problem", problem),
                        ("smtp_username", username),
                        ("failed_at", &at_local),
                    ],
                )
                .await;
            assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
            reference_from(&body)
        }
        Via::Mail => {
            let (subject, named) = if problem == "api_key" {
                ("API calls fail: bad username/password", format!("api_user={username}"))
            } else {
                ("SMTP 535 Authentication failed", format!("username: \"{username}\""))
            };
            let raw = format!(
                "From: Customer <{requester}>\r\nTo: support@desk.test\r\nSubject: {subject} ({n})\r\n\
                 Message-ID: <diagnosis-{n}-{via:?}@customer.test>\r\nDate: {}\r\nMIME-Version: 1.0\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n\r\nOur app fails since this morning.\r\n\r\n\
                 {named}\r\nfailed at: {}\r\n\r\nThanks\r\n",
                at.to_rfc2822(),
                at.format("%Y-%m-%d %H:%M UTC"),
            );
            app.ingest(raw.as_bytes()).ticket.expect("a ticket")
        }
        Via::Action => {
            let t = app
                .create_ticket(json!({"kind": "login_help", "requester": requester, "problem": problem}))
                .await;
            let r = reference(&t);
            let channel = if problem == "api_key" { "api" } else { "smtp" };
            app.act(
                &r,
                "diagnose_auth",
                json!({"username": username, "failed_at": rfc3339(at), "channel": channel, "notify": true}),
            )
            .await;
            r
        }
    }
}

async fn every_finding_everywhere(app: TestApp) {
    let app = app.respawn_with(&[("--form-rate-limit", "1000")]).await;
    directory(&app);
    let report = load(&app, &the_log()).await;
    assert_eq!(report["refused"], json!([]), "{report}");
    let mut n = 0;
    for via in [Via::Api, Via::Form, Via::Mail, Via::Action] {
        for case in &CASES {
            n += 1;
            let r = open_via(&app, via, OWNER, case.username, case.problem, n).await;
            let label = format!("{via:?} {:?}", case.username);
            let t = app.ticket(&r).await;
            assert_eq!(t["kind"], "login_help", "{label}");
            assert_eq!(t["diagnosis"]["finding"], case.finding, "{label}: {}", t["diagnosis"]);
            assert_eq!(t["diagnosis"]["username"], case.username, "{label}: byte-exact");
            let events = diagnosis_events(&t);
            assert_eq!(events.len(), 1, "{label}");
            let by = if via == Via::Action {
                "agent:admin@localhost"
            } else {
                "system"
            };
            assert_eq!(events[0]["actor"], by, "{label}");
            // What the owner asking from the registered address hears.
            let to_owner: Vec<String> = mailed(&app, &r)
                .into_iter()
                .filter(|(template, to)| to == OWNER && template.starts_with("diagnosis_"))
                .map(|(template, _)| template)
                .collect();
            assert_eq!(to_owner, [case.owner_mail], "{label}");
            if via != Via::Action {
                assert!(
                    !mailed(&app, &r)
                        .iter()
                        .any(|(template, _)| template == "acknowledgement"),
                    "{label}: the diagnosis mail is the answer"
                );
            }
        }
    }

    // The evidence an agent sees, for one of them.
    let r = open_via(&app, Via::Api, OWNER, "office-mailer", "smtp_535", 99).await;
    let d = app.ticket(&r).await["diagnosis"].clone();
    assert_eq!(d["client_ips"], json!(["198.51.100.99"]));
    assert_eq!(d["events"], 1);
    assert_eq!(d["channel"], "smtp");
    assert_eq!(d["account_id"], "acc_1001");
    assert_eq!(d["failed_at_source"], "given");
    assert_eq!(d["timeline"][0]["result"], "ip_not_authorized");
    // Lists carry it too.
    let (_, page) = app.get(&format!("/api/v1/tickets?q={r}")).await;
    assert_eq!(page["tickets"][0]["diagnosis"]["finding"], "ip_not_authorized");
    // A ticket that names no username has none.
    let plain = app
        .create_ticket(json!({"kind": "login_help", "requester": OWNER, "problem": "web_login"}))
        .await;
    assert_eq!(plain["diagnosis"], Value::Null);

    // Mail without a time: the latest failure of the last 24 hours, and the event says so.
    let raw = format!(
        "From: {OWNER}\r\nTo: support@desk.test\r\nSubject: 535 Authentication failed\r\nMessage-ID: <no-time@acme.test>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nusername: crm-mailer\r\nIt fails all the time.\r\n"
    );
    let r = app.ingest(raw.as_bytes()).ticket.unwrap();
    let d = app.ticket(&r).await["diagnosis"].clone();
    assert_eq!(d["finding"], "bad_password");
    assert_eq!(d["failed_at_source"], "latest_failure");
    assert_eq!(d["failed_at"], rfc3339(failed_at() - chrono::Duration::minutes(1)));
    assert!(d["note"].as_str().unwrap().contains("No time was given"), "{d}");

    // A quoted SMTP session names the username even after its lines are redacted.
    let raw = format!(
        "From: {OWNER}\r\nTo: support@desk.test\r\nSubject: SMTP 535 Authentication failed\r\nMessage-ID: <session@acme.test>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nfailed at: {}\r\n\r\n  C: AUTH LOGIN\r\n  S: 334 VXNlcm5hbWU6\r\n  C: Y3JtLW1haWxlcg==\r\n\
         \x20 S: 334 UGFzc3dvcmQ6\r\n  C: VHI0bXBvbGluZS1Ob3YyNg==\r\n  S: 535 5.7.8 Authentication failed\r\n",
        failed_at().format("%Y-%m-%d %H:%M UTC")
    );
    let r = app.ingest(raw.as_bytes()).ticket.unwrap();
    let t = app.ticket(&r).await;
    assert_eq!(t["diagnosis"]["username"], "crm-mailer");
    assert_eq!(t["diagnosis"]["finding"], "bad_password");
    assert!(
        !t.to_string().contains("VHI0bXBvbGluZS1Ob3YyNg"),
        "the password line is redacted"
    );
}

/// Every mail a ticket sent to `to`, as subject and text, with the reference, the address and
/// the status link masked.
fn what_was_mailed(app: &TestApp, reference: &str, to: &str) -> Vec<String> {
    let number: i64 = reference.rsplit('-').next().unwrap().parse().unwrap();
    let mut conn = app.conn();
    recoverydesk::db::outbox::of_ticket(&mut conn, number)
        .unwrap()
        .into_iter()
        .filter(|m| m.recipient == to)
        .map(|m| {
            let text = format!("{}\n\n{}", m.subject, m.body)
                .replace(reference, "RD-?")
                .replace(to, "EMAIL");
            // The status link: its token, and the port (mail queued by the test itself names
            // the port it listens on; the server's own desk was built before it knew it).
            text.lines()
                .map(|line| {
                    // Before delivery the body holds the marker the sender fills in.
                    if line.contains("/t/") || line.contains(recoverydesk::mail::outbound::links::STATUS_LINK) {
                        "STATUS LINK"
                    } else {
                        line
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

async fn strangers_cannot_tell(app: TestApp) {
    let app = app.respawn_with(&[("--form-rate-limit", "1000")]).await;
    directory(&app);
    let mut n = 0;
    let mut seen: Vec<(String, Vec<String>)> = vec![];
    // The same username before the logs are loaded (unknown) and after (it exists, with a
    // finding), and usernames with every kind of finding, including a suspension.
    for loaded in [false, true] {
        if loaded {
            load(&app, &the_log()).await;
        }
        for via in [Via::Api, Via::Form, Via::Mail] {
            for username in [
                "crm-mailer",
                "late-mailer",
                "banned-mailer",
                "fixed-mailer",
                "nobody-mailer",
            ] {
                n += 1;
                let r = open_via(&app, via, STRANGER, username, "smtp_535", n).await;
                let label = format!("{via:?} {username} (logs loaded: {loaded})");
                let mails = what_was_mailed(&app, &r, STRANGER);
                assert_eq!(mails.len(), 1, "{label}: {mails:?}");
                assert!(mails[0].contains("STATUS LINK"), "{label}: the status link");
                assert!(!mails[0].contains(username), "{label}");
                // The agent still sees the finding.
                let t = app.ticket(&r).await;
                assert!(t["diagnosis"]["finding"].is_string(), "{label}");
                seen.push((label, mails));
            }
        }
    }
    let (first_label, first) = &seen[0];
    for (label, mails) in &seen {
        assert_eq!(mails, first, "{label} differs from {first_label}");
    }
    assert!(
        first[0].starts_with("[RD-?] 535 Authentication failed: what to check"),
        "{}",
        first[0]
    );
}

async fn suspension_reroutes(app: TestApp) {
    directory(&app);
    load(&app, &the_log()).await;
    let at = rfc3339(failed_at());

    // The owner of the terminated account asks: the termination workflow, its balance mail.
    let t = app
        .create_ticket(
            json!({"kind": "login_help", "requester": "billing@late.test", "problem": "smtp_535",
                              "smtp_username": "late-mailer", "failed_at": at}),
        )
        .await;
    let r = reference(&t);
    assert_eq!(
        (t["kind"].as_str(), t["state"].as_str()),
        (Some("account_terminated"), Some("awaiting_payment"))
    );
    assert_eq!(t["account_id"], "acc_2002");
    assert_eq!(t["diagnosis"]["finding"], "account_suspended");
    assert_eq!(
        mailed(&app, &r),
        [("balance_due".to_string(), "billing@late.test".to_string())]
    );
    let transition = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "transition")
        .unwrap();
    assert_eq!(transition["data"]["to_kind"], "account_terminated");

    // Someone else names it: the same workflow, the balance to the registered address only.
    let t = app
        .create_ticket(
            json!({"kind": "login_help", "requester": STRANGER, "problem": "smtp_535",
                              "smtp_username": "late-mailer", "failed_at": at}),
        )
        .await;
    let r = reference(&t);
    assert_eq!(t["kind"], "account_terminated");
    let mails = mailed(&app, &r);
    assert!(
        mails.contains(&("balance_due".into(), "billing@late.test".into())),
        "{mails:?}"
    );
    assert!(
        mails.contains(&("diagnosis_checklist".into(), STRANGER.into())),
        "{mails:?}"
    );
    assert_eq!(mails.len(), 2, "{mails:?}");

    // A banned account's username: the banned answer, to the registered address.
    let t = app
        .create_ticket(
            json!({"kind": "login_help", "requester": STRANGER, "problem": "smtp_535",
                              "smtp_username": "banned-mailer", "failed_at": at}),
        )
        .await;
    let r = reference(&t);
    assert_eq!(
        (t["state"].as_str(), t["state_reason"].as_str()),
        (Some("refused"), Some("account_banned"))
    );
    assert_eq!(t["diagnosis"]["finding"], "account_suspended");
    let mails = mailed(&app, &r);
    assert!(
        mails.contains(&("banned_answer".into(), "owner@banned.test".into())),
        "{mails:?}"
    );
    assert!(
        mails.contains(&("diagnosis_checklist".into(), STRANGER.into())),
        "{mails:?}"
    );
}

async fn agents_action(app: TestApp) {
    directory(&app);
    load(&app, &the_log()).await;
    let at = rfc3339(failed_at());
    let t = app
        .create_ticket(json!({"kind": "login_help", "requester": OWNER, "problem": "smtp_535"}))
        .await;
    let r = reference(&t);
    let before = mailed(&app, &r).len();
    let allowed = crate::helpers::action_verdict(&t, "diagnose_auth");
    assert_eq!(allowed["allowed"], true, "{allowed}");

    // Without notify: the agent learns, the customer is not mailed.
    let t = app
        .act(&r, "diagnose_auth", json!({"username": "crm-mailer", "failed_at": at}))
        .await;
    assert_eq!(t["diagnosis"]["finding"], "bad_password");
    assert_eq!(mailed(&app, &r).len(), before);
    let transition = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["type"] == "transition")
        .unwrap();
    assert_eq!(transition["data"]["action"], "diagnose_auth");
    assert_eq!(transition["data"]["username"], "crm-mailer");

    // Again with another username and time, and notify: the latest diagnosis is the ticket's.
    let t = app
        .act(
            &r,
            "diagnose_auth",
            json!({"username": "office-mailer", "failed_at": failed_at().format("%Y-%m-%d %H:%M UTC").to_string(), "notify": true}),
        )
        .await;
    assert_eq!(t["diagnosis"]["finding"], "ip_not_authorized");
    assert_eq!(diagnosis_events(&t).len(), 2);
    assert_eq!(mailed(&app, &r).len(), before + 1);
    assert_eq!(
        mailed(&app, &r).last().unwrap(),
        &("diagnosis_ip_not_authorized".into(), OWNER.into())
    );

    // The console's panel reads the same event.
    let number: i64 = r.rsplit('-').next().unwrap().parse().unwrap();
    let panel = {
        let mut conn = app.conn();
        recoverydesk::services::diagnosis::diagnosis_panel(&mut conn, number)
            .unwrap()
            .expect("a panel")
    };
    assert_eq!(panel.finding, "ip_not_authorized");
    assert!(panel.summary.contains("allow list"), "{}", panel.summary);
    assert_eq!(panel.timeline.len(), 1);
    assert_eq!(panel.timeline[0].client_ip, "198.51.100.99");
    assert!(panel.timeline[0].failed && panel.timeline[0].tls);
    assert_eq!(panel.rerun.username, "office-mailer");
    assert!(panel.can_rerun);

    // Bad parameters are the caller's: 422.
    for bad in [
        json!({}),
        json!({"username": "crm-mailer", "failed_at": "this morning"}),
        json!({"username": "crm-mailer", "channel": "imap"}),
    ] {
        let (status, body) = app.action(&r, "diagnose_auth", bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_input");
    }
    // Another kind, or a closed ticket: 409 invalid_transition.
    let general = app
        .create_ticket(json!({"kind": "general", "requester": OWNER, "body": "hello"}))
        .await;
    let (status, body) = app
        .action(&reference(&general), "diagnose_auth", json!({"username": "crm-mailer"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_transition"))
    );
    app.act(&r, "resolve", json!({})).await;
    let (status, body) = app.action(&r, "diagnose_auth", json!({"username": "crm-mailer"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_transition"))
    );

    // A banned account: refused like every recovery action, and the refusal is logged.
    let t = app
        .create_ticket(json!({"kind": "login_help", "requester": STRANGER, "problem": "smtp_535"}))
        .await;
    let b = reference(&t);
    app.act(&b, "link_account", json!({"account_id": "acc_3003"})).await;
    let (status, body) = app
        .action(&b, "diagnose_auth", json!({"username": "banned-mailer"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("account_banned"))
    );
    let t = app.ticket(&b).await;
    assert!(diagnosis_events(&t).is_empty());
    assert!(
        t["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "refusal" && e["data"]["action"] == "diagnose_auth"),
        "{t}"
    );
}

async fn works_again_resolves(app: TestApp) {
    directory(&app);
    load(&app, &the_log()).await;
    let t = app
        .create_ticket(json!({"kind": "login_help", "requester": OWNER, "problem": "smtp_535",
                              "smtp_username": "fixed-mailer", "failed_at": rfc3339(failed_at())}))
        .await;
    let r = reference(&t);
    let d = &t["diagnosis"];
    assert_eq!(d["finding"], "succeeded_since");
    assert_eq!(d["others"], json!(["bad_password"]));
    assert_eq!(d["succeeded_at"], rfc3339(failed_at() + chrono::Duration::minutes(40)));
    assert_eq!(d["suggested_action"], "resolve");
    let note = d["suggested_note"].as_str().unwrap().to_string();
    assert!(note.contains("Works again"), "{note}");
    // One click: the suggested action with its note.
    let t = app.act(&r, "resolve", json!({"note": note})).await;
    assert_eq!(t["state"], "resolved");
    assert_eq!(
        t["diagnosis"]["suggested_action"],
        Value::Null,
        "nothing left to suggest"
    );
}
