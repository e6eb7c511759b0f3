//! Creation rules.

use super::*;

// =============================================================================================
// Creation rules
// =============================================================================================

#[test]
fn forgot_username_mails_an_active_accounts_username_to_its_registered_address() {
    let decision = open_forgot_username(REGISTERED, &[sample_account(AccountStatus::Active)]);
    assert_eq!(decision.state, State::Resolved);
    assert_eq!(
        mail_to(&decision, &to_account("acc_1001")),
        [MailTemplate::UsernameDelivery {
            account_ids: vec!["acc_1001".into()]
        }]
    );
    assert_eq!(mail_count(&decision), 1, "the answer is the requester's mail");
}

#[test]
fn forgot_username_for_an_unconfirmed_or_terminated_account_explains_without_a_username() {
    for (status, template) in [
        (AccountStatus::PendingConfirmation, MailTemplate::UnconfirmedSignup),
        (AccountStatus::Terminated, MailTemplate::TerminatedNotice),
    ] {
        let decision = open_forgot_username(REGISTERED, &[sample_account(status)]);
        assert_eq!(decision.state, State::Resolved, "{status:?}");
        assert_eq!(mail_to(&decision, &to_account("acc_1001")), [template]);
    }
}

#[test]
fn forgot_username_for_a_banned_account_or_sub_user_gives_the_banned_answer() {
    for banned in [sample_account(AccountStatus::Banned), sub_user_of_banned_parent()] {
        assert_refused_as_banned(&open_forgot_username(REGISTERED, &[banned]), "acc_1001");
    }
}

#[test]
fn forgot_username_without_a_match_is_acknowledged_and_waits_for_an_agent() {
    let decision = open_forgot_username(STRANGER, &[]);
    assert_eq!(decision.state, State::AwaitingAgent);
    assert_eq!(
        mail_to(&decision, &Recipient::Requester),
        [MailTemplate::Acknowledgement]
    );
    assert_eq!(mail_count(&decision), 1);
}

#[test]
fn forgot_username_with_several_accounts_sends_one_mail_naming_the_active_ones() {
    let mut terminated = other_account(AccountStatus::Terminated);
    terminated.email = REGISTERED.into();
    let mut banned = other_account(AccountStatus::Banned);
    banned.id = "acc_3003".into();
    banned.email = REGISTERED.into();
    let accounts = [sample_account(AccountStatus::Active), terminated, banned];
    let decision = open_forgot_username(REGISTERED, &accounts);
    assert_eq!(decision.state, State::Resolved);
    assert_eq!(mail_count(&decision), 1);
    let mail = mail_to(&decision, &to_account("acc_1001"));
    let [MailTemplate::UsernameDelivery { account_ids }] = mail.as_slice() else {
        panic!("one username mail to the registered address, got {mail:?}");
    };
    assert!(account_ids.contains(&"acc_1001".to_string()));
}

#[test]
fn forgot_username_is_refused_only_when_every_account_is_banned() {
    let mut second = sub_user_of_banned_parent();
    second.id = "acc_3003".into();
    let decision = open_forgot_username(REGISTERED, &[sample_account(AccountStatus::Banned), second]);
    assert_refused_as_banned(&decision, "acc_1001");
}

#[test]
fn ip_lockout_asks_to_try_the_allowlisted_ips_first() {
    let account = sample_account(AccountStatus::Active);
    let decision = open(Kind::IpLockout, REGISTERED, Some(&account));
    assert_eq!(decision.state, State::AwaitingAllowlistedAttempts);
    assert_eq!(
        mail_to(&decision, &Recipient::Requester),
        [MailTemplate::TryAllowlistedIps]
    );
    assert!(decision.effects.contains(&Effect::LinkAccount {
        account_id: "acc_1001".into()
    }));
}

