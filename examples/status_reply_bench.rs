//! A status-page reply with files, at the largest size a post may have: the multipart reading
//! and then the scan of each file, as `POST /t/{token}/reply` does them before its transaction.
//!
//! ```sh
//! cargo run --release --example status_reply_bench          # 25 MiB (the default message limit)
//! cargo run --release --example status_reply_bench -- 5M    # another size (K, M suffixes)
//! cargo run --release --example status_reply_bench -- 25M scan  # the files' scan too
//! ```
//!
//! Each shape is one post of the given size, read once and its files scanned once, printed as
//! time and MB/s. Any shape must finish in seconds; one that does not is a bug.

use std::time::Instant;

use recoverydesk::domain::scrubbed::Scrubber;
use recoverydesk::web::portal::multipart;

const BOUNDARY: &str = "----WebKitFormBoundaryAbC123xyz";

fn size_arg(text: &str) -> usize {
    let (digits, unit) = match text.strip_suffix(['M', 'm']) {
        Some(d) => (d, 1024 * 1024),
        None => match text.strip_suffix(['K', 'k']) {
            Some(d) => (d, 1024),
            None => (text, 1),
        },
    };
    digits.parse::<usize>().unwrap_or(25) * unit
}

/// A post whose files are `files` pieces of `unit` repeated to fill `size` bytes together.
fn post(size: usize, files: usize, unit: &[u8]) -> Vec<u8> {
    let mut body =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nThe logs, as asked.\r\n")
            .into_bytes();
    let each = size / files.max(1);
    for i in 0..files {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"part{i}.log\"\r\nContent-Type: text/plain\r\n\r\n")
                .as_bytes(),
        );
        body.extend(unit.iter().copied().cycle().take(each));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn main() {
    let size = std::env::args()
        .nth(1)
        .map(|a| size_arg(&a))
        .unwrap_or(25 * 1024 * 1024);
    // The scanners have their own figures (examples/redact_bench.rs); here only when asked.
    let scan_too = std::env::args().nth(2).as_deref() == Some("scan");
    let near_boundary = format!("\r\n--{}", &BOUNDARY[..BOUNDARY.len() - 1]);
    let shapes: Vec<(&str, usize, Vec<u8>)> = vec![
        (
            "one log file",
            1,
            b"10:02:11 relay[42]: AUTH LOGIN from 203.0.113.7 rejected 535\n".to_vec(),
        ),
        (
            "five log files",
            5,
            b"10:02:11 relay[42]: AUTH LOGIN from 203.0.113.7 rejected 535\n".to_vec(),
        ),
        ("near-boundaries", 1, near_boundary.into_bytes()),
        ("dashes", 1, b"-".to_vec()),
        ("CRLFs", 1, b"\r\n".to_vec()),
        ("pass: lines", 1, b"pass: x\n".to_vec()),
        ("binary zeros", 1, vec![0u8]),
    ];
    println!(
        "{:<18} {:>10} {:>12} {:>12} {:>10}",
        "shape", "MiB", "read (ms)", "scan (ms)", "MB/s"
    );
    for (name, files, unit) in shapes {
        let body = post(size, files, &unit);
        let started = Instant::now();
        let parts = multipart::parse(&body, BOUNDARY, 10).expect("a well-formed post");
        let read = started.elapsed();
        let started = Instant::now();
        let mut scrubber = Scrubber::default();
        for part in parts.iter().filter(|p| scan_too && p.filename.is_some()) {
            let _ = scrubber.scrub_bytes(part.data);
        }
        let scan = started.elapsed();
        let total = (read + scan).as_secs_f64();
        println!(
            "{name:<18} {:>10.1} {:>12.1} {:>12.1} {:>10.1}",
            body.len() as f64 / (1024.0 * 1024.0),
            read.as_secs_f64() * 1000.0,
            scan.as_secs_f64() * 1000.0,
            body.len() as f64 / 1_000_000.0 / total.max(1e-9)
        );
    }
}
