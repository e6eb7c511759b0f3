//! Raw bytes → [`InboundMail`], with mail-parser (all charsets, RFC 2047 words,
//! quoted-printable and base64, nested multiparts).

use mail_parser::{MessageParser, MimeHeaders, PartType};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
    /// Text we can read (a text part, or a forwarded message): scanned for secrets.
    pub is_text: bool,
}

#[derive(Debug, Clone, Default)]
pub struct InboundMail {
    /// With angle brackets, as stored for our own mail.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub from: Option<String>,
    /// The sender's display name, decoded.
    pub from_name: Option<String>,
    pub subject: String,
    /// The text/plain body (mail-parser converts an HTML-only body to text).
    pub text: String,
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
    /// Header names lower-cased, values as received (unfolded).
    pub headers: Vec<(String, String)>,
    /// `multipart/report` and the like: the root content type.
    pub content_type: String,
    /// Message-IDs found in forwarded or returned messages (bounces quote ours).
    pub enclosed_message_ids: Vec<String>,
    /// The `message/delivery-status` part of a bounce, as text.
    pub delivery_status: Option<String>,
    /// Why the MIME structure cannot be trusted (a multipart whose boundary never appears):
    /// such a message is kept in quarantine rather than turned into a ticket with no words.
    pub broken_structure: Option<String>,
    /// Every MIME part, nested ones included (the root counts as one).
    pub part_count: usize,
    /// Everything a part carries, at every depth, decoded: header values (subjects, display
    /// names, filenames, parameters), texts, HTML and binary bodies. Only for the secret scan:
    /// nothing here is ever stored.
    pub scan_items: Vec<ScanItem>,
}

/// One decoded thing to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanItem {
    Text(String),
    Html(String),
    Bytes(Vec<u8>),
}

impl InboundMail {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
}

/// `<id>` whatever the input had around it.
pub fn bracketed(id: &str) -> String {
    format!("<{}>", id.trim().trim_start_matches('<').trim_end_matches('>'))
}

fn ids_in(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| t.contains('@'))
        .map(|t| bracketed(t.trim_matches(|c: char| c == '<' || c == '>' || c == '"')))
        .collect()
}

