//! Settings, read once from the command line and environment and passed down explicitly
//! (never a global), so tests can run many differently configured apps in one process.

use crate::cli::{GlobalOptions, number};
use crate::db::DatabaseUrl;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: DatabaseUrl,
    pub bind: String,
    pub base_url: String,
    pub support_address: String,
    pub admin_email: String,
    pub inbound_token: Option<String>,
    pub smtp_url: Option<String>,
    /// Extra CA certificates (PEM) for the SMTP relay.
    pub smtp_ca_file: Option<PathBuf>,
    pub mail_dir: PathBuf,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub ticket_prefix: String,
    pub max_message_bytes: u64,
    /// Most MIME parts a message may have (nested ones included) before it is quarantined.
    pub max_mime_parts: usize,
    pub auth_log_retention_days: u32,
    pub secret_key: Option<String>,
    pub form_rate_limit: u32,
    /// API requests allowed per minute per token (`RECOVERYDESK_API_RATE_LIMIT`).
    pub api_rate_limit: u32,
    /// Whether `serve` runs the outbox sender (tests drive it themselves).
    pub run_mail_sender: bool,
    /// `RECOVERYDESK_METRICS_TOKEN`: when set, `/metrics` wants it as a bearer token.
    pub metrics_token: Option<String>,
    /// The time that expiry rules read (tests move it).
    pub clock: crate::clock::Clock,
    /// Whose `Authentication-Results` header is believed (`RECOVERYDESK_AUTHSERV_ID`).
    pub authserv_id: Option<String>,
    pub mailgun_signing_key: Option<String>,
    /// The mailbox to fetch, when one is configured.
    pub imap: Option<crate::mail::imap::ImapSettings>,
    /// Where `serve` takes mail from `mailgate` (`RECOVERYDESK_SOCKET`); None: nowhere.
    pub socket: Option<PathBuf>,
    /// `RECOVERYDESK_FOUR_EYES`: grants and reactivations wait for a second agent.
    pub four_eyes: crate::domain::workflow::approval::FourEyes,
    /// `RECOVERYDESK_NOTIFY_ASSIGNEE`: customer activity mails the ticket's assignee.
    pub notify_assignee: bool,
}

impl Settings {
    pub fn from_options(o: &GlobalOptions) -> Result<Self, String> {
        let database_url = DatabaseUrl::parse(&o.database_url).map_err(|e| e.to_string())?;
        crate::telemetry::logs::LogFormat::parse(&o.log_format)?;
        if let Some(path) = o.smtp_ca_file.as_ref().filter(|p| !p.as_os_str().is_empty()) {
            crate::mail::outbound::tls::read_ca_file(path)?;
        }
        let max_message_bytes: u64 = number("RECOVERYDESK_MAX_MESSAGE_BYTES", &o.max_message_bytes)?;
        if max_message_bytes == 0 {
            return Err("RECOVERYDESK_MAX_MESSAGE_BYTES must be at least 1 byte".into());
        }
        let auth_log_retention_days: u32 = number("RECOVERYDESK_AUTH_LOG_RETENTION_DAYS", &o.auth_log_retention_days)?;
        let form_rate_limit: u32 = number("RECOVERYDESK_FORM_RATE_LIMIT", &o.form_rate_limit)?;
        check_bind(&o.bind)?;
        let smtp_url = o.smtp_url.clone().filter(|t| !t.trim().is_empty());
        if let Some(url) = &smtp_url {
            // Checked here so every command, not only the sender in `serve`, refuses it.
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
                .map_err(|e| format!("SMTP_URL is not a usable SMTP URL ({e})"))?;
        }
        let secret_key = o.secret_key.clone().filter(|k| !k.is_empty());
        if let Some(key) = &secret_key {
            crate::crypto::SecretKey::parse(key)?;
        }
        let prefix = o.ticket_prefix.trim();
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "RECOVERYDESK_TICKET_PREFIX must be letters and digits, not {prefix:?}"
            ));
        }
        crate::domain::email_address::EmailAddress::parse(&o.support_address)
            .map_err(|e| format!("RECOVERYDESK_SUPPORT_ADDRESS: {e}"))?;
        crate::domain::email_address::EmailAddress::parse(&o.admin_email)
            .map_err(|e| format!("RECOVERYDESK_ADMIN_EMAIL: {e}"))?;
        let base_url = o
            .base_url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| format!("http://{}", o.bind))
            .trim_end_matches('/')
            .to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(format!(
                "RECOVERYDESK_BASE_URL must start with http:// or https://, not {base_url:?}"
            ));
        }
        let max_mime_parts: usize = number("RECOVERYDESK_MAX_MIME_PARTS", &o.max_mime_parts)?;
        if max_mime_parts == 0 {
            return Err("RECOVERYDESK_MAX_MIME_PARTS must be at least 1 (every message has one part)".into());
        }
        let api_rate_limit: u32 = number("RECOVERYDESK_API_RATE_LIMIT", &o.api_rate_limit)?;
        if !(1..=MAX_API_RATE_LIMIT).contains(&api_rate_limit) {
            return Err(format!(
                "RECOVERYDESK_API_RATE_LIMIT must be a number of requests a minute from 1 to {MAX_API_RATE_LIMIT}, not {api_rate_limit}"
            ));
        }
        let imap = crate::mail::imap::ImapSettings::from_options(o)?;
        let socket = socket_path(o.socket.as_deref(), &database_url);
        let four_eyes = crate::domain::workflow::approval::FourEyes::parse(&o.four_eyes)
            .ok_or_else(|| format!("RECOVERYDESK_FOUR_EYES must be on or off, not {:?}", o.four_eyes))?;
        let notify_assignee = match o.notify_assignee.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" | "1" => true,
            "off" | "false" | "no" | "0" | "" => false,
            other => return Err(format!("RECOVERYDESK_NOTIFY_ASSIGNEE must be on or off, not {other:?}")),
        };
        Ok(Settings {
            notify_assignee,
            authserv_id: o
                .authserv_id
                .clone()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            mailgun_signing_key: o.mailgun_signing_key.clone().filter(|s| !s.is_empty()),
            imap,
            four_eyes,
            database_url,
            bind: o.bind.clone(),
            base_url,
            support_address: o.support_address.trim().to_string(),
            admin_email: o.admin_email.trim().to_string(),
            inbound_token: o.inbound_token.clone().filter(|t| !t.is_empty()),
            smtp_url,
            smtp_ca_file: o.smtp_ca_file.clone().filter(|p| !p.as_os_str().is_empty()),
            mail_dir: o.mail_dir.clone(),
            trusted_proxies: parse_networks(&o.trusted_proxies)?,
            ticket_prefix: prefix.to_string(),
            max_message_bytes,
            max_mime_parts,
            auth_log_retention_days,
            secret_key,
            form_rate_limit: form_rate_limit.max(1),
            api_rate_limit,
            run_mail_sender: true,
            metrics_token: o.metrics_token.clone().filter(|t| !t.trim().is_empty()),
            clock: crate::clock::Clock::default(),
            socket,
        })
    }
}

