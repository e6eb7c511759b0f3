//! Every finding of docs/reference.md#kinds-and-states's table, the edges of the window, and usernames that are odd but
//! valid. Expectations are written from the reference, never read back from the code.

use super::*;
use chrono::TimeZone;

/// The customer's "failed at" in these tests.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 14, 0).unwrap()
}

/// "Now", a while after the failure.
fn now() -> DateTime<Utc> {
    t0() + Duration::hours(3)
}

fn minutes(n: i64) -> Duration {
    Duration::minutes(n)
}

fn event(username: &str, at: DateTime<Utc>, result: AuthResult) -> AuthEvent {
    AuthEvent {
        at,
        channel: AuthChannel::Smtp,
        username: username.to_string(),
        account_id: (result != AuthResult::UnknownUser).then(|| "acc_1001".to_string()),
        client_ip: "203.0.113.7".parse().unwrap(),
        mechanism: "PLAIN".into(),
        tls: true,
        result,
    }
}

fn on_api(mut e: AuthEvent) -> AuthEvent {
    e.channel = AuthChannel::Api;
    e
}

fn ask(username: &str, known: bool, events: &[AuthEvent]) -> Diagnosis {
    ask_on(username, AuthChannel::Smtp, known, events)
}

fn ask_on(username: &str, channel: AuthChannel, known: bool, events: &[AuthEvent]) -> Diagnosis {
    diagnose(
        &Question {
            username,
            channel,
            when: When::Given(t0()),
            now: now(),
            known_to_logs: known,
        },
        events,
    )
}

// ---------------------------------------------------------------------------------------------
// One test per finding
// ---------------------------------------------------------------------------------------------

#[test]
fn an_smtp_username_with_an_at_sign_the_logs_do_not_know_is_the_wrong_field() {
    let d = ask("ops@acme.test", false, &[]);
    assert_eq!(d.finding, Finding::UsernameHasAt);
    // The relay's own "unknown user" for it does not hide the likelier cause.
    let d = ask(
        "ops@acme.test",
        false,
        &[event("ops@acme.test", t0(), AuthResult::UnknownUser)],
    );
    assert_eq!(d.finding, Finding::UsernameHasAt);
    assert_eq!(d.events, 1);
    assert_eq!(d.others, [Finding::UnknownUser]);
}

#[test]
fn an_at_sign_in_a_username_the_logs_know_is_just_a_username() {
    let known = [event("team@crm", t0(), AuthResult::BadPassword)];
    assert_eq!(ask("team@crm", true, &known).finding, Finding::BadPassword);
}

#[test]
fn stray_whitespace_or_invisible_characters_in_an_unknown_smtp_username_are_named() {
    for typed in [
        " crm-mailer",
        "crm-mailer ",
        "crm-mailer\n",
        "\tcrm-mailer",
        "crm-mailer\u{00A0}",
        "crm\u{200B}mailer",
        "\u{FEFF}crm-mailer",
        "crm-mailer\u{2060}",
    ] {
        assert_eq!(ask(typed, false, &[]).finding, Finding::UsernameWhitespace, "{typed:?}");
    }
}

#[test]
fn both_static_problems_name_the_at_sign_and_list_the_whitespace() {
    let d = ask(" ops@acme.test ", false, &[]);
    assert_eq!(d.finding, Finding::UsernameHasAt);
    assert_eq!(d.others, [Finding::UsernameWhitespace]);
}

#[test]
fn the_static_checks_are_for_smtp_usernames_only() {
    assert_eq!(
        ask_on("ops@acme.test", AuthChannel::Api, false, &[]).finding,
        Finding::RequestNotSeen
    );
    assert_eq!(
        ask_on(" app ", AuthChannel::Api, false, &[]).finding,
        Finding::RequestNotSeen
    );
}

#[test]
fn a_username_known_as_typed_with_surrounding_spaces_is_judged_by_its_events() {
    let typed = " crm-mailer ";
    let d = ask(typed, true, &[event(typed, t0(), AuthResult::UserDisabled)]);
    assert_eq!(d.finding, Finding::UserDisabled);
}

#[test]
fn nothing_logged_for_the_username_in_the_window_means_the_request_never_reached_us() {
    let d = ask("crm-mailer", true, &[]);
    assert_eq!(d.finding, Finding::RequestNotSeen);
    assert_eq!((d.events, d.first_at, d.last_at), (0, None, None));
    assert!(d.client_ips.is_empty() && d.mechanisms.is_empty() && d.timeline.is_empty());
    // An unknown username without odd characters too.
    assert_eq!(ask("crm-mailer", false, &[]).finding, Finding::RequestNotSeen);
}

