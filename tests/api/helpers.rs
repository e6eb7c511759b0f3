//! Test support: spawn the app, seed the directory, call the API, read the outbox.

use clap::Parser;
use recoverydesk::cli::Cli;
use recoverydesk::config::Settings;
use recoverydesk::db::{self, AnyConnection, Pool};
use recoverydesk::services::{Desk, accounts, agents};
use recoverydesk::startup::{Application, prepare};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs the same scenario on SQLite and on PostgreSQL: `both_backends!(name, scenario)`
/// makes `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $scenario:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await {
                    super::$scenario(app).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await {
                    super::$scenario(app).await;
                }
            }
        }
    };
}

pub struct TestApp {
    pub address: String,
    /// The admin's password: the one-time password the first start printed, replaced (as
    /// `agents password` does) so that tests sign in without the forced change.
    pub admin_password: String,
    /// The one-time password itself (replaced already: it no longer signs in).
    pub one_time_password: String,
    /// The clock the app's expiry rules read: tests move it instead of waiting.
    pub clock: recoverydesk::clock::Clock,
    pub token: String,
    pub pool: Pool,
    pub desk: Desk,
    pub client: reqwest::Client,
    pub database_url: String,
    _dir: tempfile::TempDir,
    pg_database: Option<(String, String)>,
}

/// The PostgreSQL server for tests, or None (and a loud note) when it is not configured.
pub fn postgres_server_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("SKIPPED: TEST_DATABASE_URL is not set, so this PostgreSQL test did not run");
            None
        }
    }
}

/// The server URL with `sslmode=require` (replacing any other sslmode).
pub fn with_sslmode_require(server_url: &str) -> String {
    let (location, query) = server_url.split_once('?').unwrap_or((server_url, ""));
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("sslmode="))
        .collect();
    pairs.push("sslmode=require");
    format!("{location}?{}", pairs.join("&"))
}

fn random_suffix() -> String {
    recoverydesk::crypto::random_token()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect()
}

/// Creates a fresh database on the test server; returns its URL.
pub fn create_pg_database(server_url: &str) -> (String, String) {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let name = format!("rd_test_{}", random_suffix());
    let mut admin = PgConnection::establish(server_url).expect("TEST_DATABASE_URL must reach PostgreSQL");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .expect("create test database");
    // The query (`?sslmode=require`, …) applies to the new database too.
    let (location, query) = match server_url.split_once('?') {
        Some((location, query)) => (location, format!("?{query}")),
        None => (server_url, String::new()),
    };
    let base = location.rsplit_once('/').map(|(b, _)| b).unwrap_or(location);
    (format!("{base}/{name}{query}"), name)
}

pub fn drop_pg_database(server_url: &str, name: &str) {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    if let Ok(mut admin) = PgConnection::establish(server_url) {
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin);
    }
}

