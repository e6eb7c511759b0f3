//! Quoted history: kept whole, but folded for display so an agent reads what is new.

/// Where the quoted history of a reply starts (a byte offset into `text`), if it has one:
/// "On … wrote:", Outlook's "-----Original Message-----" or "From: … Sent: …" block, a
/// "________________" separator, or a run of `>` lines.
pub fn quoted_history_start(text: &str) -> Option<usize> {
    let mut offset = 0;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        let lower = trimmed.to_lowercase();
        let wrote = (lower.starts_with("on ") || lower.starts_with("le ") || lower.starts_with("am "))
            && (lower.ends_with("wrote:") || lower.ends_with("a écrit :") || lower.ends_with("schrieb:"));
        // "On Mon, 23 Nov 2026 at 10:02, Support <s@x>" can wrap before "wrote:".
        let wrote_wrapped = (lower.starts_with("on ") && !lower.ends_with(':'))
            && lines
                .get(i + 1)
                .is_some_and(|next| next.trim().to_lowercase().ends_with("wrote:"));
        let outlook_original = lower.contains("-----original message-----");
        let outlook_block = lower.starts_with("from:")
            && lines
                .iter()
                .skip(i + 1)
                .take(4)
                .any(|l| l.trim().to_lowercase().starts_with("sent:"));
        let separator = trimmed.len() >= 10 && trimmed.chars().all(|c| c == '_');
        let quote_run = trimmed.starts_with('>')
            && lines
                .iter()
                .skip(i)
                .take(2)
                .all(|l| l.trim_start().starts_with('>') || l.trim().is_empty());
        if wrote || wrote_wrapped || outlook_original || outlook_block || separator || quote_run {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

/// The new part and the folded history (empty when there is none).
pub fn fold(text: &str) -> (&str, &str) {
    match quoted_history_start(text) {
        Some(at) if at > 0 => (text[..at].trim_end(), &text[at..]),
        _ => (text, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_apple_and_outlook_histories_fold() {
        let gmail = "Thanks, that worked.\n\nOn Mon, 23 Nov 2026 at 10:02, Account recovery support <support@desk.test> wrote:\n> Hello,\n> We received\n";
        assert_eq!(fold(gmail).0, "Thanks, that worked.");
        assert!(fold(gmail).1.starts_with("On Mon"));
        let apple = "Still blocked.\n\nOn 23 Nov 2026, at 10:02, Support <support@desk.test> wrote:\n\n> Hello\n";
        assert_eq!(fold(apple).0, "Still blocked.");
        let outlook = "I tried from the office.\n\n________________________________\nFrom: Support <support@desk.test>\nSent: Monday, November 23, 2026 10:02\nTo: me\n";
        assert_eq!(fold(outlook).0, "I tried from the office.");
        let outlook2 = "Yes.\n\nFrom: Support <support@desk.test>\nSent: Monday\nSubject: x\n\nold text";
        assert_eq!(fold(outlook2).0, "Yes.");
    }

    #[test]
    fn mail_without_history_is_whole() {
        let text = "I am locked out.\nFrom: my desk\nThanks";
        assert_eq!(fold(text), (text, ""));
        // A single quoted line inside a message is a citation, not the history.
        let cite = "You said:\n> try again\nI did.\n";
        assert_eq!(fold(cite).1, "");
    }
}
