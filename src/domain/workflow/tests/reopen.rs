//! Reopen.

use super::*;

// =============================================================================================
// Reopen (docs/reference.md#who-acts-next)
// =============================================================================================

fn refused_view<'a>(kind: Kind, reason: &'a str, account: Option<&'a AccountView>) -> TicketView<'a> {
    TicketView {
        state_reason: Some(reason),
        ..view(kind, State::Refused, account)
    }
}

#[test]
fn reopen_takes_an_agents_refusal_back_to_the_first_open_state() {
    let account = sample_account(AccountStatus::Active);
    for kind in Kind::ALL {
        let ticket = refused_view(kind, "duplicate", Some(&account));
        let action = Action::parse(ActionName::Reopen, &json!({"reason": "refused by mistake"})).unwrap();
        let decision = decide(&ticket, &action, &Context::default()).unwrap();
        assert_eq!(decision.state, kind.initial_state(), "{kind}");
        assert!(
            Action::parse(ActionName::Reopen, &json!({"reason": ""})).is_err(),
            "a reopen needs a reason"
        );
    }
}

#[test]
fn a_policy_refusal_can_never_be_reopened() {
    let account = sample_account(AccountStatus::Active);
    for reason in [BANNED_REASON, VERIFICATION_FAILED_REASON] {
        let ticket = refused_view(Kind::IpLockout, reason, Some(&account));
        assert_eq!(
            check(&ticket, ActionName::Reopen).unwrap_err().code,
            ErrorCode::RefusedByPolicy
        );
    }
    let banned = sample_account(AccountStatus::Banned);
    let ticket = refused_view(Kind::General, "duplicate", Some(&banned));
    assert_eq!(
        check(&ticket, ActionName::Reopen).unwrap_err().code,
        ErrorCode::AccountBanned
    );
    let open = view(Kind::General, State::AwaitingAgent, Some(&account));
    assert_eq!(
        check(&open, ActionName::Reopen).unwrap_err().code,
        ErrorCode::InvalidTransition
    );
}

#[test]
fn only_admins_reopen() {
    assert_eq!(
        closing::check_role(ActionName::Reopen, false).unwrap_err().code,
        ErrorCode::Forbidden
    );
    assert_eq!(ErrorCode::Forbidden.http_status(), 403);
    assert!(closing::check_role(ActionName::Reopen, true).is_ok());
    for name in ActionName::ALL.into_iter().filter(|n| *n != ActionName::Reopen) {
        assert!(closing::check_role(name, false).is_ok(), "{name:?}");
    }
}

#[test]
fn a_passed_email_challenge_is_not_offered_again() {
    let account = sample_account(AccountStatus::Active);
    let passed = [CheckRecord {
        method: Method::EmailChallenge,
        passed: true,
    }];
    let ticket = TicketView {
        checks: &passed,
        ..view(Kind::IpLockout, State::VerifyingOwnership, Some(&account))
    };
    assert_eq!(
        check(&ticket, ActionName::SendEmailChallenge).unwrap_err().code,
        ErrorCode::InvalidTransition
    );
    assert!(check(&ticket, ActionName::RecordVerificationCheck).is_ok());
    let failed = [CheckRecord {
        method: Method::EmailChallenge,
        passed: false,
    }];
    let ticket = TicketView {
        checks: &failed,
        ..ticket
    };
    assert!(check(&ticket, ActionName::SendEmailChallenge).is_ok());
}
