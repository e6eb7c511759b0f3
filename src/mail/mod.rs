//! Mail: outbound (templates, composition, delivery). Inbound comes with the mailgate.

pub mod files;
pub mod imap;
pub mod inbound;
pub mod outbound;
