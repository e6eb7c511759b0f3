//! The audit chain's own CPU cost per event (canonical JSON and SHA-256), and checking an
//! export, in thread CPU time (the machine is shared: wall time says more about the others).
//!
//! `cargo run --release --example audit_hash_bench`

use recoverydesk::domain::audit;
use serde_json::json;
/// CPU time of this thread.
struct Instant(f64);
impl Instant {
    fn now() -> Instant {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime only writes the timespec it is given.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        Instant(ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9)
    }
    fn elapsed(&self) -> Elapsed {
        Elapsed(Instant::now().0 - self.0)
    }
}
struct Elapsed(f64);
impl Elapsed {
    fn as_secs_f64(&self) -> f64 {
        self.0
    }
}

fn main() {
    let n = 200_000;
    let transition = json!({"from": "ownership_verified", "to": "resolved", "action": "grant_ip_access",
        "ip": "198.51.100.77", "approval_id": "12", "requested_by": "agent:ana@desk.test", "approved_by": "agent:bo@desk.test"});
    let message = json!({"channel": "mail", "from": "customer@example.test", "sender": "requester",
        "message_id": "<abc.123@mail.example.test>", "attachments": [{"filename": "x.log", "content_type": "text/plain", "size": 1234}]});
    let body = "Hello, I cannot log in since this morning. ".repeat(40);
    for (label, data, with_message) in [
        ("transition", &transition, false),
        ("message_in (2 KB text)", &message, true),
    ] {
        let mut prev = audit::GENESIS.to_string();
        let started = Instant::now();
        for i in 0..n {
            let content = with_message.then(|| audit::content_sha256("Cannot log in", &body));
            let e = audit::ChainedEvent {
                id: i,
                ticket: "RD-4711",
                event_type: "transition",
                actor: "agent:ana@desk.test",
                at: "2026-12-06T09:00:00.123456Z",
                data,
                content_sha256: content.as_deref(),
            };
            prev = e.hash(&prev);
        }
        let per = started.elapsed().as_secs_f64() / n as f64 * 1e6;
        println!(
            "{label}: {per:.2} µs CPU per event (canonical JSON + SHA-256{}), {n} events",
            if with_message { " + content hash" } else { "" }
        );
    }
    // Verifying an export line: parse, canonicalise, hash, compare.
    let mut prev = audit::GENESIS.to_string();
    let mut text = String::new();
    for i in 0..n {
        let e = audit::ChainedEvent {
            id: i,
            ticket: "RD-4711",
            event_type: "transition",
            actor: "agent:ana@desk.test",
            at: "2026-12-06T09:00:00.123456Z",
            data: &transition,
            content_sha256: None,
        };
        let h = e.hash(&prev);
        text.push_str(&e.export_line(&prev, &h));
        text.push('\n');
        prev = h;
    }
    let started = Instant::now();
    let checked = audit::verify_export(&text).expect("verifies");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "verify_export: {checked} lines ({:.1} MB) in {secs:.2} s CPU = {:.0} events/s",
        text.len() as f64 / 1e6,
        checked as f64 / secs
    );
}
