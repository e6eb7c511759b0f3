//! The types of a ticket's events (docs/reference.md#events): the append-only log's words.

use super::vocabulary::vocabulary;

vocabulary! {
    /// What an event of a ticket's log records.
    pub enum EventType {
        Created = "created",
        MessageIn = "message_in",
        MessageOut = "message_out",
        Note = "note",
        Transition = "transition",
        Check = "check",
        DirectoryChange = "directory_change",
        Redaction = "redaction",
        AutoReplySuppressed = "auto_reply_suppressed",
        Duplicate = "duplicate",
        ForgedSender = "forged_sender",
        Refusal = "refusal",
        Diagnosis = "diagnosis",
        ApprovalRequested = "approval_requested",
        ApprovalApproved = "approval_approved",
        ApprovalRejected = "approval_rejected",
        ApprovalExpired = "approval_expired",
        MailReleased = "mail_released",
    }
}

impl EventType {
    /// The events that carry a stored message (its body, subject and attachments).
    pub fn carries_message(self) -> bool {
        matches!(self, EventType::MessageIn | EventType::MessageOut | EventType::Note)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_reads_back_as_itself_and_nothing_else_does() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!(t.as_str()));
        }
        for word in ["", "Created", "created ", "flagged", "message"] {
            assert_eq!(EventType::parse(word), None, "{word:?}");
        }
    }
}
