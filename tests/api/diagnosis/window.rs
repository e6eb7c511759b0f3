//! The statements a diagnosis reads a name's events with, on a name with more events than one
//! diagnosis reads: the latest of them, oldest first, and the whole count; the latest failure,
//! the first success after, the latest owner named.

use crate::both_backends;
use crate::helpers::{StatementLog, TestApp};
use chrono::{Duration, NaiveDateTime, Timelike, Utc};
use recoverydesk::db::auth_events::{self, NewAuthEvent, WINDOW_ROWS};
use recoverydesk::domain::diagnosis::AuthChannel;

both_backends!(a_busy_name_is_read_from_its_latest_events_and_counted_whole, busy_name);

fn attempt(at: NaiveDateTime, username: &str, result: &'static str, account_id: Option<&str>) -> NewAuthEvent {
    NewAuthEvent {
        at,
        channel: "smtp",
        username: username.into(),
        account_id: account_id.map(Into::into),
        client_ip: "203.0.113.7".into(),
        mechanism: "PLAIN".into(),
        tls: true,
        result,
    }
}

async fn busy_name(app: TestApp) {
    let start = (Utc::now() - Duration::hours(3))
        .naive_utc()
        .with_nanosecond(0)
        .expect("whole second");
    let second = |n: i64| start + Duration::seconds(n);
    let failures = WINDOW_ROWS + 1;
    let mut rows: Vec<NewAuthEvent> = (0..failures)
        .map(|n| {
            let owner = match n {
                3 => Some("acc_old"),
                1_500 => Some("acc_new"),
                _ => None,
            };
            attempt(second(n), "busy", "bad_password", owner)
        })
        .collect();
    // A success after the window, and another name's events in between.
    rows.push(attempt(second(failures + 600), "busy", "ok", None));
    rows.push(attempt(second(10), "quiet", "unknown_user", Some("acc_other")));
    rows.push(attempt(second(failures + 700), "busy", "bad_password", Some("acc_api")));
    rows.last_mut().expect("one").channel = "api";
    let mut conn = app.conn();
    auth_events::insert_new(&mut conn, &rows).expect("stored");
    let log = StatementLog::start(&mut conn);

    let (from, to) = (second(0), second(failures - 1));
    let read = auth_events::between(&mut conn, "busy", AuthChannel::Smtp, from, to).expect("read");
    assert_eq!(read.len() as i64, WINDOW_ROWS, "no more than one diagnosis reads");
    assert_eq!(
        read.first().map(|r| r.at),
        Some(second(1)),
        "the latest ones, the earliest dropped"
    );
    assert_eq!(read.last().map(|r| r.at), Some(to), "oldest first");
    assert!(read.iter().all(|r| r.username == "busy" && r.channel == "smtp"));

    let (count, first) = auth_events::count_between(&mut conn, "busy", AuthChannel::Smtp, from, to).expect("counted");
    assert_eq!((count, first), (failures, Some(from)));

    let until = second(failures + 3_600);
    assert_eq!(
        auth_events::latest_failure(&mut conn, "busy", AuthChannel::Smtp, from, until).expect("read"),
        Some(to),
        "the other channel's later failure is not this one's"
    );
    let ok = auth_events::first_success_after(&mut conn, "busy", AuthChannel::Smtp, to, until).expect("read");
    assert_eq!(
        ok.map(|r| (r.at, r.result)),
        Some((second(failures + 600), "ok".to_string()))
    );
    assert!(
        auth_events::first_success_after(&mut conn, "busy", AuthChannel::Smtp, second(failures + 600), until)
            .expect("read")
            .is_none(),
        "strictly after"
    );

    assert_eq!(
        auth_events::owner_of(&mut conn, "busy", AuthChannel::Smtp)
            .expect("read")
            .as_deref(),
        Some("acc_new")
    );
    assert_eq!(
        auth_events::owner_of(&mut conn, "nobody", AuthChannel::Smtp).expect("read"),
        None
    );
    // A name is a bound value, never SQL.
    let hostile = "busy' OR '1'='1";
    assert_eq!(
        auth_events::owner_of(&mut conn, hostile, AuthChannel::Smtp).expect("read"),
        None
    );
    assert!(
        auth_events::between(&mut conn, hostile, AuthChannel::Smtp, from, until)
            .expect("read")
            .is_empty()
    );
    assert!(auth_events::known_as_user(&mut conn, "busy", AuthChannel::Smtp).expect("read"));
    assert!(!auth_events::known_as_user(&mut conn, "quiet", AuthChannel::Smtp).expect("read"));

    // Each limit is written in the statement: a bound `LIMIT` makes SQLite compile the
    // statement again at every use.
    let statements = log.stop(&mut conn);
    assert!(statements.len() >= 8, "{statements:#?}");
    for sql in &statements {
        let limit = sql.split("LIMIT").nth(1).map(str::trim);
        assert!(
            limit.is_none_or(|l| l.starts_with(|c: char| c.is_ascii_digit())),
            "a bound LIMIT: {sql}"
        );
    }
}
