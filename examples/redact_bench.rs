//! The secret scanners on the most hostile inputs we know, at a given size.
//!
//! ```sh
//! cargo run --release --example redact_bench            # 1 MiB and 25 MiB
//! cargo run --release --example redact_bench -- 200K 1M # other sizes (K, M suffixes)
//! cargo run --release --example redact_bench -- 1M pass # only the inputs whose name has "pass"
//! ```
//!
//! Each input is one repeated shape, cut to the size asked for, run once through
//! `redact` (all scanners, as a mail body would be) and printed as time and MB/s. The
//! shapes are those that made the old scanners quadratic, and the ones a reader would try
//! next. Any size must finish in seconds; a shape that does not is a bug.

use std::time::Instant;

use recoverydesk::domain::redact::redact;

/// Which scanner each shape attacks, a name, and the repeated unit (or how to build it).
const SHAPES: &[(&str, &str, &str)] = &[
    ("phrases", "pass-colon", "pass:"),
    ("phrases", "password-is", "password is "),
    ("phrases", "query-token", "?token="),
    ("phrases", "open-quote", "password: \u{201c}"),
    ("phrases", "escaped-quote", "password: \"\\\""),
    ("phrases", "authorization-digest", "Authorization: Digest x "),
    ("phrases", "api-key-equals", "api_key="),
    ("tokens", "sg-dot", "SG."),
    ("tokens", "sg-almost", "SG.abcdefghij_klmnopqrstu."),
    ("tokens", "akia", "AKIA"),
    ("tokens", "jwt-prefix", "eyJaaaaaaaa.eyJ"),
    ("tokens", "pem-begin-no-end", "-----BEGIN PRIVATE KEY-----\n"),
    ("tokens", "pem-begin-label", "-----BEGIN RSA "),
    ("cards", "digit-spaces", "1 "),
    ("cards", "digit-dashes", "1-"),
    ("cards", "four-digit-groups", "4111 "),
    ("cards", "digits-only", "4"),
    ("cards", "luhn-cards-glued", "4111111111111111 "),
    ("smtp", "auth-plain-one-line", "AUTH PLAIN "),
    ("smtp", "auth-plain-lines", "C: AUTH PLAIN AGJvYgBodW50ZXIy\n"),
    ("smtp", "auth-login-lines", "C: AUTH LOGIN\n"),
    ("smtp", "auth-login-then-answers", "@login-then-answers"),
    ("smtp", "base64-lines", "aGVsbG8gd29ybGQ=\n"),
    ("smtp", "plain-blobs", "AGJvYgBodW50ZXIy "),
    ("smtp", "nul-separators", "\0a\0b\0"),
    ("smtp", "typed-nul-separators", "\\0a\\0b "),
    ("any", "newlines", "\n"),
    ("any", "crlf", "\r\n"),
    ("any", "one-long-word", "a"),
    ("any", "non-ascii", "é日"),
    ("any", "redacted-placeholders", "[redacted]"),
];

fn build(unit: &str, size: usize) -> String {
    let mut text = String::with_capacity(size + 64);
    if unit == "@login-then-answers" {
        text.push_str("C: AUTH LOGIN\n");
        while text.len() < size {
            text.push_str("S: 334 VXNlcm5hbWU6\nC: Ym9iQGV4YW1wbGUubmV0\n");
        }
    } else {
        while text.len() < size {
            text.push_str(unit);
        }
    }
    // Cut on a character boundary so every input is valid UTF-8 of about `size` bytes.
    let mut end = size.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

fn parse_size(arg: &str) -> Option<usize> {
    let (number, unit) = match arg.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((at, _)) => arg.split_at(at),
        None => (arg, ""),
    };
    let number: usize = number.parse().ok()?;
    match unit.to_ascii_uppercase().as_str() {
        "" | "M" | "MIB" => Some(number << 20),
        "K" | "KIB" => Some(number << 10),
        _ => None,
    }
}

fn main() {
    let mut sizes = Vec::new();
    let mut filter = None;
    for arg in std::env::args().skip(1) {
        match parse_size(&arg) {
            Some(size) => sizes.push(size),
            None => filter = Some(arg),
        }
    }
    if sizes.is_empty() {
        sizes = vec![1 << 20, 25 << 20];
    }
    println!("| scanner | input | size | time | MB/s | kinds found |");
    println!("|---|---|---:|---:|---:|---|");
    for &size in &sizes {
        for &(scanner, name, unit) in SHAPES {
            if filter
                .as_deref()
                .is_some_and(|wanted| !name.contains(wanted) && scanner != wanted)
            {
                continue;
            }
            let input = build(unit, size);
            let started = Instant::now();
            let result = redact(&input);
            let elapsed = started.elapsed();
            let megabytes = input.len() as f64 / 1e6;
            let kinds: Vec<&str> = result.found.iter().map(|kind| kind.as_str()).collect();
            println!(
                "| {scanner} | `{name}` | {} KiB | {:.3} s | {:.1} | {} |",
                input.len() >> 10,
                elapsed.as_secs_f64(),
                megabytes / elapsed.as_secs_f64(),
                kinds.join(", "),
            );
        }
    }
}
