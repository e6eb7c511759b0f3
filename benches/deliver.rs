//! Drives deliveries at a desk and prints messages/s, latency percentiles and the CPU the
//! driver itself spent. Standard library only, so the scripts build it with `rustc` in two
//! seconds (`cargo bench --bench deliver -- …` works too).
//!
//! ```text
//! deliver [--json] webhook URL[,URL…] TOKEN CLIENTS PATH…   POST /inbound/email, CLIENTS keep-alive connections
//! deliver [--json] mailgate BIN PARALLEL PATH…              one `BIN mailgate` process per message, PARALLEL at a time
//! ```
//!
//! A PATH is a message file or a maildir (its `cur` and `new`, in file-name order). Messages
//! are read into memory first and handed out in order, each exactly once; with several URLs
//! client i talks to URL i mod their number (several `serve` instances on one database).
//!
//! Why not Python: the `http.client` driver this replaces spent about 235 µs of CPU per
//! message, on the same two cores as the desk it measured, a fifth of the machine at 4
//! clients (docs/benchmarks.md). This one spends a few tens; it prints its own share
//! (`driver_cpu_us`) so that a reader can check.
//!
//! One line by default:
//! `<label> messages=N seconds=S rate=R p50=.. p95=.. p99=.. max=.. (ms) driver_cpu_us=.. [children_cpu_us=..] outcomes={..}`;
//! with `--json` one JSON object (`messages`, `seconds`, `msg_per_s`, `p50_ms`, `p95_ms`, `p99_ms`,
//! `max_ms`, `statuses`, `outcomes`, `driver_cpu_us_per_msg`). The exit code is 0 when every
//! delivery was answered 200 / exit 0.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: deliver [--json] webhook URL[,URL...] TOKEN CLIENTS PATH...\n       deliver [--json] mailgate BIN PARALLEL PATH...";

fn main() -> ExitCode {
    // `cargo bench` appends `--bench`; nothing else starts with two dashes but `--json`.
    let mut args: Vec<String> = std::env::args().skip(1).filter(|arg| arg != "--bench").collect();
    let json = args.first().is_some_and(|arg| arg == "--json");
    if json {
        args.remove(0);
    }
    match run(&args, json) {
        Ok(all_delivered) if all_delivered => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("deliver: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String], json: bool) -> Result<bool, String> {
    let [mode, target, rest @ ..] = args else {
        return Err("too few arguments".into());
    };
    let (label, report) = match mode.as_str() {
        "webhook" => {
            let [token, clients, paths @ ..] = rest else {
                return Err("webhook needs TOKEN CLIENTS PATH...".into());
            };
            let clients = parse_count(clients)?;
            let urls = target.split(',').map(Endpoint::parse).collect::<Result<Vec<_>, _>>()?;
            let messages = read_messages(paths)?;
            let report = drive(&messages, clients, |client| {
                let endpoint = &urls[client % urls.len()];
                let mut connection = None;
                move |raw: &[u8]| post(endpoint, token, raw, &mut connection)
            });
            (format!("webhook-x{clients}"), report)
        }
        "mailgate" => {
            let [parallel, paths @ ..] = rest else {
                return Err("mailgate needs PARALLEL PATH...".into());
            };
            let parallel = parse_count(parallel)?;
            let messages = read_messages(paths)?;
            let binary = PathBuf::from(target);
            let report = drive(&messages, parallel, |_| {
                let binary = binary.clone();
                move |raw: &[u8]| run_mailgate(&binary, raw)
            });
            (format!("mailgate-x{parallel}"), report)
        }
        other => return Err(format!("unknown mode {other:?}")),
    };
    let all_delivered = report.statuses.keys().all(|status| status == "200" || status == "0");
    if json {
        println!("{}", report.json());
    } else {
        println!("{}", report.line(&label));
    }
    Ok(all_delivered)
}

fn parse_count(text: &str) -> Result<usize, String> {
    text.parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{text:?} is not a positive count"))
}

/// Every message of every path, files as given and maildirs in file-name order.
fn read_messages(paths: &[String]) -> Result<Vec<Vec<u8>>, String> {
    let mut files = Vec::new();
    for path in paths.iter().map(Path::new) {
        if path.is_dir() {
            let mut found = Vec::new();
            for sub in ["cur", "new"] {
                let Ok(entries) = std::fs::read_dir(path.join(sub)) else {
                    continue;
                };
                for entry in entries {
                    found.push(entry.map_err(|e| format!("{}: {e}", path.display()))?.path());
                }
            }
            found.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
            files.extend(found);
        } else {
            files.push(path.to_path_buf());
        }
    }
    if files.is_empty() {
        return Err("no messages".into());
    }
    files
        .iter()
        .map(|file| std::fs::read(file).map_err(|e| format!("{}: {e}", file.display())))
        .collect()
}

/// How one delivery ended: the HTTP status or exit code, and the desk's `outcome` if it said one.
struct Answer {
    status: String,
    outcome: Option<String>,
}

#[derive(Default)]
struct Report {
    latencies_ms: Vec<f64>,
    seconds: f64,
    statuses: BTreeMap<String, usize>,
    outcomes: BTreeMap<String, usize>,
    driver_cpu_us: u64,
    children_cpu_us: u64,
}

/// Hands the messages out to `workers` threads, each with the delivery function `make` gives it.
fn drive<F, D>(messages: &[Vec<u8>], workers: usize, make: F) -> Report
where
    F: Fn(usize) -> D + Sync,
    D: FnMut(&[u8]) -> Answer,
{
    let next = AtomicUsize::new(0);
    let report = Mutex::new(Report::default());
    let cpu_before = cpu_ticks();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..workers {
            let (next, report, make) = (&next, &report, &make);
            scope.spawn(move || {
                let mut deliver = make(worker);
                let mut mine = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(raw) = messages.get(n) else { break };
                    let start = Instant::now();
                    let answer = deliver(raw);
                    mine.push((start.elapsed().as_secs_f64() * 1000.0, answer));
                }
                let mut report = report.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                for (ms, answer) in mine {
                    report.latencies_ms.push(ms);
                    *report.statuses.entry(answer.status).or_default() += 1;
                    *report
                        .outcomes
                        .entry(answer.outcome.unwrap_or_else(|| "?".into()))
                        .or_default() += 1;
                }
            });
        }
    });
    let mut report = report.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    report.seconds = started.elapsed().as_secs_f64();
    let cpu_after = cpu_ticks();
    report.driver_cpu_us = ticks_to_us(cpu_after.0 - cpu_before.0);
    report.children_cpu_us = ticks_to_us(cpu_after.1 - cpu_before.1);
    report.latencies_ms.sort_by(f64::total_cmp);
    report
}

