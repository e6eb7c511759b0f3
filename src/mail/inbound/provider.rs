//! Provider webhooks (docs/reference.md#provider-webhooks): SendGrid Inbound Parse posts (raw and
//! parsed mode) and Mailgun's `body-mime` posts, turned into one MIME message for the one
//! ingestion function, with what the provider said about the sender. A parsed post is rebuilt
//! into MIME (headers, text, HTML, attachments with their names and types, in the charsets the
//! post names) and the copy says it was rebuilt. Pure code: no web framework here.

use super::form::{self, Field};
use crate::domain::sender_auth::ProviderAuth;
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde_json::Value;

/// A message ready for ingestion.
#[derive(Debug, Clone)]
pub struct ProviderPost {
    pub raw: Vec<u8>,
    pub auth: ProviderAuth,
}

/// The header a rebuilt message carries, naming where it came from.
pub const REBUILT_HEADER: &str = "X-Recoverydesk-Rebuilt";

const BOUNDARY: &str = "=_rd_rebuilt_mixed";
const ALTERNATIVE: &str = "=_rd_rebuilt_alternative";

/// A SendGrid post: the `email` field (raw mode) or the parsed fields, rebuilt.
pub fn sendgrid(fields: &[Field]) -> Result<ProviderPost, String> {
    let auth = ProviderAuth {
        provider: "sendgrid",
        spf: form::text(fields, "SPF").filter(|s| !s.trim().is_empty()),
        dkim: form::text(fields, "dkim").filter(|s| !s.trim().is_empty()),
    };
    if let Some(email) = form::get(fields, "email") {
        return Ok(ProviderPost {
            raw: email.data.clone(),
            auth,
        });
    }
    if form::get(fields, "headers").is_none() && form::get(fields, "from").is_none() {
        return Err("neither an `email` field (raw mode) nor `headers`/`from` (parsed mode)".into());
    }
    Ok(ProviderPost {
        raw: rebuild_parsed(fields),
        auth,
    })
}

