//! The agent console (`/agent/…`): sign-in, the queue, the ticket page, accounts, admin pages.

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    let _ = cfg;
}
