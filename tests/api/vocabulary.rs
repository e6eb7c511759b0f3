//! Kinds, states, channels and event types are closed vocabularies: the database refuses any
//! other word, and a row holding one anyway (written before the checks existed, or by hand)
//! fails to load, naming the column and the value, instead of passing for a default.

use crate::both_backends;
use crate::helpers::{Console, TestApp, create_pg_database, drop_pg_database, postgres_server_url};
use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use recoverydesk::db::{self, AnyConnection, DatabaseUrl, tickets};
use recoverydesk::domain::event::EventType;
use recoverydesk::domain::scrubbed::Scrubbed;
use recoverydesk::domain::ticket::{Channel, Kind, State};
use reqwest::StatusCode;

/// A ticket's row written by hand, with these words.
fn new_ticket(kind: &str, state: &str, channel: &str) -> String {
    format!(
        "INSERT INTO tickets (kind, state, subject, requester, requester_normalized, \
         status_token_hash, status_token_salt, channel, waiting_since, created_at, updated_at) \
         VALUES ('{kind}', '{state}', 's', 'r@x.test', 'r@x.test', 'h', 's', '{channel}', \
         '2026-12-08 10:00:00', '2026-12-08 10:00:00', '2026-12-08 10:00:00')"
    )
}

fn scenario(conn: &mut AnyConnection, sqlite: bool) {
    db::run_migrations(conn).unwrap();
    let subject = Scrubbed::not_from_customer("Locked out");
    let row = tickets::insert(
        conn,
        &tickets::NewTicket {
            kind: Kind::IpLockout,
            state: State::AwaitingAllowlistedAttempts,
            subject: &subject,
            requester: "ops@acme.test",
            channel: Channel::Mail,
            auto_generated: false,
        },
    )
    .unwrap();
    assert_eq!(
        (row.kind, row.state, row.channel),
        (Kind::IpLockout, State::AwaitingAllowlistedAttempts, Channel::Mail)
    );
    let id = row.id;

    // The database refuses an unknown word in each checked column, in a new row and in a
    // changed one.
    diesel::sql_query(new_ticket("general", "awaiting_agent", "web"))
        .execute(conn)
        .expect("known words are taken");
    for sql in [
        new_ticket("General", "awaiting_agent", "web"),
        new_ticket("general", "waiting", "web"),
        new_ticket("general", "awaiting_agent", "fax"),
        format!("UPDATE tickets SET state = 'nonsense' WHERE id = {id}"),
        format!("UPDATE tickets SET kind = 'General' WHERE id = {id}"),
        format!("UPDATE tickets SET channel = 'phone' WHERE id = {id}"),
        format!(
            "INSERT INTO events (ticket_id, event_type, actor, data, created_at) \
             VALUES ({id}, 'flagged', 'system', '{{}}', '2026-12-08 10:00:00')"
        ),
    ] {
        let refused = diesel::sql_query(&sql).execute(conn).unwrap_err().to_string();
        assert!(refused.contains("_known"), "{sql}: {refused}");
    }
    assert_eq!(
        tickets::find(conn, id).unwrap().unwrap().state,
        State::AwaitingAllowlistedAttempts
    );
    tickets::insert_event(conn, id, EventType::Created, "system", &serde_json::json!({}), None).unwrap();
    assert_eq!(tickets::events_of(conn, id).unwrap()[0].event_type, EventType::Created);

    // A database written before the checks: the same word gets in, and then the row does not
    // load (no page, no action runs on it as if it were waiting for an agent).
    let lift = if sqlite {
        "DROP TRIGGER tickets_state_known_update;"
    } else {
        "ALTER TABLE tickets DROP CONSTRAINT tickets_state_known;"
    };
    conn.batch_execute(lift).unwrap();
    diesel::sql_query(format!("UPDATE tickets SET state = 'nonsense' WHERE id = {id}"))
        .execute(conn)
        .unwrap();
    let error = tickets::find(conn, id).unwrap_err().to_string();
    assert!(error.contains("tickets.state"), "the error names the column: {error}");
    assert!(error.contains("\"nonsense\""), "the error names the value: {error}");
    let listed = tickets::list(
        conn,
        &tickets::TicketFilter {
            limit: 10,
            ..Default::default()
        },
    );
    assert!(listed.unwrap_err().to_string().contains("tickets.state"));
}

