//! decide(): action names and the order of refusals.

use super::*;

// --- names and the order of refusals ---------------------------------------------------------

#[test]
fn an_unknown_action_name_is_a_404() {
    let ticket = Ticket::new(Kind::IpLockout, State::OwnershipVerified);
    for name in ["delete_account", "", "Grant_IP_Access", "grant_ip_access ", "unban"] {
        assert_eq!(ticket.act(name, json!({})), Err(ErrorCode::UnknownAction), "{name:?}");
    }
    assert_eq!(ErrorCode::UnknownAction.http_status(), 404);
}

#[test]
fn policy_refusals_come_before_parameter_errors() {
    let banned =
        Ticket::new(Kind::IpLockout, State::OwnershipVerified).linked_to(Some(sample_account(AccountStatus::Banned)));
    assert_eq!(
        banned.act("grant_ip_access", json!({"ip": "10.0.0.1"})),
        Err(ErrorCode::AccountBanned)
    );
    let early = Ticket::new(Kind::IpLockout, State::AttemptsReported);
    assert_eq!(
        early.act("grant_ip_access", json!({"ip": "nonsense"})),
        Err(ErrorCode::OwnershipNotVerified)
    );
    let other_kind = Ticket::new(Kind::General, State::AwaitingAgent);
    assert_eq!(
        other_kind.act("record_payment", json!({"amount_cents": -1})),
        Err(ErrorCode::InvalidTransition)
    );
    // An unknown name beats even a banned account.
    assert_eq!(banned.act("unban", json!({})), Err(ErrorCode::UnknownAction));
}

#[test]
fn refusals_answer_409_except_unknown_names_and_bad_parameters() {
    use ErrorCode::*;
    for code in [
        AccountBanned,
        InvalidTransition,
        AllowlistedAttemptsMissing,
        AccountNotLinked,
        IpAccessNotEnabled,
        EmailChallengeByLinkOnly,
        OwnershipNotVerified,
        BalanceOutstanding,
    ] {
        assert_eq!(code.http_status(), 409, "{code}");
    }
    for code in [InvalidIp, IpNotPublic, InvalidInput] {
        assert_eq!(code.http_status(), 422, "{code}");
    }
}