#[test]
fn each_failure_result_is_its_own_finding() {
    for (result, finding) in [
        (AuthResult::UnknownUser, Finding::UnknownUser),
        (AuthResult::UserDisabled, Finding::UserDisabled),
        (AuthResult::BadPassword, Finding::BadPassword),
        (AuthResult::AccountSuspended, Finding::AccountSuspended),
        (AuthResult::IpNotAuthorized, Finding::IpNotAuthorized),
        (AuthResult::MechanismNotSupported, Finding::MechanismNotSupported),
        (AuthResult::TlsRequired, Finding::TlsRequired),
    ] {
        let d = ask("crm-mailer", true, &[event("crm-mailer", t0() - minutes(1), result)]);
        assert_eq!(d.finding, finding, "{result:?}");
        assert!(d.others.is_empty());
        assert_eq!(d.succeeded_at, None);
    }
}

#[test]
fn a_success_after_the_last_failure_says_it_works_again() {
    let events = [
        event("crm-mailer", t0() - minutes(2), AuthResult::BadPassword),
        event("crm-mailer", t0() + minutes(5), AuthResult::Ok),
    ];
    let d = ask("crm-mailer", true, &events);
    assert_eq!(d.finding, Finding::SucceededSince);
    assert_eq!(d.succeeded_at, Some(t0() + minutes(5)));
    assert_eq!(d.others, [Finding::BadPassword], "what it recovered from");
    assert_eq!(d.events, 2);
}

#[test]
fn a_success_before_the_failure_does_not_count() {
    let events = [
        event("crm-mailer", t0() - minutes(10), AuthResult::Ok),
        event("crm-mailer", t0() - minutes(1), AuthResult::BadPassword),
    ];
    let d = ask("crm-mailer", true, &events);
    assert_eq!(d.finding, Finding::BadPassword);
    assert_eq!(d.succeeded_at, None);
}

#[test]
fn a_success_after_the_window_up_to_now_counts_and_joins_the_timeline() {
    let later = t0() + Duration::hours(2);
    let events = [
        event("crm-mailer", t0(), AuthResult::BadPassword),
        event("crm-mailer", later, AuthResult::Ok),
        event("crm-mailer", later + minutes(1), AuthResult::Ok),
    ];
    let d = ask("crm-mailer", true, &events);
    assert_eq!(d.finding, Finding::SucceededSince);
    assert_eq!(d.succeeded_at, Some(later), "the first success after the failure");
    assert_eq!(d.events, 1, "the window's own count");
    assert_eq!(d.timeline.len(), 2);
    assert_eq!(d.timeline[1].result, AuthResult::Ok);
}

#[test]
fn a_success_logged_after_now_does_not_count() {
    let events = [
        event("crm-mailer", t0(), AuthResult::BadPassword),
        event("crm-mailer", now() + minutes(1), AuthResult::Ok),
    ];
    assert_eq!(ask("crm-mailer", true, &events).finding, Finding::BadPassword);
}

#[test]
fn a_window_with_only_successes_says_it_works() {
    let d = ask("crm-mailer", true, &[event("crm-mailer", t0(), AuthResult::Ok)]);
    assert_eq!(d.finding, Finding::SucceededSince);
    assert_eq!(d.succeeded_at, Some(t0()));
    assert!(d.others.is_empty());
}

#[test]
fn with_several_kinds_of_failure_the_latest_wins_and_the_others_are_listed() {
    let events = [
        event("crm-mailer", t0() - minutes(12), AuthResult::TlsRequired),
        event("crm-mailer", t0() - minutes(8), AuthResult::MechanismNotSupported),
        event("crm-mailer", t0() - minutes(6), AuthResult::TlsRequired),
        event("crm-mailer", t0() + minutes(3), AuthResult::BadPassword),
        event("crm-mailer", t0() - minutes(1), AuthResult::IpNotAuthorized),
    ];
    let d = ask("crm-mailer", true, &events);
    assert_eq!(d.finding, Finding::BadPassword);
    assert_eq!(
        d.others,
        [
            Finding::IpNotAuthorized,
            Finding::TlsRequired,
            Finding::MechanismNotSupported
        ],
        "latest first, each once"
    );
    assert_eq!(d.first_at, Some(t0() - minutes(12)));
    assert_eq!(d.last_at, Some(t0() + minutes(3)));
    assert!(d.timeline.windows(2).all(|w| w[0].at <= w[1].at), "oldest first");
}

// ---------------------------------------------------------------------------------------------
// The window
// ---------------------------------------------------------------------------------------------

