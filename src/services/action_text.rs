//! An action's parameters on their way to storage: free text scanned like everything else, and
//! the parameters worth keeping in the transition event (or in a four-eyes request).

use super::redaction::Scrubber;
use crate::domain::workflow::Action;
use serde_json::{Value, json};

/// Free text in action parameters is stored too, so it is scanned like everything else.
pub(crate) fn scrub_action(action: Action) -> Action {
    let mut s = Scrubber::default();
    match action {
        Action::RecordAllowlistedAttempts { tried_from, outcome } => Action::RecordAllowlistedAttempts {
            tried_from: s.scrub(&tried_from).into_string(),
            outcome: s.scrub(&outcome).into_string(),
        },
        Action::RecordVerificationCheck {
            method,
            passed,
            evidence,
        } => Action::RecordVerificationCheck {
            method,
            passed,
            evidence: s.scrub(&evidence).into_string(),
        },
        Action::Resolve { note } => Action::Resolve {
            note: s.scrub(&note).into_string(),
        },
        Action::Refuse { reason, text } => Action::Refuse {
            reason,
            text: s.scrub(&text).into_string(),
        },
        Action::Reopen { reason } => Action::Reopen {
            reason: s.scrub(&reason).into_string(),
        },
        Action::RecordPayment {
            amount_cents,
            reference,
        } => Action::RecordPayment {
            amount_cents,
            reference: s.scrub(&reference).into_string(),
        },
        Action::DiagnoseAuth {
            username,
            failed_at,
            channel,
            notify,
        } => Action::DiagnoseAuth {
            username: s.scrub(&username).into_string(),
            failed_at,
            channel,
            notify,
        },
        other => other,
    }
}

/// The parameters worth keeping in the transition event.
pub(crate) fn action_details(action: &Action) -> Value {
    match action {
        Action::Assign { agent_email } => json!({"agent_email": agent_email.as_str()}),
        Action::Reclassify { kind } => json!({"kind": kind.as_str()}),
        Action::LinkAccount { account_id } | Action::SendUsername { account_id } => json!({"account_id": account_id}),
        Action::Resolve { note } if !note.is_empty() => json!({"note": note}),
        Action::Refuse { reason, text } => json!({"reason": text, "category": reason.as_str()}),
        Action::Reopen { reason } => json!({"reason": reason}),
        Action::RecordAllowlistedAttempts { tried_from, outcome } => {
            json!({"tried_from": tried_from, "outcome": outcome})
        }
        Action::GrantIpAccess { ip } => json!({"ip": ip.as_str()}),
        Action::RecordPayment {
            amount_cents,
            reference,
        } => json!({"amount_cents": amount_cents, "reference": reference}),
        Action::DiagnoseAuth {
            username,
            failed_at,
            channel,
            notify,
        } => json!({"username": username, "failed_at": failed_at.map(crate::domain::diagnosis::rfc3339),
                    "channel": channel.as_str(), "notify": notify}),
        _ => json!({}),
    }
}
