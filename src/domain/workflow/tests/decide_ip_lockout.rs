//! decide(): states, effects and parameters, ip_lockout.

use super::*;

// =============================================================================================
// decide(): states, effects and parameters
// =============================================================================================

// --- ip_lockout ------------------------------------------------------------------------------

#[test]
fn grant_ip_access_adds_the_entry_mails_the_registered_address_and_resolves() {
    let ticket = Ticket::new(Kind::IpLockout, State::OwnershipVerified);
    let decision = ticket
        .act("grant_ip_access", json!({"ip": " 198.51.100.7/24 "}))
        .unwrap();
    assert_eq!(decision.state, State::Resolved);
    assert_eq!(
        non_mail_effects(&decision),
        [Effect::AddAllowlistEntry {
            account_id: "acc_1001".into(),
            ip: "198.51.100.0/24".into()
        }]
    );
    assert_eq!(
        mail_to(&decision, &to_account("acc_1001")),
        [MailTemplate::IpGranted {
            ip: "198.51.100.0/24".into()
        }]
    );
    assert_eq!(
        mail_count(&decision),
        1,
        "the registered requester needs no second mail"
    );
}

#[test]
fn grant_ip_access_for_someone_else_only_tells_them_there_is_news() {
    let ticket = Ticket::new(Kind::IpLockout, State::OwnershipVerified).requested_by(STRANGER);
    let decision = ticket.act("grant_ip_access", json!({"ip": "2001:db8::7"})).unwrap();
    assert_eq!(decision.state, State::Resolved);
    assert_eq!(
        mail_to(&decision, &to_account("acc_1001")),
        [MailTemplate::IpGranted {
            ip: "2001:db8::7".into()
        }]
    );
    assert_eq!(mail_to(&decision, &Recipient::Requester), [MailTemplate::StatusUpdate]);
}

#[test]
fn grant_is_refused_until_ownership_is_verified() {
    for state in [
        State::AwaitingAllowlistedAttempts,
        State::AttemptsReported,
        State::VerifyingOwnership,
    ] {
        let ticket = Ticket::new(Kind::IpLockout, state);
        assert_eq!(
            ticket.act("grant_ip_access", json!({"ip": "203.0.113.9"})),
            Err(ErrorCode::OwnershipNotVerified),
            "{state}"
        );
    }
}

#[test]
fn grant_ip_access_refuses_addresses_that_are_not_one_narrow_public_network() {
    let ticket = Ticket::new(Kind::IpLockout, State::OwnershipVerified);
    let cases = [
        ("not an address", ErrorCode::InvalidIp),
        ("203.0.113", ErrorCode::InvalidIp),
        ("256.1.1.1", ErrorCode::InvalidIp),
        ("203.0.113.9/33", ErrorCode::InvalidIp),
        ("198.51.100.0/23", ErrorCode::InvalidIp),
        ("8.8.0.0/16", ErrorCode::InvalidIp),
        ("2001:db8::/47", ErrorCode::InvalidIp),
        ("10.1.2.3", ErrorCode::IpNotPublic),
        ("172.16.0.0/24", ErrorCode::IpNotPublic),
        ("192.168.1.20", ErrorCode::IpNotPublic),
        ("127.0.0.1", ErrorCode::IpNotPublic),
        ("::1", ErrorCode::IpNotPublic),
        ("0.0.0.0", ErrorCode::IpNotPublic),
        ("100.64.0.1", ErrorCode::IpNotPublic),
        ("100.127.255.0/24", ErrorCode::IpNotPublic),
        ("169.254.10.10", ErrorCode::IpNotPublic),
        ("fe80::1", ErrorCode::IpNotPublic),
        ("fc00::1", ErrorCode::IpNotPublic),
        ("fd12:3456::/48", ErrorCode::IpNotPublic),
        ("224.0.0.1", ErrorCode::IpNotPublic),
    ];
    for (ip, code) in cases {
        assert_eq!(ticket.act("grant_ip_access", json!({ "ip": ip })), Err(code), "{ip}");
        assert_eq!(code.http_status(), 422);
    }
    assert_eq!(ticket.act("grant_ip_access", json!({})), Err(ErrorCode::InvalidInput));
    assert_eq!(
        ticket.act("grant_ip_access", json!({"ip": 2130706433})),
        Err(ErrorCode::InvalidInput)
    );
}

