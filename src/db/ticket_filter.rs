//! The narrowing the queue and a search share (kind, state, assignee, whose turn it is),
//! written once as Diesel clauses so the two lists cannot disagree on what a filter means.
//! Both callers build a [`Narrowing`] from their own filter; this module knows neither.

use super::AnyConnection;
use super::schema::tickets;
use crate::domain::ticket::{Kind, State};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

type Backend = <AnyConnection as diesel::Connection>::Backend;

/// A boxed query over the tickets, whatever it selects.
pub(super) type TicketQuery<'a, ST> = tickets::BoxedQuery<'a, Backend, ST>;

/// What a list of tickets is narrowed by. No state means every state: the queue adds its
/// "open only" itself, because it must be the partial indexes' literal predicate.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Narrowing<'f> {
    kind: Option<Kind>,
    state: Option<State>,
    /// `Some(None)`: unassigned; `Some(Some(id))`: that agent's.
    assignee: Option<Option<i64>>,
    /// `agent`, `customer` or `none` (docs/reference.md#who-acts-next).
    waiting_on: Option<&'f str>,
}

impl<'f> Narrowing<'f> {
    pub(super) fn new(
        kind: Option<Kind>,
        state: Option<State>,
        assignee: Option<Option<i64>>,
        waiting_on: Option<&'f str>,
    ) -> Narrowing<'f> {
        Narrowing {
            kind,
            state,
            assignee,
            waiting_on,
        }
    }

    /// `query` with this narrowing's clauses added.
    pub(super) fn apply<'a, ST: 'a>(&self, mut query: TicketQuery<'a, ST>) -> TicketQuery<'a, ST> {
        if let Some(kind) = self.kind {
            query = query.filter(tickets::kind.eq(kind.as_str()));
        }
        if let Some(state) = self.state {
            query = query.filter(tickets::state.eq(state.as_str()));
        }
        match self.assignee {
            Some(Some(id)) => query = query.filter(tickets::assignee_id.eq(id)),
            Some(None) => query = query.filter(tickets::assignee_id.is_null()),
            None => {}
        }
        if let Some(waiting_on) = self.waiting_on {
            // Correlated, so an index of the tickets is walked in order and each row probes its
            // activity by key until the page is full. `tickets.id IN (SELECT … WHERE waiting_on
            // = ?)` made SQLite build the whole list (most of a million ids) and sort: 110–210 ms
            // against under 0.1 ms (docs/benchmarks.md, "Release figures, 2026-12-06 (SQLite)").
            query = query.filter(
                diesel::dsl::sql::<Bool>(
                    "EXISTS (SELECT 1 FROM ticket_activity WHERE ticket_activity.ticket_id = tickets.id \
                     AND ticket_activity.waiting_on = ",
                )
                .bind::<Text, _>(waiting_on.to_string())
                .sql(")"),
            );
        }
        query
    }
}
