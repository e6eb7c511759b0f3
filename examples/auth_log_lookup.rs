//! Times the diagnosis lookup (what a login_help ticket naming a username costs) against a
//! database already holding authentication events, such as `benches/auth_log.sh` loads.
//!
//! `cargo run --release --example auth_log_lookup -- DATABASE_URL [LOOKUPS] [USERS]`
//!
//! Each lookup is `services::diagnosis::diagnose` for a random username of the generator
//! (`app-00000`…) at a random time of the last 20 days, as a ticket would ask it; half give no
//! time (the latest failure of the last 24 hours is looked for first). Prints p50, p95, p99.

use chrono::{Duration, Utc};
use recoverydesk::db::{self, DatabaseUrl};
use recoverydesk::domain::diagnosis::AuthChannel;
use recoverydesk::services::diagnosis::diagnose;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: auth_log_lookup DATABASE_URL [LOOKUPS] [USERS]")?;
    let lookups: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(2_000);
    let users: u64 = args.next().map(|n| n.parse()).transpose()?.unwrap_or(20_000);
    let pool = db::open_pool(&DatabaseUrl::parse(&url)?, 1)?;
    let mut conn = pool.get()?;
    db::run_migrations(&mut conn)?;

    // A small deterministic generator: the same lookups on every run.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let now = Utc::now();
    let mut timings = Vec::with_capacity(lookups);
    let mut findings = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..lookups {
        let username = format!("app-{:05}", next() % users);
        let channel = if i % 5 == 0 {
            AuthChannel::Api
        } else {
            AuthChannel::Smtp
        };
        let failed_at = (i % 2 == 0).then(|| now - Duration::seconds((next() % (20 * 86_400)) as i64));
        let started = Instant::now();
        let found = diagnose(&mut conn, &username, channel, failed_at, now)?;
        timings.push(started.elapsed());
        *findings
            .entry(found.diagnosis.finding.as_str().to_string())
            .or_default() += 1;
    }
    timings.sort();
    let at = |q: f64| timings[((timings.len() as f64 * q) as usize).min(timings.len() - 1)];
    println!(
        "{lookups} lookups: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
        at(0.50).as_secs_f64() * 1e3,
        at(0.95).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    );
    println!("findings: {findings:?}");
    Ok(())
}
