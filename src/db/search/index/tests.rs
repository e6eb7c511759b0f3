use super::*;
use crate::db::{DatabaseUrl, open_pool, run_migrations, write_transaction};
use diesel::result::Error;
use diesel::sql_types::Text;

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

/// The tickets whose document holds `word` (or every document's ticket, for `None`).
fn found(conn: &mut AnyConnection, word: Option<&str>) -> Vec<i64> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let rows = match word {
        Some(w) => {
            diesel::sql_query("SELECT rowid AS id FROM ticket_search WHERE ticket_search MATCH ? ORDER BY rowid")
                .bind::<Text, _>(w.to_string())
                .load::<Id>(conn)
        }
        None => diesel::sql_query("SELECT rowid AS id FROM ticket_search ORDER BY rowid").load::<Id>(conn),
    };
    rows.unwrap().into_iter().map(|r| r.id).collect()
}

#[test]
fn a_transaction_writes_each_touched_document_once_at_its_end_with_every_message() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_pool(&DatabaseUrl::Sqlite(dir.path().join("s.db")), 1).unwrap();
    let mut conn = pool.get().unwrap();
    run_migrations(&mut conn).unwrap();

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
