//! Exhaustive tests of the engine: every (kind, state, action), and properties over sequences.
//!
//! What the engine should answer is written here from docs/reference.md#policy–2.4 (its tables copied as
//! text, its guards as a small function), never obtained by asking the engine.

use super::conversation::{self, Sender};
use super::creation::{CreationFacts, on_create, smtp_username_flags};
use super::*;
use crate::domain::account::{AccountStatus, sample_account};
use crate::domain::diagnosis::{self, AuthChannel, Diagnosis, Finding, Question, When};
use crate::domain::verification::Method;
use proptest::prelude::*;
use serde_json::{Value, json};

/// The registered address of `sample_account` (acc_1001).
const REGISTERED: &str = "ops@acme.test";
/// Someone who is not the registered address of any account in these tests.
const STRANGER: &str = "someone@elsewhere.test";

fn view<'a>(kind: Kind, state: State, account: Option<&'a AccountView>) -> TicketView<'a> {
    TicketView {
        kind,
        state,
        state_reason: None,
        requester: REGISTERED,
        account,
        checks: &[],
        attempts_on_record: true,
        pending_approvals: &[],
    }
}

#[test]
fn a_banned_account_refuses_every_recovery_action_in_every_state() {
    let banned = sample_account(AccountStatus::Banned);
    for kind in Kind::ALL {
        for state in State::ALL {
            for name in ActionName::ALL.into_iter().filter(|a| a.is_recovery()) {
                let refusal = check(&view(kind, state, Some(&banned)), name).unwrap_err();
                assert_eq!(
                    refusal.code,
                    ErrorCode::AccountBanned,
                    "{kind} {state} {}",
                    name.as_str()
                );
            }
        }
    }
}

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

