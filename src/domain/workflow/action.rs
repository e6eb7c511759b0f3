//! The actions agents (and integrations) can ask for, by the reference name, with their parameters.

use super::closing::RefuseReason;
use super::refusal::{ErrorCode, Refusal};
use crate::domain::diagnosis::{AuthChannel, parse_failed_at};
use crate::domain::email_address::EmailAddress;
use crate::domain::ip_grant::IpGrant;
use crate::domain::ticket::Kind;
use crate::domain::verification::Method;
use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionName {
    Assign,
    Reclassify,
    LinkAccount,
    Resolve,
    Refuse,
    SendUsername,
    RecordAllowlistedAttempts,
    StartOwnershipVerification,
    SendEmailChallenge,
    RecordVerificationCheck,
    GrantIpAccess,
    RecordPayment,
    ReactivateAccount,
    DiagnoseAuth,
    Reopen,
}

impl ActionName {
    pub const ALL: [ActionName; 15] = [
        ActionName::Assign,
        ActionName::Reclassify,
        ActionName::LinkAccount,
        ActionName::Resolve,
        ActionName::Refuse,
        ActionName::SendUsername,
        ActionName::RecordAllowlistedAttempts,
        ActionName::StartOwnershipVerification,
        ActionName::SendEmailChallenge,
        ActionName::RecordVerificationCheck,
        ActionName::GrantIpAccess,
        ActionName::RecordPayment,
        ActionName::ReactivateAccount,
        ActionName::DiagnoseAuth,
        ActionName::Reopen,
    ];

    pub const COMMON: [ActionName; 5] = [
        ActionName::Assign,
        ActionName::Reclassify,
        ActionName::LinkAccount,
        ActionName::Resolve,
        ActionName::Refuse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionName::Assign => "assign",
            ActionName::Reclassify => "reclassify",
            ActionName::LinkAccount => "link_account",
            ActionName::Resolve => "resolve",
            ActionName::Refuse => "refuse",
            ActionName::SendUsername => "send_username",
            ActionName::RecordAllowlistedAttempts => "record_allowlisted_attempts",
            ActionName::StartOwnershipVerification => "start_ownership_verification",
            ActionName::SendEmailChallenge => "send_email_challenge",
            ActionName::RecordVerificationCheck => "record_verification_check",
            ActionName::GrantIpAccess => "grant_ip_access",
            ActionName::RecordPayment => "record_payment",
            ActionName::ReactivateAccount => "reactivate_account",
            ActionName::DiagnoseAuth => "diagnose_auth",
            ActionName::Reopen => "reopen",
        }
    }

    /// An unknown name is refused with 404 `unknown_action`.
    pub fn parse(name: &str) -> Result<ActionName, Refusal> {
        ActionName::ALL
            .into_iter()
            .find(|a| a.as_str() == name)
            .ok_or_else(|| Refusal::new(ErrorCode::UnknownAction, format!("there is no action called {name:?}")))
    }

    /// The kind a kind-specific (recovery) action belongs to; `None` for the common actions.
    pub fn kind(self) -> Option<Kind> {
        match self {
            ActionName::SendUsername => Some(Kind::ForgotUsername),
            ActionName::RecordAllowlistedAttempts
            | ActionName::StartOwnershipVerification
            | ActionName::SendEmailChallenge
            | ActionName::RecordVerificationCheck
            | ActionName::GrantIpAccess => Some(Kind::IpLockout),
            ActionName::RecordPayment | ActionName::ReactivateAccount => Some(Kind::AccountTerminated),
            ActionName::DiagnoseAuth => Some(Kind::LoginHelp),
            _ => None,
        }
    }

    /// Whether the action has parameters at all (even optional ones). Only one that has none
    /// may be asked for with an empty body; every other needs a JSON object, `{}` included,
    /// so that a body cut short is never read as "no parameters".
    pub fn takes_parameters(self) -> bool {
        !matches!(
            self,
            ActionName::StartOwnershipVerification | ActionName::SendEmailChallenge | ActionName::ReactivateAccount
        )
    }

    /// Recovery actions are refused on a banned account whatever the state or kind.
    pub fn is_recovery(self) -> bool {
        self.kind().is_some()
    }

    /// The actions listed for a ticket of this kind: the common ones, then its own.
    pub fn for_kind(kind: Kind) -> Vec<ActionName> {
        ActionName::ALL
            .into_iter()
            .filter(|a| a.kind().is_none() || a.kind() == Some(kind))
            .collect()
    }

    pub fn label(self) -> &'static str {
        match self {
            ActionName::Assign => "Assign",
            ActionName::Reclassify => "Reclassify",
            ActionName::LinkAccount => "Link an account",
            ActionName::Resolve => "Resolve",
            ActionName::Refuse => "Refuse",
            ActionName::SendUsername => "Send the username to the registered address",
            ActionName::RecordAllowlistedAttempts => "Record allowlisted attempts",
            ActionName::StartOwnershipVerification => "Start ownership verification",
            ActionName::SendEmailChallenge => "Send an email challenge",
            ActionName::RecordVerificationCheck => "Record a verification check",
            ActionName::GrantIpAccess => "Grant IP access",
            ActionName::RecordPayment => "Record a payment",
            ActionName::ReactivateAccount => "Reactivate the account",
            ActionName::DiagnoseAuth => "Diagnose the failed login from the authentication logs",
            ActionName::Reopen => "Reopen the refused ticket",
        }
    }
}