/// `RECOVERYDESK_SOCKET`: a path, `none` (no socket), or unset: beside the SQLite file
/// (its path + `.sock`), or `recoverydesk.sock` in the service's runtime directory.
fn socket_path(given: Option<&std::path::Path>, database_url: &DatabaseUrl) -> Option<PathBuf> {
    match given.filter(|p| !p.as_os_str().is_empty()) {
        Some(p) if p.as_os_str() == "none" => None,
        Some(p) => Some(p.to_path_buf()),
        None => match database_url {
            DatabaseUrl::Sqlite(path) => {
                let mut name = path.as_os_str().to_owned();
                name.push(".sock");
                Some(PathBuf::from(name))
            }
            DatabaseUrl::Postgres(_) => ["RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR"]
                .iter()
                .filter_map(std::env::var_os)
                .filter_map(|dirs| {
                    // systemd may list several directories, separated by colons.
                    let first = dirs.to_string_lossy().split(':').next().unwrap_or("").to_string();
                    (!first.is_empty()).then(|| PathBuf::from(first))
                })
                .next()
                .map(|dir| dir.join("recoverydesk.sock")),
        },
    }
}

/// `host:port` or `[v6]:port`, with a numeric port: what the listener will be given.
fn check_bind(bind: &str) -> Result<(), String> {
    let port = bind.rsplit_once(':').map(|(host, port)| (host, port.parse::<u16>()));
    match port {
        Some((host, Ok(_))) if !host.is_empty() => Ok(()),
        _ => Err(format!(
            "RECOVERYDESK_BIND must be an address and port such as 127.0.0.1:8080, not {bind:?}"
        )),
    }
}

/// Each API request writes a row that lives a minute: beyond this, the limit is no limit and
/// the table only grows.
pub const MAX_API_RATE_LIMIT: u32 = 100_000;

/// `10.0.0.1, 10.1.0.0/16` → networks; a bare address is a /32 (or /128).
fn parse_networks(list: &str) -> Result<Vec<ipnet::IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            if let Ok(addr) = s.parse::<IpAddr>() {
                return Ok(ipnet::IpNet::from(addr));
            }
            s.parse::<ipnet::IpNet>()
                .map(|network| network.trunc())
                .map_err(|e| format!("RECOVERYDESK_TRUSTED_PROXIES: {s:?} is not an address or network ({e})"))
        })
        .collect()
}
