//! Fetching a hosted mailbox by IMAP (docs/reference.md#imap): the settings, read and checked
//! like every other, and the connection (TLS with the same trust roots as SMTP). The fetch
//! round itself, which hands each message to ingestion, is `services::imap_fetch`.

pub mod connect;

use crate::cli::GlobalOptions;
use std::fmt;
use std::net::IpAddr;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `imaps://`: TLS from the first byte (port 993).
    Tls,
    /// `imap://`: STARTTLS (port 143); plain text only when the server does not offer it and
    /// the host is a loopback address.
    StartTls,
}

/// The password, never printed: given inline, or a file read when the mailbox is opened (so a
/// command that never fetches, the mailgate say, does not need to be able to read it).
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    Inline(String),
    File(std::path::PathBuf),
}

impl Password {
    /// The password itself: the variable, or the first line of the file.
    pub fn read(&self) -> Result<String, String> {
        let password = match self {
            Password::Inline(p) => p.clone(),
            Password::File(file) => std::fs::read_to_string(file)
                .map_err(|e| format!("RECOVERYDESK_IMAP_PASSWORD_FILE {}: {e}", file.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        };
        if password.is_empty() {
            return Err("the IMAP password (RECOVERYDESK_IMAP_PASSWORD or its file) is empty".into());
        }
        Ok(password)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Password::Inline(_) => f.write_str("Password(…)"),
            Password::File(path) => write!(f, "Password(file {})", path.display()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapSettings {
    pub security: Security,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub folder: String,
    pub password: Password,
    pub poll_seconds: u64,
    pub done_folder: String,
    /// A PEM file of extra CA certificates (SMTP_CA_FILE: one private CA for both).
    pub ca_file: Option<std::path::PathBuf>,
}

impl ImapSettings {
    /// `None` when no mailbox is configured; an error naming the setting when one is wrong.
    pub fn from_options(o: &GlobalOptions) -> Result<Option<ImapSettings>, String> {
        let Some(url) = o.imap_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let parsed = parse_url(url)?;
        let password = match (&o.imap_password, &o.imap_password_file) {
            (Some(p), _) if !p.is_empty() => Password::Inline(p.clone()),
            (_, Some(file)) if !file.as_os_str().is_empty() => Password::File(file.clone()),
            _ => {
                return Err(
                    "RECOVERYDESK_IMAP_URL is set but neither RECOVERYDESK_IMAP_PASSWORD nor RECOVERYDESK_IMAP_PASSWORD_FILE is"
                        .into(),
                );
            }
        };
        let poll_seconds: u64 = crate::cli::number("RECOVERYDESK_IMAP_POLL_SECONDS", &o.imap_poll_seconds)?;
        if poll_seconds == 0 {
            return Err("RECOVERYDESK_IMAP_POLL_SECONDS must be at least 1".into());
        }
        let done_folder = o.imap_done_folder.trim().to_string();
        if done_folder.is_empty() || done_folder.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
            return Err(format!(
                "RECOVERYDESK_IMAP_DONE_FOLDER must be a folder name, not {done_folder:?}"
            ));
        }
        if done_folder == parsed.folder {
            return Err("RECOVERYDESK_IMAP_DONE_FOLDER must differ from the folder fetched".into());
        }
        Ok(Some(ImapSettings {
            password,
            poll_seconds,
            done_folder,
            ca_file: o.smtp_ca_file.clone().filter(|p| !p.as_os_str().is_empty()),
            ..parsed
        }))
    }

    /// `user@host:port/FOLDER`, the lease's name and what logs and `/healthz` show (no password).
    pub fn mailbox_name(&self) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, self.folder)
    }

    /// Plain text is allowed only to this machine.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// `imaps://user@host[:port]/FOLDER` or `imap://…`; the user may be percent-encoded
/// (`support%40example.com@imap.example.com`), and so may the folder. Default folder INBOX.
pub fn parse_url(url: &str) -> Result<ImapSettings, String> {
    let bad = |why: &str| format!("RECOVERYDESK_IMAP_URL {why}: expected imaps://user@host[:port]/FOLDER");
    let (security, rest, default_port) = if let Some(rest) = url.strip_prefix("imaps://") {
        (Security::Tls, rest, 993)
    } else if let Some(rest) = url.strip_prefix("imap://") {
        (Security::StartTls, rest, 143)
    } else {
        return Err(bad("has another scheme"));
    };
    let (authority, folder) = rest.split_once('/').unwrap_or((rest, ""));
    let (user, hostport) = authority.rsplit_once('@').ok_or_else(|| bad("names no user"))?;
    if user.contains(':') {
        return Err(bad(
            "carries a password: put it in RECOVERYDESK_IMAP_PASSWORD or RECOVERYDESK_IMAP_PASSWORD_FILE",
        ));
    }
    let user = percent_decode(user).ok_or_else(|| bad("has a user that is not UTF-8"))?;
    let port_of = |p: &str| p.parse::<u16>().map_err(|_| bad("has a port that is not a number"));
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("has an unclosed [address]"))?;
        match after.strip_prefix(':') {
            Some(p) => (host.to_string(), port_of(p)?),
            None if after.is_empty() => (host.to_string(), default_port),
            None => return Err(bad("has junk after the [address]")),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((host, p)) => (host.to_string(), port_of(p)?),
            None => (hostport.to_string(), default_port),
        }
    };
    if user.is_empty() || host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(bad("is incomplete"));
    }
    let folder = percent_decode(folder.trim_end_matches('/')).ok_or_else(|| bad("has a folder that is not UTF-8"))?;
    let folder = if folder.is_empty() { "INBOX".to_string() } else { folder };
    if folder.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
        return Err(bad("has a folder name with quotes or control characters"));
    }
    Ok(ImapSettings {
        security,
        host,
        port,
        user,
        folder,
        password: Password::Inline(String::new()),
        poll_seconds: 60,
        done_folder: "recoverydesk-processed".into(),
        ca_file: None,
    })
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = parse_url("imaps://support%40example.com@imap.gmail.com/INBOX").unwrap();
        assert_eq!(
            (s.security, s.user.as_str(), s.host.as_str(), s.port, s.folder.as_str()),
            (Security::Tls, "support@example.com", "imap.gmail.com", 993, "INBOX")
        );
        let s = parse_url("imap://desk@127.0.0.1:10143/Support%20Mail").unwrap();
        assert_eq!(
            (s.security, s.port, s.folder.as_str()),
            (Security::StartTls, 10143, "Support Mail")
        );
        assert!(s.is_loopback());
        let s = parse_url("imaps://u@[::1]:1993").unwrap();
        assert_eq!((s.host.as_str(), s.port, s.folder.as_str()), ("::1", 1993, "INBOX"));
        for bad in [
            "pop3://u@h/INBOX",
            "imaps://h/INBOX",
            "imaps://u:secret@h/INBOX",
            "imaps://u@h:port/INBOX",
            "imaps://@h",
            "imaps://u@/x",
            "imaps://u@h/a\"b",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        // The error never repeats the URL (it could carry a password).
        let e = parse_url("imaps://u:hunter2@h/INBOX").unwrap_err();
        assert!(!e.contains("hunter2"));
    }
}
