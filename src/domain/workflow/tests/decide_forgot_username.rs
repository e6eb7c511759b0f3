//! decide(): states, effects and parameters, forgot_username.

use super::*;

// --- forgot_username -------------------------------------------------------------------------

#[test]
fn send_username_mails_that_accounts_registered_address_and_never_the_requester() {
    let directory = [other_account(AccountStatus::Active)];
    let ticket = Ticket::new(Kind::ForgotUsername, State::AwaitingAgent)
        .requested_by(STRANGER)
        .linked_to(None);
    let decision = ticket
        .act_in(&directory, "send_username", json!({"account_id": "acc_2002"}))
        .unwrap();
    assert_eq!(decision.state, State::Resolved);
    assert_eq!(
        mail_to(&decision, &to_account("acc_2002")),
        [MailTemplate::UsernameDelivery {
            account_ids: vec!["acc_2002".into()]
        }]
    );
    assert_eq!(mail_to(&decision, &Recipient::Requester), [MailTemplate::StatusUpdate]);
    assert!(decision.effects.contains(&Effect::LinkAccount {
        account_id: "acc_2002".into()
    }));
}

#[test]
fn send_username_to_the_requesters_own_address_sends_one_mail() {
    let directory = [sample_account(AccountStatus::Active)];
    let ticket = Ticket::new(Kind::ForgotUsername, State::AwaitingAgent);
    let decision = ticket
        .act_in(&directory, "send_username", json!({"account_id": "acc_1001"}))
        .unwrap();
    assert_eq!(decision.state, State::Resolved);
    assert_eq!(
        mail_to(&decision, &to_account("acc_1001")),
        [MailTemplate::UsernameDelivery {
            account_ids: vec!["acc_1001".into()]
        }]
    );
    assert_eq!(mail_count(&decision), 1);
}

#[test]
fn send_username_is_refused_for_a_banned_or_unknown_account() {
    let mut sub_user = other_account(AccountStatus::Active);
    sub_user.banned_via_parent = true;
    let ticket = Ticket::new(Kind::ForgotUsername, State::AwaitingAgent).linked_to(None);
    for banned in [other_account(AccountStatus::Banned), sub_user] {
        assert_eq!(
            ticket.act_in(&[banned], "send_username", json!({"account_id": "acc_2002"})),
            Err(ErrorCode::AccountBanned)
        );
    }
    assert_eq!(
        ticket.act("send_username", json!({"account_id": "acc_2002"})),
        Err(ErrorCode::InvalidInput)
    );
    assert_eq!(ticket.act("send_username", json!({})), Err(ErrorCode::InvalidInput));
}
