//! decide(): states, effects and parameters, login_help.

use super::*;

// --- login_help: diagnose_auth and what follows a diagnosis -----------------------------------

/// The effects of `decision` that write a diagnosis, by finding.
fn recorded(decision: &Decision) -> Vec<Finding> {
    decision
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::RecordDiagnosis { diagnosis } => Some(diagnosis.finding),
            _ => None,
        })
        .collect()
}

fn guidance(finding: Finding) -> MailTemplate {
    MailTemplate::DiagnosisGuidance {
        diagnosis: Box::new(diagnosis_with(finding, "crm-mailer")),
    }
}

fn checklist() -> MailTemplate {
    MailTemplate::DiagnosisChecklist {
        typed_username: "crm-mailer".into(),
        channel: AuthChannel::Smtp,
    }
}

/// A login_help ticket opened by `requester` naming "crm-mailer", whose logs show `finding`
/// and name `owner` as the owning account.
fn open_diagnosed(requester: &str, finding: Finding, owner: Option<&AccountView>) -> Decision {
    let found = diagnosis_with(finding, "crm-mailer");
    let mine: Vec<AccountView> = owner
        .iter()
        .filter(|o| o.is_registered_email(requester))
        .map(|o| (*o).clone())
        .collect();
    on_create(&CreationFacts {
        requester_accounts: &mine,
        smtp_username: Some("crm-mailer"),
        diagnosis: Some(DiagnosisFacts {
            diagnosis: &found,
            owner,
        }),
        ..facts(Kind::LoginHelp, requester, mine.first())
    })
}

/// The findings that are told as guidance (the static ones and a suspension are not).
const GUIDED: [Finding; 8] = [
    Finding::RequestNotSeen,
    Finding::UnknownUser,
    Finding::UserDisabled,
    Finding::BadPassword,
    Finding::IpNotAuthorized,
    Finding::MechanismNotSupported,
    Finding::TlsRequired,
    Finding::SucceededSince,
];

#[test]
fn the_owner_asking_from_the_registered_address_gets_the_findings_guidance_at_creation() {
    let owner = sample_account(AccountStatus::Active);
    for finding in GUIDED {
        let decision = open_diagnosed(REGISTERED, finding, Some(&owner));
        assert_eq!(
            (decision.kind, decision.state),
            (Kind::LoginHelp, State::AwaitingAgent),
            "{finding:?}"
        );
        assert_eq!(recorded(&decision), [finding]);
        assert_eq!(
            mail_to(&decision, &to_account("acc_1001")),
            [guidance(finding)],
            "{finding:?}"
        );
        assert_eq!(
            mail_count(&decision),
            1,
            "the guidance is the requester's answer: {finding:?}"
        );
    }
}

#[test]
fn anyone_else_gets_the_checklist_whatever_the_logs_say_and_whoever_owns_the_username() {
    let mut others = vec![None, Some(other_account(AccountStatus::Active))];
    others.extend(AccountStatus::ALL.map(|status| Some(other_account(status))));
    let mut seen = vec![];
    for finding in Finding::ALL {
        for owner in &others {
            let decision = open_diagnosed(STRANGER, finding, owner.as_ref());
            let label = format!("{finding:?} {:?}", owner.as_ref().map(|o| o.status));
            assert_eq!(recorded(&decision), [finding], "{label}");
            assert_eq!(mail_to(&decision, &Recipient::Requester), [checklist()], "{label}");
            seen.push(mail_to(&decision, &Recipient::Requester));
        }
    }
    assert!(seen.iter().all(|m| m == &seen[0]), "a stranger can tell the logs apart");
}

#[test]
fn a_requester_with_their_own_account_asking_about_someone_elses_username_gets_the_checklist() {
    let mine = sample_account(AccountStatus::Active);
    let theirs = other_account(AccountStatus::Active);
    let found = diagnosis_with(Finding::BadPassword, "crm-team-mailer");
    let decision = on_create(&CreationFacts {
        requester_accounts: std::slice::from_ref(&mine),
        smtp_username: Some("crm-team-mailer"),
        diagnosis: Some(DiagnosisFacts {
            diagnosis: &found,
            owner: Some(&theirs),
        }),
        ..facts(Kind::LoginHelp, REGISTERED, Some(&mine))
    });
    assert_eq!(
        mail_to(&decision, &Recipient::Requester),
        [MailTemplate::DiagnosisChecklist {
            typed_username: "crm-team-mailer".into(),
            channel: AuthChannel::Smtp
        }]
    );
    assert!(mail_to(&decision, &to_account("acc_2002")).is_empty());
}

