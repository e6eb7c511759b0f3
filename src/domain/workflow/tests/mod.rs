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

mod creation_rules;
mod decide_account_terminated;
mod decide_common;
mod decide_forgot_username;
mod decide_ip_lockout;
mod decide_login_help;
mod model;
mod refusal_order;
mod reopen;
mod spec_table;

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
// Fixtures shared by the files below
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
        | MailTemplate::IpGranted { .. }
        | MailTemplate::AccountReactivated
        | MailTemplate::VerificationFailed
        | MailTemplate::DiagnosisGuidance { .. } => true,
        MailTemplate::Acknowledgement
        | MailTemplate::StatusUpdate
        | MailTemplate::TryAllowlistedIps
        | MailTemplate::RequestRefused { .. }
        | MailTemplate::DiagnosisChecklist { .. } => false,
    }
}

fn owing(cents: i64) -> Option<AccountView> {
    Some(account_with(|a| {
        a.status = AccountStatus::Terminated;
        a.balance_due_cents = cents;
    }))
}

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
