//! Ingestion never panics and never loses a message, whatever arrives (docs/reference.md#inbound-mail: "Nothing is
//! lost"). Arbitrary bytes, plausible but hostile messages, and mutilated copies of those go
//! through `ingest` against one SQLite database per property. After each call the message is
//! findable exactly once (a delivery row, or a quarantine row, with its content hash), and the
//! same bytes a second time are a `duplicate` that adds nothing.
//!
//! Bounded (200 cases per property, `INGEST_FUZZ_CASES` to change) so it runs in seconds in a
//! debug build. A failure is kept in `proptest-regressions/ingest_fuzz.txt` and replayed first on
//! the next run: commit that file.

use base64::Engine as _;
use clap::Parser;
use diesel::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestError, TestRunner};
use recoverydesk::cli::Cli;
use recoverydesk::config::Settings;
use recoverydesk::db::schema::{inbound_messages, messages, outbox, quarantine, tickets};
use recoverydesk::db::{AnyConnection, Pool};
use recoverydesk::services::Desk;
use recoverydesk::services::inbound::{IngestError, Outcome, ingest};

/// RECOVERYDESK_MAX_MESSAGE_BYTES for these tests: small, so that some generated messages
/// (very long lines, big attachments) are above it and must be refused, not stored.
const LIMIT: u64 = 16 * 1024;

/// Cases per property; `INGEST_FUZZ_CASES=5000 cargo test --test ingest_fuzz` for a deeper run.
fn cases() -> u32 {
    std::env::var("INGEST_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}

// ---------------------------------------------------------------------------------------
// The database and the checks

/// A message as bytes, shown as an escaped byte string when a case fails.
#[derive(Clone)]
struct Mail(Vec<u8>);

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mail({} bytes) b\"{}\"", self.0.len(), self.0.escape_ascii())
    }
}

struct Fixture {
    pool: Pool,
    desk: Desk,
    /// How many inputs ended how (created, appended, duplicate, quarantined, too large): shown
    /// with `--nocapture`, to see that a generator reaches every outcome.
    tally: std::cell::RefCell<std::collections::BTreeMap<&'static str, u32>>,
    _dir: tempfile::TempDir,
}

