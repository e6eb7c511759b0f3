//! Figures for the hash-chained audit trail: ingestion and action throughput on one database
//! (SQLite or PostgreSQL). The same file builds against the code before the chain existed,
//! so `benches/audit_chain.sh` runs it on both and prints the difference.
//!
//! `cargo run --release --example audit_bench -- DATABASE_URL [MESSAGES]`
//!
//! 1. Ingestion: MESSAGES (default 2,000) new mails, one after the other, each opening a
//!    ticket (created, message_in, acknowledgement: about 4 events and their links each).
//! 2. Actions: on each of those tickets, `assign` then an internal note (2 transactions,
//!    about 3 events).
//!
//! Use a fresh database.

use recoverydesk::cli::Cli;
use recoverydesk::config::Settings;
use recoverydesk::services::{Actor, agents, inbound, tickets};
use std::time::Instant;

fn mail(i: usize) -> Vec<u8> {
    format!(
        "From: Customer {i} <customer{i}@bench.test>\r\nTo: support@localhost\r\n\
         Subject: Cannot log in {i}\r\nMessage-ID: <bench-{i}@bench.test>\r\n\
         Date: Sun, 06 Dec 2026 08:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello, I cannot log in to my account since this morning. Request number {i}.\r\n\
         Could you have a look? Thanks.\r\n"
    )
    .into_bytes()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: audit_bench DATABASE_URL [MESSAGES]")?;
    let messages: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(2_000);
    let cli = <Cli as clap::Parser>::try_parse_from([
        "recoverydesk",
        "--database-url",
        &url,
        "--secret-key",
        &"ab".repeat(64),
    ])?;
    let settings = Settings::from_options(&cli.options)?;
    let (pool, desk) = recoverydesk::startup::prepare(&settings)?;
    let mut conn = pool.get()?;
    if agents::bootstrap_admin(&mut conn, "bench@localhost", chrono::Utc::now())?.is_none() {
        return Err("use a fresh database".into());
    }
    let admin = recoverydesk::db::agents::find_by_email(&mut conn, "bench@localhost")?.ok_or("no admin")?;
    let actor = Actor::Agent {
        id: admin.id,
        email: admin.email.clone(),
        admin: true,
    };

    let started = Instant::now();
    let mut ids = Vec::with_capacity(messages);
    for i in 0..messages {
        let ingested = inbound::ingest(&mut conn, &desk, &mail(i), "maildir").map_err(|e| format!("{e:?}"))?;
        let reference = ingested.ticket.ok_or("no ticket")?;
        ids.push(reference.rsplit('-').next().ok_or("ref")?.parse::<i64>()?);
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    println!(
        "ingestion: {messages} messages in {ingest_secs:.2} s = {:.0} messages/s",
        messages as f64 / ingest_secs
    );

    let started = Instant::now();
    for id in &ids {
        tickets::apply_action(
            &mut conn,
            &desk,
            *id,
            "assign",
            &serde_json::json!({"agent_email": "bench@localhost"}),
            &actor,
        )
        .map(|_| ())?;
        tickets::add_reply(&mut conn, &desk, *id, "checked the logs, nothing unusual", true, &actor)?;
    }
    let action_secs = started.elapsed().as_secs_f64();
    println!(
        "actions: {} (assign + note) in {action_secs:.2} s = {:.0} actions/s",
        ids.len() * 2,
        (ids.len() * 2) as f64 / action_secs
    );
    Ok(())
}
