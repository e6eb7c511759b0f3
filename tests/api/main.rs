//! Black-box tests: the real application on a random port, against a real SQLite file or a
//! PostgreSQL database of its own (when TEST_DATABASE_URL is set). One test binary.

mod helpers;
mod smtp_capture;

mod account_terminated;
mod banned;
mod cli;
mod console;
mod customer_forms;
mod customer_status;
mod diagnosis;
mod directory;
mod doors;
mod erase;
mod forgot_username;
mod hardening;
mod health_and_auth;
mod inbound_channels;
mod inbound_fixtures;
mod ip_lockout;
mod login_and_general;
mod mail_templates;
mod ops;
mod ops_cli;
mod ops_serve;
mod outbound_mail;
mod portal_forms;
mod portal_status;
mod promises;
mod races;
mod races_pg;
mod telemetry;
mod tickets;
mod tls;
mod tokens;