pub fn settings_for(database_url: &str, extra: &[(&str, &str)]) -> Settings {
    let mut args = vec![
        "recoverydesk".to_string(),
        "--database-url".into(),
        database_url.into(),
        "--bind".into(),
        "127.0.0.1:0".into(),
        "--secret-key".into(),
        "ab".repeat(64),
    ];
    for (flag, value) in extra {
        args.push(flag.to_string());
        args.push(value.to_string());
    }
    let cli = Cli::try_parse_from(args).expect("test arguments parse");
    let mut settings = Settings::from_options(&cli.options).expect("test settings are valid");
    // Tests deliver mail themselves, at the moments they choose.
    settings.run_mail_sender = false;
    settings
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, &[]).await
    }

    pub fn backend(&self) -> Backend {
        if self.pg_database.is_some() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// A fresh app on the same backend with other settings (the scenario macro spawns with
    /// the defaults).
    pub async fn respawn_with(self, extra: &[(&str, &str)]) -> TestApp {
        let backend = self.backend();
        drop(self);
        TestApp::spawn_with(backend, extra)
            .await
            .expect("the backend was available a moment ago")
    }

    pub async fn spawn_with(backend: Backend, extra: &[(&str, &str)]) -> Option<TestApp> {
        Self::spawn_on(backend, false, extra).await
    }

    /// PostgreSQL with `sslmode=require` added to TEST_DATABASE_URL: the connections are TLS.
    pub async fn spawn_postgres_tls() -> Option<TestApp> {
        Self::spawn_on(Backend::Postgres, true, &[]).await
    }

    /// An app whose admin still has the one-time password of the first start (which must be
    /// changed at the first sign-in): `admin_password` is that one-time password.
    pub async fn spawn_with_one_time_password(backend: Backend) -> Option<TestApp> {
        Self::spawn_inner(backend, false, &[], true).await
    }

    async fn spawn_on(backend: Backend, tls: bool, extra: &[(&str, &str)]) -> Option<TestApp> {
        Self::spawn_inner(backend, tls, extra, false).await
    }

    async fn spawn_inner(
        backend: Backend,
        tls: bool,
        extra: &[(&str, &str)],
        keep_one_time_password: bool,
    ) -> Option<TestApp> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (database_url, pg_database) = match backend {
            Backend::Sqlite => (format!("sqlite://{}", dir.path().join("desk.db").display()), None),
            Backend::Postgres => {
                let mut server = postgres_server_url()?;
                if tls {
                    server = with_sslmode_require(&server);
                }
                let (url, name) = create_pg_database(&server);
                (url, Some((server, name)))
            }
        };
        // Mail goes to .eml files in the test's own directory (unless the test names one):
        // the links in them are the only copy of each token.
        let default_mail_dir = dir.path().join("mail");
        let mut extra: Vec<(&str, &str)> = extra.to_vec();
        if !extra.iter().any(|(flag, _)| *flag == "--mail-dir") {
            extra.push(("--mail-dir", default_mail_dir.to_str().expect("a UTF-8 temp path")));
        }
        let mut settings = settings_for(&database_url, &extra);
        let app = Application::build(settings.clone()).expect("the application builds");
        let one_time_password = app.admin_password.clone().unwrap_or_default();
        let port = app.port();
        settings.base_url = format!("http://127.0.0.1:{port}");
        tokio::spawn(app.run_until_stopped());
        let (pool, desk) = prepare(&settings).expect("database opens");
        let (token, admin_password) = {
            let mut conn = pool.get().expect("connection");
            let password = if keep_one_time_password {
                one_time_password.clone()
            } else {
                let password = format!("admin-{}", random_suffix());
                agents::set_password(&mut conn, "admin@localhost", &password).expect("the admin's password is set");
                password
            };
            let token = agents::issue_token(&mut conn, "admin@localhost").expect("admin token");
            (token, password)
        };
        Some(TestApp {
            admin_password,
            one_time_password,
            clock: settings.clock.clone(),
            address: format!("http://127.0.0.1:{port}"),
            token,
            pool,
            desk,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            database_url,
            _dir: dir,
            pg_database,
        })
    }

    pub fn conn(&self) -> db::PooledConnection {
        self.pool.get().expect("a database connection")
    }

    /// Loads JSON Lines into the directory, as `recoverydesk accounts import` does.
    pub fn import_accounts(&self, lines: &[Value]) -> accounts::ImportSummary {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let mut conn = self.conn();
        accounts::import(&mut conn, &self.desk, std::io::Cursor::new(text), |_, _| {}).expect("import runs")
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.address))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn create_ticket(&self, body: Value) -> Value {
        let (status, ticket) = self.post("/api/v1/tickets", &body).await;
        assert_eq!(status, StatusCode::CREATED, "creating {body}: {ticket}");
        ticket
    }

    /// An agent's reply (`internal`: a note) through the API: status and body.
    pub async fn reply(&self, reference: &str, body: &str, internal: bool) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/tickets/{reference}/replies"),
            &json!({"body": body, "internal": internal}),
        )
        .await
    }

    /// A `general` ticket from `requester` about `subject`; returns its reference.
    pub async fn general_ticket(&self, requester: &str, subject: &str) -> String {
        reference(
            &self
                .create_ticket(
                    json!({"kind": "general", "requester": requester, "subject": subject, "body": "Hello, I need help."}),
                )
                .await,
        )
    }

    pub async fn action(&self, reference: &str, name: &str, params: Value) -> (StatusCode, Value) {
        self.post(&format!("/api/v1/tickets/{reference}/actions/{name}"), &params)
            .await
    }

    /// An action that must succeed; returns the ticket.
    pub async fn act(&self, reference: &str, name: &str, params: Value) -> Value {
        let (status, body) = self.action(reference, name, params).await;
        assert_eq!(status, StatusCode::OK, "{name} on {reference}: {body}");
        body
    }

    pub async fn ticket(&self, reference: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v1/tickets/{reference}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Every outbox row, as (template, recipient, params).
    pub fn outbox(&self) -> Vec<(String, String, Value)> {
        let mut conn = self.conn();
        db::outbox::all(&mut conn)
            .expect("outbox")
            .into_iter()
            .map(|row| {
                (
                    row.template,
                    row.recipient,
                    serde_json::from_str(&row.params).unwrap_or(Value::Null),
                )
            })
            .collect()
    }

    pub fn outbox_of(&self, reference: &str) -> Vec<(String, String, Value)> {
        self.outbox()
            .into_iter()
            .filter(|(_, _, p)| p["ref"] == json!(reference))
            .collect()
    }

    /// Delivers what is due, then returns the link path (`/verify/…`) of the latest email
    /// challenge, read from the mail as the mailbox receives it: the link exists nowhere else.
    pub async fn latest_challenge_path(&self) -> String {
        self.deliver(0).await;
        self.delivered_mail()
            .into_iter()
            .rev()
            .filter(|m| m.file.ends_with("-email_challenge.eml"))
            .find_map(|m| link_path(&m.body, "/verify/"))
            .expect("a delivered challenge mail with a link")
    }

    pub async fn confirm_challenge(&self, path: &str, answer: &str) -> StatusCode {
        self.client
            .post(format!("{}{path}", self.address))
            .form(&[("answer", answer)])
            .send()
            .await
            .expect("request")
            .status()
    }

    /// Opens a `general` ticket through the service itself, as a channel would (mail, say).
    pub fn open_direct(
        &self,
        requester: &str,
        subject: &str,
        channel: recoverydesk::services::tickets::Channel,
    ) -> i64 {
        use recoverydesk::services::tickets::{RequestFields, open_ticket};
        let request = RequestFields {
            kind: recoverydesk::domain::ticket::Kind::General,
            requester: recoverydesk::domain::email_address::EmailAddress::parse(requester).expect("a valid address"),
            subject: subject.to_string(),
            body: "hello".into(),
            account: None,
            current_ip: None,
            tried_from: None,
            attempts_outcome: None,
            smtp_username: None,
            failed_at: None,
            problem: None,
            error_text: None,
            channel,
            actor: recoverydesk::services::Actor::System,
        }
        .scrub();
        let mut conn = self.conn();
        open_ticket(&mut conn, &self.desk, request)
            .expect("the ticket opens")
            .ticket
            .id
    }

    /// Posts a customer form (no token: customers have none). Returns status, Location, body.
    pub async fn form(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, Option<String>, String) {
        self.form_from(path, fields, None).await
    }

    /// The same, as relayed by a proxy that says the client is `forwarded_for`.
    pub async fn form_from(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        forwarded_for: Option<&str>,
    ) -> (StatusCode, Option<String>, String) {
        let mut request = self.client.post(format!("{}{path}", self.address)).form(fields);
        if let Some(ip) = forwarded_for {
            request = request.header("X-Forwarded-For", ip);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // As a browser does: the redirect to the confirmation page is followed with the cookie
        // the answer set (the page reads it, not the URL); its page is the body returned.
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("rd_submitted="))
            .and_then(|v| v.split(';').next())
            .map(str::to_string);
        let body = response.text().await.unwrap_or_default();
        match (&location, cookie) {
            (Some(to), Some(cookie)) if status == StatusCode::SEE_OTHER => {
                let page = self
                    .client
                    .get(format!("{}{to}", self.address))
                    .header("Cookie", cookie)
                    .send()
                    .await
                    .expect("the confirmation page");
                (status, location, page.text().await.unwrap_or_default())
            }
            _ => (status, location, body),
        }
    }

    /// A page, as a browser fetches it: status and body.
    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.text().await.unwrap_or_default())
    }

    /// Delivers what is due, then returns a status-page path mailed to the requester of a
    /// ticket (each mail carries a link of its own; any of them opens the page).
    pub async fn status_path_of(&self, reference: &str) -> String {
        self.deliver(0).await;
        let tag = format!("-{reference}-");
        self.delivered_mail()
            .into_iter()
            .rev()
            .filter(|m| m.file.contains(&tag))
            .find_map(|m| link_path(&m.body, "/t/"))
            .expect("a delivered mail to the requester with the status link")
    }

    /// Delivers what is due, then returns a status-page path mailed to `recipient`.
    pub async fn status_path_mailed_to(&self, recipient: &str) -> String {
        self.deliver(0).await;
        self.delivered_mail()
            .into_iter()
            .rev()
            .filter(|m| m.to.eq_ignore_ascii_case(recipient))
            .find_map(|m| link_path(&m.body, "/t/"))
            .unwrap_or_else(|| panic!("no delivered mail with a status link to {recipient}"))
    }

    /// Every mail delivered to the mail directory so far, oldest first.
    pub fn delivered_mail(&self) -> Vec<DeliveredMail> {
        let Ok(entries) = std::fs::read_dir(&self.desk.settings.mail_dir) else {
            return vec![];
        };
        let mut mails: Vec<DeliveredMail> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
            .map(|e| {
                let raw = std::fs::read(e.path()).expect("a readable .eml file");
                let parsed = mail_parser::MessageParser::default()
                    .parse(&raw)
                    .expect("the desk writes parseable mail");
                let to = parsed
                    .to()
                    .and_then(|a| a.first())
                    .and_then(|a| a.address())
                    .unwrap_or_default()
                    .to_string();
                DeliveredMail {
                    file: e.file_name().to_string_lossy().into_owned(),
                    to,
                    body: parsed.body_text(0).map(|b| b.into_owned()).unwrap_or_default(),
                    raw,
                }
            })
            .collect();
        // File names start with the creation time and carry the outbox id: order by that id.
        mails.sort_by_key(|m| {
            m.file
                .rsplit('-')
                .nth(1)
                .and_then(|id| id.parse::<i64>().ok())
                .unwrap_or_default()
        });
        mails
    }

    /// Receives a raw message as every inbound channel does.
    pub fn ingest(&self, raw: &[u8]) -> recoverydesk::services::inbound::Ingested {
        let mut conn = self.conn();
        recoverydesk::services::inbound::ingest(&mut conn, &self.desk, raw, "test").expect("ingestion runs")
    }

    /// A ticket opened for `requester` whose acknowledgement went out: its reference and the
    /// acknowledgement's Message-ID (what a bounce of it names).
    pub async fn acknowledged_ticket(&self, requester: &str) -> (String, String) {
        let t = self
            .create_ticket(
                serde_json::json!({"kind": "general", "requester": requester, "subject": "Hello", "body": "hi"}),
            )
            .await;
        let r = reference(&t);
        self.deliver(0).await;
        let ours = self
            .our_message_ids(&r)
            .first()
            .cloned()
            .expect("an acknowledgement was sent");
        (r, ours)
    }

    /// Our outbound Message-IDs on a ticket, oldest first.
    pub fn our_message_ids(&self, reference: &str) -> Vec<String> {
        let number: i64 = reference
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a reference");
        let mut conn = self.conn();
        db::outbox::of_ticket(&mut conn, number)
            .expect("outbox")
            .into_iter()
            .filter_map(|r| r.message_id)
            .collect()
    }

    /// A mail sender on this app's database, as `serve` runs one.
    pub fn sender(&self) -> recoverydesk::mail::outbound::sender::Sender {
        let transport = recoverydesk::mail::outbound::transport::Transport::from_settings(&self.desk.settings)
            .expect("the test transport is valid");
        recoverydesk::mail::outbound::sender::Sender::new(self.pool.clone(), self.desk.clone(), transport)
    }

    /// Delivers what is due `seconds_from_now` seconds from now.
    pub async fn deliver(&self, seconds_from_now: i64) -> recoverydesk::mail::outbound::sender::DeliveryReport {
        let at = db::now() + chrono::Duration::seconds(seconds_from_now);
        self.sender().deliver_due(at, 50).await.expect("delivery runs")
    }

    /// Outbox rows as (template, recipient, status, attempts, last_error).
    pub fn outbox_status(&self) -> Vec<(String, String, String, i32, Option<String>)> {
        let mut conn = self.conn();
        db::outbox::all(&mut conn)
            .expect("outbox")
            .into_iter()
            .map(|r| (r.template, r.recipient, r.status, r.attempts, r.last_error))
            .collect()
    }

    pub fn raw_conn(&self) -> AnyConnection {
        use diesel::Connection;
        match db::DatabaseUrl::parse(&self.database_url).expect("url") {
            db::DatabaseUrl::Postgres(u) => AnyConnection::Postgresql(diesel::PgConnection::establish(&u).expect("pg")),
            db::DatabaseUrl::Sqlite(p) => {
                AnyConnection::Sqlite(diesel::SqliteConnection::establish(&p.to_string_lossy()).expect("sqlite"))
            }
        }
    }
}

