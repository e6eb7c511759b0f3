//! The services' tracing spans (debug level): each use case opens one naming the ticket, the
//! action and the channel, and none ever holds a secret, a token, an address or a customer's
//! words, whatever field those arrive in.

use crate::both_backends;
use crate::helpers::*;
use recoverydesk::services::{Actor, portal, tickets};
use serde_json::json;
use std::sync::{Arc, Mutex, OnceLock};
use tracing_subscriber::fmt::format::FmtSpan;

/// What the subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

both_backends!(service_spans_name_the_ticket_and_never_hold_a_secret, spans);

/// tracing-core keeps, per call site, whether any subscriber wants it, and while at most one
/// subscriber is alive when a subscriber is registered it asks only the registering thread's
/// own subscriber. The
/// scoped subscriber below is then the only one: a call site first reached by another test's
/// thread while it lives would be marked as wanted by no one, and its span would be missing
/// here (seen once in CI). A second subscriber that lives as long as the process makes
/// tracing-core ask every live subscriber instead.
fn ask_every_subscriber() {
    static SECOND: OnceLock<tracing::Dispatch> = OnceLock::new();
    SECOND.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
}

async fn spans(app: TestApp) {
    ask_every_subscriber();
    let secret = "Hunter2-zebra-771";
    let token = "tok3nabcdefghijklmnopqrstuvwxyz0123456789AB";
    let address = "pat.secretive@cust.test";
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("recoverydesk=debug"))
        .with_span_events(FmtSpan::NEW)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let mut conn = app.conn();
    let id = tracing::subscriber::with_default(subscriber, || {
        let raw = format!(
            "From: {address}\r\nSubject: locked out, password {secret}\r\nMessage-ID: <span-1@cust.test>\r\n\r\nmy password is {secret}\r\n"
        );
        let ingested = app.ingest(raw.as_bytes());
        app.open_direct(address, &format!("password {secret}"), tickets::Channel::Api);
        let reference = ingested.ticket.expect("the mail opens a ticket");
        let id: i64 = reference
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a number");
        let agent = Actor::Agent {
            id: 1,
            email: "admin@desk.test".into(),
            admin: true,
        };
        let note = json!({"note": format!("the password was {secret}")});
        tickets::apply_action(&mut conn, &app.desk, id, "resolve", &note, &agent).expect("resolved");
        // An unknown action whose name is a secret: refused, and the name is not in a span.
        let refused = tickets::apply_action(&mut conn, &app.desk, id, secret, &json!({}), &agent);
        assert!(refused.is_err(), "{refused:?}");
        tickets::add_reply(&mut conn, &app.desk, id, &format!("{address}: {secret}"), false, &agent).expect("replied");
        tickets::confirm_email_challenge(&mut conn, &app.desk, token, true).expect("answered");
        assert!(
            portal::status_view(&mut conn, &app.desk, token)
                .expect("read")
                .is_none()
        );
        id
    });
    let text = String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|e| e.into_inner())).to_string();
    let opened: Vec<&str> = text.lines().filter(|l| l.trim_end().ends_with(": new")).collect();
    let span = |name: &str| {
        opened
            .iter()
            .find(|l| l.contains(&format!("{name}{{")) || l.contains(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} span in:\n{text}"))
            .to_string()
    };
    assert!(span("ingest").contains("channel=\"test\""), "{text}");
    let opened_by_api = span("open_ticket");
    assert!(opened_by_api.contains("channel=\"api\""), "{opened_by_api}");
    assert!(opened_by_api.contains("kind=\"general\""), "{opened_by_api}");
    let applied = span("apply_action");
    assert!(applied.contains(&format!("ticket_id={id}")), "{applied}");
    assert!(applied.contains("resolve"), "{applied}");
    assert!(
        opened.iter().any(|l| l.contains("action=\"unknown\"")),
        "the unknown name is told as unknown: {text}"
    );
    assert!(span("add_reply").contains(&format!("ticket_id={id}")), "{text}");
    span("confirm_email_challenge");
    span("status_view");
    for leak in [secret, token, address, "my password"] {
        assert!(!text.contains(leak), "{leak:?} is in a span or a log line:\n{text}");
    }
}
