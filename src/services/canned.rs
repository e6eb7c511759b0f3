//! Canned answers: admins manage them; an agent's reply with one goes through the engine's
//! check (`domain::workflow::canned`) and then is an ordinary mailed reply.

use super::loaded::Loaded;
use super::{Actor, Desk, ServiceError};
use crate::db::canned::{self as rows, CannedRow};
use crate::db::tickets::TicketRow;
use crate::db::{self, AnyConnection};
use crate::domain::workflow::canned::{CannedAnswer, Fill, fill};
use crate::domain::workflow::{ErrorCode, Refusal};

fn admin_only(actor: &Actor) -> Result<(), ServiceError> {
    if actor.is_admin() {
        Ok(())
    } else {
        Err(ServiceError::Refused(Refusal::new(
            ErrorCode::Forbidden,
            "only admins manage canned answers",
        )))
    }
}

#[tracing::instrument(level = "debug", skip_all)]
pub fn list(conn: &mut AnyConnection) -> Result<Vec<CannedRow>, ServiceError> {
    Ok(rows::all(conn)?)
}

/// Scrubbed like every text that is stored.
#[tracing::instrument(level = "debug", skip_all, fields(account_dependent = account_dependent))]
pub fn create(
    conn: &mut AnyConnection,
    actor: &Actor,
    title: &str,
    body: &str,
    account_dependent: bool,
) -> Result<i64, ServiceError> {
    admin_only(actor)?;
    let answer = CannedAnswer::parse(title, body, account_dependent).map_err(ServiceError::Refused)?;
    let mut scrub = super::redaction::Scrubber::default();
    let title = scrub.scrub(&answer.title);
    let body = scrub.scrub(&answer.body);
    Ok(rows::insert(
        conn,
        title.as_str(),
        body.as_str(),
        answer.account_dependent,
    )?)
}

#[tracing::instrument(level = "debug", skip_all, fields(canned_id = id))]
pub fn delete(conn: &mut AnyConnection, actor: &Actor, id: i64) -> Result<bool, ServiceError> {
    admin_only(actor)?;
    Ok(rows::delete(conn, id)?)
}

/// Replies to the requester with a canned answer, its placeholders filled from the ticket; an
/// account-dependent one is refused unless the requester is the registered address.
#[tracing::instrument(level = "debug", skip_all, fields(ticket_id = ticket_id, canned_id = canned_id))]
pub fn reply_with(
    conn: &mut AnyConnection,
    desk: &Desk,
    ticket_id: i64,
    canned_id: i64,
    actor: &Actor,
) -> Result<TicketRow, ServiceError> {
    let row = rows::find(conn, canned_id)?.ok_or_else(|| ServiceError::NotFound("canned answer".into()))?;
    let answer = CannedAnswer {
        title: row.title,
        body: row.body,
        account_dependent: row.account_dependent,
    };
    let text = db::write_transaction(conn, |conn| {
        let loaded = Loaded::load(conn, ticket_id)?;
        let ticket_ref = desk.ticket_ref(ticket_id);
        fill(
            &answer,
            &loaded.view(),
            Fill {
                ticket_ref: &ticket_ref,
                subject: &loaded.row.subject,
            },
        )
        .map_err(ServiceError::Refused)
    })?;
    super::tickets::add_reply(conn, desk, ticket_id, &text, false, actor)
}