/// Settings as the test app builds them (tests/api/helpers.rs `settings_for`).
fn settings_for(database_url: &str) -> Settings {
    let args = [
        "recoverydesk".to_string(),
        "--database-url".into(),
        database_url.into(),
        "--bind".into(),
        "127.0.0.1:0".into(),
        "--secret-key".into(),
        "ab".repeat(64),
        "--max-message-bytes".into(),
        LIMIT.to_string(),
    ];
    let cli = Cli::try_parse_from(args).expect("test arguments parse");
    let mut settings = Settings::from_options(&cli.options).expect("test settings are valid");
    settings.run_mail_sender = false;
    settings
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("fuzz.db").display());
        let (pool, mut desk) = recoverydesk::startup::prepare(&settings_for(&url)).expect("the database opens");
        // Not an archive import: acknowledgements are enqueued, so the rate limit and our own
        // Message-IDs (which later messages thread to and bounce) are exercised too.
        desk.quiet = false;
        Fixture {
            pool,
            desk,
            tally: Default::default(),
            _dir: dir,
        }
    }

    /// Runs one property: [`cases`] inputs from `strategy`, each checked by [`Fixture::check`].
    fn run(&self, strategy: impl Strategy<Value = Mail>) {
        let config = Config {
            cases: cases(),
            max_shrink_iters: 2_000,
            source_file: Some(file!()),
            // Relative to the package root, where cargo runs integration tests.
            failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
                "proptest-regressions/ingest_fuzz.txt",
            ))),
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        match runner.run(&strategy, |mail| self.check(&mail.0)) {
            Ok(()) => eprintln!("outcomes of the first deliveries: {:?}", self.tally.borrow()),
            Err(TestError::Fail(reason, mail)) => panic!("{reason}\nminimal failing input: {mail:?}"),
            Err(TestError::Abort(reason)) => panic!("aborted: {reason}"),
        }
    }

    /// `<OURS-k>` in a generated message stands for the k-th Message-ID the desk itself has
    /// sent (an acknowledgement), so replies and bounces can name real ones.
    fn with_our_ids(&self, conn: &mut AnyConnection, raw: &[u8]) -> Result<Vec<u8>, TestCaseError> {
        const MARK: &[u8] = b"<OURS-";
        if !raw.windows(MARK.len()).any(|w| w == MARK) {
            return Ok(raw.to_vec());
        }
        let ours: Vec<String> = outbox::table
            .filter(outbox::message_id.is_not_null())
            .order(outbox::id.asc())
            .select(outbox::message_id.assume_not_null())
            .load(conn)
            .map_err(fail)?;
        if ours.is_empty() {
            return Ok(raw.to_vec());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut i = 0;
        while i < raw.len() {
            if raw[i..].starts_with(MARK) {
                let digits = raw[i + MARK.len()..].iter().take_while(|b| b.is_ascii_digit()).count();
                let end = i + MARK.len() + digits;
                if digits > 0 && raw.get(end) == Some(&b'>') {
                    let k: usize = std::str::from_utf8(&raw[i + MARK.len()..end])
                        .ok()
                        .and_then(|d| d.parse().ok())
                        .unwrap_or(0);
                    out.extend_from_slice(ours[k % ours.len()].as_bytes());
                    i = end + 1;
                    continue;
                }
            }
            out.push(raw[i]);
            i += 1;
        }
        Ok(out)
    }

    fn check(&self, generated: &[u8]) -> Result<(), TestCaseError> {
        let mut pooled = self.pool.get().map_err(fail)?;
        let conn: &mut AnyConnection = &mut pooled;
        let raw = self.with_our_ids(conn, generated)?;
        let raw = raw.as_slice();
        // Duplicates are recognised without the trace fields relays and local delivery add.
        let hash = recoverydesk::mail::inbound::fingerprint::content_hash(raw);
        let before = Counts::read(conn, &hash)?;

        let first =
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ingest(conn, &self.desk, raw, "fuzz"))) {
                Ok(result) => result,
                Err(panic) if is_mail_parser_debug_assertion(&*panic) => {
                    // mail-parser 0.11 has a `debug_assert!` that some broken multiparts trip ("Invalid
                    // part ID, could not find multipart."). It fires while parsing, before any
                    // transaction, and only where debug assertions are on: a release build recovers
                    // and carries on (the message is stored or quarantined). Not ours to fail on.
                    return Err(TestCaseError::reject("mail-parser debug assertion (debug builds only)"));
                }
                Err(panic) => std::panic::resume_unwind(panic),
            };
        let after = Counts::read(conn, &hash)?;
        let label = match &first {
            Ok(done) => done.outcome.as_str(),
            Err(IngestError::TooLarge { .. }) => "too_large",
            Err(IngestError::Temporary(_)) => "temporary",
        };
        *self.tally.borrow_mut().entry(label).or_default() += 1;
        let first = match first {
            Err(IngestError::TooLarge { size, limit }) => {
                prop_assert!(raw.len() as u64 > LIMIT, "{} bytes refused as too large", raw.len());
                prop_assert_eq!(size, raw.len());
                prop_assert_eq!(limit, LIMIT);
                prop_assert_eq!(&after, &before, "a refused message left rows behind");
                let again = ingest(conn, &self.desk, raw, "fuzz");
                prop_assert!(matches!(again, Err(IngestError::TooLarge { .. })), "{again:?}");
                prop_assert_eq!(&Counts::read(conn, &hash)?, &before);
                return Ok(());
            }
            Err(IngestError::Temporary(reason)) => {
                return Err(TestCaseError::fail(format!(
                    "temporary failure on a healthy database (the MTA would retry this forever): {reason}"
                )));
            }
            Ok(done) => done,
        };
        prop_assert!(
            raw.len() as u64 <= LIMIT,
            "{} bytes (limit {LIMIT}) were accepted: {first:?}",
            raw.len()
        );
        let line = serde_json::to_string(&first).map_err(fail)?;
        prop_assert!(
            line.contains(&format!("\"outcome\":\"{}\"", first.outcome.as_str())),
            "{line}"
        );

        match first.outcome {
            Outcome::Created | Outcome::Appended => {
                prop_assert!(first.quarantine_id.is_none(), "{first:?}");
                prop_assert_eq!(after.inbound, before.inbound + 1, "one delivery row per message");
                prop_assert_eq!(after.quarantine, before.quarantine);
                prop_assert_eq!(after.inbound_with_hash, 1, "findable exactly once by its hash");
                prop_assert_eq!(after.quarantine_with_hash, 0);
                prop_assert_eq!(after.messages_with_hash, 1, "exactly one ticket message with this hash");
                let expected_tickets = before.tickets + i64::from(first.outcome == Outcome::Created);
                prop_assert_eq!(after.tickets, expected_tickets);
                let (outcome, ticket_id): (String, Option<i64>) = inbound_messages::table
                    .filter(inbound_messages::content_hash.eq(&hash))
                    .select((inbound_messages::outcome, inbound_messages::ticket_id))
                    .first(conn)
                    .map_err(fail)?;
                prop_assert_eq!(outcome.as_str(), first.outcome.as_str());
                let ticket_id = ticket_id.ok_or_else(|| TestCaseError::fail("a delivery row without its ticket"))?;
                prop_assert_eq!(first.ticket.clone(), Some(self.desk.ticket_ref(ticket_id)));
                let (message_ticket, direction): (i64, String) = messages::table
                    .filter(messages::content_hash.eq(&hash))
                    .select((messages::ticket_id, messages::direction))
                    .first(conn)
                    .map_err(fail)?;
                prop_assert_eq!(message_ticket, ticket_id, "the message is on the ticket named");
                prop_assert_eq!(direction.as_str(), "in");
            }
            Outcome::Quarantined => {
                prop_assert!(first.ticket.is_none(), "{first:?}");
                prop_assert_eq!(
                    after.quarantine,
                    before.quarantine + 1,
                    "one quarantine row per message"
                );
                prop_assert_eq!(after.inbound, before.inbound);
                prop_assert_eq!(after.tickets, before.tickets);
                prop_assert_eq!(after.messages, before.messages);
                prop_assert_eq!(after.quarantine_with_hash, 1, "findable exactly once by its hash");
                prop_assert_eq!(after.inbound_with_hash, 0);
                let id = first
                    .quarantine_id
                    .clone()
                    .ok_or_else(|| TestCaseError::fail("a quarantined message must be named"))?;
                let (kept_hash, size, reason): (String, i64, String) = quarantine::table
                    .find(&id)
                    .select((quarantine::content_hash, quarantine::size, quarantine::reason))
                    .first(conn)
                    .map_err(fail)?;
                prop_assert_eq!(kept_hash, hash.clone());
                prop_assert_eq!(size, raw.len() as i64);
                prop_assert!(!reason.is_empty());
            }
            Outcome::Duplicate => {
                // Only the very same bytes are a duplicate: they were stored by an earlier case.
                prop_assert!(
                    before.inbound_with_hash >= 1 || before.quarantine_with_hash == 1,
                    "a duplicate of nothing stored: {first:?} {before:?}"
                );
                prop_assert_eq!(&after, &before, "a duplicate stored something");
            }
        }

        // The MTA delivers it again (a retry after a lost answer, say): nothing new.
        let again = ingest(conn, &self.desk, raw, "fuzz");
        let again = match again {
            Ok(again) => again,
            Err(e) => return Err(TestCaseError::fail(format!("the second delivery failed: {e}"))),
        };
        prop_assert_eq!(again.outcome, Outcome::Duplicate, "second delivery: {:?}", again);
        let third = Counts::read(conn, &hash)?;
        prop_assert_eq!(&third, &after, "a second delivery stored something");
        match first.outcome {
            Outcome::Created | Outcome::Appended => prop_assert_eq!(&again.ticket, &first.ticket),
            Outcome::Quarantined => prop_assert_eq!(&again.quarantine_id, &first.quarantine_id),
            Outcome::Duplicate => prop_assert_eq!(&again, &first),
        }
        Ok(())
    }
}

