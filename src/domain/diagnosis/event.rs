//! One authentication event of the provider's SMTP relay or API gateway (docs/reference.md#kinds-and-states), parsed
//! from an import line at the edge. A line that carries a password, key or secret field is
//! refused whole, and the reason names the field, never its value.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Map, Value};
use std::net::IpAddr;

/// Where the attempt was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuthChannel {
    /// The SMTP relay (`535 Authentication failed`).
    Smtp,
    /// The API gateway (`bad username/password`; the username is the `api_user`).
    Api,
}

impl AuthChannel {
    pub const ALL: [AuthChannel; 2] = [AuthChannel::Smtp, AuthChannel::Api];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthChannel::Smtp => "smtp",
            AuthChannel::Api => "api",
        }
    }

    pub fn parse(text: &str) -> Option<AuthChannel> {
        AuthChannel::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// "SMTP user" / "API user", as the articles and the mails say it.
    pub fn user_label(self) -> &'static str {
        match self {
            AuthChannel::Smtp => "SMTP user",
            AuthChannel::Api => "API user",
        }
    }
}

/// What the relay or gateway answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuthResult {
    Ok,
    UnknownUser,
    UserDisabled,
    BadPassword,
    AccountSuspended,
    IpNotAuthorized,
    MechanismNotSupported,
    TlsRequired,
}

impl AuthResult {
    pub const ALL: [AuthResult; 8] = [
        AuthResult::Ok,
        AuthResult::UnknownUser,
        AuthResult::UserDisabled,
        AuthResult::BadPassword,
        AuthResult::AccountSuspended,
        AuthResult::IpNotAuthorized,
        AuthResult::MechanismNotSupported,
        AuthResult::TlsRequired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthResult::Ok => "ok",
            AuthResult::UnknownUser => "unknown_user",
            AuthResult::UserDisabled => "user_disabled",
            AuthResult::BadPassword => "bad_password",
            AuthResult::AccountSuspended => "account_suspended",
            AuthResult::IpNotAuthorized => "ip_not_authorized",
            AuthResult::MechanismNotSupported => "mechanism_not_supported",
            AuthResult::TlsRequired => "tls_required",
        }
    }

    pub fn parse(text: &str) -> Option<AuthResult> {
        AuthResult::ALL.into_iter().find(|r| r.as_str() == text)
    }

    pub fn is_failure(self) -> bool {
        self != AuthResult::Ok
    }

    /// A few words for a timeline row.
    pub fn words(self) -> &'static str {
        match self {
            AuthResult::Ok => "accepted",
            AuthResult::UnknownUser => "unknown user",
            AuthResult::UserDisabled => "user disabled",
            AuthResult::BadPassword => "wrong password",
            AuthResult::AccountSuspended => "account suspended",
            AuthResult::IpNotAuthorized => "client address not allowed",
            AuthResult::MechanismNotSupported => "mechanism not supported",
            AuthResult::TlsRequired => "TLS required",
        }
    }
}

/// Longest username kept (the directory's limit too).
pub const MAX_USERNAME_BYTES: usize = 255;
const MAX_ACCOUNT_ID_BYTES: usize = 255;
const MAX_MECHANISM_BYTES: usize = 64;

/// One authentication attempt as the relay or gateway logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthEvent {
    /// To the microsecond, in UTC (what both databases keep).
    pub at: DateTime<Utc>,
    pub channel: AuthChannel,
    /// Byte-exact: usernames can be anything, spaces and all.
    pub username: String,
    /// The account owning the username; none for an unknown user.
    pub account_id: Option<String>,
    pub client_ip: IpAddr,
    /// `PLAIN`, `LOGIN`, `CRAM-MD5`, … (empty when the log has none, as API gateways may).
    pub mechanism: String,
    pub tls: bool,
    pub result: AuthResult,
}

impl AuthEvent {
    /// One JSON Lines line. The error is a reason for `line N: reason`; it never quotes a
    /// secret.
    pub fn parse_line(line: &str) -> Result<AuthEvent, String> {
        let value: Value = serde_json::from_str(line).map_err(|e| format!("not a JSON object ({})", json_error(&e)))?;
        AuthEvent::from_json(&value)
    }