/// How many header blocks declare a container (`multipart/…`, `message/…`), counted on the
/// raw bytes in one pass. Each is a part, so a message with more than the part limit of them
/// is refused before mail-parser builds (and later drops, recursively) a tree that deep.
pub fn container_declarations(raw: &[u8]) -> usize {
    let mut count = 0;
    let mut in_content_type = false;
    for line in raw.split(|&b| b == b'\n') {
        let folded = line.first().is_some_and(|&b| b == b' ' || b == b'\t');
        let starts = line.len() >= 13 && line[..13].eq_ignore_ascii_case(b"content-type:");
        if starts || (folded && in_content_type) {
            in_content_type = true;
            let lower = line.to_ascii_lowercase();
            if contains(&lower, b"multipart/") || contains(&lower, b"message/") {
                count += 1;
                // One declaration counts once, however it is folded.
                in_content_type = false;
            }
        } else {
            in_content_type = false;
        }
    }
    count
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The decoded texts of a header value, for the scan.
fn header_texts(value: &mail_parser::HeaderValue, out: &mut Vec<ScanItem>) {
    use mail_parser::{Address, HeaderValue};
    let mut push = |t: &str| {
        if !t.trim().is_empty() {
            out.push(ScanItem::Text(t.to_string()));
        }
    };
    match value {
        HeaderValue::Text(t) => push(t),
        HeaderValue::TextList(list) => list.iter().for_each(|t| push(t)),
        HeaderValue::Address(Address::List(list)) => {
            for a in list {
                push(a.name.as_deref().unwrap_or(""));
                push(a.address.as_deref().unwrap_or(""));
            }
        }
        HeaderValue::Address(Address::Group(groups)) => {
            for g in groups {
                push(g.name.as_deref().unwrap_or(""));
                for a in &g.addresses {
                    push(a.name.as_deref().unwrap_or(""));
                    push(a.address.as_deref().unwrap_or(""));
                }
            }
        }
        HeaderValue::ContentType(ct) => {
            push(&ct.c_type);
            push(ct.c_subtype.as_deref().unwrap_or(""));
            for attr in ct.attributes.iter().flatten() {
                push(&format!("{}={}", attr.name, attr.value));
            }
        }
        HeaderValue::Received(_) | HeaderValue::DateTime(_) | HeaderValue::Empty => {}
    }
}

/// Counts every part and collects what to scan, walking nested messages with a stack of our
/// own (no recursion: the nesting depth is the sender's choice).
fn walk(message: &mail_parser::Message, mail: &mut InboundMail) {
    let mut stack = vec![message];
    while let Some(m) = stack.pop() {
        for part in &m.parts {
            mail.part_count += 1;
            for h in &part.headers {
                header_texts(&h.value, &mut mail.scan_items);
            }
            match &part.body {
                PartType::Text(t) => mail.scan_items.push(ScanItem::Text(t.to_string())),
                PartType::Html(t) => mail.scan_items.push(ScanItem::Html(t.to_string())),
                PartType::Binary(b) | PartType::InlineBinary(b) => mail.scan_items.push(ScanItem::Bytes(b.to_vec())),
                PartType::Message(inner) => stack.push(inner),
                PartType::Multipart(_) => {}
            }
        }
    }
}

/// Parses a message. `None` only when there is nothing a mail parser can read at all.
pub fn parse(raw: &[u8]) -> Option<InboundMail> {
    let message = MessageParser::default().parse(raw)?;
    let list = |value: &mail_parser::HeaderValue| -> Vec<String> {
        match value {
            mail_parser::HeaderValue::Text(t) => vec![bracketed(t)],
            mail_parser::HeaderValue::TextList(list) => list.iter().map(|t| bracketed(t)).collect(),
            _ => vec![],
        }
    };
    let headers = message
        .headers_raw()
        .map(|(name, value)| {
            let unfolded: String = value
                .split(['\r', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            (name.to_ascii_lowercase(), unfolded)
        })
        .collect();
    let mut mail = InboundMail {
        message_id: message.message_id().map(bracketed),
        in_reply_to: list(message.in_reply_to()),
        references: list(message.references()),
        from: message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(|a| a.trim().to_string()),
        from_name: message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.name())
            .map(str::to_string),
        subject: message.subject().unwrap_or("").trim().to_string(),
        text: message.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        html: if message.html_body_count() > 0 && message.html_part(0).is_some_and(|p| p.is_text_html()) {
            message.body_html(0).map(|h| h.into_owned())
        } else {
            None
        },
        headers,
        content_type: message
            .root_part()
            .content_type()
            .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase())
            .unwrap_or_else(|| "text/plain".into()),
        ..InboundMail::default()
    };
    walk(&message, &mut mail);
    if mail.content_type.starts_with("multipart/") && !message.root_part().is_multipart() {
        mail.broken_structure = Some(format!(
            "{} declares a boundary that never appears: no readable body",
            mail.content_type
        ));
    }
    // Further text parts (a multipart/mixed with several) join the text.
    for extra in message.text_bodies().skip(1) {
        if let Some(text) = extra.text_contents() {
            mail.text.push_str("\n\n");
            mail.text.push_str(text);
        }
    }
    for part in &message.parts {
        let ctype = part
            .content_type()
            .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase())
            .unwrap_or_default();
        match ctype.as_str() {
            "message/delivery-status" | "message/global-delivery-status" => {
                mail.delivery_status = Some(String::from_utf8_lossy(part.contents()).into_owned());
            }
            "text/rfc822-headers" | "message/global-headers" => {
                let text = String::from_utf8_lossy(part.contents()).into_owned();
                for line in text.lines() {
                    if let Some(value) = line
                        .strip_prefix("Message-ID:")
                        .or_else(|| line.strip_prefix("Message-Id:"))
                    {
                        mail.enclosed_message_ids.extend(ids_in(value));
                    }
                }
            }
            _ => {}
        }
    }
    for part in message.attachments() {
        let content_type = part
            .content_type()
            .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase())
            .unwrap_or_else(|| "application/octet-stream".into());
        if content_type == "message/delivery-status" || content_type == "text/rfc822-headers" {
            continue;
        }
        match &part.body {
            PartType::Message(inner) => {
                mail.enclosed_message_ids.extend(inner.message_id().map(bracketed));
                let inner_text = inner.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
                mail.text.push_str(&format!(
                    "\n\n---------- Enclosed message ----------\nFrom: {}\nSubject: {}\n\n{}",
                    inner
                        .from()
                        .and_then(|a| a.first())
                        .and_then(|a| a.address())
                        .unwrap_or(""),
                    inner.subject().unwrap_or(""),
                    inner_text
                ));
                mail.attachments.push(Attachment {
                    filename: part
                        .attachment_name()
                        .map(str::to_string)
                        .unwrap_or_else(|| "enclosed-message.eml".into()),
                    content_type: "message/rfc822".into(),
                    data: inner.raw_message().to_vec(),
                    is_text: true,
                });
            }
            _ => mail.attachments.push(Attachment {
                filename: part
                    .attachment_name()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("attachment-{}", mail.attachments.len() + 1)),
                is_text: content_type.starts_with("text/"),
                content_type,
                data: part.contents().to_vec(),
            }),
        }
    }
    Some(mail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_message_parses_with_its_threading_headers() {
        let raw = b"From: Ann <ann@x.test>\r\nTo: support@desk.test\r\nSubject: =?UTF-8?Q?Locked_out_=E2=9C=93?=\r\nMessage-ID: <abc@x.test>\r\nIn-Reply-To: <rd.1.2@desk.test>\r\nReferences: <a@x.test> <rd.1.2@desk.test>\r\n\r\nHello\r\n";
        let mail = parse(raw).unwrap();
        assert_eq!(mail.from.as_deref(), Some("ann@x.test"));
        assert_eq!(mail.subject, "Locked out ✓");
        assert_eq!(mail.message_id.as_deref(), Some("<abc@x.test>"));
        assert_eq!(mail.in_reply_to, vec!["<rd.1.2@desk.test>"]);
        assert_eq!(mail.references, vec!["<a@x.test>", "<rd.1.2@desk.test>"]);
        assert_eq!(mail.text.trim(), "Hello");
        assert_eq!(mail.header("to"), Some("support@desk.test"));
    }

    #[test]
    fn even_garbage_parses_to_something() {
        assert!(parse(b"").is_none() || parse(b"").is_some_and(|m| m.from.is_none()));
        let mail = parse(b"\xff\xfe not a mail at all").unwrap_or_default();
        assert!(mail.from.is_none());
    }
}