fn is_mail_parser_debug_assertion(panic: &(dyn std::any::Any + Send)) -> bool {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    message.contains("Invalid part ID, could not find multipart")
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Counts {
    inbound: i64,
    quarantine: i64,
    tickets: i64,
    messages: i64,
    outbox: i64,
    inbound_with_hash: i64,
    quarantine_with_hash: i64,
    messages_with_hash: i64,
}

impl Counts {
    fn read(conn: &mut AnyConnection, hash: &str) -> Result<Counts, TestCaseError> {
        Ok(Counts {
            inbound: inbound_messages::table.count().get_result(conn).map_err(fail)?,
            quarantine: quarantine::table.count().get_result(conn).map_err(fail)?,
            tickets: tickets::table.count().get_result(conn).map_err(fail)?,
            messages: messages::table.count().get_result(conn).map_err(fail)?,
            outbox: outbox::table.count().get_result(conn).map_err(fail)?,
            inbound_with_hash: inbound_messages::table
                .filter(inbound_messages::content_hash.eq(hash))
                .count()
                .get_result(conn)
                .map_err(fail)?,
            quarantine_with_hash: quarantine::table
                .filter(quarantine::content_hash.eq(hash))
                .count()
                .get_result(conn)
                .map_err(fail)?,
            messages_with_hash: messages::table
                .filter(messages::content_hash.eq(hash))
                .count()
                .get_result(conn)
                .map_err(fail)?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Generators

/// Addresses, realistic and odd; the first few recur, so mail from one sender threads by
/// subject tag and meets the acknowledgement cap.
const FROM_VALUES: &[&str] = &[
    "Ann Example <ann@example.com>",
    "ann@example.com",
    "\"Example, Ann\" <ann+recovery@example.com>",
    "bob@example.org",
    "=?UTF-8?B?w4VzYSBOb3JkZW4=?= <asa@example.se>",
    "=?ISO-8859-1?Q?Andr=E9_M=FCller?= <andre@example.fr>",
    "=?UTF-8?B?broken base64?= <b@example.com>",
    "=?x-unknown?Q?who?= <who@example.com>",
    "<>",
    "",
    "undisclosed-recipients:;",
    "Team: ann@example.com, bob@example.org;",
    "Ann <ann@example.com>, Bob <bob@example.org>",
    "MAILER-DAEMON@mx.example.net",
    "Mail Delivery System <postmaster@example.net>",
    "noreply@service.example",
    "No Reply <no-reply@service.example>",
    "root@localhost",
    "support@localhost",
    "no at sign",
    "two@at@signs.example",
    "user@[192.0.2.1]",
    "ünïcødé@exämple.de",
    "\"quoted local\"@example.com",
    "a@b",
    "x@-bad-.example",
    "x@bad..example",
    "<ann@example.com",
    "ann@example.com>",
    "ann@example.com (Ann at work)",
    "Ann <ann@example.com> trailing garbage",
    "@example.com",
    "ann@",
    "\"<evil@example.com>\" <real@example.com>",
    "ann\u{0}nul@example.com",
    "ann@exa\tmple.com",
];

fn from_header() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        6 => prop::sample::select(FROM_VALUES).prop_map(|s| Some(s.to_string())),
        5 => "[a-z0-9._+-]{1,24}@[a-z0-9-]{1,12}\\.(com|org|test)".prop_map(Some),
        1 => "[a-z]{65,300}".prop_map(|local| Some(format!("{local}@example.com"))),
        1 => "\\PC{0,40}".prop_map(Some),
    ]
}

/// Words of a subject: the classifier's vocabulary, robot prefixes, ticket tags, RFC 2047.
const SUBJECT_WORDS: &[&str] = &[
    "Forgot my username",
    "forgot username",
    "IP access",
    "please add my IP to the allowlist",
    "whitelist",
    "Locked out",
    "account terminated",
    "billing question",
    "unpaid invoice",
    "reactivate",
    "535 Authentication failed",
    "api_key",
    "cannot login",
    "help",
    "Re:",
    "RE: Fwd:",
    "Auto:",
    "Automatic reply:",
    "Out of Office",
    "Undeliverable:",
    "Delivery Status Notification (Failure)",
    "Mail delivery failed: returning message to sender",
    "Returned mail: see transcript for details",
    "[RD-]",
    "[RD-0]",
    "[RD-99999999999999999999]",
    "[rd-1]",
    "[RD-1",
    "RD-2]",
    "=?UTF-8?Q?Locked_out_=E2=9C=93?=",
    "=?utf-8?b?SGVscCDinJM=?=",
    "=?ISO-8859-1?Q?caf=E9?=",
    "=?koi8-r?B?8NLJ18XU?=",
    "=?Shift_JIS?B?gqCCooKk?=",
    "=?UTF-8?Q?unterminated",
    "=?UTF-8?X?bad-encoding?=",
    "=??Q?empty-charset?=",
    "=?UTF-8?B?!!!not base64!!!?=",
    "=?UTF-8?Q?=ZZ=?=",
    "=?UTF-8*en?Q?lang_tag?=",
    "password: hunter2",
    "my API key is SG.abcdefghijklmnopqrstuv.wxyz0123456789abcdefghijklmnopqrstuvwxyz012",
];

fn encoded_word() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&["UTF-8", "utf-8", "ISO-8859-1", "windows-1252", "koi8-r", "x-bogus", ""][..]),
        any::<bool>(),
        "\\PC{0,30}",
    )
        .prop_map(|(charset, b, text)| {
            if b {
                format!(
                    "=?{charset}?B?{}?=",
                    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
                )
            } else {
                format!("=?{charset}?Q?{}?=", qp_word(text.as_bytes()))
            }
        })
}

