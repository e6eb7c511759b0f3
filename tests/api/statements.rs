//! What a received message costs the database, in statements: the writes a transaction has
//! just made are not read back, and a ticket is locked and its chain's last link read at most
//! once per transaction (docs/benchmarks.md, "Statements per message").

use crate::both_backends;
use crate::helpers::{StatementLog, TestApp};
use recoverydesk::services::inbound::Outcome;

both_backends!(
    a_received_message_reads_back_nothing_it_wrote_and_locks_once,
    statements_of_a_message
);

/// Ingests `raw` and returns its outcome and the statements it ran.
fn ingest_counted(app: &TestApp, raw: &str) -> (Outcome, Vec<String>) {
    let mut conn = app.conn();
    let log = StatementLog::start(&mut conn);
    let ingested =
        recoverydesk::services::inbound::ingest(&mut conn, &app.desk, raw.as_bytes(), "test").expect("ingestion runs");
    (ingested.outcome, log.stop(&mut conn))
}

fn count(statements: &[String], what: impl Fn(&str) -> bool) -> usize {
    statements.iter().filter(|s| what(&s.replace('`', "\""))).count()
}

async fn statements_of_a_message(app: TestApp) {
    let first = "From: Dana <dana@example.test>\r\nTo: support@desk.test\r\nSubject: I forgot my username\r\n\
                 Message-ID: <first@example.test>\r\n\r\nHello, I forgot my username. Dana\r\n";
    let (outcome, opened) = ingest_counted(&app, first);
    assert_eq!(outcome, Outcome::Created);
    let events = count(&opened, |s| s.starts_with("INSERT INTO \"events\""));
    assert!(events >= 3, "created, message_in, the acknowledgement: {opened:#?}");
    // A new ticket's turn is written, not looked for first.
    assert_eq!(
        count(&opened, |s| s.starts_with("SELECT")
            && s.contains("FROM \"ticket_activity\"")),
        0,
        "{opened:#?}"
    );
    // One look for an earlier arrival: a delivery, under both ways its content may have
    // been hashed, and a copy in quarantine, in one statement.
    let earlier = |s: &str| {
        s.starts_with("SELECT")
            && (s.contains("inbound_messages") || s.contains("FROM \"quarantine\"") || s.contains("FROM quarantine"))
    };
    assert_eq!(count(&opened, earlier), 1, "{opened:#?}");
    // A new ticket's chain is known to be empty, its row known as inserted.
    assert_eq!(
        count(&opened, |s| s.contains("FROM \"event_hashes\"")),
        0,
        "{opened:#?}"
    );
    assert_eq!(
        count(&opened, |s| s
            .starts_with("SELECT \"tickets\".\"id\", \"tickets\".\"kind\"")),
        0,
        "{opened:#?}"
    );
    // The texts the chain hashes are the ones just written: no message is read back.
    assert_eq!(
        count(&opened, |s| s
            .starts_with("SELECT \"messages\".\"subject\", \"messages\".\"body\"")),
        0
    );
    assert_eq!(
        count(&opened, |s| s.contains("FOR NO KEY UPDATE")),
        0,
        "nobody else sees a new ticket"
    );
    // Its search document is made from what was just written, not read back: no message
    // aggregated (PostgreSQL), no message row read nor old rows looked for (SQLite).
    assert_eq!(
        count(&opened, |s| s.contains("string_agg")
            || s.contains("FROM messages m JOIN tickets t")
            || s.contains("SELECT rowid AS id FROM ticket_search")),
        0,
        "{opened:#?}"
    );

    let reply = "From: Dana <dana@example.test>\r\nTo: support@desk.test\r\nSubject: Re: I forgot my username\r\n\
                 Message-ID: <second@example.test>\r\nIn-Reply-To: <first@example.test>\r\n\r\nStill waiting. My password: Tr0ub4dor-and-3 Dana\r\n";
    let (outcome, appended) = ingest_counted(&app, reply);
    assert_eq!(outcome, Outcome::Appended);
    let events = count(&appended, |s| s.starts_with("INSERT INTO \"events\""));
    assert!(
        events >= 2,
        "message_in, the secret removed, the advice to rotate it: {appended:#?}"
    );
    assert_eq!(
        count(&appended, |s| s.contains("FROM \"event_hashes\"")),
        1,
        "{appended:#?}"
    );
    assert_eq!(
        count(&appended, |s| s
            .starts_with("SELECT \"messages\".\"subject\", \"messages\".\"body\"")),
        0
    );
    assert_eq!(count(&appended, |s| s.contains("string_agg")), 0, "{appended:#?}");
    assert_eq!(
        count(&appended, |s| s.starts_with("SELECT")
            && s.contains("FROM \"ticket_activity\"")),
        1,
        "an existing ticket's turn is read: {appended:#?}"
    );
    let locks = count(&appended, |s| {
        s.contains("FROM \"tickets\"") && s.contains("FOR NO KEY UPDATE")
    });
    match app.backend() {
        crate::helpers::Backend::Postgres => assert_eq!(locks, 1, "{appended:#?}"),
        crate::helpers::Backend::Sqlite => assert_eq!(locks, 0),
    }
    // On SQLite the rows every message adds are inserted without `RETURNING` (SQLite keeps
    // its answer in a temporary B-tree); their ids come from `last_insert_rowid()`. The new
    // ticket's own row is the exception: it is returned whole rather than read back.
    let returning =
        |s: &str| s.starts_with("INSERT INTO") && s.contains("RETURNING") && !s.starts_with("INSERT INTO \"tickets\"");
    let returned = count(&opened, returning) + count(&appended, returning);
    match app.backend() {
        crate::helpers::Backend::Sqlite => assert_eq!(returned, 0, "{opened:#?} {appended:#?}"),
        crate::helpers::Backend::Postgres => assert!(returned >= 5, "{opened:#?} {appended:#?}"),
    }
    let mut conn = app.conn();
    let verified = recoverydesk::services::audit::verify_database(&mut conn, &app.desk).expect("verify runs");
    assert!(verified.is_ok(), "{verified:?}");

    // PostgreSQL: the delivery's key locks, and a new ticket's search document, are written
    // by statements kept prepared on the connection, not parsed and planned for every message.
    if app.backend() == crate::helpers::Backend::Postgres {
        let third = "From: Dana <dana@example.test>\r\nTo: support@desk.test\r\nSubject: Re: I forgot my username\r\n\
                     Message-ID: <third@example.test>\r\nIn-Reply-To: <first@example.test>\r\n\r\nAnything yet?\r\n";
        recoverydesk::services::inbound::ingest(&mut conn, &app.desk, third.as_bytes(), "test")
            .expect("ingestion runs");
        let other = "From: Eve <eve@example.test>\r\nTo: support@desk.test\r\nSubject: Locked out\r\n\
                     Message-ID: <eve@example.test>\r\n\r\nMy IP is blocked.\r\n";
        let opened = recoverydesk::services::inbound::ingest(&mut conn, &app.desk, other.as_bytes(), "test")
            .expect("ingestion runs");
        assert_eq!(opened.outcome, Outcome::Created);
        #[derive(diesel::QueryableByName)]
        struct Kept {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut kept = |like: &str| -> i64 {
            diesel::RunQueryDsl::get_result::<Kept>(
                diesel::sql_query("SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE $1")
                    .bind::<diesel::sql_types::Text, _>(like),
                &mut *conn,
            )
            .expect("read")
            .n
        };
        assert!(kept("%pg_advisory_xact_lock%") >= 1, "the key locks are kept prepared");
        assert!(
            kept("INSERT INTO ticket_search%") >= 1,
            "a new ticket's document is written by a kept statement"
        );
    }
}

both_backends!(
    a_sender_address_shared_by_many_accounts_costs_a_few_statements_not_one_per_account,
    many_accounts_one_address
);

/// A company's address on 200 sub-users (each with an allowlist, under one parent), and on
/// one more account whose parent is banned: a mail in that address's name reads every
/// account's view in a few statements (three per account and one per ancestor before), and
/// the ban through the parent is still seen.
async fn many_accounts_one_address(app: TestApp) {
    let shared = "ops@company.test";
    let mut lines = vec![
        crate::helpers::account("acc_parent", "company-parent", "parent@company.test", "active"),
        crate::helpers::account("acc_banned_parent", "banned-parent", "other@else.test", "banned"),
    ];
    for n in 0..200 {
        let mut sub = crate::helpers::account(&format!("acc_sub_{n:03}"), &format!("sub-{n:03}"), shared, "active");
        sub["parent_id"] = "acc_parent".into();
        lines.push(sub);
    }
    let mut under_ban = crate::helpers::account("acc_zz_under_ban", "under-ban", shared, "active");
    under_ban["parent_id"] = "acc_banned_parent".into();
    lines.push(under_ban);
    let imported = app.import_accounts(&lines);
    assert!(imported.refused.is_empty(), "{:?}", imported.refused);

    let mut conn = app.conn();
    let views = recoverydesk::db::accounts::views_by_email(&mut conn, shared).expect("read");
    assert_eq!(views.len(), 201);
    assert!(views.iter().all(|v| v.allowlist == ["203.0.113.7"]));
    let banned: Vec<&str> = views.iter().filter(|v| v.is_banned()).map(|v| v.id.as_str()).collect();
    assert_eq!(banned, ["acc_zz_under_ban"]);

    let raw = format!(
        "From: Ops <{shared}>\r\nTo: support@desk.test\r\nSubject: I forgot my username\r\n\
         Message-ID: <many-accounts@company.test>\r\n\r\nWhich username is ours?\r\n"
    );
    let (_, statements) = ingest_counted(&app, &raw);
    let on_accounts = count(&statements, |s| {
        s.contains("\"accounts\"") || s.contains("\"account_allowlist\"") || s.contains("\"account_dedicated_ips\"")
    });
    assert!(
        on_accounts <= 20,
        "{on_accounts} statements on the directory for one mail:\n{statements:#?}"
    );
}
