//! PostgreSQL under concurrency, with the real binary: `serve` (one or two instances on one
//! database, its mail sender running) takes webhook posts while `mailgate` processes deliver
//! too and an agent changes the same tickets' state through the API. Every message is answered
//! 200 or exit 0 and stored exactly once, and PostgreSQL never has to break a deadlock
//! (docs/architecture.md, "Locks and their order").

use crate::helpers::{create_pg_database, drop_pg_database, postgres_server_url};
use crate::ops_cli::{SECRET, Served, run, text};
use diesel::prelude::*;
use recoverydesk::db::{self, AnyConnection, DatabaseUrl};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const HOOK_TOKEN: &str = "hook-secret-0123456789";
/// Tickets every writer replies to (and the agent works on).
const SHARED: usize = 8;
const WEBHOOK_WRITERS: usize = 6;
const MAILGATE_WRITERS: usize = 2;
const PER_WEBHOOK_WRITER: usize = 320;
const PER_MAILGATE_WRITER: usize = 60;

/// A PostgreSQL database of the test's own, dropped at the end whatever happens.
struct Database {
    server: String,
    name: String,
    url: String,
}

impl Database {
    fn create() -> Option<Database> {
        let server = postgres_server_url()?;
        let (url, name) = create_pg_database(&server);
        Some(Database { server, name, url })
    }

    fn conn(&self) -> db::PooledConnection {
        let url = DatabaseUrl::parse(&self.url).expect("a PostgreSQL URL");
        db::open_pool(&url, 1)
            .expect("the database opens")
            .get()
            .expect("a connection")
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        drop_pg_database(&self.server, &self.name);
    }
}

fn count(conn: &mut AnyConnection, query: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(query).get_result::<N>(conn).expect("a count").n
}

/// A client that opens a connection per request: a kept-alive one that the server closes after
/// its idle timeout (a writer starved of CPU for seconds on a loaded machine) fails the next
/// request with `IncompleteMessage` before the server has read it, which says nothing about the
/// desk.
fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a client")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A new request from a customer nobody else writes as; the subjects spread the kinds.
fn new_request(writer: &str, i: usize) -> Vec<u8> {
    let subject = match i % 4 {
        0 => "I forgot my username",
        1 => "Locked out by IP after moving office",
        2 => "Question about my invoice",
        _ => "Cannot log in, error 535",
    };
    format!(
        "From: {writer}-{i}@customers.test\r\nTo: support@recoverydesk.test\r\nSubject: {subject}\r\n\
         Message-ID: <new-{writer}-{i}@customers.test>\r\nDate: Sun, 06 Dec 2026 04:00:00 +0000\r\n\r\n\
         Hello, this is request {i} from {writer}.\r\n"
    )
    .into_bytes()
}

/// A reply from shared ticket `t`'s requester: by subject tag, or by In-Reply-To.
fn reply(writer: &str, i: usize, t: usize, reference: &str) -> Vec<u8> {
    let threading = if i % 4 == 1 {
        format!("In-Reply-To: <shared-{t}@customers.test>\r\n")
    } else {
        String::new()
    };
    format!(
        "From: shared{t}@customers.test\r\nTo: support@recoverydesk.test\r\nSubject: Re: [{reference}] my question\r\n\
         {threading}Message-ID: <reply-{writer}-{i}@customers.test>\r\nDate: Sun, 06 Dec 2026 04:00:00 +0000\r\n\r\n\
         More details, {writer} {i}.\r\n"
    )
    .into_bytes()
}

fn shared_request(t: usize) -> Vec<u8> {
    format!(
        "From: shared{t}@customers.test\r\nTo: support@recoverydesk.test\r\nSubject: A question, number {t}\r\n\
         Message-ID: <shared-{t}@customers.test>\r\nDate: Sun, 06 Dec 2026 04:00:00 +0000\r\n\r\n\
         Hello, a general question.\r\n"
    )
    .into_bytes()
}

/// What one writer sent: (new tickets, replies, replies per shared ticket).
#[derive(Default)]
struct Sent {
    created: usize,
    appended: usize,
    per_shared: [usize; SHARED],
}