fn states_of(kind: &str) -> &'static [&'static str] {
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
fn banned_per_spec(account: &AccountView) -> bool {
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

/// An active, IP-access-enabled account, changed by `change`.
fn account_with(change: impl FnOnce(&mut AccountView)) -> AccountView {
    let mut account = sample_account(AccountStatus::Active);
    change(&mut account);
    account
}

fn sub_user_of_banned_parent() -> AccountView {
    account_with(|a| {
        a.parent_id = Some("acc_0001".into());
        a.banned_via_parent = true;
    })
}

/// Another customer's account, registered to another address.
fn other_account(status: AccountStatus) -> AccountView {
    AccountView {
        id: "acc_2002".into(),
        username: "crm-team".into(),
        email: "billing@other.test".into(),
        status,
        parent_id: None,
        banned_via_parent: false,
        ip_access_enabled: true,
        allowlist: vec![],
        balance_due_cents: 0,
        dedicated_ips: vec![],
    }
}

/// Parameters that are valid for `name`, so that only the policy can refuse.
fn valid_params(name: ActionName) -> Value {
    match name {
        ActionName::Assign => json!({"agent_email": "agent@desk.test"}),
        ActionName::Reclassify => json!({"kind": "general"}),
        ActionName::LinkAccount | ActionName::SendUsername => json!({"account_id": "acc_2002"}),
        ActionName::Resolve => json!({"note": "done"}),
        ActionName::Refuse => json!({"reason": "duplicate"}),
        ActionName::Reopen => json!({"reason": "refused by mistake"}),
        ActionName::RecordAllowlistedAttempts => json!({"tried_from": "office VPN", "outcome": "still blocked"}),
        ActionName::RecordVerificationCheck => json!({"method": "billing_details", "passed": true}),
        ActionName::GrantIpAccess => json!({"ip": "203.0.113.9"}),
        ActionName::RecordPayment => json!({"amount_cents": 100, "reference": "inv-7"}),
        ActionName::StartOwnershipVerification | ActionName::SendEmailChallenge | ActionName::ReactivateAccount => {
            json!({})
        }
        ActionName::DiagnoseAuth => {
            json!({"username": "crm-mailer", "failed_at": "2026-11-23T09:14:00Z", "notify": true})
        }
    }
}

/// A diagnosis with this finding, as the service would hand it to the engine.
fn diagnosis_with(finding: Finding, username: &str) -> Diagnosis {
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
        .unwrap()
        .to_utc();
    let mut made = diagnosis::diagnose(
        &Question {
            username,
            channel: AuthChannel::Smtp,
            when: When::Given(now - chrono::Duration::hours(3)),
            now,
            known_to_logs: true,
        },
        &[],
    );
    made.finding = finding;
    made
}

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

// =============================================================================================
// decide(): states, effects and parameters
// =============================================================================================

/// A ticket the test owns, lent to the engine as a view.
#[derive(Debug, Clone)]
struct Ticket {
    kind: Kind,
    state: State,
    requester: &'static str,
    account: Option<AccountView>,
    checks: Vec<CheckRecord>,
    attempts_on_record: bool,
}

impl Ticket {
    /// Opened by the registered address of an active account.
    fn new(kind: Kind, state: State) -> Ticket {
        Ticket {
            kind,
            state,
            requester: REGISTERED,
            account: Some(sample_account(AccountStatus::Active)),
            checks: vec![],
            attempts_on_record: kind == Kind::IpLockout && state != State::AwaitingAllowlistedAttempts,
        }
    }

    fn requested_by(mut self, requester: &'static str) -> Ticket {
        self.requester = requester;
        self
    }

    fn linked_to(mut self, account: Option<AccountView>) -> Ticket {
        self.account = account;
        self
    }

    fn with_checks(mut self, checks: &[(Method, bool)]) -> Ticket {
        self.checks = checks
            .iter()
            .map(|&(method, passed)| CheckRecord { method, passed })
            .collect();
        self
    }

    fn view(&self) -> TicketView<'_> {
        TicketView {
            kind: self.kind,
            state: self.state,
            state_reason: None,
            requester: self.requester,
            account: self.account.as_ref(),
            checks: &self.checks,
            attempts_on_record: self.attempts_on_record,
            pending_approvals: &[],
        }
    }

    fn act(&self, name: &str, params: Value) -> Result<Decision, ErrorCode> {
        self.act_in(&[], name, params)
    }

    /// Through [`apply`], as every service goes: the reference's refusal order (the name, the
    /// policy, the parameters, then the decision). `directory` holds the accounts an action may name.
    fn act_in(&self, directory: &[AccountView], name: &str, params: Value) -> Result<Decision, ErrorCode> {
        let named = params.get("account_id").and_then(Value::as_str);
        let mine: Vec<AccountView> = directory
            .iter()
            .filter(|a| a.is_registered_email(self.requester))
            .cloned()
            .collect();
        let ctx = Context {
            target_account: directory.iter().find(|a| Some(a.id.as_str()) == named),
            requester_accounts: &mine,
            diagnosis: None,
        };
        apply(&self.view(), name, &params, &ctx).map_err(|r| r.code)
    }

    fn confirm(&self, passed: bool) -> Result<Decision, ErrorCode> {
        confirm_email_challenge(&self.view(), passed).map_err(|r| r.code)
    }
}

fn to_account(id: &str) -> Recipient {
    Recipient::RegisteredEmail { account_id: id.into() }
}

/// The templates of the mail `decision` sends to `recipient`, in order.
fn mail_to(decision: &Decision, recipient: &Recipient) -> Vec<MailTemplate> {
    decision
        .effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Mail(mail) if &mail.to == recipient => Some(mail.template.clone()),
            _ => None,
        })
        .collect()
}

fn mail_count(decision: &Decision) -> usize {
    decision.effects.iter().filter(|e| matches!(e, Effect::Mail(_))).count()
}

fn non_mail_effects(decision: &Decision) -> Vec<Effect> {
    decision
        .effects
        .iter()
        .filter(|e| !matches!(e, Effect::Mail(_)))
        .cloned()
        .collect()
}

