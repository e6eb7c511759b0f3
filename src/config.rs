//! Settings, read once from the command line and environment and passed down explicitly
//! (never a global), so tests can run many differently configured apps in one process.

use crate::cli::GlobalOptions;
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
    pub mail_dir: PathBuf,
    pub trusted_proxies: Vec<ip_network::IpNetwork>,
    pub ticket_prefix: String,
    pub max_message_bytes: u64,
    /// Most MIME parts a message may have (nested ones included) before it is quarantined.
    pub max_mime_parts: usize,
    pub auth_log_retention_days: u32,
    pub secret_key: Option<String>,
    pub form_rate_limit: u32,
    /// Whether `serve` runs the outbox sender (tests drive it themselves).
    pub run_mail_sender: bool,
}

impl Settings {
    pub fn from_options(o: &GlobalOptions) -> Result<Self, String> {
        let database_url = DatabaseUrl::parse(&o.database_url).map_err(|e| e.to_string())?;
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
        if o.max_mime_parts == 0 {
            return Err("RECOVERYDESK_MAX_MIME_PARTS must be at least 1 (every message has one part)".into());
        }
        Ok(Settings {
            database_url,
            bind: o.bind.clone(),
            base_url,
            support_address: o.support_address.trim().to_string(),
            admin_email: o.admin_email.trim().to_string(),
            inbound_token: o.inbound_token.clone().filter(|t| !t.is_empty()),
            smtp_url: o.smtp_url.clone().filter(|t| !t.is_empty()),
            mail_dir: o.mail_dir.clone(),
            trusted_proxies: parse_networks(&o.trusted_proxies)?,
            ticket_prefix: prefix.to_string(),
            max_message_bytes: o.max_message_bytes,
            max_mime_parts: o.max_mime_parts,
            auth_log_retention_days: o.auth_log_retention_days,
            secret_key: o.secret_key.clone().filter(|k| !k.is_empty()),
            form_rate_limit: o.form_rate_limit.max(1),
            run_mail_sender: true,
        })
    }
}

/// `10.0.0.1, 10.1.0.0/16` → networks; a bare address is a /32 (or /128).
fn parse_networks(list: &str) -> Result<Vec<ip_network::IpNetwork>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            if let Ok(addr) = s.parse::<IpAddr>() {
                return Ok(ip_network::IpNetwork::from(addr));
            }
            ip_network::IpNetwork::from_str_truncate(s)
                .map_err(|e| format!("RECOVERYDESK_TRUSTED_PROXIES: {s:?} is not an address or network ({e})"))
        })
        .collect()
}
