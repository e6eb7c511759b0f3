//! The reference as data, and every (kind, state, action) through check() and decide().

use super::*;

// =============================================================================================
// the reference as data
// =============================================================================================

/// docs/reference.md#tickets and §2.4: the states of each kind's workflow.
const KIND_STATES: &[(&str, &[&str])] = &[
    ("forgot_username", &["awaiting_agent", "resolved", "refused"]),
    (
        "ip_lockout",
        &[
            "awaiting_allowlisted_attempts",
            "attempts_reported",
            "verifying_ownership",
            "ownership_verified",
            "resolved",
            "refused",
        ],
    ),
    (
        "account_terminated",
        &[
            "awaiting_agent",
            "awaiting_payment",
            "payment_confirmed",
            "resolved",
            "refused",
        ],
    ),
    (
        "login_help",
        &["awaiting_agent", "awaiting_customer", "resolved", "refused"],
    ),
    (
        "general",
        &["awaiting_agent", "awaiting_customer", "resolved", "refused"],
    ),
];

const TERMINAL_STATES: &[&str] = &["resolved", "refused"];

/// docs/reference.md#kinds-and-states "Actions of every kind": allowed in every state but `resolved` and `refused`.
const COMMON_ACTIONS: &[&str] = &["assign", "reclassify", "link_account", "resolve", "refuse"];

/// docs/reference.md#kinds-and-states's table: (kind, recovery action, the states it is allowed in).
const RECOVERY_ACTIONS: &[(&str, &str, &[&str])] = &[
    ("forgot_username", "send_username", &["awaiting_agent"]),
    (
        "ip_lockout",
        "record_allowlisted_attempts",
        &["awaiting_allowlisted_attempts", "attempts_reported"],
    ),
    ("ip_lockout", "start_ownership_verification", &["attempts_reported"]),
    ("ip_lockout", "send_email_challenge", &["verifying_ownership"]),
    ("ip_lockout", "record_verification_check", &["verifying_ownership"]),
    ("ip_lockout", "grant_ip_access", &["ownership_verified"]),
    ("account_terminated", "record_payment", &["awaiting_payment"]),
    (
        "account_terminated",
        "reactivate_account",
        &["payment_confirmed", "awaiting_payment"],
    ),
    ("login_help", "diagnose_auth", &["awaiting_agent", "awaiting_customer"]),
];

pub(super) fn states_of(kind: &str) -> &'static [&'static str] {
    KIND_STATES
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, states)| *states)
        .unwrap_or_else(|| panic!("the reference has no kind {kind}"))
}

/// What the reference's guards look at, read off the account by the test itself.
#[derive(Debug, Clone, Copy)]
struct Facts {
    linked: bool,
    banned: bool,
    ip_access: bool,
    balance_due: bool,
    /// The account's own status is `terminated` (only such an account is reactivated).
    terminated: bool,
}

impl Facts {
    fn of(account: Option<&AccountView>) -> Facts {
        match account {
            None => Facts {
                linked: false,
                banned: false,
                ip_access: false,
                balance_due: false,
                terminated: false,
            },
            Some(a) => Facts {
                linked: true,
                banned: banned_per_spec(a),
                ip_access: a.ip_access_enabled,
                balance_due: a.balance_due_cents > 0,
                terminated: a.status == AccountStatus::Terminated,
            },
        }
    }
}

/// docs/reference.md#account-directory: banned, or a sub-user of a banned parent.
pub(super) fn banned_per_spec(account: &AccountView) -> bool {
    account.status == AccountStatus::Banned || account.banned_via_parent
}

