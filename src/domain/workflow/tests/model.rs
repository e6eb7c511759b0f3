//! Properties over random sequences of actions.

use super::spec_table::{banned_per_spec, states_of};
use super::*;

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
