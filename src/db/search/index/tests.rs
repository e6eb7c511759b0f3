use super::*;
use crate::db::{DatabaseUrl, open_pool, run_migrations, write_transaction};
use diesel::result::Error;
use diesel::sql_types::Text;

/// A migrated SQLite database in a folder of its own (kept while the folder lives).
fn migrated() -> (tempfile::TempDir, crate::db::Pool) {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_pool(&DatabaseUrl::Sqlite(dir.path().join("s.db")), 1).unwrap();
    run_migrations(&mut pool.get().unwrap()).unwrap();
    (dir, pool)
}

fn add_ticket(conn: &mut AnyConnection, id: i64, requester: &str) {
    diesel::sql_query(
        "INSERT INTO tickets (id, kind, state, subject, requester, requester_normalized, status_token_hash, \
         status_token_salt, channel, waiting_since, created_at, updated_at) \
         VALUES (?, 'general', 'awaiting_agent', 'help', ?, ?, 'none:' || ?, '', 'mail', \
         CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    )
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(requester)
    .bind::<Text, _>(requester)
    .bind::<BigInt, _>(id)
    .execute(conn)
    .unwrap();
}

fn add_message(conn: &mut AnyConnection, ticket: i64, body: &str) {
    diesel::sql_query(
        "INSERT INTO messages (ticket_id, direction, sender_role, subject, body, created_at) \
         VALUES (?, 'in', 'requester', 'help', ?, CURRENT_TIMESTAMP)",
    )
    .bind::<BigInt, _>(ticket)
    .bind::<Text, _>(body)
    .execute(conn)
    .unwrap();
}

/// The tickets with a row holding `word` (or every ticket with a row, for `None`).
fn found(conn: &mut AnyConnection, word: Option<&str>) -> Vec<i64> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let rows = match word {
        Some(w) => diesel::sql_query(
            "SELECT DISTINCT rowid >> 20 AS id FROM ticket_search WHERE ticket_search MATCH ? ORDER BY rowid",
        )
        .bind::<Text, _>(w.to_string())
        .load::<Id>(conn),
        None => {
            diesel::sql_query("SELECT DISTINCT rowid >> 20 AS id FROM ticket_search ORDER BY rowid").load::<Id>(conn)
        }
    };
    rows.unwrap().into_iter().map(|r| r.id).collect()
}

#[test]
fn a_transaction_writes_each_touched_document_once_at_its_end_with_every_message() {
    let (_dir, pool) = migrated();
    let mut conn = pool.get().unwrap();

    // As a batch of mail does: two tickets, their first messages and a reply, the higher
    // id first. Nothing is written to the index before the transaction's end; at its end
    // every word of every message is there.
    write_transaction(&mut conn, |c| -> Result<(), Error> {
        add_ticket(c, 7, "a@example.test");
        reindex(c, 7)?;
        add_ticket(c, 3, "b@example.test");
        reindex(c, 3)?;
        add_message(c, 7, "alphaword");
        reindex(c, 7)?;
        add_message(c, 3, "betaword");
        reindex(c, 3)?;
        add_message(c, 7, "gammaword");
        reindex(c, 7)?;
        assert_eq!(found(c, None), Vec::<i64>::new(), "written at the end, not at once");
        Ok(())
    })
    .unwrap();
    assert_eq!(found(&mut conn, Some("alphaword")), vec![7]);
    assert_eq!(found(&mut conn, Some("gammaword")), vec![7]);
    assert_eq!(found(&mut conn, Some("betaword")), vec![3]);

    // A transaction that fails leaves nothing pending: the next reindex outside any
    // transaction writes at once.
    let failed = write_transaction(&mut conn, |c| -> Result<(), Error> {
        add_message(c, 3, "deltaword");
        reindex(c, 3)?;
        Err(Error::RollbackTransaction)
    });
    assert!(failed.is_err());
    assert_eq!(found(&mut conn, Some("deltaword")), Vec::<i64>::new());
    add_message(&mut conn, 3, "epsilonword");
    reindex(&mut conn, 3).unwrap();
    assert_eq!(found(&mut conn, Some("epsilonword")), vec![3]);

    // Nor does one that panics (the writer thread goes on with its next group).
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = write_transaction(&mut conn, |c| -> Result<(), Error> {
            reindex(c, 7)?;
            panic!("a bug in the middle of a transaction");
        });
    }));
    assert!(panicked.is_err());
    assert!(!DEFERRED.with(|d| d.borrow().iter().any(|(_, ids)| ids.contains_key(&7))));
    add_message(&mut conn, 7, "zetaword");
    reindex(&mut conn, 7).unwrap();
    assert_eq!(found(&mut conn, Some("zetaword")), vec![7]);
}