/// Mail whose content depends on the account (docs/reference.md#policy: only for the registered address).
fn is_account_dependent(template: &MailTemplate) -> bool {
    match template {
        MailTemplate::UsernameDelivery { .. }
        | MailTemplate::UnconfirmedSignup
        | MailTemplate::TerminatedNotice
        | MailTemplate::BalanceDue
        | MailTemplate::BannedAnswer
        | MailTemplate::EmailChallenge
        | MailTemplate::IpGranted { .. }
        | MailTemplate::AccountReactivated
        | MailTemplate::VerificationFailed
        | MailTemplate::DiagnosisGuidance { .. } => true,
        MailTemplate::Acknowledgement
        | MailTemplate::StatusUpdate
        | MailTemplate::TryAllowlistedIps
        | MailTemplate::RedactionNotice
        | MailTemplate::AgentReply
        | MailTemplate::RequestRefused { .. }
        | MailTemplate::DiagnosisChecklist { .. } => false,
    }
}

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

// --- account_terminated ----------------------------------------------------------------------

fn owing(cents: i64) -> Option<AccountView> {
    Some(account_with(|a| {
        a.status = AccountStatus::Terminated;
        a.balance_due_cents = cents;
    }))
}

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

// =============================================================================================
// Creation rules
// =============================================================================================

fn facts<'a>(kind: Kind, requester: &'a str, account: Option<&'a AccountView>) -> CreationFacts<'a> {
    CreationFacts {
        kind,
        requester,
        account,
        requester_accounts: &[],
        attempts: None,
        attempts_on_record: false,
        smtp_username: None,
        diagnosis: None,
    }
}

fn open(kind: Kind, requester: &str, account: Option<&AccountView>) -> Decision {
    on_create(&facts(kind, requester, account))
}

/// A forgotten username is looked up by the requester's address.
fn open_forgot_username(requester: &str, accounts: &[AccountView]) -> Decision {
    on_create(&CreationFacts {
        requester_accounts: accounts,
        ..facts(Kind::ForgotUsername, requester, None)
    })
}

fn assert_refused_as_banned(decision: &Decision, account_id: &str) {
    assert_eq!(decision.state, State::Refused);
    assert_eq!(decision.state_reason.as_deref(), Some("account_banned"));
    assert_eq!(mail_to(decision, &to_account(account_id)), [MailTemplate::BannedAnswer]);
    assert!(!decision.effects.iter().any(|e| matches!(
        e,
        Effect::Mail(Mail {
            template: MailTemplate::UsernameDelivery { .. },
            ..
        })
    )));
}

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

