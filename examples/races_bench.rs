//! Figures for the throttles, the locks and erase, on one database (SQLite or PostgreSQL).
//!
//! `cargo run --example races_bench -- DATABASE_URL [MESSAGES]`
//!
//! 1. A burst of 30 parallel wrong sign-ins for one agent from one client: how many reached the
//!    password check (argon2), and how long the burst took.
//! 2. Form submissions, 8 threads at once, every one for a new email from its own client (no
//!    limit reached): submissions per second with the throttle's key locks.
//! 3. The same 8 threads all for ONE email: how many got through the limit of 5.
//! 4. Erase of one message in a database of MESSAGES messages (default 20,000): the
//!    transaction, then the checkpoint (SQLite) or VACUUM (PostgreSQL).
//!
//! Use a fresh database: it writes tickets, sign-in tries and form submissions.

use recoverydesk::cli::Cli;
use recoverydesk::config::Settings;
use recoverydesk::domain::email_address::EmailAddress;
use recoverydesk::domain::ticket::Kind;
use recoverydesk::services::tickets::{Channel, OpenTicket, RequestFields};
use recoverydesk::services::{Actor, agents, erase, portal, sign_in};
use std::sync::Arc;
use std::time::Instant;

fn request(email: &str, body: &str) -> Result<OpenTicket, Box<dyn std::error::Error>> {
    Ok(RequestFields {
        kind: Kind::General,
        requester: EmailAddress::parse(email)?,
        subject: "bench".into(),
        body: body.into(),
        account: None,
        current_ip: None,
        tried_from: None,
        attempts_outcome: None,
        smtp_username: None,
        failed_at: None,
        problem: None,
        error_text: None,
        channel: Channel::Web,
        actor: Actor::System,
    }
    .scrub())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: races_bench DATABASE_URL [MESSAGES]")?;
    let messages: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(20_000);
    let cli = <Cli as clap::Parser>::try_parse_from([
        "recoverydesk",
        "--database-url",
        &url,
        "--secret-key",
        &"ab".repeat(64),
    ])?;
    let settings = Settings::from_options(&cli.options)?;
    let (pool, desk) = recoverydesk::startup::prepare(&settings)?;
    let desk = Arc::new(desk);
    {
        let mut conn = pool.get()?;
        if agents::bootstrap_admin(&mut conn, "bench@localhost", chrono::Utc::now())?.is_none() {
            return Err("use a fresh database".into());
        }
    }

    // 1. The sign-in burst.
    let dummy = recoverydesk::crypto::hash_password("not anyone's password")?;
    let started = Instant::now();
    let checks: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..30)
            .map(|_| {
                let (pool, dummy) = (pool.clone(), dummy.clone());
                s.spawn(move || -> usize {
                    let Ok(mut conn) = pool.get() else { return 0 };
                    match sign_in::begin(
                        &mut conn,
                        "bench@localhost",
                        "198.51.100.9",
                        &recoverydesk::clock::Clock::default(),
                    ) {
                        Ok(sign_in::Gate::Try(attempt)) => {
                            drop(conn);
                            let _ = attempt.check("wrong password", &dummy);
                            1
                        }
                        _ => 0,
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    println!(
        "sign-in burst: 30 parallel wrong tries, {checks} password checks, {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );

    // 2 and 3. Form submissions, 8 threads.
    for (label, same_email) in [("distinct emails and clients", false), ("one email", true)] {
        let per_thread = if same_email { 5 } else { 50 };
        let started = Instant::now();
        let accepted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let (pool, desk) = (pool.clone(), desk.clone());
                    s.spawn(move || -> usize {
                        let Ok(mut conn) = pool.get() else { return 0 };
                        let mut accepted = 0;
                        for i in 0..per_thread {
                            let (email, client) = if same_email {
                                ("same@bench.test".to_string(), format!("192.0.2.{t}"))
                            } else {
                                (
                                    format!("t{t}-{i}@bench.test"),
                                    format!("10.{t}.{}.{}", i / 250, i % 250),
                                )
                            };
                            let Ok(req) = request(&email, "bench") else { continue };
                            if let Ok(portal::Submitted::Accepted { .. }) =
                                portal::submit_form(&mut conn, &desk, req, &client)
                            {
                                accepted += 1;
                            }
                        }
                        accepted
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        let secs = started.elapsed().as_secs_f64();
        println!(
            "form submissions, 8 threads, {label}: {accepted} of {} accepted, {:.0}/s",
            8 * per_thread,
            f64::from(8 * per_thread) / secs
        );
    }

    // 4. Erase in a database of `messages` messages.
    let mut conn = pool.get()?;
    let started = Instant::now();
    let mut last = 0;
    for i in 0..messages {
        let req = request(
            &format!("m{}@bench.test", i % 500),
            &format!("message {i} with some words"),
        )?;
        last = recoverydesk::services::tickets::open_ticket(&mut conn, &desk, req)?
            .ticket
            .id;
    }
    println!("loaded {messages} tickets in {:.1} s", started.elapsed().as_secs_f64());
    let event = recoverydesk::db::tickets::events_of(&mut conn, last)?
        .into_iter()
        .find(|e| e.message_ref.is_some())
        .ok_or("a message event")?;
    let admin = Actor::Agent {
        id: 1,
        email: "bench@localhost".into(),
        admin: true,
    };
    let started = Instant::now();
    erase::erase_message(&mut conn, last, event.id, &admin)?;
    println!(
        "erase one message (transaction with secure_delete, then checkpoint or VACUUM): {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}
