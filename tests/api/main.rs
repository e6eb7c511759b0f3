//! Black-box tests: the real application on a random port, against a real SQLite file or a
//! PostgreSQL database of its own (when TEST_DATABASE_URL is set). One test binary.

mod helpers;
mod smtp_capture;

mod account_terminated;
mod api_tokens;
mod agent_day;
mod audit_trail;
mod banned;
mod cli;
mod console;
mod credentials;
mod diagnosis;
mod directory;
mod doors;
mod dovecot;
mod erase;
mod exposure;
mod forgot_username;
mod four_eyes;
mod hardening;
mod health_and_auth;
mod imap;
mod inbound_channels;
mod inbound_fixtures;
mod ip_lockout;
mod login_and_general;
mod mail_templates;
mod ops;
mod ops_cli;
mod ops_serve;
mod outbound_mail;
mod pg_load;
mod portal_forms;
mod portal_status;
mod promises;
mod providers;
mod queue_counts;
mod races;
mod races_pg;
mod sender_auth;
mod socket;
mod telemetry;
mod tickets;
mod tls;
mod tokens;
