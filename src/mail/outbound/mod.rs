//! Outbound mail: composed (rendered, addressed, threaded) when a decision wants it sent, put
//! in the outbox in the same transaction, and delivered afterwards by the sender.

pub mod compose;
pub mod links;
pub mod params;
pub mod sender;
pub mod templates;
pub mod tls;
pub mod transport;