#[test]
fn reported_attempts_move_the_ticket_on_and_need_a_tried_from() {
    let ticket = Ticket::new(Kind::IpLockout, State::AwaitingAllowlistedAttempts);
    let decision = ticket
        .act(
            "record_allowlisted_attempts",
            json!({"tried_from": "office VPN", "outcome": "still blocked"}),
        )
        .unwrap();
    assert_eq!(decision.state, State::AttemptsReported);
    assert_eq!(
        decision.effects,
        [Effect::RecordAttempts {
            tried_from: "office VPN".into(),
            outcome: "still blocked".into()
        }]
    );
    for params in [json!({}), json!({"tried_from": "   "}), json!({"tried_from": null})] {
        assert_eq!(
            ticket.act("record_allowlisted_attempts", params.clone()),
            Err(ErrorCode::InvalidInput),
            "{params}"
        );
    }
    // outcome is free text and may be left out.
    assert!(
        ticket
            .act("record_allowlisted_attempts", json!({"tried_from": "home"}))
            .is_ok()
    );
}

#[test]
fn ownership_verification_starts_a_fresh_round_only_after_attempts_are_reported() {
    let ticket = Ticket::new(Kind::IpLockout, State::AttemptsReported);
    let decision = ticket.act("start_ownership_verification", json!({})).unwrap();
    assert_eq!(decision.state, State::VerifyingOwnership);
    assert_eq!(decision.effects, [Effect::StartVerificationRound]);
    assert_eq!(
        Ticket::new(Kind::IpLockout, State::AwaitingAllowlistedAttempts).act("start_ownership_verification", json!({})),
        Err(ErrorCode::AllowlistedAttemptsMissing)
    );
}

#[test]
fn the_email_challenge_goes_to_the_linked_accounts_address() {
    let ticket = Ticket::new(Kind::IpLockout, State::VerifyingOwnership).requested_by(STRANGER);
    let decision = ticket.act("send_email_challenge", json!({})).unwrap();
    assert_eq!(decision.state, State::VerifyingOwnership);
    assert_eq!(
        decision.effects,
        [Effect::IssueEmailChallenge {
            account_id: "acc_1001".into()
        }]
    );
}

#[test]
fn an_agent_cannot_record_an_email_challenge() {
    let ticket = Ticket::new(Kind::IpLockout, State::VerifyingOwnership);
    for passed in [true, false] {
        assert_eq!(
            ticket.act(
                "record_verification_check",
                json!({"method": "email_challenge", "passed": passed})
            ),
            Err(ErrorCode::EmailChallengeByLinkOnly)
        );
    }
}

#[test]
fn verification_check_parameters_are_validated() {
    let ticket = Ticket::new(Kind::IpLockout, State::VerifyingOwnership);
    for params in [
        json!({"passed": true}),
        json!({"method": "dna_test", "passed": true}),
        json!({"method": "billing_details"}),
        json!({"method": "billing_details", "passed": "maybe"}),
    ] {
        assert_eq!(
            ticket.act("record_verification_check", params.clone()),
            Err(ErrorCode::InvalidInput),
            "{params}"
        );
    }
}

#[test]
fn one_passed_check_is_recorded_and_verification_goes_on() {
    let ticket = Ticket::new(Kind::IpLockout, State::VerifyingOwnership);
    let decision = ticket
        .act(
            "record_verification_check",
            json!({"method": "billing_details", "passed": true, "evidence": "last invoice"}),
        )
        .unwrap();
    assert_eq!(decision.state, State::VerifyingOwnership);
    assert_eq!(
        decision.effects,
        [Effect::RecordCheck {
            method: Method::BillingDetails,
            passed: true,
            evidence: "last invoice".into()
        }]
    );
}

#[test]
fn two_passed_checks_including_the_confirmed_email_challenge_verify_ownership() {
    // The challenge confirmed after another method passed…
    let after_billing =
        Ticket::new(Kind::IpLockout, State::VerifyingOwnership).with_checks(&[(Method::BillingDetails, true)]);
    let decision = after_billing.confirm(true).unwrap();
    assert_eq!(decision.state, State::OwnershipVerified);
    assert!(matches!(
        decision.effects.as_slice(),
        [Effect::RecordCheck {
            method: Method::EmailChallenge,
            passed: true,
            ..
        }]
    ));
    // …or another method passing after the challenge was confirmed.
    let after_challenge =
        Ticket::new(Kind::IpLockout, State::VerifyingOwnership).with_checks(&[(Method::EmailChallenge, true)]);
    let decision = after_challenge
        .act(
            "record_verification_check",
            json!({"method": "phone_callback", "passed": true}),
        )
        .unwrap();
    assert_eq!(decision.state, State::OwnershipVerified);
}