#[test]
fn an_unknown_state_is_refused_by_sqlite_and_fails_to_load() {
    let dir = tempfile::tempdir().unwrap();
    let pool = db::open_pool(&DatabaseUrl::Sqlite(dir.path().join("vocabulary.db")), 1).unwrap();
    scenario(&mut pool.get().unwrap(), true);
}

/// SQLite checks a word by comparing it with each known one: a check written as `NOT IN (...)`
/// made SQLite build a temporary B-tree of the list at every statement that fired it, each new
/// event and ticket and each change of state (docs/benchmarks.md, "Vocabulary checks without
/// lists").
#[test]
fn sqlite_checks_the_vocabulary_without_building_a_list_at_each_statement() {
    #[derive(diesel::QueryableByName)]
    struct Step {
        #[diesel(sql_type = diesel::sql_types::Text)]
        opcode: String,
    }
    let dir = tempfile::tempdir().unwrap();
    let pool = db::open_pool(&DatabaseUrl::Sqlite(dir.path().join("vocabulary.db")), 1).unwrap();
    let mut conn = pool.get().unwrap();
    db::run_migrations(&mut conn).unwrap();
    for sql in [
        "INSERT INTO events (ticket_id, event_type, actor, data, created_at) \
         VALUES (1, 'created', 'system', '{}', '2026-12-08 10:00:00')"
            .to_string(),
        new_ticket("general", "awaiting_agent", "web"),
        "UPDATE tickets SET kind = 'general', state = 'resolved', channel = 'mail' WHERE id = 1".to_string(),
    ] {
        let program: Vec<Step> = diesel::sql_query(format!("EXPLAIN {sql}")).load(&mut conn).unwrap();
        let triggers = program.iter().filter(|s| s.opcode == "Program").count();
        assert!(triggers > 0, "the checks fire: {sql}");
        let lists = program.iter().filter(|s| s.opcode == "OpenEphemeral").count();
        assert_eq!(lists, 0, "a temporary table at each run of {sql}");
    }
}

#[test]
fn an_unknown_state_is_refused_by_postgres_and_fails_to_load() {
    let Some(server) = postgres_server_url() else { return };
    let (url, name) = create_pg_database(&server);
    let pool = db::open_pool(&DatabaseUrl::parse(&url).unwrap(), 1).unwrap();
    scenario(&mut pool.get().unwrap(), false);
    drop(pool);
    drop_pg_database(&server, &name);
}

both_backends!(
    a_ticket_row_that_fails_to_load_answers_500_internal_not_503,
    unreadable_row_over_http
);

/// A row this version cannot read is corruption or a bug, not an outage: 500 `internal`, which
/// a client does not retry, and not the 503 `unavailable` of a database that is down.
async fn unreadable_row_over_http(app: TestApp) {
    let r = app.general_ticket("kim@example.test", "Invoices missing").await;
    let id = recoverydesk::domain::ticket::TicketRef::parse(&r, &app.desk.settings.ticket_prefix)
        .expect("a reference")
        .number();
    let lift = if app.database_url.starts_with("postgres") {
        "ALTER TABLE tickets DROP CONSTRAINT tickets_state_known;"
    } else {
        "DROP TRIGGER tickets_state_known_update;"
    };
    let mut conn = app.conn();
    conn.batch_execute(lift).unwrap();
    diesel::sql_query(format!("UPDATE tickets SET state = 'nonsense' WHERE id = {id}"))
        .execute(&mut conn)
        .unwrap();
    drop(conn);

    let (status, body) = app.get(&format!("/api/v1/tickets/{r}")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["code"], "internal", "{body}");
    let (status, body) = app.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");

    let console = Console::admin(&app).await;
    let (status, _, _) = console.get(&format!("/agent/tickets/{r}")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}