    /// One element of the API's array, or a parsed line.
    pub fn from_json(value: &Value) -> Result<AuthEvent, String> {
        let Value::Object(fields) = value else {
            return Err("not a JSON object".into());
        };
        if let Some(path) = secret_field(fields, "") {
            return Err(format!(
                "{path}: a password, key or secret field; credentials are never stored (remove the field)"
            ));
        }
        let text = |name: &str| match fields.get(name) {
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            None | Some(Value::Null) => Ok(None),
            Some(_) => Err(format!("{name}: must be a string")),
        };
        let required = |name: &str| text(name)?.ok_or_else(|| format!("{name}: is required"));

        let at_text = required("at")?;
        let at = DateTime::parse_from_rfc3339(at_text)
            .map_err(|_| format!("at: {at_text:?} is not an RFC 3339 time (such as 2026-11-20T10:00:03Z)"))?
            .with_timezone(&Utc)
            .trunc_subsecs(6);
        let channel_text = required("channel")?;
        let channel =
            AuthChannel::parse(channel_text).ok_or_else(|| format!("channel: {channel_text:?} is not smtp or api"))?;
        let username = required("username")?;
        if username.is_empty() {
            return Err("username: must not be empty".into());
        }
        if username.len() > MAX_USERNAME_BYTES {
            return Err(format!("username: longer than {MAX_USERNAME_BYTES} bytes"));
        }
        if username.contains('\0') {
            return Err("username: contains a NUL character".into());
        }
        let account_id = match text("account_id")? {
            None | Some("") => None,
            Some(id) if id.len() > MAX_ACCOUNT_ID_BYTES || id.contains('\0') => {
                return Err(format!(
                    "account_id: at most {MAX_ACCOUNT_ID_BYTES} bytes, without NUL characters"
                ));
            }
            Some(id) => Some(id.to_string()),
        };
        let ip_text = required("client_ip")?;
        let client_ip = ip_text
            .trim()
            .parse::<IpAddr>()
            .map(|ip| ip.to_canonical())
            .map_err(|_| format!("client_ip: {ip_text:?} is not an IPv4 or IPv6 address"))?;
        let mechanism = text("mechanism")?.unwrap_or("");
        if mechanism.len() > MAX_MECHANISM_BYTES || mechanism.chars().any(char::is_control) {
            return Err(format!(
                "mechanism: at most {MAX_MECHANISM_BYTES} bytes, without control characters"
            ));
        }
        let tls = match fields.get("tls") {
            Some(Value::Bool(b)) => *b,
            None | Some(Value::Null) => return Err("tls: is required (true or false)".into()),
            Some(_) => return Err("tls: must be true or false".into()),
        };
        let result_text = required("result")?;
        let result = AuthResult::parse(result_text).ok_or_else(|| {
            format!(
                "result: {result_text:?} is not one of {}",
                AuthResult::ALL.map(AuthResult::as_str).join(", ")
            )
        })?;
        Ok(AuthEvent {
            at,
            channel,
            username: username.to_string(),
            account_id,
            client_ip,
            mechanism: mechanism.to_string(),
            tls,
            result,
        })
    }
}

/// serde_json's explanation without any of the input (its messages only quote the input for
/// type errors, which cannot occur when parsing into a `Value`).
fn json_error(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Eof => format!("the line ends early, column {}", e.column()),
        _ => format!("invalid JSON at column {}", e.column()),
    }
}

/// The path of the first field (at any depth) whose name says it holds a credential.
fn secret_field(fields: &Map<String, Value>, prefix: &str) -> Option<String> {
    for (name, value) in fields {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        if is_secret_field_name(name) {
            return Some(path);
        }
        let nested = match value {
            Value::Object(inner) => secret_field(inner, &path),
            Value::Array(items) => items.iter().find_map(|item| match item {
                Value::Object(inner) => secret_field(inner, &path),
                _ => None,
            }),
            _ => None,
        };
        if nested.is_some() {
            return nested;
        }
    }
    None
}

/// Field names that hold credentials: passwords, secrets, tokens, credentials, and keys
/// (`key`, `api_key`, `apiKey`, `private-key`, `access_key_id`, …). The event's own fields
/// never match. A word that merely contains "key" (`monkey`, `keyboard`) is not a key.
pub fn is_secret_field_name(name: &str) -> bool {
    // The event's own fields, and the usual companions of a relay log line, answer at once.
    const ORDINARY: [&str; 12] = [
        "at",
        "channel",
        "username",
        "account_id",
        "client_ip",
        "mechanism",
        "tls",
        "result",
        "queue_id",
        "host",
        "helo",
        "message",
    ];
    if ORDINARY.contains(&name) {
        return false;
    }
    let lower = name.to_ascii_lowercase();
    let squashed: String = lower.chars().filter(char::is_ascii_alphanumeric).collect();
    if [
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "credential",
        "authorization",
    ]
    .iter()
    .any(|word| squashed.contains(word))
    {
        return true;
    }
    let words = words_of(name);
    if words
        .iter()
        .any(|w| matches!(w.as_str(), "key" | "keys" | "pwd" | "pass"))
    {
        return true;
    }
    // Compounds written as one word.
    [
        "apikey",
        "privatekey",
        "secretkey",
        "accesskey",
        "signingkey",
        "sessionkey",
        "authkey",
        "licensekey",
        "userpass",
        "smtppass",
    ]
    .iter()
    .any(|compound| squashed.contains(compound))
}