#[test]
fn ownership_is_not_verified_without_the_email_challenge_or_with_one_method_twice() {
    let without_challenge = Ticket::new(Kind::IpLockout, State::VerifyingOwnership)
        .with_checks(&[(Method::BillingDetails, true), (Method::AccountDetails, true)]);
    let decision = without_challenge
        .act(
            "record_verification_check",
            json!({"method": "phone_callback", "passed": true}),
        )
        .unwrap();
    assert_eq!(decision.state, State::VerifyingOwnership);

    let challenge_twice =
        Ticket::new(Kind::IpLockout, State::VerifyingOwnership).with_checks(&[(Method::EmailChallenge, true)]);
    assert_eq!(challenge_twice.confirm(true).unwrap().state, State::VerifyingOwnership);

    let after_a_failure = Ticket::new(Kind::IpLockout, State::VerifyingOwnership)
        .with_checks(&[(Method::EmailChallenge, true), (Method::BillingDetails, false)]);
    let decision = after_a_failure
        .act(
            "record_verification_check",
            json!({"method": "account_details", "passed": false}),
        )
        .unwrap();
    assert_eq!(decision.state, State::VerifyingOwnership, "two failures are not three");
}

#[test]
fn three_failed_checks_refuse_the_ticket_as_verification_failed() {
    let ticket = Ticket::new(Kind::IpLockout, State::VerifyingOwnership)
        .requested_by(STRANGER)
        .with_checks(&[(Method::BillingDetails, false), (Method::EmailChallenge, false)]);
    let decision = ticket
        .act(
            "record_verification_check",
            json!({"method": "account_details", "passed": false}),
        )
        .unwrap();
    assert_eq!(decision.state, State::Refused);
    assert_eq!(decision.state_reason.as_deref(), Some("verification_failed"));
    for template in mail_to(&decision, &Recipient::Requester) {
        assert!(!is_account_dependent(&template), "{template:?} to a stranger");
    }
    // "This was not me" as the third failure ends it too.
    let ticket = Ticket::new(Kind::IpLockout, State::VerifyingOwnership)
        .with_checks(&[(Method::BillingDetails, false), (Method::PhoneCallback, false)]);
    let decision = ticket.confirm(false).unwrap();
    assert_eq!(decision.state, State::Refused);
    assert_eq!(decision.state_reason.as_deref(), Some("verification_failed"));
}

#[test]
fn this_was_not_me_records_a_failed_challenge_and_flags_the_ticket() {
    let ticket = Ticket::new(Kind::IpLockout, State::VerifyingOwnership);
    let decision = ticket.confirm(false).unwrap();
    assert_eq!(decision.state, State::VerifyingOwnership);
    assert!(decision.effects.iter().any(|e| matches!(
        e,
        Effect::RecordCheck {
            method: Method::EmailChallenge,
            passed: false,
            ..
        }
    )));
    assert!(decision.effects.iter().any(|e| matches!(e, Effect::Flag { .. })));
}

#[test]
fn a_challenge_link_counts_only_while_ownership_is_being_verified_and_never_for_a_banned_account() {
    for state in State::ALL.into_iter().filter(|s| *s != State::VerifyingOwnership) {
        let ticket = Ticket::new(Kind::IpLockout, state);
        assert_eq!(ticket.confirm(true), Err(ErrorCode::InvalidTransition), "{state}");
    }
    for kind in [Kind::ForgotUsername, Kind::LoginHelp] {
        let ticket = Ticket::new(kind, State::VerifyingOwnership);
        assert_eq!(ticket.confirm(true), Err(ErrorCode::InvalidTransition), "{kind}");
    }
    for banned in [sample_account(AccountStatus::Banned), sub_user_of_banned_parent()] {
        let ticket = Ticket::new(Kind::IpLockout, State::VerifyingOwnership).linked_to(Some(banned));
        assert_eq!(ticket.confirm(true), Err(ErrorCode::AccountBanned));
    }
}