impl Report {
    fn messages(&self) -> usize {
        self.latencies_ms.len()
    }

    fn rate(&self) -> f64 {
        self.messages() as f64 / self.seconds
    }

    /// The nearest-rank percentile, as the Python driver computed it.
    fn percentile(&self, p: f64) -> f64 {
        let n = self.latencies_ms.len();
        if n == 0 {
            return f64::NAN;
        }
        let k = ((p / 100.0 * (n - 1) as f64).round() as usize).min(n - 1);
        self.latencies_ms[k]
    }

    fn per_message(&self, us: u64) -> u64 {
        us / self.messages().max(1) as u64
    }

    /// Messages, seconds, msg/s, then p50, p95, p99 and the slowest, in ms.
    fn figures(&self) -> (usize, f64, f64, [f64; 4]) {
        let slowest = self.latencies_ms.last().copied().unwrap_or(f64::NAN);
        let latencies = [
            self.percentile(50.0),
            self.percentile(95.0),
            self.percentile(99.0),
            slowest,
        ];
        (self.messages(), self.seconds, self.rate(), latencies)
    }

    fn line(&self, label: &str) -> String {
        let (messages, seconds, rate, [p50, p95, p99, max]) = self.figures();
        let children = if self.children_cpu_us > 0 {
            format!(" children_cpu_us={}", self.per_message(self.children_cpu_us))
        } else {
            String::new()
        };
        let outcomes: Vec<String> = self
            .statuses
            .iter()
            .map(|(status, n)| format!("{status}: {n}"))
            .collect();
        let driver = self.per_message(self.driver_cpu_us);
        format!(
            "{label} messages={messages} seconds={seconds:.3} rate={rate:.0} p50={p50:.2} p95={p95:.2} p99={p99:.2} max={max:.2} driver_cpu_us={driver}{children} outcomes={{{}}}",
            outcomes.join(", "),
        )
    }

    fn json(&self) -> String {
        let (messages, seconds, rate, [p50, p95, p99, max]) = self.figures();
        let object = |map: &BTreeMap<String, usize>| {
            let fields: Vec<String> = map
                .iter()
                .map(|(key, n)| format!("\"{}\": {n}", json_escape(key)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        };
        let driver = self.per_message(self.driver_cpu_us);
        format!(
            "{{\"messages\": {messages}, \"seconds\": {seconds:.3}, \"msg_per_s\": {rate:.1}, \"p50_ms\": {p50:.1}, \"p95_ms\": {p95:.1}, \"p99_ms\": {p99:.1}, \"max_ms\": {:.1}, \"statuses\": {}, \"outcomes\": {}, \"driver_cpu_us_per_msg\": {driver}}}",
            if max.is_nan() { 0.0 } else { max },
            object(&self.statuses),
            object(&self.outcomes),
        )
    }
}

fn json_escape(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

/// This process's CPU ticks (user + system) and those of its waited-for children, from
/// `/proc/self/stat`; zeros where there is no `/proc`.
fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name is in parentheses and may hold spaces: count fields after the last one.
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|field| field.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    // After the name: state is field 0, utime 11, stime 12, cutime 13, cstime 14.
    let field = |i: usize| fields.get(i).copied().unwrap_or(0);
    (field(11) + field(12), field(13) + field(14))
}

/// Linux reports CPU time in USER_HZ ticks, 100 a second on every architecture it runs on.
fn ticks_to_us(ticks: u64) -> u64 {
    ticks * 10_000
}

struct Endpoint {
    address: String,
    host_header: String,
}

impl Endpoint {
    fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?}: only http:// URLs"))?;
        let authority = rest.split('/').next().unwrap_or(rest);
        if authority.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        Ok(Self {
            address: authority.to_owned(),
            host_header: authority.to_owned(),
        })
    }
}

