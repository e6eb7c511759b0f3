//! The counters and histograms of `/metrics`. One [`Metrics`] per process, created with the
//! application and reached through the desk (never a global), so tests can run several apps
//! in one process and read each one's figures. The gauges read from the database
//! (`recoverydesk_tickets`, …) are written by `web::metrics`; this registry adds what only the
//! running process sees.
//!
//! Labels take fixed words (a channel, an outcome, a code, a route pattern), never anything a
//! customer typed: a label value is kept for the life of the process, so free text would let
//! anyone grow the memory without bound, and it would put customers' words in a scrape.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::fmt;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelOutcome {
    channel: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FormResult {
    form: &'static str,
    result: &'static str,
}

/// A route pattern such as `/t/{token}`: owned, because actix hands it out per request, but
/// only ever one of the patterns registered in `web::configure` (or `unmatched`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    channel: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabel {
    verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Request latency buckets: 5 ms to about 10 s (argon2 sign-ins and SMTP-free pages alike).
fn request_histogram() -> Histogram {
    Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
}

/// Ingestion buckets: a small mail takes milliseconds, a 25 MiB one with many parts seconds.
fn ingest_histogram() -> Histogram {
    Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
}

pub struct Metrics {
    registry: Registry,
    inbound: Family<ChannelOutcome, Counter>,
    outbound: Family<ResultLabel, Counter>,
    refusals: Family<CodeLabel, Counter>,
    approvals: Family<OutcomeLabel, Counter>,
    signin_failures: Counter,
    forms: Family<FormResult, Counter>,
    http_duration: Family<RouteLabel, Histogram, fn() -> Histogram>,
    ingest_duration: Family<ChannelLabel, Histogram, fn() -> Histogram>,
    sender_auth: Family<VerdictLabel, Counter>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics { .. }")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Every ingestion channel the code passes (`services::inbound::ingest`); anything else is
/// counted as `other` rather than minting a label.
const CHANNELS: [&str; 7] = ["mailgate", "webhook", "maildir", "imap", "retry", "sendgrid", "mailgun"];

fn channel(name: &str) -> &'static str {
    CHANNELS.iter().find(|c| **c == name).copied().unwrap_or("other")
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let inbound = Family::<ChannelOutcome, Counter>::default();
        registry.register(
            "recoverydesk_inbound_messages",
            "Inbound messages by channel and outcome (created, appended, duplicate, quarantined, too_large, failed)",
            inbound.clone(),
        );
        let outbound = Family::<ResultLabel, Counter>::default();
        registry.register(
            "recoverydesk_outbound_mail",
            "Delivery attempts of outgoing mail by result (sent, retrying, failed)",
            outbound.clone(),
        );
        let refusals = Family::<CodeLabel, Counter>::default();
        registry.register(
            "recoverydesk_refusals",
            "Actions the workflow refused, by error code",
            refusals.clone(),
        );
        let approvals = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "recoverydesk_approvals",
            "Four-eyes approval requests by outcome (requested, approved, rejected, expired)",
            approvals.clone(),
        );
        let signin_failures = Counter::default();
        registry.register(
            "recoverydesk_signin_failures",
            "Console sign-ins refused for a wrong email or password",
            signin_failures.clone(),
        );
        let forms = Family::<FormResult, Counter>::default();
        registry.register(
            "recoverydesk_form_submissions",
            "Customer form posts by form and result (accepted, invalid, rate_limited, error)",
            forms.clone(),
        );
        let http_duration = Family::<RouteLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            request_histogram as fn() -> Histogram,
        );
        registry.register(
            "recoverydesk_http_request_duration_seconds",
            "Time to answer an HTTP request, by route pattern",
            http_duration.clone(),
        );
        let ingest_duration = Family::<ChannelLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            ingest_histogram as fn() -> Histogram,
        );
        registry.register(
            "recoverydesk_ingest_duration_seconds",
            "Time to ingest one inbound message, by channel",
            ingest_duration.clone(),
        );
        let sender_auth = Family::<VerdictLabel, Counter>::default();
        registry.register(
            "recoverydesk_inbound_sender_auth",
            "Inbound messages routed, by sender-authentication verdict (pass, fail, none)",
            sender_auth.clone(),
        );
        registry.register(
            "recoverydesk_build",
            "The running version",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        Metrics {
            registry,
            inbound,
            outbound,
            refusals,
            approvals,
            signin_failures,
            forms,
            http_duration,
            ingest_duration,
            sender_auth,
        }
    }

    /// The sender-authentication verdict of one routed message.
    pub fn sender_auth(&self, verdict: crate::domain::sender_auth::SenderAuth) {
        self.sender_auth
            .get_or_create(&VerdictLabel {
                verdict: verdict.as_str(),
            })
            .inc();
    }

    /// One inbound message handled: its channel, its outcome and how long it took.
    pub fn inbound(&self, channel_name: &str, outcome: &'static str, seconds: f64) {
        let channel = channel(channel_name);
        self.inbound.get_or_create(&ChannelOutcome { channel, outcome }).inc();
        self.ingest_duration
            .get_or_create(&ChannelLabel { channel })
            .observe(seconds);
    }

    /// `sent`, `retrying` or `failed`.
    pub fn outbound(&self, result: &'static str) {
        self.outbound.get_or_create(&ResultLabel { result }).inc();
    }

    pub fn refusal(&self, code: &'static str) {
        self.refusals.get_or_create(&CodeLabel { code }).inc();
    }

    /// Four eyes: `requested`, `approved`, `rejected` or `expired`.
    pub fn approval(&self, outcome: &'static str) {
        self.approvals.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub fn signin_failure(&self) {
        self.signin_failures.inc();
    }

    pub fn form(&self, form: &'static str, result: &'static str) {
        self.forms.get_or_create(&FormResult { form, result }).inc();
    }

    /// `route` is the matched pattern (`/t/{token}`), never the path a client sent.
    pub fn http_request(&self, route: &str, seconds: f64) {
        self.http_duration
            .get_or_create(&RouteLabel {
                route: route.to_string(),
            })
            .observe(seconds);
    }

    /// Appends the OpenMetrics text of every counter and histogram, and the closing `# EOF`.
    pub fn encode_into(&self, out: &mut String) {
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(out, &self.registry);
        let _ = prometheus_client::encoding::text::encode_eof(out);
    }
}