#[test]
fn events_exactly_fifteen_minutes_either_side_are_inside_the_window() {
    for offset in [-minutes(15), minutes(15)] {
        let d = ask(
            "crm-mailer",
            true,
            &[event("crm-mailer", t0() + offset, AuthResult::UserDisabled)],
        );
        assert_eq!(d.finding, Finding::UserDisabled, "{offset}");
        assert_eq!(d.events, 1);
    }
}

#[test]
fn events_just_outside_fifteen_minutes_are_not_read() {
    let tick = Duration::microseconds(1);
    for at in [t0() - minutes(15) - tick, t0() + minutes(15) + tick] {
        let d = ask("crm-mailer", true, &[event("crm-mailer", at, AuthResult::UserDisabled)]);
        assert_eq!(d.finding, Finding::RequestNotSeen, "{at}");
        assert_eq!(d.events, 0);
    }
    assert_eq!(
        When::Given(t0()).window(now()),
        (t0() - minutes(15), t0() + minutes(15))
    );
}

#[test]
fn a_failure_outside_the_window_is_not_the_finding() {
    let events = [
        event("crm-mailer", t0() - minutes(40), AuthResult::AccountSuspended),
        event("crm-mailer", t0() + minutes(2), AuthResult::BadPassword),
    ];
    let d = ask("crm-mailer", true, &events);
    assert_eq!(d.finding, Finding::BadPassword);
    assert!(d.others.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Several usernames, channels, and odd but valid usernames
// ---------------------------------------------------------------------------------------------

#[test]
fn only_the_asked_username_counts_among_several_in_the_log() {
    let events = [
        event("crm-mailer", t0(), AuthResult::BadPassword),
        event("wordpress-blog", t0(), AuthResult::AccountSuspended),
        event("crm-mailer ", t0(), AuthResult::UnknownUser),
        event("CRM-MAILER", t0(), AuthResult::UnknownUser),
        event("crm-mailer2", t0(), AuthResult::IpNotAuthorized),
        on_api(event("crm-mailer", t0() + minutes(1), AuthResult::UserDisabled)),
    ];
    let d = ask("crm-mailer", true, &events);
    assert_eq!(d.finding, Finding::BadPassword);
    assert_eq!(d.events, 1);
    assert!(d.others.is_empty());
    assert_eq!(ask("wordpress-blog", true, &events).finding, Finding::AccountSuspended);
    assert_eq!(ask("CRM-MAILER", false, &events).finding, Finding::UnknownUser);
    let api = ask_on("crm-mailer", AuthChannel::Api, true, &events);
    assert_eq!(api.finding, Finding::UserDisabled, "the API's log is another channel");
    assert_eq!(api.channel, AuthChannel::Api);
}

#[test]
fn usernames_with_inner_spaces_or_other_scripts_are_ordinary_usernames() {
    for name in [
        "crm mailer",
        "Ünïcode-mailer",
        "почта",
        "メール送信",
        "o'brien+shop",
        "a",
    ] {
        let d = ask(name, true, &[event(name, t0(), AuthResult::BadPassword)]);
        assert_eq!(d.finding, Finding::BadPassword, "{name:?}");
        assert_eq!(d.username, name);
        // Unknown to the logs and never seen: no static complaint about them either.
        assert_eq!(ask(name, false, &[]).finding, Finding::RequestNotSeen, "{name:?}");
    }
}

#[test]
fn usernames_are_compared_byte_for_byte() {
    let composed = "Ünïcode";
    let decomposed = "U\u{0308}ni\u{0308}code";
    assert_ne!(composed, decomposed);
    let events = [event(composed, t0(), AuthResult::BadPassword)];
    assert_eq!(ask(composed, true, &events).finding, Finding::BadPassword);
    assert_eq!(ask(decomposed, false, &events).finding, Finding::RequestNotSeen);
}

// ---------------------------------------------------------------------------------------------
// Without a time
// ---------------------------------------------------------------------------------------------

#[test]
fn without_a_time_the_latest_failure_of_the_last_24_hours_is_the_centre() {
    let events = [
        event("crm-mailer", now() - Duration::hours(30), AuthResult::AccountSuspended),
        event("crm-mailer", now() - Duration::hours(5), AuthResult::TlsRequired),
        event("crm-mailer", now() - Duration::hours(2), AuthResult::BadPassword),
        event("other", now() - Duration::hours(1), AuthResult::UnknownUser),
    ];
    let when = When::resolve(None, "crm-mailer", AuthChannel::Smtp, now(), &events);
    assert_eq!(when, When::LatestFailure(now() - Duration::hours(2)));
    let d = diagnose(
        &Question {
            username: "crm-mailer",
            channel: AuthChannel::Smtp,
            when,
            now: now(),
            known_to_logs: true,
        },
        &events,
    );
    assert_eq!(d.finding, Finding::BadPassword);
    assert!(d.others.is_empty(), "five hours earlier is outside the window");
    let json = d.to_json();
    assert_eq!(json["failed_at_source"], "latest_failure");
    assert!(json["note"].as_str().unwrap().contains("latest failure"), "{json}");
}

#[test]
fn without_a_time_or_a_failure_the_whole_last_day_is_read() {
    let events = [event("crm-mailer", now() - Duration::hours(20), AuthResult::Ok)];
    let when = When::resolve(None, "crm-mailer", AuthChannel::Smtp, now(), &events);
    assert_eq!(when, When::Last24Hours);
    assert_eq!(when.window(now()), (now() - Duration::hours(24), now()));
    let d = diagnose(
        &Question {
            username: "crm-mailer",
            channel: AuthChannel::Smtp,
            when,
            now: now(),
            known_to_logs: true,
        },
        &events,
    );
    assert_eq!(d.finding, Finding::SucceededSince);
    assert_eq!(d.to_json()["failed_at_source"], "last_24_hours");
    assert_eq!(
        When::resolve(Some(t0()), "crm-mailer", AuthChannel::Smtp, now(), &events),
        When::Given(t0())
    );
}

// ---------------------------------------------------------------------------------------------
// The event's shape and the evidence
// ---------------------------------------------------------------------------------------------

#[test]
fn the_diagnosis_event_carries_specs_fields() {
    let mut second = event("crm-mailer", t0() + minutes(1), AuthResult::MechanismNotSupported);
    second.client_ip = "2001:db8::25".parse().unwrap();
    second.mechanism = "CRAM-MD5".into();
    let events = [
        event("crm-mailer", t0() - minutes(1), AuthResult::MechanismNotSupported),
        second,
        event("crm-mailer", t0() + minutes(2), AuthResult::MechanismNotSupported),
    ];
    let json = ask("crm-mailer", true, &events).to_json();
    for key in [
        "finding",
        "username",
        "channel",
        "events",
        "first_at",
        "last_at",
        "client_ips",
        "mechanisms",
    ] {
        assert!(json.get(key).is_some(), "{key} missing from {json}");
    }
    assert_eq!(json["finding"], "mechanism_not_supported");
    assert_eq!(json["events"], 3);
    assert_eq!(json["first_at"], "2026-11-23T09:13:00Z");
    assert_eq!(json["last_at"], "2026-11-23T09:16:00Z");
    assert_eq!(json["client_ips"], json!(["203.0.113.7", "2001:db8::25"]));
    assert_eq!(json["mechanisms"], json!(["PLAIN", "CRAM-MD5"]));
    assert_eq!(json["account_id"], "acc_1001");
    assert!(json.get("others").is_none(), "only with several kinds");
    assert_eq!(json["timeline"][1]["mechanism"], "CRAM-MD5");
    assert_eq!(json["failed_at_source"], "given");
}

#[test]
fn the_timeline_keeps_the_latest_events() {
    let events: Vec<AuthEvent> = (0..30)
        .map(|i| {
            event(
                "crm-mailer",
                t0() - minutes(14) + Duration::seconds(i * 10),
                AuthResult::BadPassword,
            )
        })
        .collect();
    let d = ask("crm-mailer", true, &events);
    assert_eq!(d.events, 30);
    assert_eq!(d.timeline.len(), TIMELINE_LIMIT);
    assert_eq!(d.timeline.last().unwrap().at, d.last_at.unwrap());
}

#[test]
fn every_finding_has_words_for_agents_and_a_stable_name() {
    for finding in Finding::ALL {
        assert_eq!(Finding::parse(finding.as_str()), Some(finding));
        assert!(finding.agent_summary().ends_with('.'));
    }
    for result in AuthResult::ALL {
        assert_eq!(Finding::of_failure(result).is_some(), result.is_failure());
    }
}

#[test]
fn failed_at_is_read_as_people_write_it() {
    let want = Utc.with_ymd_and_hms(2026, 11, 23, 9, 14, 0).unwrap();
    for text in [
        "2026-11-23T09:14:00Z",
        "2026-11-23T10:14:00+01:00",
        "2026-11-23T09:14",
        "2026-11-23 09:14 UTC",
        "2026-11-23 09:14",
        "2026-11-23 09:14:00 GMT",
        "2026-11-23 10:14 +0100",
        "2026-11-23 04:14 -05:00",
        "Mon, 23 Nov 2026 09:14:00 +0000",
        " 2026-11-23 09:14 UTC. ",
    ] {
        assert_eq!(parse_failed_at(text), Some(want), "{text:?}");
    }
    for text in ["", "this morning", "2026-11-23", "23/11/2026 09:14"] {
        assert_eq!(parse_failed_at(text), None, "{text:?}");
    }
}