/// `apiKey` → [api, key]; `access_key_id` → [access, key, id]; `X-Api-Key` → [x, api, key].
fn words_of(name: &str) -> Vec<String> {
    let mut words = vec![];
    let mut current = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(overrides: Value) -> Value {
        let mut base = json!({"at":"2026-11-20T10:00:03Z","channel":"smtp","username":"crm-mailer",
            "account_id":"acc_1001","client_ip":"203.0.113.7","mechanism":"CRAM-MD5","tls":true,
            "result":"mechanism_not_supported"});
        for (k, v) in overrides.as_object().unwrap() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        base
    }

    #[test]
    fn the_spec_example_parses() {
        let event = AuthEvent::parse_line(&line(json!({})).to_string()).unwrap();
        assert_eq!(event.channel, AuthChannel::Smtp);
        assert_eq!(event.username, "crm-mailer");
        assert_eq!(event.account_id.as_deref(), Some("acc_1001"));
        assert_eq!(event.client_ip.to_string(), "203.0.113.7");
        assert_eq!(event.mechanism, "CRAM-MD5");
        assert!(event.tls);
        assert_eq!(event.result, AuthResult::MechanismNotSupported);
        assert_eq!(event.at.to_rfc3339(), "2026-11-20T10:00:03+00:00");
    }

    #[test]
    fn usernames_are_kept_byte_exact() {
        for name in [" crm mailer ", "Ünïcode-mailer", "ops@acme.test", "a\u{200B}b", "x"] {
            let event = AuthEvent::from_json(&line(json!({"username": name}))).unwrap();
            assert_eq!(event.username, name);
        }
    }

    #[test]
    fn other_fields_are_ignored_and_times_normalised_to_utc() {
        let event = AuthEvent::from_json(&line(json!({"at": "2026-11-20T11:00:03.1234567+01:00",
            "queue_id": "4ZfPF8", "helo": "crm.acme.test", "account_id": null, "mechanism": null,
            "client_ip": "::ffff:203.0.113.7"})))
        .unwrap();
        assert_eq!(event.at.to_rfc3339(), "2026-11-20T10:00:03.123456+00:00");
        assert_eq!(event.account_id, None);
        assert_eq!(event.mechanism, "");
        assert_eq!(event.client_ip.to_string(), "203.0.113.7");
    }

    #[test]
    fn bad_fields_are_named() {
        for (overrides, starts) in [
            (json!({"at": "yesterday"}), "at:"),
            (json!({"at": null}), "at: is required"),
            (json!({"channel": "imap"}), "channel:"),
            (json!({"username": ""}), "username:"),
            (json!({"username": 7}), "username: must be a string"),
            (json!({"username": "a\u{0}b"}), "username:"),
            (json!({"client_ip": "mail.acme.test"}), "client_ip:"),
            (json!({"tls": "yes"}), "tls:"),
            (json!({"tls": null}), "tls:"),
            (json!({"result": "denied"}), "result:"),
            (json!({"account_id": 1001}), "account_id:"),
        ] {
            let reason = AuthEvent::from_json(&line(overrides.clone())).unwrap_err();
            assert!(reason.starts_with(starts), "{overrides}: {reason}");
        }
        assert!(
            AuthEvent::parse_line("[1,2]")
                .unwrap_err()
                .starts_with("not a JSON object")
        );
        assert!(
            AuthEvent::parse_line("{\"at\":")
                .unwrap_err()
                .starts_with("not a JSON object")
        );
    }

    #[test]
    fn a_secret_field_refuses_the_line_without_quoting_its_value() {
        for field in [
            "password",
            "smtp_password",
            "Passwd",
            "api_key",
            "apiKey",
            "X-Api-Key",
            "key",
            "private_key",
            "access_key_id",
            "client_secret",
            "token",
            "auth_token",
            "credentials",
            "Authorization",
            "pwd",
        ] {
            let reason = AuthEvent::from_json(&line(json!({ field: "Hunter2-very-secret" }))).unwrap_err();
            assert!(reason.starts_with(&format!("{field}:")), "{field}: {reason}");
            assert!(!reason.contains("Hunter2"), "{reason}");
        }
        let nested = AuthEvent::from_json(&line(json!({"sasl": {"user": "x", "password": "Hunter2"}}))).unwrap_err();
        assert!(nested.starts_with("sasl.password:"), "{nested}");
        let malformed = AuthEvent::parse_line("{\"password\": \"Hunter2\", \"at\": }").unwrap_err();
        assert!(!malformed.contains("Hunter2"), "{malformed}");
    }

    #[test]
    fn ordinary_field_names_are_not_secrets() {
        for field in [
            "at",
            "channel",
            "username",
            "account_id",
            "client_ip",
            "mechanism",
            "tls",
            "result",
            "monkey",
            "keyboard_layout",
            "nonce",
            "queue_id",
            "hostname",
            "passed_checks",
        ] {
            assert!(!is_secret_field_name(field), "{field}");
        }
    }
}
