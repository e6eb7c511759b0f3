//! What one parsing thread costs per message: `services::inbound::prepare` (parse, the secret
//! scan of every view, the rebuilt copy) over a maildir held in memory, on one thread, with
//! no database. `import-maildir` runs this on two threads while a third writes; the mail-in
//! paths of `serve` run it before each message is handed to the writer.
//!
//! ```sh
//! python3 benches/gen_maildir.py --count 3000 --seed 2 --rich /tmp/rich
//! cargo run --release --example intake_bench -- /tmp/rich        # 3 rounds
//! cargo run --release --example intake_bench -- /tmp/rich 10     # 10 rounds
//! ```
//!
//! Prints, for each round, messages per second, microseconds per message and MB/s of raw
//! mail, then the median round. Under `valgrind --tool=callgrind` one round gives an
//! instruction count that does not depend on what else the machine is doing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use recoverydesk::cli::Cli;
use recoverydesk::config::Settings;
use recoverydesk::crypto::SecretKey;
use recoverydesk::services::{Desk, inbound};

fn message_files(maildir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for sub in ["cur", "new"] {
        let dir = maildir.join(sub);
        if !dir.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let maildir = PathBuf::from(args.next().ok_or("usage: intake_bench MAILDIR [ROUNDS]")?);
    let rounds: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(3).max(1);
    let messages: Vec<Vec<u8>> = message_files(&maildir)?
        .iter()
        .map(std::fs::read)
        .collect::<Result<_, _>>()?;
    if messages.is_empty() {
        return Err(format!("no messages under {}/cur or /new", maildir.display()).into());
    }
    let bytes: usize = messages.iter().map(Vec::len).sum();
    let cli = <Cli as clap::Parser>::try_parse_from([
        "recoverydesk",
        "--database-url",
        "sqlite://unused.db",
        "--secret-key",
        &"ab".repeat(64),
    ])?;
    let settings = Settings::from_options(&cli.options)?;
    let desk = Desk {
        secret: SecretKey::parse(settings.secret_key.as_deref().unwrap_or_default())?,
        settings: Arc::new(settings),
        quiet: true,
        metrics: Arc::new(recoverydesk::telemetry::Metrics::new()),
    };
    println!(
        "{} messages, {:.1} MiB, {} round(s), one thread",
        messages.len(),
        bytes as f64 / (1024.0 * 1024.0),
        rounds
    );
    let mut per_second = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        let started = Instant::now();
        let mut refused = 0usize;
        for raw in &messages {
            if inbound::prepare(&desk, raw).is_err() {
                refused += 1;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let rate = messages.len() as f64 / seconds;
        println!(
            "round {round}: {rate:.0} msg/s, {:.1} µs per message, {:.1} MB/s{}",
            1e6 * seconds / messages.len() as f64,
            bytes as f64 / seconds / 1e6,
            if refused > 0 {
                format!(", {refused} refused")
            } else {
                String::new()
            }
        );
        per_second.push(rate);
    }
    per_second.sort_by(f64::total_cmp);
    let median = per_second[per_second.len() / 2];
    println!("median: {median:.0} msg/s, {:.1} µs per message", 1e6 / median);
    Ok(())
}