#[test]
fn ip_lockout_with_attempts_reported_at_creation_skips_ahead() {
    let account = sample_account(AccountStatus::Active);
    let decision = on_create(&CreationFacts {
        attempts: Some(("office VPN".into(), "still blocked".into())),
        ..facts(Kind::IpLockout, REGISTERED, Some(&account))
    });
    assert_eq!(decision.state, State::AttemptsReported);
    assert!(decision.effects.contains(&Effect::RecordAttempts {
        tried_from: "office VPN".into(),
        outcome: "still blocked".into()
    }));
    // A blank report is no report.
    let decision = on_create(&CreationFacts {
        attempts: Some(("  ".into(), "".into())),
        ..facts(Kind::IpLockout, REGISTERED, Some(&account))
    });
    assert_eq!(decision.state, State::AwaitingAllowlistedAttempts);
}

#[test]
fn ip_lockout_for_a_banned_account_is_refused() {
    for banned in [sample_account(AccountStatus::Banned), sub_user_of_banned_parent()] {
        let decision = on_create(&CreationFacts {
            attempts: Some(("office VPN".into(), "".into())),
            ..facts(Kind::IpLockout, REGISTERED, Some(&banned))
        });
        assert_refused_as_banned(&decision, "acc_1001");
        assert!(!decision.effects.contains(&Effect::StartVerificationRound));
    }
}

#[test]
fn account_terminated_awaits_payment_and_mails_the_balance_to_the_registered_address_only() {
    let account = owing(4_200).unwrap();
    for requester in [REGISTERED, STRANGER] {
        let decision = open(Kind::AccountTerminated, requester, Some(&account));
        assert_eq!(decision.state, State::AwaitingPayment);
        assert_eq!(mail_to(&decision, &to_account("acc_1001")), [MailTemplate::BalanceDue]);
        if requester == STRANGER {
            assert_eq!(
                mail_to(&decision, &Recipient::Requester),
                [MailTemplate::Acknowledgement]
            );
        } else {
            assert_eq!(mail_count(&decision), 1);
        }
    }
}

#[test]
fn account_terminated_for_an_active_account_waits_for_an_agent() {
    let account = sample_account(AccountStatus::Active);
    let decision = open(Kind::AccountTerminated, REGISTERED, Some(&account));
    assert_eq!(decision.state, State::AwaitingAgent);
    assert_eq!(
        mail_to(&decision, &Recipient::Requester),
        [MailTemplate::Acknowledgement]
    );
}

#[test]
fn account_terminated_and_general_for_a_banned_account_are_refused() {
    for kind in [Kind::AccountTerminated, Kind::General] {
        for banned in [sample_account(AccountStatus::Banned), sub_user_of_banned_parent()] {
            assert_refused_as_banned(&open(kind, REGISTERED, Some(&banned)), "acc_1001");
        }
    }
}

#[test]
fn login_help_for_a_terminated_account_reroutes_to_account_terminated() {
    let account = owing(900).unwrap();
    let decision = open(Kind::LoginHelp, REGISTERED, Some(&account));
    assert_eq!(decision.kind, Kind::AccountTerminated);
    assert_eq!(decision.state, State::AwaitingPayment);
    assert_eq!(mail_to(&decision, &to_account("acc_1001")), [MailTemplate::BalanceDue]);
}

#[test]
fn login_help_for_an_unconfirmed_signup_says_so() {
    let account = sample_account(AccountStatus::PendingConfirmation);
    let decision = open(Kind::LoginHelp, REGISTERED, Some(&account));
    assert_eq!(decision.kind, Kind::LoginHelp);
    assert_ne!(decision.state, State::Refused);
    assert_eq!(
        mail_to(&decision, &to_account("acc_1001")),
        [MailTemplate::UnconfirmedSignup]
    );
}

#[test]
fn login_help_for_a_banned_account_is_refused() {
    for banned in [sample_account(AccountStatus::Banned), sub_user_of_banned_parent()] {
        let decision = open(Kind::LoginHelp, REGISTERED, Some(&banned));
        assert_refused_as_banned(&decision, "acc_1001");
    }
}