fn qp_word(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            b' ' => "_".to_string(),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("={b:02X}"),
        })
        .collect()
}

fn subject_header() -> impl Strategy<Value = Option<String>> {
    let fragment = prop_oneof![
        5 => prop::sample::select(SUBJECT_WORDS).prop_map(str::to_string),
        3 => encoded_word(),
        2 => (1u32..40).prop_map(|n| format!("[RD-{n}]")),
        2 => "\\PC{0,30}",
        1 => "[a-z]{300,2000}",
    ];
    prop_oneof![
        1 => Just(None),
        8 => prop::collection::vec(fragment, 0..5).prop_map(|parts| Some(parts.join(" "))),
    ]
}

/// Message-IDs: a small pool that is reused (threading, and the same id on different
/// content), fresh ones, our own (`<OURS-k>`, replaced at run time) and broken ones.
fn some_message_id() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (0u8..12).prop_map(|n| format!("<m{n}@fuzz.test>")),
        3 => "[a-z0-9]{6,16}".prop_map(|s| format!("<{s}@fuzz.test>")),
        2 => (0u8..20).prop_map(|n| format!("<OURS-{n}>")),
        2 => prop::sample::select(
            &[
                "no-brackets@fuzz.test",
                "<>",
                "",
                "<a@b> <c@d>",
                "<unterminated@fuzz.test",
                "<no-at-sign>",
                "<rd.forged.mac@localhost>",
                "<\u{0}@fuzz.test>",
                "<ünï@fuzz.test>",
                "<m1@fuzz.test>,<m2@fuzz.test>",
            ][..]
        )
        .prop_map(str::to_string),
        1 => "[a-z]{200,1000}".prop_map(|s| format!("<{s}@fuzz.test>")),
    ]
}

