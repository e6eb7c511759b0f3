//! Where mail goes: an SMTP server (`SMTP_URL`), or `.eml` files a newcomer can open.

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;

pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

/// How a delivery failed, which decides whether it is tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Connection refused, timeouts, 4xx: try again later.
    Temporary(String),
    /// 5xx, or a message that can never be sent: give up and say why.
    Permanent(String),
}

impl Transport {
    pub fn from_settings(settings: &crate::config::Settings) -> Result<Transport, String> {
        match &settings.smtp_url {
            Some(url) => {
                let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| format!("SMTP_URL is not a usable SMTP URL: {e}"))?;
                let builder = super::tls::with_trusted_roots(builder, url, settings.smtp_ca_file.as_deref())?;
                Ok(Transport::Smtp(
                    builder.timeout(Some(std::time::Duration::from_secs(30))).build(),
                ))
            }
            None => Ok(Transport::Files(settings.mail_dir.clone())),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp(_) => "SMTP".into(),
            Transport::Files(dir) => format!(".eml files in {}", dir.display()),
        }
    }

    /// Delivers one message. `file_stem` names the `.eml` file for the file transport.
    pub async fn send(&self, message: &Message, file_stem: &str) -> Result<(), SendError> {
        match self {
            Transport::Smtp(smtp) => smtp.send(message.clone()).await.map(|_| ()).map_err(|e| {
                let text = e.to_string();
                if e.is_permanent() {
                    SendError::Permanent(text)
                } else {
                    SendError::Temporary(text)
                }
            }),
            Transport::Files(dir) => write_eml(dir, file_stem, &message.formatted()).await,
        }
    }
}

/// Written under a temporary name and renamed, so a reader never sees half a message.
async fn write_eml(dir: &std::path::Path, stem: &str, bytes: &[u8]) -> Result<(), SendError> {
    let dir = dir.to_path_buf();
    let stem = stem.to_string();
    let bytes = bytes.to_vec();
    tokio::task::spawn_blocking(move || {
        // Customers' mail: no access for other users, whatever the umask.
        crate::files::create_private_dir_all(&dir)?;
        let tmp = dir.join(format!(".{stem}.eml.tmp"));
        // Left over from an attempt cut short: it is rewritten whole.
        let _ = std::fs::remove_file(&tmp);
        crate::files::write_private_file(&tmp, &bytes)?;
        std::fs::rename(&tmp, dir.join(format!("{stem}.eml")))
    })
    .await
    .map_err(|e| SendError::Temporary(e.to_string()))?
    .map_err(|e| SendError::Temporary(format!("writing the .eml file: {e}")))
}

/// The parts of an outgoing message, as the outbox row has them.
pub struct Outgoing<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub message_id: &'a str,
    pub in_reply_to: Option<&'a str>,
    pub references: Option<&'a str>,
    pub auto_submitted: Option<&'a str>,
}

/// A file that goes out with a message (an agent's reply's attachment, scanned when stored).
pub struct OutgoingFile {
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// Builds the RFC 5322 message. A recipient that is not an address can never be delivered.
pub fn build_message(m: &Outgoing) -> Result<Message, SendError> {
    build_message_with_files(m, &[])
}

/// The same with files: `multipart/mixed`, the text first, then each file as an attachment
/// (its stored type when it is a valid MIME type of a single part, else
/// `application/octet-stream`: see [`attachment_type`]).
pub fn build_message_with_files(m: &Outgoing, files: &[OutgoingFile]) -> Result<Message, SendError> {
    let from: Mailbox = format!("Account recovery support <{}>", m.from)
        .parse()
        .map_err(|e| SendError::Permanent(format!("support address {:?}: {e}", m.from)))?;
    let to: Mailbox =
        m.to.parse()
            .map_err(|e| SendError::Permanent(format!("recipient {:?}: {e}", m.to)))?;
    let mut builder = Message::builder()
        .from(from.clone())
        .reply_to(from)
        .to(to)
        .subject(m.subject)
        .message_id(Some(m.message_id.to_string()));
    if files.is_empty() {
        builder = builder.header(ContentType::TEXT_PLAIN);
    }
    if let Some(parent) = m.in_reply_to {
        builder = builder.in_reply_to(parent.to_string());
    }
    if let Some(references) = m.references {
        builder = builder.references(references.to_string());
    }
    if let Some(kind) = m.auto_submitted {
        // RFC 3834: tells other robots not to answer, and Exchange to hold its out-of-office.
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                kind.to_string(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
                "All".into(),
            ));
    }
    let built = if files.is_empty() {
        builder.body(m.body.to_string())
    } else {
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(m.body.to_string()));
        for f in files {
            let kind = attachment_type(&f.content_type);
            parts = parts.singlepart(Attachment::new(f.filename.clone()).body(f.data.clone(), kind));
        }
        builder.multipart(parts)
    };
    built.map_err(|e| SendError::Permanent(format!("building the message: {e}")))
}

/// The type a file goes out as. A `multipart/*` or `message/*` type would tell the recipient's
/// mail program to look for parts inside the file, between boundaries the file's uploader
/// chose: a declared `boundary=zz` also matches every line of our own boundary when that
/// happens to begin with `zz`, and the rest of the message is read as the file's parts (an
/// attachment lost, or one made up). Such a file is sent as the bytes it is.
fn attachment_type(declared: &str) -> ContentType {
    let octets = || ContentType::parse("application/octet-stream").expect("a valid MIME type");
    let essence = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence.starts_with("multipart/") || essence.starts_with("message/") {
        return octets();
    }
    ContentType::parse(declared).unwrap_or_else(|_| octets())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MimeHeaders;

    fn type_of_the_file(content_type: &str) -> String {
        let outgoing = Outgoing {
            from: "support@desk.test",
            to: "kim@example.test",
            subject: "Files",
            body: "See the file.",
            message_id: "<m@desk.test>",
            in_reply_to: None,
            references: None,
            auto_submitted: None,
        };
        let file = OutgoingFile {
            filename: "f".into(),
            content_type: content_type.into(),
            data: b"x".to_vec(),
        };
        let raw = build_message_with_files(&outgoing, &[file]).expect("built").formatted();
        let parsed = mail_parser::MessageParser::default().parse(&raw).expect("parseable");
        let attachment = parsed.attachment(0).expect("the file");
        let kind = attachment.content_type().expect("a type");
        format!("{}/{}", kind.ctype(), kind.subtype().unwrap_or_default())
    }

    #[test]
    fn a_file_declared_as_parts_goes_out_as_bytes() {
        for declared in [
            "multipart/mixed; boundary=zz",
            "Multipart/Alternative",
            "message/rfc822",
            "message/partial",
        ] {
            assert_eq!(type_of_the_file(declared), "application/octet-stream", "{declared}");
        }
        assert_eq!(type_of_the_file("text/plain; charset=utf-8"), "text/plain");
        assert_eq!(type_of_the_file("image/png"), "image/png");
        assert_eq!(type_of_the_file("not a type"), "application/octet-stream");
    }
}