#[test]
fn a_stranger_naming_any_account_and_a_username_hears_only_the_checklist() {
    let found = diagnosis_with(Finding::BadPassword, "crm-mailer");
    for account in account_variants() {
        let decision = on_create(&CreationFacts {
            smtp_username: Some("crm-mailer"),
            diagnosis: Some(DiagnosisFacts {
                diagnosis: &found,
                owner: account.as_ref(),
            }),
            ..facts(Kind::LoginHelp, STRANGER, account.as_ref())
        });
        let label = format!("{:?}", account.as_ref().map(|a| (a.status, a.banned_via_parent)));
        assert_eq!(mail_to(&decision, &Recipient::Requester), [checklist()], "{label}");
        // The account's own answer still goes to its registered address.
        if let Some(a) = account
            .as_ref()
            .filter(|a| a.effective_status() != AccountStatus::Active)
        {
            assert!(!mail_to(&decision, &to_account(&a.id)).is_empty(), "{label}");
        }
        let refused = decision.state == State::Refused;
        assert_eq!(
            recorded(&decision).is_empty(),
            refused,
            "{label}: written for agents unless refused"
        );
    }
}

#[test]
fn the_static_findings_are_never_told_as_guidance() {
    let owner = sample_account(AccountStatus::Active);
    for finding in [Finding::UsernameHasAt, Finding::UsernameWhitespace] {
        let decision = open_diagnosed(REGISTERED, finding, Some(&owner));
        assert_eq!(mail_to(&decision, &Recipient::Requester), [checklist()], "{finding:?}");
        assert!(mail_to(&decision, &to_account("acc_1001")).is_empty());
    }
}

#[test]
fn a_suspended_account_moves_the_ticket_to_the_termination_workflow_or_the_banned_answer() {
    let terminated = owing(4_200).unwrap();
    let decision = open_diagnosed(REGISTERED, Finding::AccountSuspended, Some(&terminated));
    assert_eq!(
        (decision.kind, decision.state),
        (Kind::AccountTerminated, State::AwaitingPayment)
    );
    assert_eq!(recorded(&decision), [Finding::AccountSuspended]);
    assert_eq!(mail_to(&decision, &to_account("acc_1001")), [MailTemplate::BalanceDue]);
    assert_eq!(mail_count(&decision), 1);

    for banned in [sample_account(AccountStatus::Banned), sub_user_of_banned_parent()] {
        let found = diagnosis_with(Finding::AccountSuspended, "crm-mailer");
        // The requester's own account is fine; the username belongs to a banned one.
        let mine = other_account(AccountStatus::Active);
        let decision = on_create(&CreationFacts {
            smtp_username: Some("crm-mailer"),
            diagnosis: Some(DiagnosisFacts {
                diagnosis: &found,
                owner: Some(&banned),
            }),
            ..facts(Kind::LoginHelp, STRANGER, Some(&mine))
        });
        assert_refused_as_banned(&decision, "acc_1001");
        assert_eq!(decision.kind, Kind::AccountTerminated);
        assert_eq!(mail_to(&decision, &Recipient::Requester), [checklist()]);
    }

    // Still active in the directory: a termination the agent must look into.
    let active = sample_account(AccountStatus::Active);
    let decision = open_diagnosed(REGISTERED, Finding::AccountSuspended, Some(&active));
    assert_eq!(
        (decision.kind, decision.state),
        (Kind::AccountTerminated, State::AwaitingAgent)
    );
    assert_eq!(
        mail_to(&decision, &Recipient::Requester),
        [MailTemplate::Acknowledgement]
    );
}