fn ids_header() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        2 => Just(None),
        3 => prop::collection::vec(some_message_id(), 1..4).prop_map(|ids| Some(ids.join(" "))),
    ]
}

const EXTRA_HEADERS: &[&str] = &[
    "To: support@localhost",
    "To: \"Support\" <support@localhost>, other@example.com",
    "Cc: ",
    "Date: Mon, 1 Jan 2024 00:00:00 +0000",
    "Date: not a date at all",
    "Auto-Submitted: auto-replied",
    "Auto-Submitted: no",
    "Auto-Submitted: ",
    "Precedence: bulk",
    "Precedence: first-class",
    "List-Id: <list.example.com>",
    "List-Unsubscribe: <mailto:leave@example.com>",
    "Return-Path: <>",
    "Return-Path: <ann@example.com>",
    "X-Autoreply: yes",
    "X-Auto-Response-Suppress: All",
    "MIME-Version: 1.0",
    "MIME-Version: 9.9",
    "Received: from mx.example.net (mx.example.net [192.0.2.1]) by desk; Mon, 1 Jan 2024 00:00:00 +0000",
    "Subject: a second subject",
    "From: second@example.com",
    "Message-ID: <second@fuzz.test>",
    "Content-Type: text/html",
    "X-Folded: first line\r\n  second line\r\n\tthird line",
    "Header without colon",
    " leading continuation line",
    ": empty name",
    "X-Empty:",
    "X-Nul: a\u{0}b",
];

fn extra_headers() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let header = prop_oneof![
        6 => prop::sample::select(EXTRA_HEADERS).prop_map(|h| h.as_bytes().to_vec()),
        1 => "[a-z]{1000,6000}".prop_map(|v| format!("X-Long: {v}").into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..60).prop_map(|v| {
            let mut h = b"X-Latin: ".to_vec();
            h.extend(v);
            h
        }),
    ];
    prop::collection::vec(header, 0..5)
}

/// The text a body carries before it is encoded.
fn body_text() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        6 => "\\PC{0,200}".prop_map(String::into_bytes),
        2 => prop::sample::select(
            &[
                "Hi,\nI forgot my username. My email is ann@example.com.\nThanks",
                "I am locked out; my IP is 203.0.113.9 and I need it on the allowlist.",
                "username: crm-mailer\n535 5.7.8 Authentication failed",
                "password: hunter2\napi_key=SG.abcdefghijklmnopqrstuv.wxyz0123456789abcdefghijklmnopqrstuvwxyz012",
                "On Mon, Ann wrote:\n> quoted\n> > twice quoted\n",
                "Follow: http://127.0.0.1:0/t/AbCdEf123 and http://127.0.0.1:0/verify/xyz",
                "<html><body><p onclick=\"x()\">Hi<script>alert(1)</script><img src=x></p></body></html>",
                "-- \nsignature",
            ][..]
        )
        .prop_map(|s| s.as_bytes().to_vec()),
        2 => prop::collection::vec(any::<u8>(), 0..300),
        1 => (1000usize..12_000).prop_map(|n| vec![b'x'; n]),
        1 => prop::collection::vec(Just(0u8), 1..20),
    ];
    prop::collection::vec(piece, 0..5).prop_map(|pieces| pieces.concat())
}

/// How a body is written, and what the Content-Transfer-Encoding header says it is.
#[derive(Debug, Clone, Copy)]
enum Encoding {
    Identity,
    Base64,
    Base64Wrapped,
    Base64Garbage,
    QuotedPrintable,
    QuotedPrintableBroken,
}

const DECLARED_ENCODINGS: &[&str] = &[
    "7bit",
    "8bit",
    "binary",
    "quoted-printable",
    "base64",
    "BASE64",
    "x-uuencode",
    "bogus",
    "",
];

fn encoding() -> impl Strategy<Value = (Option<String>, Encoding)> {
    let matched = prop_oneof![
        Just((None, Encoding::Identity)),
        Just((Some("7bit".to_string()), Encoding::Identity)),
        Just((Some("8bit".to_string()), Encoding::Identity)),
        Just((Some("base64".to_string()), Encoding::Base64)),
        Just((Some("base64".to_string()), Encoding::Base64Wrapped)),
        Just((Some("base64".to_string()), Encoding::Base64Garbage)),
        Just((Some("quoted-printable".to_string()), Encoding::QuotedPrintable)),
        Just((Some("quoted-printable".to_string()), Encoding::QuotedPrintableBroken)),
    ];
    let mismatched = (
        prop::option::of(prop::sample::select(DECLARED_ENCODINGS).prop_map(str::to_string)),
        prop::sample::select(
            &[
                Encoding::Identity,
                Encoding::Base64,
                Encoding::Base64Wrapped,
                Encoding::Base64Garbage,
                Encoding::QuotedPrintable,
                Encoding::QuotedPrintableBroken,
            ][..],
        ),
    );
    prop_oneof![3 => matched, 1 => mismatched]
}

