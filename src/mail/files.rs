//! A message's files, once scanned (a mail's attachments, or files sent from our pages), stored
//! on its thread row: the one way they are written, for mail in and out alike.

use crate::db::{AnyConnection, inbound};
use crate::mail::inbound::scrub::ScrubbedAttachment;
use serde_json::{Value, json};

/// Stores the kept files on the message `message_ref`; returns the list of all of them for its
/// event (`filename`, `content_type`, `size`, and `id`, or `dropped` with why it was not kept).
pub fn store_files<'a>(
    conn: &mut AnyConnection,
    message_ref: i64,
    files: impl IntoIterator<Item = &'a ScrubbedAttachment>,
) -> diesel::QueryResult<Vec<Value>> {
    let mut listed = vec![];
    for a in files {
        let mut entry =
            json!({"filename": a.filename.as_str(), "content_type": a.content_type.as_str(), "size": a.size});
        match &a.data {
            Some(bytes) => {
                let id = inbound::store_attachment(conn, message_ref, &a.filename, &a.content_type, bytes)?;
                entry["id"] = json!(id);
            }
            None => entry["dropped"] = json!(a.dropped.as_deref().unwrap_or("not kept")),
        }
        listed.push(entry);
    }
    Ok(listed)
}
