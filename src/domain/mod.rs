//! Pure domain code: no web framework, database, mail transport or template imports.

pub mod account;
pub mod audit;
pub mod classify;
pub mod diagnosis;
pub mod email_address;
pub mod event;
pub mod ip_grant;
pub mod local_time;
pub mod redact;
pub mod scrubbed;
pub mod search;
pub mod sender_auth;
pub mod throttle;
pub mod ticket;
pub mod time_text;
pub mod verification;
pub mod vocabulary;
pub mod workflow;