/// The message a writer sends at step `i`: even steps open a ticket, odd ones reply.
fn message_at(writer: &str, w: usize, i: usize, refs: &[String]) -> (Vec<u8>, Option<usize>) {
    if i.is_multiple_of(2) {
        (new_request(writer, i), None)
    } else {
        let t = (w + i) % SHARED;
        (reply(writer, i, t, &refs[t]), Some(t))
    }
}

fn check_outcome(body: &Value, shared: Option<usize>, what: &str, sent: &mut Sent) {
    match shared {
        None => {
            assert_eq!(body["outcome"], "created", "{what}: {body}");
            sent.created += 1;
        }
        Some(t) => {
            assert_eq!(body["outcome"], "appended", "{what}: {body}");
            sent.appended += 1;
            sent.per_shared[t] += 1;
        }
    }
}

async fn post_mail(client: &reqwest::Client, base: &str, raw: Vec<u8>) -> (StatusCode, Value) {
    let response = client
        .post(format!("{base}/inbound/email"))
        .bearer_auth(HOOK_TOKEN)
        .body(raw)
        .send()
        .await
        .expect("the webhook answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The whole scenario on `instances` `serve` processes sharing one database.
async fn eight_writers(instances: usize) {
    let Some(database) = Database::create() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let mail_dir = dir.path().join("mail").to_string_lossy().into_owned();
    let base_env: Vec<(&str, &str)> = vec![
        ("DATABASE_URL", database.url.as_str()),
        ("RECOVERYDESK_SECRET_KEY", SECRET),
        ("RECOVERYDESK_MAIL_DIR", mail_dir.as_str()),
        ("RECOVERYDESK_INBOUND_TOKEN", HOOK_TOKEN),
        ("RECOVERYDESK_API_RATE_LIMIT", "100000"),
    ];
    let out = run(&base_env, &["migrate"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let mut served = vec![];
    let mut bases = vec![];
    for _ in 0..instances {
        let bind = format!("127.0.0.1:{}", free_port());
        let base = format!("http://{bind}");
        let mut env = base_env.clone();
        env.push(("RECOVERYDESK_BIND", bind.as_str()));
        env.push(("RECOVERYDESK_BASE_URL", base.as_str()));
        served.push(Served::start(&env));
        bases.push(base);
    }
    let token = {
        let mut conn = database.conn();
        recoverydesk::services::agents::issue_token(&mut conn, "admin@localhost").expect("an API token")
    };
    let client = fresh_connections();

    // The tickets everyone replies to.
    let mut refs = vec![];
    for t in 0..SHARED {
        let (status, body) = post_mail(&client, &bases[t % instances], shared_request(t)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        refs.push(body["ticket"].as_str().expect("a ticket").to_string());
    }
    let refs = Arc::new(refs);
    let bases = Arc::new(bases);

    let mut webhook_writers = vec![];
    for w in 0..WEBHOOK_WRITERS {
        let (client, refs, bases) = (client.clone(), refs.clone(), bases.clone());
        webhook_writers.push(tokio::spawn(async move {
            let writer = format!("hook{w}");
            let base = &bases[w % bases.len()];
            let mut sent = Sent::default();
            for i in 0..PER_WEBHOOK_WRITER {
                let (raw, shared) = message_at(&writer, w, i, &refs);
                let (status, body) = post_mail(&client, base, raw).await;
                let what = format!("{writer} message {i}");
                assert_eq!(status, StatusCode::OK, "{what}: {body}");
                check_outcome(&body, shared, &what, &mut sent);
            }
            sent
        }));
    }
    let mut mailgate_writers = vec![];
    for g in 0..MAILGATE_WRITERS {
        let refs = refs.clone();
        let env: Vec<(String, String)> = base_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        mailgate_writers.push(tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let writer = format!("gate{g}");
            let mut sent = Sent::default();
            let mut stderr = String::new();
            for i in 0..PER_MAILGATE_WRITER {
                let (raw, shared) = message_at(&writer, WEBHOOK_WRITERS + g, i, &refs);
                let out = run(&env, &["mailgate"], &raw);
                let what = format!("{writer} message {i}");
                assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stderr));
                let body: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
                check_outcome(&body, shared, &what, &mut sent);
                stderr.push_str(&text(&out.stderr));
            }
            (sent, stderr)
        }));
    }

    // Meanwhile an agent replies on the shared tickets and resolves them; the customers'
    // replies reopen them.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let agent = {
        let (client, refs, bases, done, token) = (client.clone(), refs.clone(), bases.clone(), done.clone(), token);
        tokio::spawn(async move {
            let (mut changes, mut refusals) = (0usize, 0usize);
            let mut round = 0usize;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for (t, reference) in refs.iter().enumerate() {
                    let base = &bases[(t + round) % bases.len()];
                    let calls = [
                        (
                            format!("{base}/api/v1/tickets/{reference}/replies"),
                            json!({"body": format!("Looking into it, round {round}."), "internal": false}),
                        ),
                        (
                            format!("{base}/api/v1/tickets/{reference}/actions/resolve"),
                            json!({"note": format!("answered, round {round}")}),
                        ),
                    ];
                    for (url, body) in calls {
                        let response = client.post(&url).bearer_auth(&token).json(&body).send().await;
                        let response = response.expect("the API answers");
                        let status = response.status();
                        let answer: Value = response.json().await.unwrap_or(Value::Null);
                        match status {
                            StatusCode::OK | StatusCode::CREATED => changes += 1,
                            // Already resolved: the engine refuses, which is an answer.
                            StatusCode::CONFLICT if answer["error"]["code"] != "conflict" => refusals += 1,
                            other => panic!("{url}: {other} {answer}"),
                        }
                    }
                }
                round += 1;
            }
            (changes, refusals)
        })
    };

    let mut total = Sent::default();
    let mut add = |sent: Sent| {
        total.created += sent.created;
        total.appended += sent.appended;
        for t in 0..SHARED {
            total.per_shared[t] += sent.per_shared[t];
        }
    };
    let started = std::time::Instant::now();
    for writer in webhook_writers {
        add(writer.await.expect("a webhook writer"));
    }
    let webhook_seconds = started.elapsed().as_secs_f64();
    let mut mailgate_stderr = String::new();
    for writer in mailgate_writers {
        let (sent, stderr) = writer.await.expect("a mailgate writer");
        add(sent);
        mailgate_stderr.push_str(&stderr);
    }
    let all_seconds = started.elapsed().as_secs_f64();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (changes, refusals) = agent.await.expect("the agent");
    assert!(changes > 0, "the agent changed tickets while the mail came in");

    // The servers stop, so PostgreSQL has every backend's statistics.
    let mut log = vec![];
    for s in served {
        let (code, lines) = s.stop(Duration::from_secs(30));
        assert_eq!(code, Some(0), "serve stops cleanly");
        log.extend(lines);
    }

    let messages = WEBHOOK_WRITERS * PER_WEBHOOK_WRITER + MAILGATE_WRITERS * PER_MAILGATE_WRITER;
    assert_eq!(total.created + total.appended, messages);
    let mut conn = database.conn();
    let stored = count(&mut conn, "SELECT count(*) AS n FROM inbound_messages") as usize;
    assert_eq!(
        stored,
        SHARED + messages,
        "every message stored once: none lost, none twice"
    );
    let distinct = count(
        &mut conn,
        "SELECT count(DISTINCT message_id) AS n FROM inbound_messages",
    ) as usize;
    assert_eq!(distinct, SHARED + messages);
    let incoming = count(&mut conn, "SELECT count(*) AS n FROM messages WHERE direction = 'in'") as usize;
    assert_eq!(incoming, SHARED + messages);
    let tickets = count(&mut conn, "SELECT count(*) AS n FROM tickets") as usize;
    assert_eq!(tickets, SHARED + total.created);
    for (t, reference) in refs.iter().enumerate() {
        let id: i64 = reference
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a number");
        let on_ticket = count(
            &mut conn,
            &format!("SELECT count(*) AS n FROM messages WHERE direction = 'in' AND ticket_id = {id}"),
        ) as usize;
        assert_eq!(on_ticket, 1 + total.per_shared[t], "{reference}");
    }
    // The queue's counts are the tickets'.
    let mut counted: Vec<(String, String, i64)> = db::console::counts(&mut conn)
        .expect("counts")
        .into_iter()
        .map(|(kind, state, n)| (kind.to_string(), state.to_string(), n))
        .collect();
    counted.sort();
    assert_eq!(counted, grouped(&mut conn));
    assert_eq!(
        counted.iter().map(|(_, _, n)| *n as usize).sum::<usize>(),
        SHARED + total.created
    );

    let deadlocks = count(
        &mut conn,
        "SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()",
    );
    let retried: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("deadlock") || l.contains("write transaction hit"))
        .collect();
    eprintln!(
        "{instances} instance(s): {messages} messages, {changes} agent changes, {refusals} refusals, \
         {deadlocks} deadlocks, {} retries logged; webhook writers done after {webhook_seconds:.1} s, \
         mailgate writers after {all_seconds:.1} s",
        retried.len()
    );
    assert_eq!(deadlocks, 0, "PostgreSQL broke a deadlock");
    assert!(retried.is_empty(), "serve logged: {retried:?}");
    assert!(!mailgate_stderr.contains("deadlock"), "{mailgate_stderr}");
}

