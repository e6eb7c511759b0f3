//! decide(): states, effects and parameters, account_terminated.

use super::*;

// --- account_terminated ----------------------------------------------------------------------

fn payment(decision: &Decision) -> (i64, i64) {
    match non_mail_effects(decision).as_slice() {
        [
            Effect::RecordPayment {
                account_id,
                amount_cents,
                new_balance_cents,
                ..
            },
        ] if account_id == "acc_1001" => (*amount_cents, *new_balance_cents),
        other => panic!("expected one payment, got {other:?}"),
    }
}

#[test]
fn a_partial_payment_lowers_the_balance_and_keeps_waiting() {
    let ticket = Ticket::new(Kind::AccountTerminated, State::AwaitingPayment).linked_to(owing(5_000));
    let decision = ticket
        .act("record_payment", json!({"amount_cents": 2_000, "reference": "wire 42"}))
        .unwrap();
    assert_eq!(decision.state, State::AwaitingPayment);
    assert_eq!(payment(&decision), (2_000, 3_000));
}

#[test]
fn a_full_payment_confirms_the_payment() {
    let ticket = Ticket::new(Kind::AccountTerminated, State::AwaitingPayment).linked_to(owing(5_000));
    for amount in [5_000, 7_500] {
        let decision = ticket.act("record_payment", json!({ "amount_cents": amount })).unwrap();
        assert_eq!(decision.state, State::PaymentConfirmed, "{amount}");
        assert_eq!(payment(&decision), (amount, 0));
    }
    // Console forms send numbers as text.
    let decision = ticket.act("record_payment", json!({"amount_cents": "5000"})).unwrap();
    assert_eq!(decision.state, State::PaymentConfirmed);
}

#[test]
fn a_payment_must_be_a_positive_whole_number_of_cents() {
    let ticket = Ticket::new(Kind::AccountTerminated, State::AwaitingPayment).linked_to(owing(5_000));
    for params in [
        json!({}),
        json!({"amount_cents": 0}),
        json!({"amount_cents": -100}),
        json!({"amount_cents": 12.5}),
        json!({"amount_cents": "ten dollars"}),
        json!({"amount_cents": true}),
    ] {
        assert_eq!(
            ticket.act("record_payment", params.clone()),
            Err(ErrorCode::InvalidInput),
            "{params}"
        );
    }
}

#[test]
fn reactivation_restores_the_account_and_resolves_once_nothing_is_owed() {
    for state in [State::PaymentConfirmed, State::AwaitingPayment] {
        let ticket = Ticket::new(Kind::AccountTerminated, state)
            .linked_to(owing(0))
            .requested_by(STRANGER);
        let decision = ticket.act("reactivate_account", json!({})).unwrap();
        assert_eq!(decision.state, State::Resolved, "{state}");
        assert_eq!(
            non_mail_effects(&decision),
            [Effect::ReactivateAccount {
                account_id: "acc_1001".into()
            }]
        );
        assert_eq!(
            mail_to(&decision, &to_account("acc_1001")),
            [MailTemplate::AccountReactivated]
        );
        assert_eq!(mail_to(&decision, &Recipient::Requester), [MailTemplate::StatusUpdate]);
    }
}

#[test]
fn reactivation_is_refused_while_a_balance_is_outstanding() {
    for state in [State::AwaitingPayment, State::PaymentConfirmed] {
        let ticket = Ticket::new(Kind::AccountTerminated, state).linked_to(owing(1));
        assert_eq!(
            ticket.act("reactivate_account", json!({})),
            Err(ErrorCode::BalanceOutstanding),
            "{state}"
        );
    }
}

#[test]
fn reactivation_needs_a_terminated_account_whatever_the_balance() {
    for status in [AccountStatus::PendingConfirmation, AccountStatus::Active] {
        for state in [State::AwaitingPayment, State::PaymentConfirmed] {
            let linked = account_with(|a| {
                a.status = status;
                a.balance_due_cents = 0;
            });
            let ticket = Ticket::new(Kind::AccountTerminated, state).linked_to(Some(linked));
            assert_eq!(
                ticket.act("reactivate_account", json!({})),
                Err(ErrorCode::AccountNotTerminated),
                "{status:?} in {state}"
            );
        }
    }
}

#[test]
fn no_payment_or_balance_ever_reactivates_a_banned_account() {
    for banned in [
        account_with(|a| {
            a.status = AccountStatus::Banned;
            a.balance_due_cents = 0;
        }),
        account_with(|a| {
            a.status = AccountStatus::Terminated;
            a.banned_via_parent = true;
        }),
    ] {
        for state in [State::AwaitingPayment, State::PaymentConfirmed] {
            let ticket = Ticket::new(Kind::AccountTerminated, state).linked_to(Some(banned.clone()));
            assert_eq!(
                ticket.act("reactivate_account", json!({})),
                Err(ErrorCode::AccountBanned)
            );
            assert_eq!(
                ticket.act("record_payment", json!({"amount_cents": 100})),
                Err(ErrorCode::AccountBanned)
            );
        }
    }
}
