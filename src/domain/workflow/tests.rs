//! Exhaustive tests of the engine: every (kind, state, action), and properties over sequences.

use super::*;
use crate::domain::account::{AccountStatus, sample_account};

fn view<'a>(kind: Kind, state: State, account: Option<&'a AccountView>) -> TicketView<'a> {
    TicketView {
        kind,
        state,
        requester: "ops@acme.test",
        account,
        checks: &[],
        attempts_on_record: true,
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
