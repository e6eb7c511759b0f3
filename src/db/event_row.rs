//! A ticket's event as stored: its own module because the ticket writer and the audit chain
//! both read it, and neither should depend on the other for it.

use super::schema::events;
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub id: i64,
    pub ticket_id: i64,
    pub event_type: String,
    pub actor: String,
    pub data: String,
    pub message_ref: Option<i64>,
    pub created_at: NaiveDateTime,
}