fn post(endpoint: &Endpoint, token: &str, raw: &[u8], connection: &mut Option<TcpStream>) -> Answer {
    match try_post(endpoint, token, raw, connection) {
        Ok(answer) => answer,
        Err(error) => {
            *connection = None;
            Answer {
                status: "error".into(),
                outcome: Some(error.to_string()),
            }
        }
    }
}

fn try_post(
    endpoint: &Endpoint,
    token: &str,
    raw: &[u8],
    connection: &mut Option<TcpStream>,
) -> std::io::Result<Answer> {
    if connection.is_none() {
        let stream = TcpStream::connect(&endpoint.address)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        *connection = Some(stream);
    }
    let Some(stream) = connection.as_mut() else {
        unreachable!("connected above")
    };
    let mut request = format!(
        "POST /inbound/email HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: message/rfc822\r\nContent-Length: {}\r\n\r\n",
        endpoint.host_header,
        raw.len()
    )
    .into_bytes();
    request.extend_from_slice(raw);
    stream.write_all(&request)?;
    let (status, body, keep_alive) = read_response(stream)?;
    if !keep_alive {
        *connection = None;
    }
    Ok(Answer {
        status: status.to_string(),
        outcome: outcome_of(&body),
    })
}

/// Reads one HTTP/1.x response: the status, the body (by `Content-Length`, chunked, or up to
/// the end of the connection) and whether the connection stays open. Requests are sent one
/// at a time, so anything after the response is an error, not the next answer.
fn read_response(stream: &mut TcpStream) -> std::io::Result<(u16, Vec<u8>, bool)> {
    use std::io::BufRead;
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut reader = std::io::BufReader::new(stream);
    let mut line = Vec::new();
    let mut read_line = |reader: &mut std::io::BufReader<&mut TcpStream>| -> std::io::Result<String> {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Err(invalid("connection closed inside the response"));
        }
        Ok(String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_owned())
    };
    let status_line = read_line(&mut reader)?;
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default().to_owned();
    let status = parts
        .next()
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("no status line"))?;
    let mut keep_alive = version != "HTTP/1.0";
    let (mut length, mut chunked) = (None, false);
    loop {
        let header = read_line(&mut reader)?;
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let tokens = || value.split(',').map(str::trim);
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| invalid("bad Content-Length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = tokens().any(|token| token.eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            if tokens().any(|token| token.eq_ignore_ascii_case("close")) {
                keep_alive = false;
            } else if tokens().any(|token| token.eq_ignore_ascii_case("keep-alive")) {
                keep_alive = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let size_line = read_line(&mut reader)?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or_default().trim(), 16)
                .map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !read_line(&mut reader)?.is_empty() {}
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            if !read_line(&mut reader)?.is_empty() {
                return Err(invalid("no line end after a chunk"));
            }
        }
    } else if let Some(length) = length {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    } else {
        reader.read_to_end(&mut body)?;
        keep_alive = false;
    }
    if !reader.buffer().is_empty() {
        return Err(invalid("bytes after the response"));
    }
    Ok((status, body, keep_alive))
}

/// The `"outcome"` string of the desk's JSON answer, found without a JSON parser: the answer
/// is the desk's own, small, and its outcome names hold no quotes.
fn outcome_of(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let after = &text[text.find("\"outcome\"")? + "\"outcome\"".len()..];
    let value = after.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    Some(value[..value.find('"')?].to_owned())
}

fn run_mailgate(binary: &Path, raw: &[u8]) -> Answer {
    let spawned = Command::new(binary)
        .arg("mailgate")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            return Answer {
                status: "spawn-failed".into(),
                outcome: Some(error.to_string()),
            };
        }
    };
    // A mailgate that exits early (say, 75 before reading) closes the pipe: its exit code is the answer.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(raw);
    }
    let status = match child.wait() {
        Ok(status) => status
            .code()
            .map_or_else(|| "signal".to_owned(), |code| code.to_string()),
        Err(error) => format!("wait-failed: {error}"),
    };
    Answer { status, outcome: None }
}