#[test]
fn an_agents_diagnosis_mails_the_customer_only_when_asked_to() {
    let owner = sample_account(AccountStatus::Active);
    let found = diagnosis_with(Finding::IpNotAuthorized, "crm-mailer");
    for state in [State::AwaitingAgent, State::AwaitingCustomer] {
        for (requester, notify, want) in [
            (REGISTERED, false, vec![]),
            (REGISTERED, true, vec![guidance(Finding::IpNotAuthorized)]),
            (STRANGER, false, vec![]),
            (STRANGER, true, vec![checklist()]),
        ] {
            let ticket = Ticket::new(Kind::LoginHelp, state).requested_by(requester);
            let action = Action::parse(
                ActionName::DiagnoseAuth,
                &json!({"username": "crm-mailer", "notify": notify}),
            )
            .unwrap();
            let mine: Vec<AccountView> = [owner.clone()]
                .into_iter()
                .filter(|o| o.is_registered_email(requester))
                .collect();
            let ctx = Context {
                target_account: None,
                requester_accounts: &mine,
                diagnosis: Some(DiagnosisFacts {
                    diagnosis: &found,
                    owner: Some(&owner),
                }),
            };
            let decision = decide(&ticket.view(), &action, &ctx).unwrap();
            assert_eq!(decision.state, state, "a diagnosis keeps the state");
            assert_eq!(recorded(&decision), [Finding::IpNotAuthorized]);
            let mails: Vec<MailTemplate> = decision
                .effects
                .iter()
                .filter_map(|e| match e {
                    Effect::Mail(m) => Some(m.template.clone()),
                    _ => None,
                })
                .collect();
            assert_eq!(mails, want, "{requester} notify={notify}");
        }
    }
}

#[test]
fn an_agents_diagnosis_of_a_suspended_account_reroutes_too() {
    let terminated = owing(900).unwrap();
    let found = diagnosis_with(Finding::AccountSuspended, "crm-mailer");
    let ticket = Ticket::new(Kind::LoginHelp, State::AwaitingCustomer).linked_to(None);
    let action = Action::parse(ActionName::DiagnoseAuth, &json!({"username": "crm-mailer"})).unwrap();
    let ctx = Context {
        target_account: None,
        requester_accounts: std::slice::from_ref(&terminated),
        diagnosis: Some(DiagnosisFacts {
            diagnosis: &found,
            owner: Some(&terminated),
        }),
    };
    let decision = decide(&ticket.view(), &action, &ctx).unwrap();
    assert_eq!(
        (decision.kind, decision.state),
        (Kind::AccountTerminated, State::AwaitingPayment)
    );
    assert!(decision.effects.contains(&Effect::LinkAccount {
        account_id: "acc_1001".into()
    }));
    assert_eq!(recorded(&decision), [Finding::AccountSuspended]);
}

#[test]
fn diagnose_auth_needs_the_logs_read_by_the_service() {
    let ticket = Ticket::new(Kind::LoginHelp, State::AwaitingAgent);
    let action = Action::parse(ActionName::DiagnoseAuth, &json!({"username": "crm-mailer"})).unwrap();
    let refusal = decide(&ticket.view(), &action, &Context::default()).unwrap_err();
    assert_eq!(refusal.code, ErrorCode::InvalidInput);
}

#[test]
fn diagnose_auth_parameters_are_read_exactly() {
    let parse = |params: Value| Action::parse(ActionName::DiagnoseAuth, &params).map_err(|r| r.code);
    assert_eq!(
        parse(json!({"username": " crm mailer\u{200B} ", "failed_at": "2026-11-23 09:14 UTC"})),
        Ok(Action::DiagnoseAuth {
            username: " crm mailer\u{200B} ".into(),
            failed_at: diagnosis::parse_failed_at("2026-11-23T09:14:00Z"),
            channel: AuthChannel::Smtp,
            notify: false,
        }),
        "byte-exact, SMTP and silent by default"
    );
    assert_eq!(
        parse(json!({"username": "app", "channel": "api", "notify": "on", "failed_at": ""})),
        Ok(Action::DiagnoseAuth {
            username: "app".into(),
            failed_at: None,
            channel: AuthChannel::Api,
            notify: true,
        })
    );
    for bad in [
        json!({}),
        json!({"username": ""}),
        json!({"username": 7}),
        json!({"username": "a", "failed_at": "yesterday"}),
        json!({"username": "a", "channel": "imap"}),
        json!({"username": "a", "notify": "perhaps"}),
        json!({"username": "x".repeat(256)}),
    ] {
        assert_eq!(parse(bad.clone()), Err(ErrorCode::InvalidInput), "{bad}");
    }
}
