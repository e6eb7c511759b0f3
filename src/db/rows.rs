//! The rows of tickets and of their events as the rest of the desk reads them: their words
//! already checked (see `words`), so no reader meets an unknown kind, state, channel or event
//! type.

use super::schema::{events, tickets};
use crate::domain::event::EventType;
use crate::domain::ticket::{Channel, Kind, State};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tickets)]
pub struct TicketRow {
    pub id: i64,
    #[diesel(deserialize_as = String)]
    pub kind: Kind,
    #[diesel(deserialize_as = String)]
    pub state: State,
    pub state_reason: Option<String>,
    pub subject: String,
    pub requester: String,
    pub requester_normalized: String,
    pub account_id: Option<String>,
    pub assignee_id: Option<i64>,
    pub status_token_hash: String,
    pub status_token_salt: String,
    #[diesel(deserialize_as = String)]
    pub channel: Channel,
    pub verification_round: i32,
    pub attempts_on_record: bool,
    pub flagged: bool,
    pub auto_generated: bool,
    pub version: i64,
    pub waiting_since: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub id: i64,
    pub ticket_id: i64,
    #[diesel(deserialize_as = String)]
    pub event_type: EventType,
    pub actor: String,
    pub data: String,
    pub message_ref: Option<i64>,
    pub created_at: NaiveDateTime,
}