fn encode(bytes: &[u8], encoding: Encoding, eol: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    match encoding {
        Encoding::Identity => bytes.to_vec(),
        Encoding::Base64 => b64.encode(bytes).into_bytes(),
        Encoding::Base64Wrapped => b64.encode(bytes).as_bytes().chunks(76).collect::<Vec<_>>().join(eol),
        Encoding::Base64Garbage => {
            let mut out = b64.encode(bytes).into_bytes();
            for (i, b) in out.iter_mut().enumerate() {
                if i % 7 == 3 {
                    *b = b"!*= \x00~"[i % 6];
                }
            }
            out
        }
        Encoding::QuotedPrintable => {
            let mut out = Vec::new();
            let mut line = 0;
            for &b in bytes {
                let piece = match b {
                    b'\n' => {
                        out.extend_from_slice(eol);
                        line = 0;
                        continue;
                    }
                    33..=60 | 62..=126 => vec![b],
                    b' ' => vec![b' '],
                    _ => format!("={b:02X}").into_bytes(),
                };
                if line + piece.len() > 75 {
                    out.push(b'=');
                    out.extend_from_slice(eol);
                    line = 0;
                }
                line += piece.len();
                out.extend(piece);
            }
            out
        }
        Encoding::QuotedPrintableBroken => {
            let mut out = encode(bytes, Encoding::QuotedPrintable, eol);
            out.extend_from_slice(b"=ZZ=4=\xff=");
            out
        }
    }
}

const CHARSETS: &[&str] = &[
    "utf-8",
    "UTF-8",
    "\"utf-8\"",
    "us-ascii",
    "iso-8859-1",
    "windows-1252",
    "koi8-r",
    "shift_jis",
    "iso-2022-jp",
    "gb2312",
    "big5",
    "utf-16",
    "utf-16le",
    "utf-7",
    "x-unknown",
    "",
];

const LEAF_TYPES: &[&str] = &[
    "text/plain",
    "text/plain",
    "text/html",
    "text/enriched",
    "application/octet-stream",
    "application/pdf",
    "image/png",
    "message/delivery-status",
    "text/rfc822-headers",
    "text",
    ";;;",
    "",
];

#[derive(Debug, Clone)]
enum Body {
    Leaf {
        content_type: Option<String>,
        charset: Option<String>,
        disposition: Option<String>,
        declared: Option<String>,
        encoding: Encoding,
        text: Vec<u8>,
    },
    /// A forwarded or returned message inside this one.
    Enclosed { headers: Vec<Vec<u8>>, inner: Box<Body> },
    Multipart {
        subtype: String,
        /// The boundary parameter as declared (None: missing).
        declared: Option<String>,
        /// The boundary the parts are actually separated by.
        used: String,
        preamble: Vec<u8>,
        parts: Vec<Body>,
        closed: bool,
    },
}

fn leaf() -> impl Strategy<Value = Body> {
    (
        prop::option::of(prop::sample::select(LEAF_TYPES).prop_map(str::to_string)),
        prop::option::of(prop::sample::select(CHARSETS).prop_map(str::to_string)),
        prop::option::of(prop::sample::select(
            &[
                "attachment; filename=\"report.pdf\"",
                "attachment; filename*=UTF-8''%E2%9C%93%20proof.txt",
                "attachment; filename=\"=?UTF-8?B?w6k=?=.txt\"",
                "attachment; filename=\"../../etc/passwd\"",
                "attachment",
                "inline",
                "inline; filename=\"a\u{0}b.png\"",
                "attachment; filename=\"",
            ][..],
        ))
        .prop_map(|d| d.map(str::to_string)),
        encoding(),
        body_text(),
    )
        .prop_map(
            |(content_type, charset, disposition, (declared, encoding), text)| Body::Leaf {
                content_type,
                charset,
                disposition,
                declared,
                encoding,
                text,
            },
        )
}

fn boundary() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z0-9'()+_,./:=?-]{1,70}",
        1 => Just(String::new()),
        1 => "[a-z]{71,300}",
        1 => Just("--".to_string()),
    ]
}