/// A mail as the recipient's mailbox got it.
#[derive(Debug, Clone)]
pub struct DeliveredMail {
    pub file: String,
    pub to: String,
    /// The text body, decoded.
    pub body: String,
    pub raw: Vec<u8>,
}

/// The path of the first link in `text` that starts with `prefix` (`/t/`, `/verify/`), up to
/// the end of its token.
pub fn link_path(text: &str, prefix: &str) -> Option<String> {
    let start = text.find(prefix)?;
    let tail = &text[start + prefix.len()..];
    let end = tail
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(tail.len());
    (end > 0).then(|| format!("{prefix}{}", &tail[..end]))
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((server, name)) = &self.pg_database {
            drop_pg_database(server, name);
        }
    }
}

/// A directory line in docs/reference.md#account-directory's shape.
/// The reference on the confirmation page a form's answer leads to (the page a browser shows
/// after the redirect: `TestApp::form` returns it as the body).
pub fn reference_on_page(page: &str) -> String {
    let start = page
        .find(r#"<span class="ref">"#)
        .expect("a reference on the confirmation page")
        + 18;
    let end = page[start..].find('<').expect("the reference ends") + start;
    page[start..end].to_string()
}

pub fn account(id: &str, username: &str, email: &str, status: &str) -> Value {
    json!({"id": id, "username": username, "email": email, "status": status, "parent_id": null,
           "ip_access": {"enabled": true, "allowlist": ["203.0.113.7"]},
           "balance_due_cents": 0, "terminated_at": null, "banned_at": null, "dedicated_ips": []})
}

pub fn event_types(ticket: &Value) -> Vec<String> {
    ticket["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("").to_string())
        .collect()
}

pub fn action_verdict(ticket: &Value, name: &str) -> Value {
    ticket["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["name"] == json!(name))
        .cloned()
        .unwrap_or(Value::Null)
}

pub fn reference(ticket: &Value) -> String {
    ticket["ref"].as_str().expect("ref").to_string()
}

/// The password of the plain agent [`plain_agent`] adds.
pub const PLAIN_PASSWORD: &str = "a long enough password";

/// Adds `plain@localhost`, an agent who is not an admin, and returns an API token of theirs.
pub fn plain_agent(app: &TestApp) -> String {
    let mut conn = app.conn();
    agents::add_agent(&mut conn, "plain@localhost", "Plain", "agent", PLAIN_PASSWORD).expect("agent");
    agents::issue_token(&mut conn, "plain@localhost").expect("token")
}

/// Opens 21 tickets that each mail `target@x.test` (account acc_1 is imported first): past the
/// per-recipient hourly cap, so the last ticket's mail is `held`. Returns that ticket's reference.
pub async fn ticket_with_held_mail(app: &TestApp) -> String {
    app.import_accounts(&[account("acc_1", "target", "target@x.test", "active")]);
    let mut last = String::new();
    for _ in 0..21 {
        last = reference(
            &app.create_ticket(json!({"kind": "forgot_username", "requester": "target@x.test"}))
                .await,
        );
    }
    last
}

/// The first event of `event_type` in a ticket's JSON, oldest first.
pub fn first_event(ticket: &Value, event_type: &str) -> Value {
    events_of_type(ticket, event_type)
        .next()
        .unwrap_or_else(|| panic!("no {event_type} event: {ticket}"))
}

/// The latest event of `event_type` in a ticket's JSON.
pub fn last_event(ticket: &Value, event_type: &str) -> Value {
    events_of_type(ticket, event_type)
        .last()
        .unwrap_or_else(|| panic!("no {event_type} event: {ticket}"))
}

fn events_of_type<'a>(ticket: &'a Value, event_type: &'a str) -> impl Iterator<Item = Value> + 'a {
    ticket["events"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(move |e| e["type"] == event_type)
        .cloned()
}

/// Opens a ticket with `fields` through the API: its reference and its status page's path.
pub async fn ticket_with_status_page(app: &TestApp, fields: Value) -> (String, String) {
    let r = reference(&app.create_ticket(fields).await);
    let path = app.status_path_of(&r).await;
    (r, path)
}

/// Opens an ip_lockout ticket of `account_id` (registered as `email`) from that address and
/// walks it to `ownership_verified`: attempts reported, the email challenge confirmed, one more
/// check passed. Returns its reference.
pub async fn verified_lockout(app: &TestApp, account_id: &str, email: &str) -> String {
    let ticket = app
        .create_ticket(
            json!({"kind": "ip_lockout", "requester": email, "subject": "Locked out",
                              "body": "new office", "current_ip": "198.51.100.77", "account": account_id}),
        )
        .await;
    let r = reference(&ticket);
    verify_ownership(
        app,
        &r,
        "office 203.0.113.7",
        json!({"method": "billing_details", "passed": true, "evidence": "invoice matches"}),
    )
    .await;
    r
}

/// Takes an IP-lockout ticket along the policy to `ownership_verified`: the allowlisted IPs
/// tried (`tried_from`, blocked), verification started, the mailed challenge confirmed, and a
/// passed check with the parameters `check`.
pub async fn verify_ownership(app: &TestApp, r: &str, tried_from: &str, check: Value) {
    app.act(
        r,
        "record_allowlisted_attempts",
        json!({"tried_from": tried_from, "outcome": "blocked"}),
    )
    .await;
    app.act(r, "start_ownership_verification", json!({})).await;
    app.act(r, "send_email_challenge", json!({})).await;
    let path = app.latest_challenge_path().await;
    assert_eq!(app.confirm_challenge(&path, "confirm").await, StatusCode::OK);
    let ticket = app.act(r, "record_verification_check", check).await;
    assert_eq!(ticket["state"], "ownership_verified");
}

/// Sends a console request: its status, its Location, its page.
pub async fn page_of(request: reqwest::RequestBuilder) -> (StatusCode, Option<String>, String) {
    let response = request.send().await.expect("request");
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, location, response.text().await.unwrap_or_default())
}

/// A browser-like client of the agent console: cookies kept, redirects not followed.
pub struct Console {
    pub client: reqwest::Client,
    pub address: String,
}

impl Console {
    pub fn new(app: &TestApp) -> Console {
        Console {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            address: app.address.clone(),
        }
    }

    /// Signs in from the sign-in page (its CSRF token and cookie); returns the status of the
    /// sign-in answer.
    pub async fn sign_in(&self, email: &str, password: &str) -> StatusCode {
        // A signed-in browser is sent on from the sign-in page: then it posts without a token.
        let (_, _, page) = self.get("/agent/login").await;
        let marker = r#"name="csrf" value=""#;
        let token = page
            .find(marker)
            .map(|start| {
                page[start + marker.len()..]
                    .split('"')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
            .unwrap_or_default();
        let response = self
            .client
            .post(format!("{}/agent/login", self.address))
            .form(&[("email", email), ("password", password), ("csrf", token.as_str())])
            .send()
            .await
            .expect("request");
        response.status()
    }

    /// The console as the admin of the test desk, signed in.
    pub async fn admin(app: &TestApp) -> Console {
        let console = Console::new(app);
        assert_eq!(
            console.sign_in("admin@localhost", &app.admin_password).await,
            StatusCode::SEE_OTHER
        );
        console
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Option<String>, String) {
        page_of(self.client.get(format!("{}{path}", self.address))).await
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, Option<String>, String) {
        page_of(self.client.post(format!("{}{path}", self.address)).form(fields)).await
    }

    /// Posts a console form as `multipart/form-data`: status, Location, page.
    pub async fn post_files(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &str, &[u8])],
    ) -> (StatusCode, Option<String>, String) {
        let request = self
            .client
            .post(format!("{}{path}", self.address))
            .header("Content-Type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(multipart(fields, files));
        page_of(request).await
    }

    /// The CSRF token of the page at `path` (every console form carries it).
    pub async fn csrf(&self, path: &str) -> String {
        let (_, _, page) = self.get(path).await;
        let marker = r#"name="csrf" value=""#;
        let start = page.find(marker).expect("a form with a CSRF token") + marker.len();
        page[start..].split('"').next().unwrap_or_default().to_string()
    }

    /// Posts a console form with the page's CSRF token added.
    pub async fn submit(
        &self,
        page_path: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, Option<String>, String) {
        let token = self.csrf(page_path).await;
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }
}

/// The boundary of [`multipart`] bodies (send it as `multipart/form-data; boundary=…`).
pub const BOUNDARY: &str = "----recoverydeskTestBoundary7MA4YWxkTrZu0gW";

/// A `multipart/form-data` body as a browser sends it: text fields, then files.
pub fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut body = vec![];
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    for (filename, content_type, data) in files {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// A delivery report (`multipart/report`) from a mailer daemon saying our mail `ours`, with
/// this subject, bounced for `gone@customer.test`; `headers` go into the report's own header
/// (each ending in CRLF).
pub fn bounce_report(message_id: &str, headers: &str, bounced_subject: &str, ours: &str) -> String {
    format!(
        "From: MAILER-DAEMON@customer.test\r\nTo: support@desk.test\r\nSubject: Undelivered Mail Returned to Sender\r\n\
Auto-Submitted: auto-replied\r\nMessage-ID: {message_id}\r\n{headers}MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\n<gone@customer.test>: 550 5.1.1 user unknown\r\n\
--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.test\r\n\r\n\
Final-Recipient: rfc822; gone@customer.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\
--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@desk.test\r\nTo: gone@customer.test\r\n\
Subject: {bounced_subject}\r\nMessage-ID: {ours}\r\n\r\n--b--\r\n"
    )
}

/// The `message_out` events of a ticket (the API's JSON) that record a bounce.
pub fn bounce_events(ticket: &serde_json::Value) -> Vec<serde_json::Value> {
    ticket["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == "message_out" && e["data"]["bounced"] == true)
        .cloned()
        .collect()
}

/// The text of every statement a connection runs (binds left out), from [`StatementLog::start`]
/// to [`StatementLog::stop`]: for the tests that count what a step costs the database.
pub struct StatementLog(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl StatementLog {
    pub fn start(conn: &mut AnyConnection) -> StatementLog {
        use diesel::connection::Connection;
        let log = StatementLog(Default::default());
        let seen = log.0.clone();
        conn.set_instrumentation(move |event: diesel::connection::InstrumentationEvent<'_>| {
            if let diesel::connection::InstrumentationEvent::StartQuery { query, .. } = event {
                let text = query.to_string();
                let sql = text.split("-- binds").next().unwrap_or_default().to_string();
                seen.lock().expect("not poisoned").push(sql);
            }
        });
        log
    }

    /// The statements run since `start`; the connection records nothing more.
    pub fn stop(self, conn: &mut AnyConnection) -> Vec<String> {
        use diesel::connection::Connection;
        conn.set_instrumentation(|_: diesel::connection::InstrumentationEvent<'_>| {});
        self.0.lock().expect("not poisoned").clone()
    }
}