/// (kind, state, tickets) straight from the tickets, sorted.
fn grouped(conn: &mut AnyConnection) -> Vec<(String, String, i64)> {
    use recoverydesk::db::schema::tickets;
    let mut rows: Vec<(String, String, i64)> = tickets::table
        .group_by((tickets::kind, tickets::state))
        .select((tickets::kind, tickets::state, diesel::dsl::count_star()))
        .load(conn)
        .expect("a count");
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_on_one_serve_instance_answer_every_message_without_a_deadlock() {
    eight_writers(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_on_two_serve_instances_answer_every_message_without_a_deadlock() {
    eight_writers(2).await;
}

/// The same message, delivered eight times at once through both channels (a webhook retry
/// racing the MTA): stored once, every delivery answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_message_delivered_eight_times_at_once_is_stored_once() {
    let Some(database) = Database::create() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let mail_dir = dir.path().join("mail").to_string_lossy().into_owned();
    let bind = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{bind}");
    let env: Vec<(&str, &str)> = vec![
        ("DATABASE_URL", database.url.as_str()),
        ("RECOVERYDESK_SECRET_KEY", SECRET),
        ("RECOVERYDESK_MAIL_DIR", mail_dir.as_str()),
        ("RECOVERYDESK_INBOUND_TOKEN", HOOK_TOKEN),
        ("RECOVERYDESK_BIND", bind.as_str()),
        ("RECOVERYDESK_BASE_URL", base.as_str()),
    ];
    let out = run(&env, &["migrate"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let served = Served::start(&env);
    let client = fresh_connections();
    for round in 0..10 {
        let raw = new_request(&format!("twice{round}"), round);
        let mut deliveries = vec![];
        for d in 0..8 {
            let (client, base, raw) = (client.clone(), base.clone(), raw.clone());
            let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            deliveries.push(tokio::spawn(async move {
                if d % 4 == 3 {
                    tokio::task::spawn_blocking(move || {
                        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                        let out = run(&env, &["mailgate"], &raw);
                        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
                        serde_json::from_slice::<Value>(&out.stdout).expect("one JSON line")
                    })
                    .await
                    .expect("a mailgate")
                } else {
                    let (status, body) = post_mail(&client, &base, raw).await;
                    assert_eq!(status, StatusCode::OK, "{body}");
                    body
                }
            }));
        }
        let mut outcomes = vec![];
        for d in deliveries {
            outcomes.push(
                d.await.expect("a delivery")["outcome"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string(),
            );
        }
        outcomes.sort();
        let created = outcomes.iter().filter(|o| *o == "created").count();
        let duplicate = outcomes.iter().filter(|o| *o == "duplicate").count();
        assert_eq!((created, duplicate), (1, 7), "round {round}: {outcomes:?}");
    }
    drop(served);
    let mut conn = database.conn();
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM inbound_messages"), 10);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM tickets"), 10);
}