/// None, then an account in every status, then a sub-user of a banned parent.
fn account_variants() -> Vec<Option<AccountView>> {
    let mut variants = vec![None];
    variants.extend(AccountStatus::ALL.map(|status| {
        Some(account_with(|a| {
            a.status = status;
            a.balance_due_cents = if status == AccountStatus::Terminated { 4_200 } else { 0 };
        }))
    }));
    variants.push(Some(sub_user_of_banned_parent()));
    variants
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

// =============================================================================================
// Properties over random sequences of actions
// =============================================================================================

/// The accounts sequences name; the last one is not in the directory.
const ACCOUNT_IDS: [&str; 3] = ["acc_1001", "acc_2002", "acc_404"];

#[derive(Debug, Clone)]
enum Step {
    /// An agent asks for an action, with plausible (not always valid) parameters.
    Act(ActionName, Value),
    /// The customer opens the mailed link: confirms it, or answers "this was not me".
    Confirm(bool),
    /// A message comes in on the ticket (docs/reference.md#threading-and-reopening: it may reopen it).
    Reply(Sender),
    /// Billing or compliance changes an account between two steps; `notify` says whether the
    /// service refused the open tickets of a newly banned account before the next step.
    Directory { index: usize, change: Change, notify: bool },
}

#[derive(Debug, Clone, Copy)]
enum Change {
    Status(AccountStatus),
    ParentBanned,
    Balance(i64),
    IpAccess(bool),
}

/// A ticket and the directory, as the service would keep them.
#[derive(Debug, Clone)]
struct Model {
    directory: Vec<AccountView>,
    kind: Kind,
    state: State,
    state_reason: Option<String>,
    requester: &'static str,
    account_id: Option<String>,
    checks: Vec<CheckRecord>,
    attempts_on_record: bool,
    /// The account whose ownership the current verification round is about.
    round_account: Option<String>,
}

impl Model {
    fn account(&self, id: &str) -> Option<&AccountView> {
        self.directory.iter().find(|a| a.id == id)
    }

    fn account_mut(&mut self, id: &str) -> &mut AccountView {
        self.directory
            .iter_mut()
            .find(|a| a.id == id)
            .unwrap_or_else(|| panic!("an effect names {id}, which is not in the directory"))
    }

    fn linked(&self) -> Option<&AccountView> {
        self.account_id.as_deref().and_then(|id| self.account(id))
    }

    fn view(&self) -> TicketView<'_> {
        TicketView {
            kind: self.kind,
            state: self.state,
            state_reason: self.state_reason.as_deref(),
            requester: self.requester,
            account: self.linked(),
            checks: &self.checks,
            attempts_on_record: self.attempts_on_record,
            pending_approvals: &[],
        }
    }

    fn requester_accounts(&self) -> Vec<AccountView> {
        self.directory
            .iter()
            .filter(|a| a.is_registered_email(self.requester))
            .cloned()
            .collect()
    }

    /// A ticket about to be opened.
    fn new(kind: Kind, requester: &'static str, directory: Vec<AccountView>) -> Model {
        Model {
            directory,
            kind,
            state: kind.initial_state(),
            state_reason: None,
            requester,
            account_id: None,
            checks: vec![],
            attempts_on_record: false,
            round_account: None,
        }
    }

    /// The creation rules' decision, for a ticket naming `directory[named]` and reporting
    /// (or not) allowlisted attempts up front.
    fn creation(&self, named: Option<usize>, attempts: bool) -> Decision {
        let mine = self.requester_accounts();
        on_create(&CreationFacts {
            kind: self.kind,
            requester: self.requester,
            account: named.map(|i| &self.directory[i]),
            requester_accounts: &mine,
            attempts: attempts.then(|| ("office VPN".into(), "still blocked".into())),
            attempts_on_record: false,
            smtp_username: None,
            diagnosis: None,
        })
    }

    /// Opened, as the service does it.
    fn opened(
        kind: Kind,
        requester: &'static str,
        directory: Vec<AccountView>,
        named: Option<usize>,
        attempts: bool,
    ) -> Model {
        let mut model = Model::new(kind, requester, directory);
        model.apply(&model.creation(named, attempts));
        model
    }

    /// What the service does with a decision: the state, and the effects on the ticket and
    /// the directory.
    fn apply(&mut self, decision: &Decision) {
        // As the service keeps it: the reason is replaced when the state moves or a new one is given.
        if decision.state != self.state || decision.kind != self.kind || decision.state_reason.is_some() {
            self.state_reason = decision.state_reason.clone();
        }
        self.kind = decision.kind;
        self.state = decision.state;
        for effect in &decision.effects {
            match effect {
                Effect::LinkAccount { account_id } => self.account_id = Some(account_id.clone()),
                Effect::RecordAttempts { .. } => self.attempts_on_record = true,
                Effect::StartVerificationRound => {
                    self.checks.clear();
                    self.round_account = self.account_id.clone();
                }
                Effect::RecordCheck { method, passed, .. } => self.checks.push(CheckRecord {
                    method: *method,
                    passed: *passed,
                }),
                Effect::RecordPayment {
                    account_id,
                    new_balance_cents,
                    ..
                } => self.account_mut(account_id).balance_due_cents = *new_balance_cents,
                Effect::ReactivateAccount { account_id } => self.account_mut(account_id).status = AccountStatus::Active,
                Effect::AddAllowlistEntry { account_id, ip } => self.account_mut(account_id).allowlist.push(ip.clone()),
                Effect::Mail(_)
                | Effect::Assign { .. }
                | Effect::IssueEmailChallenge { .. }
                | Effect::Note { .. }
                | Effect::Flag { .. }
                | Effect::RecordDiagnosis { .. } => {}
            }
        }
    }

    /// A directory change from outside the desk. A ban is permanent: nothing un-bans.
    fn change(&mut self, index: usize, change: Change) {
        let account = &mut self.directory[index];
        match change {
            Change::Status(_) if account.status == AccountStatus::Banned => {}
            Change::Status(status) => account.status = status,
            Change::ParentBanned => account.banned_via_parent = true,
            Change::Balance(cents) => account.balance_due_cents = cents,
            Change::IpAccess(enabled) => account.ip_access_enabled = enabled,
        }
    }

    /// One step: the engine's decision, if it made one.
    fn step(&mut self, step: &Step) -> Result<Option<Decision>, TestCaseError> {
        Ok(match step {
            Step::Act(name, params) => {
                if check(&self.view(), *name).is_err() {
                    return Ok(None);
                }
                let action = match Action::parse(*name, params) {
                    Ok(action) => action,
                    Err(refusal) => {
                        prop_assert_eq!(refusal.code.http_status(), 422, "{}", refusal);
                        return Ok(None);
                    }
                };
                let named = params.get("account_id").and_then(Value::as_str);
                let mine = self.requester_accounts();
                // What the logs would show: the test's pick of finding and owning account.
                let found = Finding::parse(params["_finding"].as_str().unwrap_or_default())
                    .map(|f| diagnosis_with(f, "crm-mailer"));
                let owner = params["_owner"].as_str().and_then(|id| self.account(id));
                let ctx = Context {
                    target_account: named.and_then(|id| self.account(id)),
                    requester_accounts: &mine,
                    diagnosis: found.as_ref().map(|diagnosis| DiagnosisFacts { diagnosis, owner }),
                };
                decide(&self.view(), &action, &ctx).ok()
            }
            Step::Confirm(passed) => confirm_email_challenge(&self.view(), *passed).ok(),
            Step::Reply(sender) => {
                conversation::after_customer_message(self.kind, self.state, *sender, false, self.attempts_on_record)
                    .map(|state| Decision {
                        kind: self.kind,
                        state,
                        state_reason: None,
                        effects: vec![],
                    })
            }
            Step::Directory { index, change, notify } => {
                let was_banned = self.linked().is_some_and(banned_per_spec);
                self.change(*index, *change);
                match self.linked() {
                    Some(account) if *notify && !was_banned && banned_per_spec(account) => {
                        on_account_banned(&self.view(), account)
                    }
                    _ => None,
                }
            }
        })
    }
}