/// A Mailgun post: `body-mime` with a valid signature of `timestamp` and `token`.
pub fn mailgun(fields: &[Field], signing_key: &str) -> Result<ProviderPost, MailgunError> {
    let get = |name: &str| form::text(fields, name).unwrap_or_default();
    if !mailgun_signature_ok(signing_key, &get("timestamp"), &get("token"), &get("signature")) {
        return Err(MailgunError::BadSignature);
    }
    let mime = form::get(fields, "body-mime").ok_or(MailgunError::NoMessage)?;
    Ok(ProviderPost {
        raw: mime.data.clone(),
        auth: ProviderAuth {
            provider: "mailgun",
            spf: form::text(fields, "X-Mailgun-Spf").filter(|s| !s.trim().is_empty()),
            dkim: form::text(fields, "X-Mailgun-Dkim-Check-Result").filter(|s| !s.trim().is_empty()),
        },
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailgunError {
    BadSignature,
    NoMessage,
}

/// HMAC-SHA256 of `timestamp` followed by `token`, keyed with the signing key, in hex;
/// compared in constant time.
pub fn mailgun_signature_ok(key: &str, timestamp: &str, token: &str, signature: &str) -> bool {
    if key.is_empty() || timestamp.is_empty() || token.is_empty() {
        return false;
    }
    let Ok(expected) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()) else {
        return false;
    };
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    mac.verify_slice(&expected).is_ok()
}

/// Headers the rebuilt message writes itself.
const STRUCTURAL: [&str; 4] = [
    "content-type",
    "content-transfer-encoding",
    "mime-version",
    "x-recoverydesk-rebuilt",
];

fn rebuild_parsed(fields: &[Field]) -> Vec<u8> {
    let charsets: Value = form::text(fields, "charsets")
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or(Value::Null);
    let charset_of = |field: &str| {
        charsets[field]
            .as_str()
            .filter(|c| {
                !c.is_empty() && c.len() <= 40 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            })
            .unwrap_or("utf-8")
            .to_string()
    };
    let mut out: Vec<u8> = vec![];
    match form::get(fields, "headers") {
        Some(headers) => out.extend(original_headers(&headers.data)),
        None => {
            for (name, field) in [("From", "from"), ("To", "to"), ("Subject", "subject")] {
                if let Some(f) = form::get(fields, field) {
                    let value = encoded_word(&f.data, &charset_of(field));
                    out.extend(format!("{name}: {value}\r\n").into_bytes());
                }
            }
        }
    }
    out.extend(format!("{REBUILT_HEADER}: from a SendGrid Inbound Parse post (parsed mode)\r\n").into_bytes());
    out.extend(b"MIME-Version: 1.0\r\n");
    out.extend(format!("Content-Type: multipart/mixed; boundary=\"{BOUNDARY}\"\r\n\r\n").into_bytes());
    out.extend(
        format!("--{BOUNDARY}\r\nContent-Type: multipart/alternative; boundary=\"{ALTERNATIVE}\"\r\n\r\n").into_bytes(),
    );
    let text = form::get(fields, "text").map(|f| f.data.as_slice()).unwrap_or_default();
    out.extend(part(
        &format!("text/plain; charset=\"{}\"", charset_of("text")),
        None,
        text,
        ALTERNATIVE,
    ));
    if let Some(html) = form::get(fields, "html") {
        out.extend(part(
            &format!("text/html; charset=\"{}\"", charset_of("html")),
            None,
            &html.data,
            ALTERNATIVE,
        ));
    }
    out.extend(format!("--{ALTERNATIVE}--\r\n").into_bytes());
    let info: Value = form::text(fields, "attachment-info")
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or(Value::Null);
    for file in fields
        .iter()
        .filter(|f| f.name.starts_with("attachment") && f.name[10..].parse::<u32>().is_ok())
    {
        let meta = &info[file.name.as_str()];
        let filename = meta["filename"]
            .as_str()
            .or(meta["name"].as_str())
            .map(str::to_string)
            .or_else(|| file.filename.clone())
            .unwrap_or_else(|| file.name.clone());
        let declared = meta["type"]
            .as_str()
            .map(str::to_string)
            .or_else(|| file.content_type.clone());
        let content_type = declared
            .map(|t| t.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
            .filter(|t| is_media_type(t))
            .unwrap_or_else(|| "application/octet-stream".into());
        out.extend(part(&content_type, Some(&filename), &file.data, BOUNDARY));
    }
    out.extend(format!("--{BOUNDARY}--\r\n").into_bytes());
    out
}

/// The original header block, unfolded lines kept as they were, without the structural ones.
fn original_headers(block: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    let mut keep = false;
    for line in block.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if keep {
                out.extend(line);
                out.extend(b"\r\n");
            }
            continue;
        }
        let name = line.split(|b| *b == b':').next().unwrap_or_default();
        let name = String::from_utf8_lossy(name).trim().to_ascii_lowercase();
        keep = line.contains(&b':') && !name.is_empty() && !STRUCTURAL.contains(&name.as_str());
        if keep {
            out.extend(line);
            out.extend(b"\r\n");
        }
    }
    out
}

fn part(content_type: &str, filename: Option<&str>, data: &[u8], boundary: &str) -> Vec<u8> {
    let mut out = format!("--{boundary}\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: base64\r\n");
    if let Some(name) = filename {
        out.push_str(&format!(
            "Content-Disposition: attachment; {}\r\n",
            filename_parameter(name)
        ));
    }
    out.push_str("\r\n");
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// `filename="a.pdf"`, or RFC 2231 `filename*=UTF-8''…` for anything but plain ASCII.
fn filename_parameter(name: &str) -> String {
    let name: String = name.chars().filter(|c| !c.is_control()).take(255).collect();
    if name.bytes().all(|b| b.is_ascii_graphic() || b == b' ') && !name.contains(['"', '\\']) {
        return format!("filename=\"{name}\"");
    }
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("filename*=UTF-8''{encoded}")
}

/// A header value in its charset as one RFC 2047 word (plain when it is printable ASCII).
fn encoded_word(value: &[u8], charset: &str) -> String {
    let value: Vec<u8> = value.iter().copied().filter(|b| *b != b'\r' && *b != b'\n').collect();
    if value.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return String::from_utf8_lossy(&value).into_owned();
    }
    format!(
        "=?{charset}?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(&value)
    )
}

fn is_media_type(t: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    t.len() <= 100 && t.split_once('/').is_some_and(|(a, b)| ok(a) && ok(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, data: &[u8]) -> Field {
        Field {
            name: name.into(),
            filename: None,
            content_type: None,
            data: data.to_vec(),
        }
    }

    #[test]
    fn a_parsed_post_is_rebuilt_with_its_charsets_and_files() {
        let mut file = field("attachment1", b"%PDF-1.4 \x00\x01");
        file.filename = Some("ignored.bin".into());
        let fields = vec![
            field(
                "headers",
                b"From: Ren\xc3\xa9 <rene@owner.example>\r\nTo: support@desk.example\r\nSubject: locked out\r\nContent-Type: multipart/alternative; boundary=x\r\nMIME-Version: 1.0\r\n",
            ),
            field("text", b"Gr\xfc\xdfe, I am locked out"),
            field("html", b"<p>Gr\xfc\xdfe</p>"),
            field("charsets", br#"{"text":"iso-8859-1","html":"iso-8859-1","subject":"UTF-8"}"#),
            field("attachment-info", br#"{"attachment1":{"filename":"r\u00e9sum\u00e9.pdf","type":"application/pdf"}}"#),
            field("SPF", b"pass"),
            field("dkim", b"{@owner.example : pass}"),
            file,
        ];
        let post = sendgrid(&fields).unwrap();
        assert_eq!(post.auth.spf.as_deref(), Some("pass"));
        let parsed = mail_parser::MessageParser::default().parse(&post.raw).unwrap();
        assert_eq!(parsed.body_text(0).as_deref(), Some("Grüße, I am locked out"));
        assert_eq!(parsed.body_html(0).as_deref(), Some("<p>Grüße</p>"));
        let attachment = parsed.attachment(0).unwrap();
        use mail_parser::MimeHeaders;
        assert_eq!(attachment.attachment_name(), Some("résumé.pdf"));
        assert_eq!(attachment.contents(), b"%PDF-1.4 \x00\x01");
        let text = String::from_utf8_lossy(&post.raw);
        assert!(text.contains("X-Recoverydesk-Rebuilt: from a SendGrid"));
        assert_eq!(
            text.matches("MIME-Version").count(),
            1,
            "the original structure headers go"
        );
    }

    #[test]
    fn mailgun_signatures() {
        let key = "key-0123456789";
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(b"1700000000abcdef");
        let good = hex::encode(mac.finalize().into_bytes());
        assert!(mailgun_signature_ok(key, "1700000000", "abcdef", &good));
        assert!(!mailgun_signature_ok(key, "1700000001", "abcdef", &good));
        assert!(!mailgun_signature_ok("other", "1700000000", "abcdef", &good));
        assert!(!mailgun_signature_ok(key, "1700000000", "abcdef", "zz"));
        assert!(!mailgun_signature_ok("", "", "", ""));
    }
}
