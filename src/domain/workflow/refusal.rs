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
            ErrorCode::SameAgent => "same_agent",
            ErrorCode::ApprovalNotPending => "approval_not_pending",
            ErrorCode::ApprovalExpired => "approval_expired",
            ErrorCode::ApprovalPending => "approval_pending",
        }
    }

    /// 404 for an unknown action, 422 for bad parameters, 409 for every policy refusal.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::UnknownAction => 404,
            ErrorCode::InvalidIp | ErrorCode::IpNotPublic | ErrorCode::InvalidInput => 422,
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