/// docs/reference.md#ownership-verification, written out: at least two passed checks of different methods, one of them
/// the email challenge (and not three failures).
fn verified_per_spec(checks: &[CheckRecord]) -> bool {
    let mut passed: Vec<Method> = checks.iter().filter(|c| c.passed).map(|c| c.method).collect();
    passed.sort();
    passed.dedup();
    let failed = checks.iter().filter(|c| !c.passed).count();
    passed.contains(&Method::EmailChallenge) && passed.len() >= 2 && failed < 3
}

/// The properties one decision must have, judged on the world it was made in.
fn check_properties(before: &Model, decision: &Decision, from_link: bool) -> Result<(), TestCaseError> {
    prop_assert!(
        states_of(decision.kind.as_str()).contains(&decision.state.as_str()),
        "a {} ticket ended in {}",
        decision.kind,
        decision.state
    );
    for effect in &decision.effects {
        // Only a terminated account is ever made active again: never an unconfirmed signup.
        if let Effect::ReactivateAccount { account_id } = effect {
            prop_assert!(
                before
                    .account(account_id)
                    .is_some_and(|a| a.status == AccountStatus::Terminated),
                "reactivated {} which was not terminated",
                account_id
            );
        }
        // (a) Nothing recovers a banned account.
        let recovered: Vec<&String> = match effect {
            Effect::ReactivateAccount { account_id } | Effect::AddAllowlistEntry { account_id, .. } => {
                vec![account_id]
            }
            Effect::Mail(Mail {
                template: MailTemplate::UsernameDelivery { account_ids },
                ..
            }) => account_ids.iter().collect(),
            _ => vec![],
        };
        for id in recovered {
            let account = before.account(id);
            prop_assert!(
                account.is_some_and(|a| !banned_per_spec(a)),
                "{:?} for the banned or unknown account {}",
                effect,
                id
            );
        }
        match effect {
            // (b) A grant only after a verification round of that very account that the reference accepts.
            Effect::AddAllowlistEntry { account_id, .. } => {
                prop_assert_eq!((before.kind, before.state), (Kind::IpLockout, State::OwnershipVerified));
                prop_assert!(verified_per_spec(&before.checks), "granted after {:?}", before.checks);
                prop_assert_eq!(before.round_account.as_ref(), Some(account_id));
            }
            // (c) A verification round only once attempts were reported.
            Effect::StartVerificationRound => {
                prop_assert_eq!((before.kind, before.state), (Kind::IpLockout, State::AttemptsReported));
                prop_assert!(before.attempts_on_record);
            }
            // Only the mailbox proves the mailbox.
            Effect::RecordCheck {
                method: Method::EmailChallenge,
                passed: true,
                ..
            } => prop_assert!(from_link, "a passed email challenge not from the link"),
            // What the logs show goes only to the owner's registered address, when it asked.
            Effect::Mail(Mail {
                template: MailTemplate::DiagnosisGuidance { .. },
                to,
            }) => {
                let Recipient::RegisteredEmail { account_id } = to else {
                    return Err(TestCaseError::fail("diagnosis guidance to the requester as such"));
                };
                prop_assert!(
                    before
                        .account(account_id)
                        .is_some_and(|a| a.is_registered_email(before.requester)),
                    "guidance about {} for {}",
                    account_id,
                    before.requester
                );
            }
            // Account-dependent mail never goes to a requester who is someone else.
            Effect::Mail(Mail {
                template,
                to: Recipient::Requester,
            }) if before.requester == STRANGER => {
                prop_assert!(!is_account_dependent(template), "{:?} to a stranger", template);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Runs `steps` on `model`, checking every decision; the model at the end.
fn run(mut model: Model, steps: &[Step]) -> Result<Model, TestCaseError> {
    let mut banned_and_refused = false;
    for step in steps {
        if let Some(decision) = model.step(step)? {
            // A directory step changed the model before deciding: the model is the world the
            // decision was made in.
            check_properties(&model, &decision, matches!(step, Step::Confirm(_)))?;
            let before = model.state;
            model.apply(&decision);
            // Reaching ownership_verified is the reference's policy holding, not an accident.
            if model.state == State::OwnershipVerified && before != State::OwnershipVerified {
                prop_assert!(verified_per_spec(&model.checks), "verified by {:?}", model.checks);
            }
        }
        // (d) A banned account's refused ticket stays refused.
        if banned_and_refused {
            prop_assert_eq!(model.state, State::Refused, "left refused after {:?}", step);
        }
        banned_and_refused |= model.state == State::Refused && model.linked().is_some_and(banned_per_spec);
    }
    Ok(model)
}

fn plausible_params(name: ActionName, pick: usize, flag: bool, amount: i64) -> Value {
    let choose = |options: &[&'static str]| options[pick % options.len()];
    match name {
        ActionName::Assign => json!({"agent_email": choose(&["agent@desk.test", "nobody"])}),
        ActionName::Reclassify => json!({"kind": Kind::ALL[pick % Kind::ALL.len()].as_str()}),
        ActionName::LinkAccount | ActionName::SendUsername => json!({"account_id": choose(&ACCOUNT_IDS)}),
        ActionName::Resolve => json!({"note": choose(&["", "works again"])}),
        ActionName::Refuse => json!({"reason": choose(&["", "spam"]), "category": choose(&["duplicate", "other"])}),
        ActionName::Reopen => json!({"reason": choose(&["", "refused by mistake"])}),
        ActionName::RecordAllowlistedAttempts => {
            json!({"tried_from": choose(&["office VPN", "", "a colleague's desk"]), "outcome": "still blocked"})
        }
        ActionName::RecordVerificationCheck => json!({
            "method": Method::ALL[pick % Method::ALL.len()].as_str(),
            "passed": flag,
            "evidence": "asked on the phone",
        }),
        ActionName::GrantIpAccess => json!({"ip": choose(&[
            "203.0.113.9",
            "198.51.100.0/24",
            "2001:db8:1::/48",
            "8.8.8.0/24",
            "10.0.0.1",
            "100.64.1.1",
            "198.51.100.0/23",
            "nonsense",
        ])}),
        ActionName::RecordPayment => json!({"amount_cents": amount, "reference": "inv-7"}),
        ActionName::StartOwnershipVerification | ActionName::SendEmailChallenge | ActionName::ReactivateAccount => {
            json!({})
        }
        ActionName::DiagnoseAuth => json!({
            "username": choose(&["crm-mailer", " ops@acme.test", "crm mailer", ""]),
            "failed_at": choose(&["", "2026-11-23T09:14:00Z", "2026-11-23 09:14 UTC", "nonsense"]),
            "notify": flag,
            "_finding": Finding::ALL[pick % Finding::ALL.len()].as_str(),
            "_owner": choose(&["acc_1001", "acc_2002", "acc_404"]),
        }),
    }
}

fn any_status() -> impl Strategy<Value = AccountStatus> {
    prop_oneof![
        6 => Just(AccountStatus::Active),
        1 => Just(AccountStatus::PendingConfirmation),
        2 => Just(AccountStatus::Terminated),
        1 => Just(AccountStatus::Banned),
    ]
}

/// Action names, weighted so that random sequences walk the workflows far (the actions that
/// end a ticket at once are rare).
fn any_action_name() -> impl Strategy<Value = ActionName> {
    use ActionName::*;
    let weighted = [
        (6, Assign),
        (2, Reclassify),
        (6, LinkAccount),
        (1, Resolve),
        (1, Refuse),
        (6, SendUsername),
        (24, RecordAllowlistedAttempts),
        (30, StartOwnershipVerification),
        (12, SendEmailChallenge),
        (36, RecordVerificationCheck),
        (30, GrantIpAccess),
        (24, RecordPayment),
        (24, ReactivateAccount),
        (12, DiagnoseAuth),
    ];
    prop::strategy::Union::new_weighted(weighted.map(|(weight, name)| (weight, Just(name))).to_vec())
}

fn any_step() -> impl Strategy<Value = Step> {
    let act = (
        any_action_name(),
        any::<usize>(),
        prop::bool::weighted(0.75),
        -500i64..6_000,
    )
        .prop_map(|(name, pick, flag, amount)| Step::Act(name, plausible_params(name, pick, flag, amount)));
    let change = prop_oneof![
        4 => any_status().prop_map(Change::Status),
        1 => Just(Change::ParentBanned),
        3 => (0i64..5_000).prop_map(Change::Balance),
        2 => any::<bool>().prop_map(Change::IpAccess),
    ];
    prop_oneof![
        16 => act,
        4 => prop::bool::weighted(0.8).prop_map(Step::Confirm),
        2 => prop_oneof![Just(Sender::Requester), Just(Sender::RegisteredEmail), Just(Sender::Stranger)].prop_map(Step::Reply),
        1 => (0..2usize, change, any::<bool>()).prop_map(|(index, change, notify)| Step::Directory { index, change, notify }),
    ]
}

/// A freshly opened ticket, with a directory of two accounts: acc_1001 registered to
/// `REGISTERED`, acc_2002 to someone else.
fn any_opening() -> impl Strategy<Value = (Kind, &'static str, Vec<AccountView>, Option<usize>, bool)> {
    let kind = prop_oneof![
        4 => Just(Kind::IpLockout),
        1 => Just(Kind::ForgotUsername),
        2 => Just(Kind::AccountTerminated),
        1 => Just(Kind::LoginHelp),
        1 => Just(Kind::General),
    ];
    (
        kind,
        prop_oneof![3 => Just(REGISTERED), 1 => Just(STRANGER)],
        (
            any_status(),
            any_status(),
            prop::bool::weighted(0.1),
            0i64..5_000,
            prop::bool::weighted(0.8),
        ),
        prop::option::weighted(0.9, 0..2usize),
        any::<bool>(),
    )
        .prop_map(
            |(kind, requester, (first, second, parent_banned, balance, ip_access), named, attempts)| {
                let mut mine = sample_account(first);
                mine.balance_due_cents = balance;
                let mut theirs = other_account(second);
                theirs.banned_via_parent = parent_banned;
                theirs.ip_access_enabled = ip_access;
                (kind, requester, vec![mine, theirs], named, attempts)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_sequence_of_actions_breaks_the_recovery_policy(
        (kind, requester, directory, named, attempts) in any_opening(),
        steps in prop::collection::vec(any_step(), 1..60),
    ) {
        let mut model = Model::new(kind, requester, directory);
        let opening = model.creation(named, attempts);
        check_properties(&model, &opening, false)?;
        model.apply(&opening);
        run(model, &steps)?;
    }
}

#[test]
fn the_model_reaches_a_grant_along_the_documented_path() {
    let directory = vec![
        sample_account(AccountStatus::Active),
        other_account(AccountStatus::Active),
    ];
    let model = Model::opened(Kind::IpLockout, REGISTERED, directory, Some(0), false);
    let steps = [
        Step::Act(
            ActionName::RecordAllowlistedAttempts,
            json!({"tried_from": "office VPN", "outcome": "still blocked"}),
        ),
        Step::Act(ActionName::StartOwnershipVerification, json!({})),
        Step::Act(ActionName::SendEmailChallenge, json!({})),
        Step::Confirm(true),
        Step::Act(
            ActionName::RecordVerificationCheck,
            json!({"method": "billing_details", "passed": true}),
        ),
        Step::Act(ActionName::GrantIpAccess, json!({"ip": "203.0.113.9"})),
    ];
    let end = run(model, &steps).unwrap();
    assert_eq!(end.state, State::Resolved);
    assert!(end.directory[0].allowlist.contains(&"203.0.113.9".to_string()));
}

#[test]
fn the_model_keeps_a_banned_accounts_ticket_refused_whatever_follows() {
    let directory = vec![
        sample_account(AccountStatus::Active),
        other_account(AccountStatus::Active),
    ];
    let model = Model::opened(Kind::IpLockout, REGISTERED, directory, Some(0), true);
    let mut steps = vec![Step::Directory {
        index: 0,
        change: Change::Status(AccountStatus::Banned),
        notify: true,
    }];
    steps.extend(ActionName::ALL.map(|name| Step::Act(name, valid_params(name))));
    steps.extend([
        Step::Confirm(true),
        Step::Directory {
            index: 0,
            change: Change::Status(AccountStatus::Active),
            notify: true,
        },
    ]);
    let end = run(model, &steps).unwrap();
    assert_eq!(end.state, State::Refused);
    assert!(banned_per_spec(&end.directory[0]));
}

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
