//! Bulk assign and bulk resolve from the queue (docs/reference.md#agent-console): each ticket
//! goes through the engine on its own, in its own transaction, and gets its own result.

use super::{Actor, Desk, ServiceError};
use crate::db::AnyConnection;
use crate::domain::ticket::TicketRef;
use serde_json::json;

/// At most this many tickets in one bulk request (a queue page shows 50).
pub const MAX_BULK: usize = 100;

#[derive(Debug, Clone)]
pub enum BulkOp {
    Assign { agent_email: String },
    Resolve { note: String },
}

impl BulkOp {
    fn action(&self) -> (&'static str, serde_json::Value) {
        match self {
            BulkOp::Assign { agent_email } => ("assign", json!({"agent_email": agent_email})),
            BulkOp::Resolve { note } => ("resolve", json!({"note": note})),
        }
    }
}

/// One ticket's reference and what became of it.
pub type BulkOutcome = (String, Result<(), ServiceError>);

/// Applies `op` to each reference (duplicates once, in the order given). A reference that is
/// not one of ours is reported as such.
#[tracing::instrument(level = "debug", skip_all, fields(tickets = refs.len()))]
pub fn apply_to_many(
    conn: &mut AnyConnection,
    desk: &Desk,
    refs: &[String],
    op: &BulkOp,
    actor: &Actor,
) -> Result<Vec<BulkOutcome>, ServiceError> {
    if refs.len() > MAX_BULK {
        return Err(ServiceError::Invalid(format!(
            "ticket: at most {MAX_BULK} tickets at once"
        )));
    }
    let (name, params) = op.action();
    let mut seen = std::collections::HashSet::new();
    let mut results = vec![];
    for text in refs {
        let Some(reference) = TicketRef::parse(text, &desk.settings.ticket_prefix) else {
            results.push((text.clone(), Err(ServiceError::NotFound("ticket".into()))));
            continue;
        };
        if !seen.insert(reference.number()) {
            continue;
        }
        let outcome = super::tickets::apply_action(conn, desk, reference.number(), name, &params, actor).map(|_| ());
        // A database that went away fails the whole request; everything else is this ticket's.
        if let Err(e @ (ServiceError::Database(_) | ServiceError::Db(_))) = outcome {
            let not_found = matches!(&e, ServiceError::Database(diesel::result::Error::NotFound));
            if !not_found {
                return Err(e);
            }
            results.push((
                desk.ticket_ref(reference.number()),
                Err(ServiceError::NotFound("ticket".into())),
            ));
            continue;
        }
        results.push((desk.ticket_ref(reference.number()), outcome));
    }
    Ok(results)
}
