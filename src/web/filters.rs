//! The queue's filters as the console (`GET /agent`) and the API (`GET /api/v1/tickets`) read
//! them from a query string: one reading of each, so both lists filter alike. An empty value
//! is no filter. A value nothing is named is the caller's to judge: the API refuses it (422
//! with these words), the console shows the list unfiltered.

use crate::domain::ticket::{Kind, State, TicketRef};
use crate::domain::workflow::WaitingOn;

pub fn kind(text: &str) -> Result<Option<Kind>, String> {
    named(text, Kind::parse, |k| format!("kind: unknown kind {k:?}"))
}

pub fn state(text: &str) -> Result<Option<State>, String> {
    named(text, State::parse, |s| format!("state: unknown state {s:?}"))
}

pub fn waiting_on(text: &str) -> Result<Option<WaitingOn>, String> {
    named(text, WaitingOn::parse, |w| {
        format!("waiting_on: {w:?} is not agent, customer or none")
    })
}

/// The ticket a search names by its reference (`RD-12`, or the number alone): that ticket is
/// found whatever else the words match.
pub fn ticket_named(q: &str, prefix: &str) -> Option<i64> {
    TicketRef::parse(q, prefix).map(|r| r.number())
}

fn named<T>(text: &str, parse: fn(&str) -> Option<T>, unknown: fn(&str) -> String) -> Result<Option<T>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    parse(text).map(Some).ok_or_else(|| unknown(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_no_filter_a_name_is_its_value_and_anything_else_is_named_in_the_refusal() {
        assert_eq!(kind(""), Ok(None));
        assert_eq!(kind("ip_lockout"), Ok(Some(Kind::IpLockout)));
        assert_eq!(kind("IP_LOCKOUT"), Err("kind: unknown kind \"IP_LOCKOUT\"".into()));
        assert_eq!(state("resolved"), Ok(Some(State::Resolved)));
        assert_eq!(state(" resolved"), Err("state: unknown state \" resolved\"".into()));
        assert_eq!(waiting_on("customer"), Ok(Some(WaitingOn::Customer)));
        assert!(waiting_on("them").unwrap_err().contains("agent, customer or none"));
    }
}