#[test]
fn login_help_flags_the_common_smtp_username_mistakes() {
    let cases: [(&str, &[&str]); 8] = [
        ("crm-mailer", &[]),
        ("crm mailer", &[]),
        ("ops@acme.test", &["smtp_username_has_at"]),
        (" crm-mailer", &["smtp_username_whitespace"]),
        ("crm-mailer\t", &["smtp_username_whitespace"]),
        ("crm-mailer\u{200B}", &["smtp_username_whitespace"]),
        ("\u{FEFF}crm-mailer", &["smtp_username_whitespace"]),
        (" ops@acme.test ", &["smtp_username_has_at", "smtp_username_whitespace"]),
    ];
    let account = sample_account(AccountStatus::Active);
    for (username, flags) in cases {
        assert_eq!(smtp_username_flags(username), flags, "{username:?}");
        let decision = on_create(&CreationFacts {
            smtp_username: Some(username),
            ..facts(Kind::LoginHelp, REGISTERED, Some(&account))
        });
        assert_eq!(decision.state, State::AwaitingAgent);
        let raised: Vec<&str> = decision
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::Flag { reason } => Some(reason.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(raised, flags, "{username:?}");
    }
}

#[test]
fn the_requester_always_hears_from_us_and_a_stranger_only_in_neutral_words() {
    for kind in Kind::ALL {
        for account in account_variants() {
            for requester in [REGISTERED, STRANGER] {
                let mine: Vec<AccountView> = account.iter().filter(|_| requester == REGISTERED).cloned().collect();
                let decision = on_create(&CreationFacts {
                    requester_accounts: &mine,
                    ..facts(kind, requester, account.as_ref())
                });
                let label = format!("{kind} {requester} {:?}", account.as_ref().map(|a| a.status));
                let to_requester = mail_to(&decision, &Recipient::Requester);
                let answered = account
                    .as_ref()
                    .is_some_and(|a| a.email == requester && !mail_to(&decision, &to_account(&a.id)).is_empty());
                assert!(
                    answered || !to_requester.is_empty(),
                    "{label}: the requester hears nothing"
                );
                if requester == STRANGER {
                    for template in &to_requester {
                        assert!(
                            matches!(
                                template,
                                MailTemplate::Acknowledgement | MailTemplate::TryAllowlistedIps
                            ),
                            "{label}: a stranger is sent {template:?}"
                        );
                    }
                    let reached_registered = account
                        .as_ref()
                        .is_some_and(|a| !mail_to(&decision, &to_account(&a.id)).is_empty());
                    if !reached_registered {
                        assert_eq!(to_requester.len(), 1, "{label}: {to_requester:?}");
                    }
                }
            }
        }
    }
}

/// What a stranger is mailed when opening a `kind` ticket naming each account variant.
fn stranger_mail_by_account(kind: Kind) -> Vec<(String, Vec<MailTemplate>)> {
    account_variants()
        .into_iter()
        .map(|account| {
            let decision = open(kind, STRANGER, account.as_ref());
            let label = format!("{:?}", account.map(|a| (a.status, a.banned_via_parent)));
            (label, mail_to(&decision, &Recipient::Requester))
        })
        .collect()
}

fn assert_stranger_cannot_tell_accounts_apart(kind: Kind) {
    let by_account = stranger_mail_by_account(kind);
    let (_, no_account) = &by_account[0];
    for (label, mail) in &by_account {
        assert_eq!(mail, no_account, "{kind}: naming {label} changes the stranger's mail");
    }
}

#[test]
fn a_stranger_is_mailed_the_same_whatever_the_account_they_name() {
    for kind in [
        Kind::ForgotUsername,
        Kind::AccountTerminated,
        Kind::LoginHelp,
        Kind::General,
    ] {
        assert_stranger_cannot_tell_accounts_apart(kind);
    }
}

#[test]
fn an_ip_lockout_stranger_is_mailed_the_same_whatever_the_account_they_name() {
    assert_stranger_cannot_tell_accounts_apart(Kind::IpLockout);
}
