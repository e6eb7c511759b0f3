//! The ownership-verification policy of an IP lock-out (the IP lock-out help article; docs/reference.md#ownership-verification).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Proven only by the customer's click on the link mailed to the registered address.
    EmailChallenge,
    BillingDetails,
    ApiKeyFingerprint,
    AccountDetails,
    PhoneCallback,
}

impl Method {
    pub const ALL: [Method; 5] = [
        Method::EmailChallenge,
        Method::BillingDetails,
        Method::ApiKeyFingerprint,
        Method::AccountDetails,
        Method::PhoneCallback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::EmailChallenge => "email_challenge",
            Method::BillingDetails => "billing_details",
            Method::ApiKeyFingerprint => "api_key_fingerprint",
            Method::AccountDetails => "account_details",
            Method::PhoneCallback => "phone_callback",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Method::EmailChallenge => "Email challenge to the registered address",
            Method::BillingDetails => "Billing details",
            Method::ApiKeyFingerprint => "API key fingerprint",
            Method::AccountDetails => "Account details",
            Method::PhoneCallback => "Phone call-back",
        }
    }
}

/// One recorded check of the current verification round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckRecord {
    pub method: Method,
    pub passed: bool,
}

/// Failed checks that end a verification: the ticket is refused (`verification_failed`).
pub const MAX_FAILED_CHECKS: usize = 3;
/// Distinct passed methods needed, one of which must be the email challenge.
pub const REQUIRED_PASSED_METHODS: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Verified,
    Failed,
    InProgress {
        passed_methods: Vec<Method>,
        failed_checks: usize,
        email_challenge_passed: bool,
    },
}

/// Where a set of checks leaves the verification. Failure is judged first: three failed
/// checks end it even if enough passed (a contradictory record is a warning sign).
pub fn evaluate(checks: &[CheckRecord]) -> Progress {
    let failed_checks = checks.iter().filter(|c| !c.passed).count();
    if failed_checks >= MAX_FAILED_CHECKS {
        return Progress::Failed;
    }
    let mut passed_methods: Vec<Method> = checks.iter().filter(|c| c.passed).map(|c| c.method).collect();
    passed_methods.sort();
    passed_methods.dedup();
    let email_challenge_passed = passed_methods.contains(&Method::EmailChallenge);
    if email_challenge_passed && passed_methods.len() >= REQUIRED_PASSED_METHODS {
        return Progress::Verified;
    }
    Progress::InProgress {
        passed_methods,
        failed_checks,
        email_challenge_passed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(method: Method) -> CheckRecord {
        CheckRecord { method, passed: true }
    }
    fn fail(method: Method) -> CheckRecord {
        CheckRecord { method, passed: false }
    }

    #[test]
    fn two_methods_including_the_email_challenge_verify() {
        assert_eq!(
            evaluate(&[pass(Method::EmailChallenge), pass(Method::BillingDetails)]),
            Progress::Verified
        );
    }

    #[test]
    fn two_methods_without_the_email_challenge_do_not_verify() {
        assert!(matches!(
            evaluate(&[pass(Method::PhoneCallback), pass(Method::BillingDetails)]),
            Progress::InProgress { .. }
        ));
    }

    #[test]
    fn the_same_method_twice_counts_once() {
        assert!(matches!(
            evaluate(&[pass(Method::EmailChallenge), pass(Method::EmailChallenge)]),
            Progress::InProgress { .. }
        ));
    }

    #[test]
    fn three_failures_end_the_verification() {
        let checks = [
            fail(Method::BillingDetails),
            fail(Method::AccountDetails),
            pass(Method::EmailChallenge),
            fail(Method::PhoneCallback),
        ];
        assert_eq!(evaluate(&checks), Progress::Failed);
        assert!(matches!(
            evaluate(&checks[..3]),
            Progress::InProgress { failed_checks: 2, .. }
        ));
    }
}