#[test]
fn a_message_id_given_again_after_a_rolled_back_savepoint_gets_one_row() {
    let (_dir, pool) = migrated();
    let mut conn = pool.get().unwrap();
    add_ticket(&mut conn, 5, "c@example.test");
    add_message(&mut conn, 5, "opening words");
    reindex(&mut conn, 5).unwrap();
    // As a group of mail does: each message in a savepoint; the first one fails.
    write_transaction(&mut conn, |c| -> Result<(), Error> {
        let failed = write_transaction(c, |c| -> Result<(), Error> {
            add_message(c, 5, "rolledback words");
            let id = last_message(c);
            index_message(c, 5, id, "help", "rolledback words")?;
            Err(Error::RollbackTransaction)
        });
        assert!(failed.is_err());
        write_transaction(c, |c| -> Result<(), Error> {
            add_message(c, 5, "kept words");
            let id = last_message(c);
            index_message(c, 5, id, "help", "kept words")
        })
    })
    .unwrap();
    let first = 5 << 20;
    assert_eq!(
        rowids(&mut conn),
        vec![first, first + 1, first + 2],
        "one row per message"
    );
    assert_eq!(found(&mut conn, Some("kept")), vec![5]);
    assert_eq!(found(&mut conn, Some("rolledback")), Vec::<i64>::new());
}

/// The statements `f` runs on the connection, as SQL text and binds.
fn statements(conn: &mut AnyConnection, f: impl FnOnce(&mut AnyConnection)) -> Vec<String> {
    use diesel::connection::{Instrumentation, InstrumentationEvent};
    use std::sync::{Arc, Mutex};
    struct Record(Arc<Mutex<Vec<String>>>);
    impl Instrumentation for Record {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            if let InstrumentationEvent::StartQuery { query, .. } = event {
                self.0.lock().unwrap().push(query.to_string());
            }
        }
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let AnyConnection::Sqlite(c) = conn else {
        panic!("an SQLite connection")
    };
    c.set_instrumentation(Record(seen.clone()));
    f(conn);
    let AnyConnection::Sqlite(c) = conn else {
        panic!("an SQLite connection")
    };
    c.set_instrumentation(|_: InstrumentationEvent<'_>| {});
    seen.lock().unwrap().clone()
}

fn rowids(conn: &mut AnyConnection) -> Vec<i64> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    diesel::sql_query("SELECT rowid AS id FROM ticket_search ORDER BY rowid")
        .load::<Id>(conn)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

fn last_message(conn: &mut AnyConnection) -> i64 {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    diesel::sql_query("SELECT max(id) AS id FROM messages")
        .get_result::<Id>(conn)
        .unwrap()
        .id
}

#[test]
fn a_reply_adds_its_own_row_and_rewrites_nothing_however_long_the_thread() {
    let (_dir, pool) = migrated();
    let mut conn = pool.get().unwrap();
    add_ticket(&mut conn, 5, "c@example.test");
    add_message(&mut conn, 5, "opening words");
    reindex(&mut conn, 5).unwrap();
    let first = 5 << 20;
    assert_eq!(
        rowids(&mut conn),
        vec![first, first + 1],
        "the ticket's row and its message's"
    );

    // Each reply: reads the extent and its own message, inserts its row, moves the extent
    // on; the same statements at the 2nd reply as at the 40th, none deleting.
    let mut first_reply = None;
    for n in 2..=40 {
        add_message(&mut conn, 5, &format!("reply number{n}"));
        let id = last_message(&mut conn);
        let body = format!("reply number{n}");
        let ran = statements(&mut conn, |c| index_message(c, 5, id, "help", &body).unwrap());
        assert_eq!(ran.len(), 4, "reply {n}: {ran:#?}");
        assert!(!ran.iter().any(|q| q.contains("DELETE")), "reply {n}: {ran:#?}");
        assert_eq!(
            ran.iter()
                .filter(|q| q.starts_with("INSERT INTO ticket_search "))
                .count(),
            1
        );
        let sql: Vec<&str> = ran
            .iter()
            .map(|q| q.split(" -- binds").next().unwrap_or_default())
            .collect();
        assert_eq!(
            first_reply.get_or_insert_with(|| sql.join("\n")),
            &sql.join("\n"),
            "reply {n}"
        );
    }
    assert_eq!(rowids(&mut conn), (first..=first + 40).collect::<Vec<_>>());
    assert_eq!(found(&mut conn, Some("number17")), vec![5]);
    assert_eq!(found(&mut conn, Some("opening")), vec![5]);

    // An erase writes the ticket's rows again, numbered without the erased message.
    diesel::sql_query("UPDATE messages SET body = '[erased]', subject = '', redacted_at = CURRENT_TIMESTAMP WHERE body = 'reply number17'")
        .execute(&mut conn)
        .unwrap();
    reindex(&mut conn, 5).unwrap();
    assert_eq!(found(&mut conn, Some("number17")), Vec::<i64>::new());
    assert_eq!(found(&mut conn, Some("number18")), vec![5]);
    assert_eq!(rowids(&mut conn), (first..=first + 39).collect::<Vec<_>>());

    // A ticket deleted loses its rows.
    diesel::sql_query("DELETE FROM messages WHERE ticket_id = 5")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query("DELETE FROM tickets WHERE id = 5")
        .execute(&mut conn)
        .unwrap();
    reindex(&mut conn, 5).unwrap();
    assert_eq!(rowids(&mut conn), Vec::<i64>::new());
}

#[test]
fn a_ticket_id_beyond_the_rowid_scheme_is_left_unindexed_not_wrapped() {
    assert_eq!(sqlite::first_row(1), Some(1 << 20));
    assert_eq!(sqlite::first_row((1 << 43) - 1), Some(((1 << 43) - 1) << 20));
    assert_eq!(sqlite::first_row(1 << 43), None);
    assert_eq!(sqlite::first_row(i64::MAX), None);
    assert_eq!(sqlite::first_row(-1), None);
}