/// An action with its parameters, parsed at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Assign {
        agent_email: EmailAddress,
    },
    Reclassify {
        kind: Kind,
    },
    LinkAccount {
        account_id: String,
    },
    Resolve {
        note: String,
    },
    /// The reason from the list, and the agent's own words (required).
    Refuse {
        reason: RefuseReason,
        text: String,
    },
    SendUsername {
        account_id: String,
    },
    RecordAllowlistedAttempts {
        tried_from: String,
        outcome: String,
    },
    StartOwnershipVerification,
    SendEmailChallenge,
    RecordVerificationCheck {
        method: Method,
        passed: bool,
        evidence: String,
    },
    GrantIpAccess {
        ip: IpGrant,
    },
    RecordPayment {
        amount_cents: i64,
        reference: String,
    },
    ReactivateAccount,
    /// Read the authentication logs for this username around this time (docs/reference.md#kinds-and-states).
    DiagnoseAuth {
        /// Byte-exact, as typed: usernames can be anything, and stray spaces are a finding.
        username: String,
        /// None: the latest failure of the last 24 hours.
        failed_at: Option<DateTime<Utc>>,
        channel: AuthChannel,
        /// Mail the customer what was found (an agent's run mails only when asked).
        notify: bool,
    },
    /// An admin reopens a ticket an agent refused; the reason is required.
    Reopen {
        reason: String,
    },
}

impl Action {
    pub fn name(&self) -> ActionName {
        match self {
            Action::Assign { .. } => ActionName::Assign,
            Action::Reclassify { .. } => ActionName::Reclassify,
            Action::LinkAccount { .. } => ActionName::LinkAccount,
            Action::Resolve { .. } => ActionName::Resolve,
            Action::Refuse { .. } => ActionName::Refuse,
            Action::SendUsername { .. } => ActionName::SendUsername,
            Action::RecordAllowlistedAttempts { .. } => ActionName::RecordAllowlistedAttempts,
            Action::StartOwnershipVerification => ActionName::StartOwnershipVerification,
            Action::SendEmailChallenge => ActionName::SendEmailChallenge,
            Action::RecordVerificationCheck { .. } => ActionName::RecordVerificationCheck,
            Action::GrantIpAccess { .. } => ActionName::GrantIpAccess,
            Action::RecordPayment { .. } => ActionName::RecordPayment,
            Action::ReactivateAccount => ActionName::ReactivateAccount,
            Action::DiagnoseAuth { .. } => ActionName::DiagnoseAuth,
            Action::Reopen { .. } => ActionName::Reopen,
        }
    }