/// the reference's answer for `action` on a `kind` ticket in `state`, in the reference's refusal order (an
/// unknown name cannot occur here): a recovery action on a banned account, then kind and
/// state, where a guard's more specific code replaces `invalid_transition`.
fn expected(kind: &str, state: &str, action: &str, facts: Facts) -> Result<(), ErrorCode> {
    use ErrorCode::*;
    let recovery = RECOVERY_ACTIONS.iter().find(|(_, name, _)| *name == action);
    if recovery.is_some() && facts.banned {
        return Err(AccountBanned);
    }
    // A ticket in a state its kind does not have is in no state the reference allows anything in.
    if !states_of(kind).contains(&state) {
        return Err(InvalidTransition);
    }
    if action == "reopen" {
        // docs/reference.md#who-acts-next: from `refused` only (these views carry no policy reason).
        return match state {
            "refused" if facts.banned => Err(AccountBanned),
            "refused" => Ok(()),
            _ => Err(InvalidTransition),
        };
    }
    let Some(&(action_kind, _, allowed_in)) = recovery else {
        assert!(
            COMMON_ACTIONS.contains(&action),
            "{action} is in neither of the reference's lists"
        );
        return if TERMINAL_STATES.contains(&state) {
            Err(InvalidTransition)
        } else {
            Ok(())
        };
    };
    if action_kind != kind {
        return Err(InvalidTransition);
    }
    let needs_account = |then: Result<(), ErrorCode>| if facts.linked { then } else { Err(AccountNotLinked) };
    match (action, state) {
        // Before the step they guard, the guards name what is missing.
        ("start_ownership_verification", "awaiting_allowlisted_attempts") => Err(AllowlistedAttemptsMissing),
        ("grant_ip_access", "awaiting_allowlisted_attempts" | "attempts_reported" | "verifying_ownership") => {
            Err(OwnershipNotVerified)
        }
        _ if !allowed_in.contains(&state) => Err(InvalidTransition),
        ("start_ownership_verification", _) => needs_account(if facts.ip_access {
            Ok(())
        } else {
            Err(IpAccessNotEnabled)
        }),
        // A challenge goes to the account's address, checks verify an account, a grant and a
        // payment change one.
        ("send_email_challenge" | "record_verification_check" | "grant_ip_access" | "record_payment", _) => {
            needs_account(Ok(()))
        }
        // Not banned (above), terminated, nothing owed: in that order.
        ("reactivate_account", _) => needs_account(if !facts.terminated {
            Err(AccountNotTerminated)
        } else if facts.balance_due {
            Err(BalanceOutstanding)
        } else {
            Ok(())
        }),
        // send_username names its account; allowlisted attempts are the customer's word.
        _ => Ok(()),
    }
}

// =============================================================================================
// Every (kind, state, action), through check() and decide()
// =============================================================================================