fn body() -> impl Strategy<Value = Body> {
    leaf().prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            4 => (
                prop::sample::select(
                    &[
                        "mixed",
                        "alternative",
                        "related",
                        "report; report-type=delivery-status",
                        "signed",
                        "digest",
                        "x-unknown"
                    ][..]
                ),
                prop::option::weighted(0.9, boundary()),
                boundary(),
                prop::sample::select(&[0u8, 0, 0, 0, 0, 0, 0, 0, 1, 2][..]),
                prop::collection::vec(any::<u8>(), 0..40),
                prop::collection::vec(inner.clone(), 0..4),
                prop::bool::weighted(0.8),
            )
                .prop_map(|(subtype, declared, other, which, preamble, parts, closed)| {
                    // Mostly the declared boundary; sometimes another one or none at all.
                    let used = match (&declared, which) {
                        (Some(d), 0) => d.clone(),
                        (_, 1) => other,
                        _ => String::new(),
                    };
                    Body::Multipart {
                        subtype: subtype.to_string(),
                        declared,
                        used,
                        preamble,
                        parts,
                        closed,
                    }
                }),
            1 => (extra_headers(), inner).prop_map(|(headers, inner)| Body::Enclosed {
                headers,
                inner: Box::new(inner),
            }),
        ]
    })
}

/// A bounce of a message of ours: `multipart/report` naming one of our Message-IDs.
fn bounce() -> impl Strategy<Value = Vec<u8>> {
    (0u8..20, some_message_id(), any::<bool>()).prop_map(|(ours, id, headers_part)| {
        let enclosed = if headers_part {
            format!(
                "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <OURS-{ours}>\r\nIn-Reply-To: {id}\r\n\r\n"
            )
        } else {
            format!(
                "--b1\r\nContent-Type: message/rfc822\r\n\r\nFrom: support@localhost\r\nMessage-ID: <OURS-{ours}>\r\nSubject: [RD-1] hello\r\n\r\nour text\r\n"
            )
        };
        format!(
            "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\nTo: support@localhost\r\n\
             Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce-{ours}-{}@mx.example.net>\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n\
             --b1\r\nContent-Type: text/plain\r\n\r\nThis is the mail system.\r\n\
             --b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
             Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\
             Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n{enclosed}--b1--\r\n",
            id.len()
        )
        .into_bytes()
    })
}

fn render_body(body: &Body, eol: &[u8], out_headers: &mut Vec<Vec<u8>>, out: &mut Vec<u8>) {
    match body {
        Body::Leaf {
            content_type,
            charset,
            disposition,
            declared,
            encoding,
            text,
        } => {
            if let Some(ct) = content_type {
                let mut line = format!("Content-Type: {ct}");
                if let Some(cs) = charset {
                    line.push_str(&format!("; charset={cs}"));
                }
                out_headers.push(line.into_bytes());
            }
            if let Some(d) = disposition {
                out_headers.push(format!("Content-Disposition: {d}").into_bytes());
            }
            if let Some(cte) = declared {
                out_headers.push(format!("Content-Transfer-Encoding: {cte}").into_bytes());
            }
            out.extend(encode(text, *encoding, eol));
        }
        Body::Enclosed { headers, inner } => {
            out_headers.push(b"Content-Type: message/rfc822".to_vec());
            let mut inner_headers = headers.clone();
            let mut inner_body = Vec::new();
            render_body(inner, eol, &mut inner_headers, &mut inner_body);
            out.extend(join_message(&inner_headers, &inner_body, eol));
        }
        Body::Multipart {
            subtype,
            declared,
            used,
            preamble,
            parts,
            closed,
        } => {
            let mut ct = format!("Content-Type: multipart/{subtype}");
            if let Some(b) = declared {
                ct.push_str(&format!("; boundary=\"{b}\""));
            }
            out_headers.push(ct.into_bytes());
            out.extend_from_slice(preamble);
            out.extend_from_slice(eol);
            for part in parts {
                out.extend_from_slice(b"--");
                out.extend_from_slice(used.as_bytes());
                out.extend_from_slice(eol);
                let mut part_headers = Vec::new();
                let mut part_body = Vec::new();
                render_body(part, eol, &mut part_headers, &mut part_body);
                out.extend(join_message(&part_headers, &part_body, eol));
                out.extend_from_slice(eol);
            }
            if *closed {
                out.extend_from_slice(b"--");
                out.extend_from_slice(used.as_bytes());
                out.extend_from_slice(b"--");
                out.extend_from_slice(eol);
            }
        }
    }
}

