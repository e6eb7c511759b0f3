//! Log lines on standard error: `RECOVERYDESK_LOG_FORMAT=text` (the default, for people) or
//! `json` (one object a line, for journald, Loki and the like), filtered by `RUST_LOG`
//! (default `info`). Colours only when standard error is a terminal: escape codes in a
//! journal or an MTA's log are noise.

use std::io::IsTerminal;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(text: &str) -> Result<LogFormat, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("RECOVERYDESK_LOG_FORMAT must be text or json, not {other:?}")),
        }
    }
}

/// The format chosen at start: process-wide, as the subscriber is.
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

pub fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or(LogFormat::Text)
}

/// Installs the process's subscriber. An unknown format falls back to text here; the settings
/// check then refuses it with a message naming the variable (and the exit status of the
/// command), so the refusal itself is readable.
pub fn init(format_setting: &str) {
    let format = LogFormat::parse(format_setting).unwrap_or(LogFormat::Text);
    let _ = FORMAT.set(format);
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,actix_server=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_ansi(false)
            .try_init(),
    };
}

/// A line for the operator that is printed whatever `RUST_LOG` says (the first admin's
/// one-time password, the address the server listens on): plain in text mode, one JSON object
/// in JSON mode so a collector never sees a stray line.
pub fn announce(message: &str) {
    match format() {
        LogFormat::Text => eprintln!("{message}"),
        LogFormat::Json => eprintln!("{}", announcement_json(message)),
    }
}

fn announcement_json(message: &str) -> String {
    serde_json::json!({
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "level": "INFO",
        "target": "recoverydesk",
        "message": message.trim(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_others_are_refused_by_name() {
        assert_eq!(LogFormat::parse("text"), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(" JSON "), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse(""), Ok(LogFormat::Text));
        let refused = LogFormat::parse("yaml").unwrap_err();
        assert!(refused.contains("RECOVERYDESK_LOG_FORMAT"), "{refused}");
    }

    #[test]
    fn an_announcement_is_one_json_line_even_with_newlines_and_quotes() {
        let line = announcement_json("\nCreated the admin \"x\".\nOne-time password: p4ss\n");
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(value["message"].as_str().unwrap().ends_with("p4ss"));
    }
}
