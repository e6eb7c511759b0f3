//! decide(): states, effects and parameters, the actions every kind has.

use super::*;

// --- common actions --------------------------------------------------------------------------

#[test]
fn linking_a_banned_account_refuses_the_ticket_with_the_banned_answer() {
    let mut sub_user = other_account(AccountStatus::Active);
    sub_user.banned_via_parent = true;
    for banned in [other_account(AccountStatus::Banned), sub_user] {
        for kind in Kind::ALL {
            let ticket = Ticket::new(kind, kind.initial_state()).requested_by(STRANGER);
            let decision = ticket
                .act_in(
                    std::slice::from_ref(&banned),
                    "link_account",
                    json!({"account_id": "acc_2002"}),
                )
                .unwrap();
            assert_eq!(decision.state, State::Refused, "{kind}");
            assert_eq!(decision.state_reason.as_deref(), Some("account_banned"));
            assert!(decision.effects.contains(&Effect::LinkAccount {
                account_id: "acc_2002".into()
            }));
            assert_eq!(
                mail_to(&decision, &to_account("acc_2002")),
                [MailTemplate::BannedAnswer]
            );
            assert_eq!(mail_to(&decision, &Recipient::Requester), [MailTemplate::StatusUpdate]);
        }
    }
}

#[test]
fn linking_another_account_during_verification_starts_over_from_the_reported_attempts() {
    let directory = [
        sample_account(AccountStatus::Active),
        other_account(AccountStatus::Active),
    ];
    for state in [State::VerifyingOwnership, State::OwnershipVerified] {
        let ticket = Ticket::new(Kind::IpLockout, state).with_checks(&[(Method::EmailChallenge, true)]);
        let decision = ticket
            .act_in(&directory, "link_account", json!({"account_id": "acc_2002"}))
            .unwrap();
        assert_eq!(decision.state, State::AttemptsReported, "{state}");
        assert_eq!(
            decision.effects,
            [Effect::LinkAccount {
                account_id: "acc_2002".into()
            }]
        );
        let same = ticket
            .act_in(&directory, "link_account", json!({"account_id": "acc_1001"}))
            .unwrap();
        assert_eq!(same.state, state, "re-linking the same account changes nothing");
    }
}

#[test]
fn linking_a_terminated_account_starts_the_payment_flow() {
    let directory = [other_account(AccountStatus::Terminated)];
    let ticket = Ticket::new(Kind::AccountTerminated, State::AwaitingAgent)
        .linked_to(None)
        .requested_by(STRANGER);
    let decision = ticket
        .act_in(&directory, "link_account", json!({"account_id": "acc_2002"}))
        .unwrap();
    assert_eq!(decision.state, State::AwaitingPayment);
    assert_eq!(mail_to(&decision, &to_account("acc_2002")), [MailTemplate::BalanceDue]);
    assert_eq!(mail_to(&decision, &Recipient::Requester), [MailTemplate::StatusUpdate]);
}

#[test]
fn linking_an_unknown_account_is_bad_input() {
    let ticket = Ticket::new(Kind::General, State::AwaitingAgent);
    assert_eq!(
        ticket.act("link_account", json!({"account_id": "acc_404"})),
        Err(ErrorCode::InvalidInput)
    );
    assert_eq!(ticket.act("link_account", json!({})), Err(ErrorCode::InvalidInput));
}

#[test]
fn resolve_refuse_and_assign_do_what_they_say() {
    let ticket = Ticket::new(Kind::LoginHelp, State::AwaitingCustomer);
    let resolved = ticket.act("resolve", json!({"note": "works again"})).unwrap();
    assert_eq!(resolved.state, State::Resolved);
    assert_eq!(
        resolved.effects,
        [Effect::Note {
            body: "works again".into()
        }]
    );
    assert!(ticket.act("resolve", json!({})).unwrap().effects.is_empty());

    // docs/reference.md#who-acts-next: a refusal needs a reason; the customer is told in its words.
    assert_eq!(ticket.act("refuse", json!({})), Err(ErrorCode::InvalidInput));
    assert_eq!(
        ticket.act("refuse", json!({"reason": "  "})),
        Err(ErrorCode::InvalidInput)
    );
    assert_eq!(
        ticket.act("refuse", json!({"reason": "x", "category": "whatever"})),
        Err(ErrorCode::InvalidInput)
    );
    let refused = ticket.act("refuse", json!({"reason": "spam"})).unwrap();
    assert_eq!(refused.state, State::Refused);
    assert_eq!(refused.state_reason.as_deref(), Some("other"));
    let refused = ticket
        .act("refuse", json!({"reason": "asked twice", "category": "duplicate"}))
        .unwrap();
    assert_eq!(refused.state_reason.as_deref(), Some("duplicate"));
    assert_eq!(
        mail_to(&refused, &Recipient::Requester),
        [MailTemplate::RequestRefused {
            reason: RefuseReason::Duplicate
        }]
    );
    assert!(
        refused
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Note { body } if body.contains("asked twice")))
    );
    assert_eq!(
        ticket
            .act("refuse", json!({"reason": "duplicate"}))
            .unwrap()
            .state_reason
            .as_deref(),
        Some("duplicate")
    );

    let assigned = ticket.act("assign", json!({"agent_email": "agent@desk.test"})).unwrap();
    assert_eq!(assigned.state, State::AwaitingCustomer);
    assert_eq!(
        assigned.effects,
        [Effect::Assign {
            agent_email: "agent@desk.test".into()
        }]
    );
    assert_eq!(
        ticket.act("assign", json!({"agent_email": "not an address"})),
        Err(ErrorCode::InvalidInput)
    );
}

#[test]
fn reclassifying_runs_the_new_kinds_creation_rules() {
    let terminated = owing(4_200);
    let ticket = Ticket::new(Kind::LoginHelp, State::AwaitingAgent).linked_to(terminated.clone());
    let directory = [terminated.unwrap()];
    let decision = ticket
        .act_in(&directory, "reclassify", json!({"kind": "account_terminated"}))
        .unwrap();
    assert_eq!(decision.kind, Kind::AccountTerminated);
    assert_eq!(decision.state, State::AwaitingPayment);
    assert_eq!(mail_to(&decision, &to_account("acc_1001")), [MailTemplate::BalanceDue]);

    // An ip_lockout whose attempts were already reported keeps them.
    let general = Ticket {
        attempts_on_record: true,
        ..Ticket::new(Kind::General, State::AwaitingAgent)
    };
    let decision = general.act("reclassify", json!({"kind": "ip_lockout"})).unwrap();
    assert_eq!(
        (decision.kind, decision.state),
        (Kind::IpLockout, State::AttemptsReported)
    );

    assert_eq!(
        general.act("reclassify", json!({"kind": "billing"})),
        Err(ErrorCode::InvalidInput)
    );
}

#[test]
fn an_account_banned_later_refuses_its_open_tickets_and_leaves_closed_ones() {
    let banned = sample_account(AccountStatus::Banned);
    for kind in Kind::ALL {
        for &state in kind.states() {
            let ticket = Ticket::new(kind, state).linked_to(Some(banned.clone()));
            let decision = on_account_banned(&ticket.view(), &banned);
            if state.is_terminal() {
                assert_eq!(decision, None, "{kind} {state}");
            } else {
                let decision = decision.expect("an open ticket is refused");
                assert_eq!(decision.state, State::Refused);
                assert_eq!(decision.state_reason.as_deref(), Some("account_banned"));
                assert_eq!(
                    mail_to(&decision, &to_account("acc_1001")),
                    [MailTemplate::BannedAnswer]
                );
            }
        }
    }
}
