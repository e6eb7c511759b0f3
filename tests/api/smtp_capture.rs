//! A capture SMTP server on loopback, started by the tests themselves (nothing to install).
//! It speaks enough ESMTP for lettre, keeps every message it accepts, and can be told to
//! answer a temporary (4xx) or permanent (5xx) failure to the next deliveries.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Captured {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: String,
}

impl Captured {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(self.data.as_bytes())
            .expect("a parsable message")
    }

    /// The raw value of a header (first occurrence), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_string());
            }
        }
        value
    }

    /// The text body with line breaks and runs of spaces folded, so phrases can be looked for
    /// whatever the wrapping.
    pub fn text(&self) -> String {
        let body = self.parsed().body_text(0).map(|t| t.into_owned()).unwrap_or_default();
        body.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// How the server answers the end of a message's DATA (or its RCPT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    TemporaryAtData,
    PermanentAtRcpt,
}

#[derive(Clone)]
pub struct SmtpCapture {
    pub port: u16,
    messages: Arc<Mutex<Vec<Captured>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    /// How long the answer to the end of DATA waits (a slow peer).
    data_delay: Arc<Mutex<Duration>>,
    /// Messages whose DATA ended, answered or not yet.
    data_ended: Arc<AtomicUsize>,
}

impl SmtpCapture {
    pub fn start() -> SmtpCapture {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let capture = SmtpCapture {
            port,
            messages: Arc::new(Mutex::new(vec![])),
            script: Arc::new(Mutex::new(VecDeque::new())),
            data_delay: Arc::new(Mutex::new(Duration::ZERO)),
            data_ended: Arc::new(AtomicUsize::new(0)),
        };
        let server = capture.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let session = server.clone();
                std::thread::spawn(move || {
                    let _ = session.serve(stream);
                });
            }
        });
        capture
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The next deliveries get these answers instead of success, in order.
    pub fn fail_next(&self, answers: &[Answer]) {
        self.script.lock().unwrap().extend(answers.iter().copied());
    }

    /// Answers the end of each message's DATA only after `delay`.
    pub fn answer_slowly(&self, delay: Duration) {
        *self.data_delay.lock().unwrap() = delay;
    }

    /// How many messages have been sent in full (whether answered yet or not).
    pub fn data_ended(&self) -> usize {
        self.data_ended.load(Ordering::SeqCst)
    }

    pub fn messages(&self) -> Vec<Captured> {
        self.messages.lock().unwrap().clone()
    }

    fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        let mut out = stream.try_clone()?;
        let mut lines = BufReader::new(stream);
        let mut reply = |text: &str| out.write_all(format!("{text}\r\n").as_bytes());
        reply("220 capture.test ESMTP ready")?;
        let (mut from, mut rcpt) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_string();
            let verb = command.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" => reply("250-capture.test\r\n250-8BITMIME\r\n250 SMTPUTF8")?,
                "HELO" => reply("250 capture.test")?,
                "MAIL" => {
                    from = command[10..].trim().to_string();
                    rcpt.clear();
                    reply("250 OK")?
                }
                "RCPT" => {
                    let next_is_permanent = self.script.lock().unwrap().front() == Some(&Answer::PermanentAtRcpt);
                    if next_is_permanent {
                        self.script.lock().unwrap().pop_front();
                        reply("550 5.1.1 mailbox unavailable")?
                    } else {
                        rcpt.push(command[8..].trim().to_string());
                        reply("250 OK")?
                    }
                }
                "DATA" => {
                    reply("354 end with <CRLF>.<CRLF>")?;
                    let mut data = String::new();
                    loop {
                        line.clear();
                        if lines.read_line(&mut line)? == 0 {
                            return Ok(());
                        }
                        if line == ".\r\n" {
                            break;
                        }
                        data.push_str(
                            line.strip_prefix('.')
                                .filter(|_| line.starts_with(".."))
                                .unwrap_or(&line),
                        );
                    }
                    self.data_ended.fetch_add(1, Ordering::SeqCst);
                    let delay = *self.data_delay.lock().unwrap();
                    std::thread::sleep(delay);
                    let temporary = self.script.lock().unwrap().front() == Some(&Answer::TemporaryAtData);
                    if temporary {
                        self.script.lock().unwrap().pop_front();
                        reply("451 4.3.0 try again later")?
                    } else {
                        self.messages.lock().unwrap().push(Captured {
                            mail_from: from.clone(),
                            rcpt_to: rcpt.clone(),
                            data,
                        });
                        reply("250 OK queued")?
                    }
                }
                "RSET" => {
                    rcpt.clear();
                    reply("250 OK")?
                }
                "NOOP" => reply("250 OK")?,
                "QUIT" => {
                    reply("221 bye")?;
                    return Ok(());
                }
                _ => reply("502 command not implemented")?,
            }
        }
    }
}
