//! Inbound mail, pure parts: parsing raw bytes into what the desk needs, recognising robots,
//! folding quoted history and sanitising HTML. The ingestion service writes the results.

pub mod autogen;
pub mod dsn;
pub mod fingerprint;
pub mod form;
pub mod parse;
pub mod provider;
pub mod quote;
pub mod reading;
pub mod rebuild;
pub mod sanitize;
pub mod scrub;
