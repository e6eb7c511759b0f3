//! What the desk tells its operator while it runs: log lines (text for a terminal, JSON for a
//! collector), the access log of the web server, and the counters and histograms `/metrics`
//! serves. See docs/operations.md ("Logs", "Monitoring").

pub mod access;
pub mod logs;
pub mod metrics;

pub use metrics::Metrics;