/// How `/metrics` is served: OpenMetrics, which Prometheus asks for first.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_as_operators_read_them() {
        let metrics = Metrics::new();
        metrics.inbound("webhook", "created", 0.01);
        metrics.inbound("no such channel", "duplicate", 0.01);
        metrics.outbound("sent");
        metrics.refusal("account_banned");
        metrics.signin_failure();
        metrics.form("ip_lockout", "accepted");
        metrics.http_request("/t/{token}", 0.02);
        let mut out = String::new();
        metrics.encode_into(&mut out);
        for line in [
            "recoverydesk_inbound_messages_total{channel=\"webhook\",outcome=\"created\"} 1",
            "recoverydesk_inbound_messages_total{channel=\"other\",outcome=\"duplicate\"} 1",
            "recoverydesk_outbound_mail_total{result=\"sent\"} 1",
            "recoverydesk_refusals_total{code=\"account_banned\"} 1",
            "recoverydesk_signin_failures_total 1",
            "recoverydesk_form_submissions_total{form=\"ip_lockout\",result=\"accepted\"} 1",
            "recoverydesk_http_request_duration_seconds_count{route=\"/t/{token}\"} 1",
            "recoverydesk_ingest_duration_seconds_count{channel=\"webhook\"} 1",
            "recoverydesk_build_info{version=\"",
        ] {
            assert!(out.contains(line), "{line} missing from\n{out}");
        }
        assert!(out.ends_with("# EOF\n"), "{out}");
        assert_eq!(out.matches("# EOF").count(), 1);
    }
}
