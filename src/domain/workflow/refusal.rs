//! Why the engine says no: the reference's error codes and their HTTP status.

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    UnknownAction,
    AccountBanned,
    InvalidTransition,
    AllowlistedAttemptsMissing,
    AccountNotLinked,
    IpAccessNotEnabled,
    EmailChallengeByLinkOnly,
    OwnershipNotVerified,
    BalanceOutstanding,
    AccountNotTerminated,
    InvalidIp,
    IpNotPublic,
    InvalidInput,
    /// An admin-only action (`reopen`) asked for by someone else: 403.
    Forbidden,
    /// `reopen` of a ticket the policy refused.
    RefusedByPolicy,
    /// A canned answer about the account, for a requester who is not its registered address.
    AccountDependentAnswer,
    /// Four eyes: the requester tried to approve their own request.
    SameAgent,
    /// Four eyes: the request was approved, rejected, cancelled or expired already.
    ApprovalNotPending,
    /// Four eyes: the request is older than 24 hours.
    ApprovalExpired,
    /// Four eyes: the same action waits for approval on this ticket.
    ApprovalPending,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownAction => "unknown_action",
            ErrorCode::AccountBanned => "account_banned",
            ErrorCode::InvalidTransition => "invalid_transition",
            ErrorCode::AllowlistedAttemptsMissing => "allowlisted_attempts_missing",
            ErrorCode::AccountNotLinked => "account_not_linked",
            ErrorCode::IpAccessNotEnabled => "ip_access_not_enabled",
            ErrorCode::EmailChallengeByLinkOnly => "email_challenge_by_link_only",
            ErrorCode::OwnershipNotVerified => "ownership_not_verified",
            ErrorCode::BalanceOutstanding => "balance_outstanding",
            ErrorCode::AccountNotTerminated => "account_not_terminated",
            ErrorCode::InvalidIp => "invalid_ip",
            ErrorCode::IpNotPublic => "ip_not_public",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RefusedByPolicy => "refused_by_policy",
            ErrorCode::AccountDependentAnswer => "account_dependent_answer",
            ErrorCode::SameAgent => "same_agent",
            ErrorCode::ApprovalNotPending => "approval_not_pending",
            ErrorCode::ApprovalExpired => "approval_expired",
            ErrorCode::ApprovalPending => "approval_pending",
        }
    }

    /// Words for people: the console shows these first, the code small beside them.
    pub fn label(self) -> &'static str {
        match self {
            ErrorCode::UnknownAction => "There is no such action",
            ErrorCode::AccountBanned => "The account is banned",
            ErrorCode::InvalidTransition => "Not at this step of the ticket",
            ErrorCode::AllowlistedAttemptsMissing => "The customer has not reported trying their allowlisted IPs",
            ErrorCode::AccountNotLinked => "No account is linked to the ticket",
            ErrorCode::IpAccessNotEnabled => "IP access management is off on the account",
            ErrorCode::EmailChallengeByLinkOnly => {
                "Only the customer's click on the mailed link passes the email challenge"
            }
            ErrorCode::OwnershipNotVerified => "Ownership of the account is not verified yet",
            ErrorCode::BalanceOutstanding => "A balance is still due",
            ErrorCode::AccountNotTerminated => "The account is not terminated",
            ErrorCode::InvalidIp => "That is not an IP address or network",
            ErrorCode::IpNotPublic => "That address is not a public one",
            ErrorCode::InvalidInput => "Something in the form needs correcting",
            ErrorCode::Forbidden => "Only an admin may do this",
            ErrorCode::RefusedByPolicy => "The policy refused this ticket for good",
            ErrorCode::AccountDependentAnswer => "That answer is only for the account's registered address",
            ErrorCode::SameAgent => "Another agent must approve a request you made",
            ErrorCode::ApprovalNotPending => "That request is no longer waiting for approval",
            ErrorCode::ApprovalExpired => "That request expired after 24 hours",
            ErrorCode::ApprovalPending => "The same change already waits for a second agent's approval",
        }
    }

    /// The label of a code given as text (as errors carry it), or the text itself.
    pub fn label_of(code: &str) -> String {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == code)
            .map(|c| c.label().to_string())
            .unwrap_or_else(|| code.replace('_', " "))
    }

    pub const ALL: [ErrorCode; 20] = [
        ErrorCode::UnknownAction,
        ErrorCode::AccountBanned,
        ErrorCode::InvalidTransition,
        ErrorCode::AllowlistedAttemptsMissing,
        ErrorCode::AccountNotLinked,
        ErrorCode::IpAccessNotEnabled,
        ErrorCode::EmailChallengeByLinkOnly,
        ErrorCode::OwnershipNotVerified,
        ErrorCode::BalanceOutstanding,
        ErrorCode::AccountNotTerminated,
        ErrorCode::InvalidIp,
        ErrorCode::IpNotPublic,
        ErrorCode::InvalidInput,
        ErrorCode::Forbidden,
        ErrorCode::RefusedByPolicy,
        ErrorCode::AccountDependentAnswer,
        ErrorCode::SameAgent,
        ErrorCode::ApprovalNotPending,
        ErrorCode::ApprovalExpired,
        ErrorCode::ApprovalPending,
    ];

    /// 404 for an unknown action, 422 for bad parameters, 409 for every policy refusal.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::UnknownAction => 404,
            ErrorCode::InvalidIp | ErrorCode::IpNotPublic | ErrorCode::InvalidInput => 422,
            ErrorCode::Forbidden => 403,
            _ => 409,
        }
    }

    /// Refusals of the policy are logged on the ticket; bad parameters and unknown names are
    /// the caller's typing, not a decision worth an audit entry.
    pub fn is_policy_refusal(self) -> bool {
        self.http_status() == 409
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused action: the code callers branch on, and a sentence people read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Refusal::new(ErrorCode::InvalidInput, message)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Refusal {}
