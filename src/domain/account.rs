//! The desk's view of a directory account (docs/reference.md#account-directory).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    /// Signed up but never confirmed: per the articles the account was never created.
    PendingConfirmation,
    /// Terminated by billing for an unpaid balance.
    Terminated,
    /// Permanently cancelled. Nothing in the desk ever changes this.
    Banned,
}

impl AccountStatus {
    pub const ALL: [AccountStatus; 4] = [
        AccountStatus::Active,
        AccountStatus::PendingConfirmation,
        AccountStatus::Terminated,
        AccountStatus::Banned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::PendingConfirmation => "pending_confirmation",
            AccountStatus::Terminated => "terminated",
            AccountStatus::Banned => "banned",
        }
    }

    pub fn parse(s: &str) -> Option<AccountStatus> {
        AccountStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Words for people (the console shows the code small beside them).
    pub fn label(self) -> &'static str {
        match self {
            AccountStatus::Active => "Active",
            AccountStatus::PendingConfirmation => "Never confirmed",
            AccountStatus::Terminated => "Terminated for non-payment",
            AccountStatus::Banned => "Banned",
        }
    }
}

/// A login username. Usernames can be anything (no syntax policy), so it is kept byte-exact:
/// never trimmed, never case-folded. Only emptiness is refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(input: &str) -> Result<Self, String> {
        if input.is_empty() {
            return Err("username must not be empty".into());
        }
        if input.len() > 255 {
            return Err("username is longer than 255 bytes".into());
        }
        Ok(Username(input.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Everything the workflow engine needs to know about an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountView {
    pub id: String,
    pub username: String,
    pub email: String,
    pub status: AccountStatus,
    pub parent_id: Option<String>,
    /// Set once a parent (or an ancestor) was banned; it sticks even if a later import moves
    /// the account to another parent (docs/reference.md#account-directory).
    pub banned_via_parent: bool,
    pub ip_access_enabled: bool,
    pub allowlist: Vec<String>,
    pub balance_due_cents: i64,
    pub dedicated_ips: Vec<String>,
}

impl AccountView {
    /// A sub-user of a banned parent is banned, whatever its own record says.
    pub fn effective_status(&self) -> AccountStatus {
        if self.banned_via_parent {
            AccountStatus::Banned
        } else {
            self.status
        }
    }

    pub fn is_banned(&self) -> bool {
        self.effective_status() == AccountStatus::Banned
    }

    /// Whether `email` is this account's registered address.
    pub fn is_registered_email(&self, email: &str) -> bool {
        super::email_address::normalize(&self.email) == super::email_address::normalize(email)
    }
}

#[cfg(test)]
pub(crate) fn sample_account(status: AccountStatus) -> AccountView {
    AccountView {
        id: "acc_1001".into(),
        username: "acme-mailer".into(),
        email: "ops@acme.test".into(),
        status,
        parent_id: None,
        banned_via_parent: false,
        ip_access_enabled: true,
        allowlist: vec!["203.0.113.7".into()],
        balance_due_cents: 0,
        dedicated_ips: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sub_user_of_a_banned_parent_is_banned() {
        let mut sub = sample_account(AccountStatus::Active);
        assert!(!sub.is_banned());
        sub.banned_via_parent = true;
        assert_eq!(sub.effective_status(), AccountStatus::Banned);
    }

    #[test]
    fn usernames_are_kept_byte_exact() {
        assert_eq!(Username::parse(" a b ").unwrap().as_str(), " a b ");
        assert_eq!(Username::parse("Ünïcode").unwrap().as_str(), "Ünïcode");
        assert!(Username::parse("").is_err());
    }

    #[test]
    fn registered_email_matches_case_insensitively() {
        let a = sample_account(AccountStatus::Active);
        assert!(a.is_registered_email(" OPS@acme.test"));
        assert!(!a.is_registered_email("other@acme.test"));
    }
}