    /// Parameters arrive as a JSON object (API) or form fields turned into one (console).
    /// Bad parameters give 422 refusals (`invalid_input`, `invalid_ip`, `ip_not_public`).
    pub fn parse(name: ActionName, params: &Value) -> Result<Action, Refusal> {
        let p = Params(params);
        Ok(match name {
            ActionName::Assign => Action::Assign {
                agent_email: EmailAddress::parse(&p.required_text("agent_email")?)
                    .map_err(|e| Refusal::invalid_input(format!("agent_email: {e}")))?,
            },
            ActionName::Reclassify => {
                let kind = p.required_text("kind")?;
                Action::Reclassify {
                    kind: Kind::parse(&kind).ok_or_else(|| {
                        Refusal::invalid_input(format!(
                            "kind: {kind:?} is not one of forgot_username, ip_lockout, account_terminated, login_help, general"
                        ))
                    })?,
                }
            }
            ActionName::LinkAccount => Action::LinkAccount {
                account_id: p.required_text("account_id")?,
            },
            ActionName::Resolve => Action::Resolve {
                note: p.optional_text("note")?,
            },
            ActionName::Refuse => {
                // `reason` is the agent's words (required); `category` one of the list. A
                // reason that is itself a code of the list is that category.
                let text = p.required_text("reason")?;
                let reason = match p.optional_text("category")?.as_str() {
                    "" => RefuseReason::parse(&text).unwrap_or(RefuseReason::Other),
                    code => RefuseReason::parse(code).ok_or_else(|| {
                        let known: Vec<&str> = RefuseReason::ALL.iter().map(|r| r.as_str()).collect();
                        Refusal::invalid_input(format!("category: {code:?} is not one of {}", known.join(", ")))
                    })?,
                };
                Action::Refuse { reason, text }
            }
            ActionName::Reopen => Action::Reopen {
                reason: p.required_text("reason")?,
            },
            ActionName::SendUsername => Action::SendUsername {
                account_id: p.required_text("account_id")?,
            },
            ActionName::RecordAllowlistedAttempts => Action::RecordAllowlistedAttempts {
                tried_from: p.required_text("tried_from")?,
                outcome: p.optional_text("outcome")?,
            },
            ActionName::StartOwnershipVerification => Action::StartOwnershipVerification,
            ActionName::SendEmailChallenge => Action::SendEmailChallenge,
            ActionName::RecordVerificationCheck => {
                let method = p.required_text("method")?;
                Action::RecordVerificationCheck {
                    method: Method::parse(&method).ok_or_else(|| {
                        Refusal::invalid_input(format!(
                            "method: {method:?} is not one of email_challenge, billing_details, api_key_fingerprint, account_details, phone_callback"
                        ))
                    })?,
                    passed: p.required_bool("passed")?,
                    evidence: p.optional_text("evidence")?,
                }
            }
            ActionName::GrantIpAccess => {
                let ip = p.required_text("ip")?;
                Action::GrantIpAccess {
                    ip: IpGrant::parse(&ip).map_err(|e| {
                        let code = if e.code() == "ip_not_public" {
                            ErrorCode::IpNotPublic
                        } else {
                            ErrorCode::InvalidIp
                        };
                        Refusal::new(code, e.to_string())
                    })?,
                }
            }
            ActionName::RecordPayment => {
                let amount_cents = p.required_int("amount_cents")?;
                if amount_cents <= 0 {
                    return Err(Refusal::invalid_input(
                        "amount_cents: a payment must be a positive number of cents",
                    ));
                }
                Action::RecordPayment {
                    amount_cents,
                    reference: p.optional_text("reference")?,
                }
            }
            ActionName::ReactivateAccount => Action::ReactivateAccount,
            ActionName::DiagnoseAuth => {
                let failed_at = match p.optional_text("failed_at")?.as_str() {
                    "" => None,
                    text => Some(parse_failed_at(text).ok_or_else(|| {
                        Refusal::invalid_input(format!(
                            "failed_at: {text:?} is not a time such as 2026-11-23T09:14:00Z (or 2026-11-23 09:14 UTC)"
                        ))
                    })?),
                };
                let channel = match p.optional_text("channel")?.as_str() {
                    "" => AuthChannel::Smtp,
                    text => AuthChannel::parse(text)
                        .ok_or_else(|| Refusal::invalid_input(format!("channel: {text:?} is not smtp or api")))?,
                };
                Action::DiagnoseAuth {
                    username: p.exact_text("username")?,
                    failed_at,
                    channel,
                    notify: p.optional_bool("notify")?.unwrap_or(false),
                }
            }
        })
    }
}

/// Typed reads of a JSON parameter object, each failure naming the field.
struct Params<'a>(&'a Value);

impl Params<'_> {
    fn field(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn optional_text(&self, name: &str) -> Result<String, Refusal> {
        match self.field(name) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.trim().to_string()),
            Some(_) => Err(Refusal::invalid_input(format!("{name}: must be a string"))),
        }
    }

    fn required_text(&self, name: &str) -> Result<String, Refusal> {
        let text = self.optional_text(name)?;
        if text.is_empty() {
            return Err(Refusal::invalid_input(format!("{name}: is required")));
        }
        Ok(text)
    }

    /// Text kept exactly as sent (no trimming), required and non-empty.
    fn exact_text(&self, name: &str) -> Result<String, Refusal> {
        match self.field(name) {
            Some(Value::String(s)) if !s.is_empty() => {
                if s.len() > crate::domain::diagnosis::event::MAX_USERNAME_BYTES || s.contains('\0') {
                    return Err(Refusal::invalid_input(format!(
                        "{name}: at most 255 bytes, without NUL characters"
                    )));
                }
                Ok(s.clone())
            }
            None | Some(Value::String(_)) => Err(Refusal::invalid_input(format!("{name}: is required"))),
            Some(_) => Err(Refusal::invalid_input(format!("{name}: must be a string"))),
        }
    }

    fn optional_bool(&self, name: &str) -> Result<Option<bool>, Refusal> {
        match self.field(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(_) => self.required_bool(name).map(Some),
        }
    }

    fn required_bool(&self, name: &str) -> Result<bool, Refusal> {
        match self.field(name) {
            Some(Value::Bool(b)) => Ok(*b),
            // Console forms send text.
            Some(Value::String(s)) if s == "true" || s == "yes" || s == "on" => Ok(true),
            Some(Value::String(s)) if s == "false" || s == "no" || s == "off" => Ok(false),
            None => Err(Refusal::invalid_input(format!("{name}: is required (true or false)"))),
            Some(_) => Err(Refusal::invalid_input(format!("{name}: must be true or false"))),
        }
    }

    fn required_int(&self, name: &str) -> Result<i64, Refusal> {
        match self.field(name) {
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| Refusal::invalid_input(format!("{name}: must be a whole number"))),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map_err(|_| Refusal::invalid_input(format!("{name}: must be a whole number"))),
            None => Err(Refusal::invalid_input(format!("{name}: is required"))),
            Some(_) => Err(Refusal::invalid_input(format!("{name}: must be a whole number"))),
        }
    }
}
