//! Status and challenge links, made at send time. The outbox never holds a live link: a mail
//! that carries one is stored with a marker in its body (and `status_link` / `challenge_id`
//! in its parameters), and the sender puts a fresh random token in place of the marker just
//! before delivery, keeping only the token's SHA-256. So neither a copy of the database nor
//! an outbox row read later opens a status page or passes a challenge.

use crate::db::outbox::OutboxRow;
use crate::db::{self, AnyConnection, tickets};
use crate::services::{Desk, ServiceError};
use serde_json::Value;

/// Stands for "a fresh status link of this ticket" in a stored body.
pub const STATUS_LINK: &str = "[[recoverydesk:status-link]]";
/// Stands for "the link of this row's email challenge" in a stored body.
pub const CHALLENGE_LINK: &str = "[[recoverydesk:challenge-link]]";
/// How long a challenge link works after its mail goes out.
pub const CHALLENGE_VALID_HOURS: i64 = 24;

/// The body to deliver, and the status link made for it (forgotten again if delivery fails).
pub struct Filled {
    pub body: String,
    pub status_link_id: Option<i64>,
}

/// Makes the links a row's body asks for and returns the body to send. The hashes are
/// committed before the mail leaves, so a link works as soon as it arrives.
pub fn fill(conn: &mut AnyConnection, desk: &Desk, row: &OutboxRow) -> Result<Filled, ServiceError> {
    let params: Value = serde_json::from_str(&row.params).unwrap_or(Value::Null);
    let wants_status = params["status_link"].as_bool() == Some(true) && row.body.contains(STATUS_LINK);
    let challenge_id = params["challenge_id"]
        .as_i64()
        .filter(|_| row.body.contains(CHALLENGE_LINK));
    let (Some(ticket_id), true) = (row.ticket_id, wants_status || challenge_id.is_some()) else {
        return Ok(Filled {
            body: row.body.clone(),
            status_link_id: None,
        });
    };
    let mut body = row.body.clone();
    let status_link_id = db::write_transaction(conn, |conn| -> Result<Option<i64>, ServiceError> {
        let mut status_link_id = None;
        if wants_status {
            let token = crate::crypto::random_token();
            status_link_id = Some(tickets::add_status_link(
                conn,
                ticket_id,
                &crate::crypto::sha256_hex(&token),
            )?);
            body = body.replace(STATUS_LINK, &format!("{}/t/{token}", desk.settings.base_url));
        }
        if let Some(id) = challenge_id {
            let token = crate::crypto::random_token();
            let expires = db::now() + chrono::Duration::hours(CHALLENGE_VALID_HOURS);
            let link = if tickets::arm_challenge(conn, id, &crate::crypto::sha256_hex(&token), expires)? {
                format!("{}/verify/{token}", desk.settings.base_url)
            } else {
                "(this confirmation was already answered: no link is needed)".to_string()
            };
            body = body.replace(CHALLENGE_LINK, &link);
        }
        Ok(status_link_id)
    })?;
    Ok(Filled { body, status_link_id })
}