/// Walks `Kind::ALL × State::ALL × ActionName::ALL` for a ticket linked to `account` and
/// compares `check()` (and `decide()` with valid parameters) with [`expected`].
fn walk_every_combination(account: Option<&AccountView>) {
    let facts = Facts::of(account);
    let target = other_account(AccountStatus::Active);
    let diagnosed = diagnosis_with(Finding::BadPassword, "crm-mailer");
    let ctx = Context {
        target_account: Some(&target),
        requester_accounts: &[],
        diagnosis: Some(DiagnosisFacts {
            diagnosis: &diagnosed,
            owner: account,
        }),
    };
    let mut disagreements = vec![];
    for kind in Kind::ALL {
        for state in State::ALL {
            for name in ActionName::ALL {
                let ticket = view(kind, state, account);
                let want = expected(kind.as_str(), state.as_str(), name.as_str(), facts);
                let checked = check(&ticket, name).map_err(|r| r.code);
                let action = Action::parse(name, &valid_params(name)).expect("valid parameters");
                let decided = decide(&ticket, &action, &ctx).map(|_| ()).map_err(|r| r.code);
                if checked != want || decided != want {
                    disagreements.push(format!(
                        "{kind} / {state} / {}: the reference {want:?}, check {checked:?}, decide {decided:?}",
                        name.as_str()
                    ));
                }
                // Four eyes changes no refusal: every guard still answers first; what passes is
                // held when it is a grant or a reactivation, and applied otherwise.
                let held = decide_or_hold(&ticket, &action, &ctx, approval::FourEyes::On);
                let four_eyes_ok = match (&held, want) {
                    (Err(r), Err(code)) => r.code == code,
                    (Ok(super::Step::Hold), Ok(())) => approval::needs_approval(approval::FourEyes::On, name),
                    (Ok(super::Step::Apply(_)), Ok(())) => !approval::needs_approval(approval::FourEyes::On, name),
                    _ => false,
                };
                // While the same action waits for approval, it is refused with approval_pending
                // where the reference would allow it, and with the reference's code elsewhere.
                let pending = [name];
                let waiting = TicketView {
                    pending_approvals: &pending,
                    ..ticket.clone()
                };
                let while_pending = check(&waiting, name).map_err(|r| r.code);
                let pending_ok = match want {
                    Ok(()) => while_pending == Err(ErrorCode::ApprovalPending),
                    Err(code) => while_pending == Err(code),
                };
                if !four_eyes_ok || !pending_ok {
                    disagreements.push(format!(
                        "{kind} / {state} / {}: four eyes {held:?}, while pending {while_pending:?}, the reference {want:?}",
                        name.as_str()
                    ));
                }
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} combinations disagree with the reference:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

#[test]
fn every_action_in_every_state_of_every_kind_follows_spec_for_an_active_account() {
    walk_every_combination(Some(&sample_account(AccountStatus::Active)));
}

#[test]
fn every_action_in_every_state_follows_spec_without_a_linked_account() {
    walk_every_combination(None);
}

#[test]
fn every_action_in_every_state_follows_spec_when_ip_access_management_is_off() {
    walk_every_combination(Some(&account_with(|a| a.ip_access_enabled = false)));
}

#[test]
fn every_action_in_every_state_follows_spec_while_a_balance_is_outstanding() {
    walk_every_combination(Some(&account_with(|a| {
        a.status = AccountStatus::Terminated;
        a.balance_due_cents = 12_345;
    })));
}

#[test]
fn every_action_in_every_state_follows_spec_for_unconfirmed_and_terminated_accounts() {
    walk_every_combination(Some(&sample_account(AccountStatus::PendingConfirmation)));
    walk_every_combination(Some(&sample_account(AccountStatus::Terminated)));
}

#[test]
fn every_action_in_every_state_follows_spec_for_a_banned_account() {
    walk_every_combination(Some(&sample_account(AccountStatus::Banned)));
}

#[test]
fn every_action_in_every_state_follows_spec_for_a_sub_user_of_a_banned_parent() {
    walk_every_combination(Some(&sub_user_of_banned_parent()));
}

#[test]
fn the_spec_tables_name_exactly_the_engines_actions_and_states() {
    for name in ActionName::ALL {
        let spec_kind = RECOVERY_ACTIONS
            .iter()
            .find(|(_, action, _)| *action == name.as_str())
            .map(|(kind, _, _)| *kind);
        assert_eq!(name.kind().map(Kind::as_str), spec_kind, "{}", name.as_str());
        assert_eq!(name.is_recovery(), spec_kind.is_some(), "{}", name.as_str());
        assert_eq!(
            ActionName::COMMON.contains(&name),
            COMMON_ACTIONS.contains(&name.as_str()),
            "{}",
            name.as_str()
        );
        assert_eq!(ActionName::parse(name.as_str()), Ok(name));
    }
    for kind in Kind::ALL {
        let engine: Vec<&str> = kind.states().iter().map(|s| s.as_str()).collect();
        assert_eq!(engine, states_of(kind.as_str()), "{kind}");
    }
}

#[test]
fn diagnose_auth_is_an_action_of_login_help() {
    let name = ActionName::parse("diagnose_auth").expect("the reference's action diagnose_auth");
    let account = sample_account(AccountStatus::Active);
    for state in State::ALL {
        let want = expected("login_help", state.as_str(), "diagnose_auth", Facts::of(Some(&account)));
        assert_eq!(
            check(&view(Kind::LoginHelp, state, Some(&account)), name).map_err(|r| r.code),
            want
        );
    }
}

#[test]
fn the_listed_actions_are_the_kinds_own_with_their_check() {
    let account = sample_account(AccountStatus::Active);
    for kind in Kind::ALL {
        for &state in kind.states() {
            let ticket = view(kind, state, Some(&account));
            let listed = available_actions(&ticket);
            let names: Vec<&str> = listed.iter().map(|(name, _)| name.as_str()).collect();
            let own: Vec<&str> = COMMON_ACTIONS
                .iter()
                .copied()
                .chain(
                    RECOVERY_ACTIONS
                        .iter()
                        .filter(|(k, ..)| *k == kind.as_str())
                        .map(|(_, action, _)| *action),
                )
                // docs/reference.md#who-acts-next: an admin's reopen, listed for every kind.
                .chain(std::iter::once("reopen"))
                .collect();
            assert_eq!(names, own, "{kind} {state}");
            for (name, allowed) in listed {
                assert_eq!(allowed, check(&ticket, name), "{kind} {state} {}", name.as_str());
            }
        }
    }
}