fn join_message(headers: &[Vec<u8>], body: &[u8], eol: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for h in headers {
        out.extend_from_slice(h);
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(eol);
    out.extend_from_slice(body);
    out
}

/// Mostly CRLF, as on the wire; LF as local delivery writes it; a lone CR now and then.
const LINE_ENDINGS: &[&[u8]] = &[b"\r\n", b"\r\n", b"\r\n", b"\r\n", b"\r\n", b"\n", b"\n", b"\r"];

/// A whole message from the generated header values and body.
fn structured() -> impl Strategy<Value = Mail> {
    let headers = (
        from_header(),
        subject_header(),
        ids_header(),
        ids_header(),
        ids_header(),
    );
    prop_oneof![
        9 => (
            headers,
            prop::option::of(some_message_id()),
            extra_headers(),
            prop::bool::weighted(0.2),
            prop_oneof![2 => leaf(), 3 => body()],
            prop::sample::select(LINE_ENDINGS),
        )
            .prop_map(|((from, subject, in_reply_to, references, _), message_id, extra, shuffle, body, eol)| {
                let mut headers: Vec<Vec<u8>> = Vec::new();
                if let Some(v) = from {
                    headers.push(format!("From: {v}").into_bytes());
                }
                if let Some(v) = subject {
                    headers.push(format!("Subject: {v}").into_bytes());
                }
                if let Some(v) = message_id {
                    headers.push(format!("Message-ID: {v}").into_bytes());
                }
                if let Some(v) = in_reply_to {
                    headers.push(format!("In-Reply-To: {v}").into_bytes());
                }
                if let Some(v) = references {
                    headers.push(format!("References: {v}").into_bytes());
                }
                headers.extend(extra);
                let mut rendered = Vec::new();
                render_body(&body, eol, &mut headers, &mut rendered);
                if shuffle {
                    headers.reverse();
                }
                Mail(join_message(&headers, &rendered, eol))
            }),
        1 => bounce().prop_map(Mail),
    ]
}

/// What happens to mail on the way: bytes inserted, dropped, flipped; cut short.
#[derive(Debug, Clone)]
enum Mutation {
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index),
    Flip(prop::sample::Index, u8),
    Truncate(prop::sample::Index),
    Nul(prop::sample::Index),
}

fn mutated() -> impl Strategy<Value = Mail> {
    let mutation = prop_oneof![
        any::<(prop::sample::Index, u8)>().prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Remove),
        any::<(prop::sample::Index, u8)>().prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        any::<prop::sample::Index>().prop_map(Mutation::Nul),
    ];
    (structured(), prop::collection::vec(mutation, 1..8)).prop_map(|(Mail(mut raw), mutations)| {
        for m in mutations {
            if raw.is_empty() {
                break;
            }
            match m {
                Mutation::Insert(i, b) => raw.insert(i.index(raw.len() + 1), b),
                Mutation::Remove(i) => {
                    raw.remove(i.index(raw.len()));
                }
                Mutation::Flip(i, b) => {
                    let at = i.index(raw.len());
                    raw[at] ^= b.max(1);
                }
                Mutation::Truncate(i) => raw.truncate(i.index(raw.len())),
                Mutation::Nul(i) => raw.insert(i.index(raw.len() + 1), 0),
            }
        }
        Mail(raw)
    })
}

// ---------------------------------------------------------------------------------------
// The properties

#[test]
fn arbitrary_bytes_are_never_lost() {
    let bytes = prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..4096),
        1 => prop::collection::vec(prop::sample::select(&b" \t\r\n:<>@=?\0-aZ"[..]), 0..512),
        // A little over the limit: refused, never half stored.
        1 => prop::collection::vec(any::<u8>(), (LIMIT as usize - 8)..(LIMIT as usize + 64)),
    ];
    Fixture::new().run(bytes.prop_map(Mail));
}

#[test]
fn structured_messages_are_never_lost() {
    Fixture::new().run(structured());
}

#[test]
fn mutilated_messages_are_never_lost() {
    Fixture::new().run(mutated());
}

/// Edge cases that must be stored exactly once, checked on every run whatever proptest draws.
#[test]
fn known_awkward_inputs_are_never_lost() {
    let fixture = Fixture::new();
    let long_line = format!("From: a@example.com\r\nSubject: long\r\n\r\n{}\r\n", "y".repeat(15_000));
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\r\n".to_vec(),
        b"\0\0\0".to_vec(),
        b"From: ann@example.com\r\n\r\n".to_vec(),
        b"From: ann@example.com\r\nSubject: \0\r\n\r\n\0body\0".to_vec(),
        b"From: ann@example.com\r\nMessage-ID: <m1@fuzz.test>\r\n\r\nfirst".to_vec(),
        // The same Message-ID with other content: a new message, never dropped.
        b"From: ann@example.com\r\nMessage-ID: <m1@fuzz.test>\r\n\r\nsecond".to_vec(),
        b"From: ann@example.com\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\n\r\nno boundary declared\r\n--x--\r\n"
            .to_vec(),
        b"From: ann@example.com\r\nContent-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\nempty boundary\r\n----\r\n"
            .to_vec(),
        b"From: ann@example.com\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!====\r\n".to_vec(),
        b"From: ann@example.com\r\nContent-Type: text/plain; charset=utf-16\r\n\r\n\xff\xfe\xd8\x00".to_vec(),
        long_line.into_bytes(),
        vec![b'a'; LIMIT as usize + 1],
    ];
    for raw in cases {
        match fixture.check(&raw) {
            Ok(()) | Err(TestCaseError::Reject(_)) => {}
            Err(e) => panic!("{e}\ninput: {:?}", Mail(raw)),
        }
    }
}
