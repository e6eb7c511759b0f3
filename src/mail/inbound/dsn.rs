//! Reading why our mail came back: the `message/delivery-status` part of a bounce (RFC 3464).

/// A reason longer than this is cut (with "…"): a real one is a line or two, and a hostile
/// bounce must not fill the outbox row.
pub const MAX_REASON_CHARS: usize = 2000;

/// "Status: 5.1.1 / Diagnostic-Code: smtp; 550 5.1.1 user unknown" → a one-line reason.
/// Fields are unfolded first: MTAs fold a long `Diagnostic-Code` over several lines, and the
/// part after the fold is usually the cause ("… cannot open file: Permission denied").
pub fn bounce_reason(delivery_status: &str) -> String {
    let fields = unfolded_fields(delivery_status);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let reason = match (field("Status"), field("Diagnostic-Code")) {
        (Some(status), Some(diag)) => format!("{status}: {diag}"),
        (Some(status), None) => status.to_string(),
        (None, Some(diag)) => diag.to_string(),
        (None, None) => "returned".into(),
    };
    match reason.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}…", &reason[..cut]),
        None => reason,
    }
}

/// `Name: value` fields of every block, in order, each with its continuation lines joined by
/// one space. Linear in the input.
fn unfolded_fields(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    // Whether the last line started a field that a continuation may extend (a blank line
    // between blocks ends it).
    let mut open = false;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            open = false;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let (true, Some((_, value))) = (open, fields.last_mut()) {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(line.trim());
            }
            continue;
        }
        match line.split_once(':') {
            Some((name, value)) => {
                fields.push((name.trim().to_string(), value.trim().to_string()));
                open = true;
            }
            None => open = false,
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounce_reasons_read_the_delivery_status() {
        let status = "Final-Recipient: rfc822; gone@x.test\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\n";
        assert_eq!(bounce_reason(status), "5.1.1: smtp; 550 5.1.1 user unknown");
        assert_eq!(bounce_reason(""), "returned");
    }

    #[test]
    fn a_folded_diagnostic_code_is_kept_whole() {
        // As Postfix 3.7 writes it for a local mailbox it cannot write to.
        let status = "Reporting-MTA: dns; desk.test\r\nX-Postfix-Queue-ID: 4F1A2\r\n\r\n\
Final-Recipient: rfc822; alice@desk.test\r\nOriginal-Recipient: rfc822;alice@desk.test\r\nAction: failed\r\n\
Status: 5.2.0\r\nDiagnostic-Code: X-Postfix; cannot update mailbox /var/mail/alice for user\r\n    alice. cannot open file: Permission denied\r\n";
        assert_eq!(
            bounce_reason(status),
            "5.2.0: X-Postfix; cannot update mailbox /var/mail/alice for user alice. cannot open file: Permission denied"
        );
    }

    #[test]
    fn field_names_are_matched_in_any_case_and_continuations_stay_in_their_block() {
        let status = "REPORTING-MTA: dns; x\n folded reporting\n\n folded after a blank line\nstatus: 4.4.1\ndiagnostic-code: smtp;\n\t421 try later\n";
        assert_eq!(bounce_reason(status), "4.4.1: smtp; 421 try later");
    }

    #[test]
    fn a_huge_reason_is_cut() {
        let status = format!(
            "Status: 5.0.0\nDiagnostic-Code: smtp; {}\n",
            "é".repeat(10 * MAX_REASON_CHARS)
        );
        let reason = bounce_reason(&status);
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS + 1);
        assert!(reason.ends_with('…'));
    }
}
