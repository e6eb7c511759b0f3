//! Search (docs/reference.md#search): the queue's and the API's `q` over the reference, the
//! requester, the subject, the bodies of messages and notes, the account's id and username;
//! closed tickets included unless a state is chosen; hostile text is only words.

use crate::both_backends;
use crate::helpers::{Backend, Console, TestApp, account, reference};
use diesel::connection::SimpleConnection;
use reqwest::StatusCode;
use serde_json::json;

both_backends!(
    search_finds_body_words_usernames_account_ids_and_closed_tickets,
    finds_what_it_should
);
both_backends!(hostile_search_text_is_only_words_and_never_an_error, hostile_queries);
both_backends!(search_pages_newest_first_every_match_once, search_pages);
both_backends!(
    an_erased_message_is_no_longer_found_and_secrets_never_were,
    erased_and_secret_words
);
both_backends!(
    the_migration_backfills_the_index_from_stored_tickets,
    migration_backfills
);
both_backends!(
    the_console_searches_accounts_and_links_one_to_a_ticket,
    accounts_in_the_console
);
both_backends!(search_pages_across_far_apart_ticket_ids_every_match_once, far_apart_ids);
both_backends!(
    words_added_message_by_message_are_the_words_of_the_whole_thread,
    appended_equals_whole
);
both_backends!(
    a_short_thread_written_message_by_message_is_its_rebuilt_document,
    short_thread_equals_whole
);
both_backends!(
    a_ticket_with_many_matching_messages_is_one_result_on_every_page,
    many_matching_messages
);
both_backends!(a_search_narrowed_by_whose_turn_it_is, search_by_whose_turn);

async fn refs(app: &TestApp, query: &str) -> Vec<String> {
    let (status, page) = app.get(&format!("/api/v1/tickets?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {page}");
    page["tickets"]
        .as_array()
        .unwrap_or_else(|| panic!("{query}: {page}"))
        .iter()
        .map(|t| t["ref"].as_str().unwrap().to_string())
        .collect()
}

fn q(text: &str) -> String {
    format!("q={}", urlencode(text))
}

fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("x", text)]).unwrap()[2..].to_string()
}

/// The references on every page of `GET /api/v1/tickets?{query}`, following `next_cursor`.
async fn every_page(app: &TestApp, query: &str) -> Vec<String> {
    let mut seen = vec![];
    let (_, mut page) = app.get(&format!("/api/v1/tickets?{query}")).await;
    loop {
        let tickets = page["tickets"].as_array().unwrap_or_else(|| panic!("{page}"));
        seen.extend(tickets.iter().map(|t| t["ref"].as_str().unwrap().to_string()));
        let Some(cursor) = page["next_cursor"].as_str() else {
            return seen;
        };
        page = app.get(&format!("/api/v1/tickets?{query}&cursor={cursor}")).await.1;
    }
}

async fn finds_what_it_should(app: TestApp) {
    app.import_accounts(&[account("acc_2001", "globex-relay", "it@globex.test", "active")]);
    let a = reference(
        &app.create_ticket(json!({"kind": "general", "requester": "carol@initech.test",
            "subject": "Quarterly thing", "body": "The frobnicator rejects our webhook since Monday"}))
            .await,
    );
    let b = reference(
        &app.create_ticket(json!({"kind": "login_help", "requester": "it@globex.test",
            "subject": "Cannot send", "body": "Nothing works", "account": "acc_2001"}))
            .await,
    );
    let other = reference(
        &app.create_ticket(json!({"kind": "general", "requester": "dave@hooli.test",
            "subject": "Webhook retries", "body": "Plain question"}))
            .await,
    );
    assert_eq!(refs(&app, &q("frobnicator")).await, vec![a.clone()], "a body word");
    assert_eq!(
        refs(&app, &q("FROBNICATOR webhook")).await,
        vec![a.clone()],
        "every word, any case"
    );
    assert_eq!(refs(&app, &q("frobnicator unrelated")).await, Vec::<String>::new());
    assert_eq!(
        refs(&app, &q("webhook")).await,
        vec![other.clone(), a.clone()],
        "subject or body, newest first"
    );
    assert_eq!(refs(&app, &q("globex-relay")).await, vec![b.clone()], "a username");
    assert_eq!(refs(&app, &q("acc_2001")).await, vec![b.clone()], "an account id");
    assert_eq!(
        refs(&app, &q("carol@initech.test")).await,
        vec![a.clone()],
        "a whole address"
    );
    assert_eq!(refs(&app, &q("Carol@Initech.TEST ")).await, vec![a.clone()]);
    assert_eq!(refs(&app, &q("initech")).await, vec![a.clone()], "a word of an address");
    assert_eq!(refs(&app, &q(&a)).await, vec![a.clone()], "a reference");

    // A note's words.
    let (status, _) = app
        .post(
            &format!("/api/v1/tickets/{other}/replies"),
            &json!({"body": "Called back, zebracorn escalation", "internal": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(refs(&app, &q("zebracorn")).await, vec![other.clone()], "a note");

    // Closed tickets are found, unless a state is chosen.
    let (status, _) = app.action(&a, "resolve", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        refs(&app, &q("frobnicator")).await,
        vec![a.clone()],
        "closed, still found"
    );
    assert_eq!(
        refs(&app, &format!("{}&state=awaiting_agent", q("frobnicator"))).await,
        Vec::<String>::new()
    );
    assert_eq!(
        refs(&app, &format!("{}&state=resolved", q("frobnicator"))).await,
        vec![a.clone()]
    );
    assert_eq!(
        refs(&app, &format!("{}&kind=login_help", q("webhook"))).await,
        Vec::<String>::new()
    );

    // The console's queue searches the same way.
    let console = Console::admin(&app).await;
    let link = |r: &str| format!(r#"href="/agent/tickets/{r}""#);
    let (status, _, page) = console.get(&format!("/agent?{}", q("frobnicator"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&link(&a)), "a resolved ticket in the queue's search");
    assert!(!page.contains(&link(&other)));
    let (_, _, page) = console
        .get(&format!("/agent?{}&state=awaiting_agent", q("frobnicator")))
        .await;
    assert!(!page.contains(&link(&a)), "the state filter applies");
    let (_, _, page) = console.get(&format!("/agent?{}", q("globex-relay"))).await;
    assert!(page.contains(&link(&b)) && !page.contains(&link(&a)));
    let (_, _, page) = console.get("/agent").await;
    assert!(!page.contains(&link(&a)), "the plain queue shows open tickets only");
}

async fn hostile_queries(app: TestApp) {
    let a = reference(
        &app.create_ticket(json!({"kind": "general", "requester": "erin@corp.test",
            "subject": "Bounce storm", "body": "near the frobnicator gateway"}))
            .await,
    );
    let console = Console::admin(&app).await;
    let huge_word = "x".repeat(10_000);
    let many = "frobnicator ".repeat(1_000);
    let cases: Vec<(String, Vec<String>)> = vec![
        (r#"""#.into(), vec![]),
        (r#""frobnicator""#.into(), vec![a.clone()]),
        ("*".into(), vec![]),
        ("frobn*".into(), vec![]),
        ("NEAR(".into(), vec![a.clone()]),
        ("NEAR(nothing".into(), vec![]),
        ("NEAR(frobnicator gateway)".into(), vec![a.clone()]),
        ("frobnicator OR nothing".into(), vec![]),
        ("frobnicator NOT gateway".into(), vec![]),
        ("frobnicator AND".into(), vec![]),
        (r#"gateway" OR "x"#.into(), vec![]),
        ("document:frobnicator".into(), vec![]),
        ("^frobnicator".into(), vec![a.clone()]),
        ("frobnicator' OR '1'='1".into(), vec![]),
        ("'; DROP TABLE tickets; --".into(), vec![]),
        ("%".into(), vec![]),
        ("_".into(), vec![]),
        ("\\".into(), vec![]),
        ("\u{0}frobnicator".into(), vec![a.clone()]),
        // Cut after 512 characters: the word cut in two is not searched for.
        (format!("frobnicator {huge_word}"), vec![a.clone()]),
        (format!("{huge_word} frobnicator"), vec![]),
        (many.clone(), vec![a.clone()]),
        ("é".repeat(5_000), vec![]),
    ];
    for (text, expected) in &cases {
        let found = refs(&app, &q(text)).await;
        assert_eq!(&found, expected, "{:?}", text.chars().take(40).collect::<String>());
        let (status, _, page) = console.get(&format!("/agent?{}", q(text))).await;
        assert_eq!(status, StatusCode::OK, "the queue answers {text:.40?}");
        assert_eq!(
            page.contains(&format!(r#"href="/agent/tickets/{a}""#)),
            !expected.is_empty(),
            "{text:.40?}"
        );
    }
    // Nothing was written by any of them.
    assert_eq!(refs(&app, "").await, vec![a.clone()]);
}

async fn search_pages(app: TestApp) {
    let mut made = vec![];
    for i in 0..7 {
        let body = if i == 2 { "nothing here" } else { "the quokka is back" };
        let r = reference(
            &app.create_ticket(json!({"kind": "general", "requester": format!("p{i}@pages.test"),
                "subject": format!("Page {i}"), "body": body}))
                .await,
        );
        if i != 2 {
            made.push(r);
        }
    }
    made.reverse();
    let seen = every_page(&app, "q=quokka&limit=2").await;
    assert_eq!(seen, made, "newest first, each once");

    // The console's pages follow "Next page" the same way.
    let console = Console::admin(&app).await;
    let (_, _, first) = console.get("/agent?q=quokka").await;
    assert!(first.contains("newest first"));
    for r in &made {
        assert!(first.contains(&format!(r#"href="/agent/tickets/{r}""#)), "{r}");
    }
    assert!(!first.contains("Next page"), "one page of 6");
}

/// A ticket whose every message holds the word is one result, on pages of every size (on
/// SQLite each message is a row of the index: the rows of one ticket are read as one). Words
/// of the ticket's subject and requester go with the words of any one of its messages; words
/// of two different messages find the ticket on PostgreSQL (one document per ticket) and not
/// on SQLite (one row per message, as Request Tracker matches one attachment;
/// docs/reference.md#search).
async fn many_matching_messages(app: TestApp) {
    let make = |n: usize, body: &str| json!({"kind": "general", "requester": format!("m{n}@many.test"), "subject": format!("Matter {n}"), "body": body});
    let oldest = reference(&app.create_ticket(make(0, "a wombat was seen")).await);
    let chatty = reference(&app.create_ticket(make(1, "wombat, first mention")).await);
    for i in 0..12 {
        let (status, _) = app
            .post(
                &format!("/api/v1/tickets/{chatty}/replies"),
                &json!({"body": format!("wombat again, reply {i} with kumquat{i}"), "internal": i % 2 == 0}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let newest = reference(&app.create_ticket(make(2, "one wombat more")).await);
    let all = vec![newest.clone(), chatty.clone(), oldest.clone()];
    assert_eq!(refs(&app, &q("wombat")).await, all);
    for limit in 1..=3 {
        let seen = every_page(&app, &format!("q=wombat&limit={limit}")).await;
        assert_eq!(seen, all, "pages of {limit}: newest first, each once");
    }
    // The ticket's own fields with one message's words.
    assert_eq!(refs(&app, &q("matter kumquat7 wombat")).await, vec![chatty.clone()]);
    assert_eq!(refs(&app, &q("m1@many.test kumquat3")).await, vec![chatty.clone()]);
    // Words of two messages.
    let across = refs(&app, &q("kumquat3 kumquat4")).await;
    match app.backend() {
        Backend::Sqlite => assert_eq!(across, Vec::<String>::new(), "one message's words"),
        Backend::Postgres => assert_eq!(across, vec![chatty.clone()], "the ticket's words"),
    }
}

/// `waiting_on` narrows a word search as it narrows the queue: after an agent's public reply
/// the ticket waits on the customer; a new ticket and one with only a note wait on the agent.
async fn search_by_whose_turn(app: TestApp) {
    let make = |n: usize| json!({"kind": "general", "requester": format!("t{n}@turn.test"), "subject": format!("Turn {n}"), "body": "the gizmoflux broke"});
    let answered = reference(&app.create_ticket(make(0)).await);
    let noted = reference(&app.create_ticket(make(1)).await);
    let untouched = reference(&app.create_ticket(make(2)).await);
    for (r, internal) in [(&answered, false), (&noted, true)] {
        let (status, body) = app
            .post(
                &format!("/api/v1/tickets/{r}/replies"),
                &json!({"body": "looking into it", "internal": internal}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    assert_eq!(
        refs(&app, &format!("{}&waiting_on=customer", q("gizmoflux"))).await,
        vec![answered.clone()]
    );
    assert_eq!(
        refs(&app, &format!("{}&waiting_on=agent", q("gizmoflux"))).await,
        vec![untouched.clone(), noted.clone()]
    );
    assert_eq!(
        every_page(&app, &format!("{}&waiting_on=agent&limit=1", q("gizmoflux"))).await,
        vec![untouched, noted],
        "pages of one"
    );
    let console = Console::admin(&app).await;
    let (status, _, page) = console
        .get(&format!("/agent?{}&waiting_on=customer", q("gizmoflux")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&format!(r#"href="/agent/tickets/{answered}""#)));
}

async fn erased_and_secret_words(app: TestApp) {
    let key = "SG.srch01AbCdEfGhIjKlMnOp.Zy01qRsTuVwXyZ0123456789-abcdefghijklmnopqr";
    let r = reference(
        &app.create_ticket(json!({"kind": "general", "requester": "fay@corp.test",
            "subject": "Key trouble", "body": format!("my key is {key} and the word is qwxplumbus")}))
            .await,
    );
    assert_eq!(refs(&app, &q("qwxplumbus")).await, vec![r.clone()]);
    for part in ["srch01AbCdEfGhIjKlMnOp", "Zy01qRsTuVwXyZ0123456789", key] {
        assert_eq!(
            refs(&app, &q(part)).await,
            Vec::<String>::new(),
            "a secret is not indexed"
        );
    }
    let ticket = app.ticket(&r).await;
    let message = ticket["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "message_in")
        .expect("the customer's words")
        .clone();
    let (status, _) = app
        .post(
            &format!("/api/v1/tickets/{r}/events/{}/redact", message["id"]),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        refs(&app, &q("qwxplumbus")).await,
        Vec::<String>::new(),
        "an erased message's words are gone from the index"
    );
    assert_eq!(
        refs(&app, &q("fay@corp.test")).await,
        vec![r.clone()],
        "the ticket remains"
    );
    if app.backend() == Backend::Sqlite {
        let file = app.database_url.trim_start_matches("sqlite://").to_string();
        for path in [file.clone(), format!("{file}-wal")] {
            let bytes = std::fs::read(&path).unwrap_or_default();
            assert!(
                !bytes.windows(10).any(|w| w == b"qwxplumbus"),
                "{path} keeps no copy of the erased word"
            );
        }
    }
}

/// Reverting the search migration and applying it again on stored tickets (what an upgrade
/// does) leaves the same searches answering the same.
async fn migration_backfills(app: TestApp) {
    let a = reference(
        &app.create_ticket(json!({"kind": "general", "requester": "gus@corp.test",
            "subject": "Old ticket", "body": "the blorptastic invoice"}))
            .await,
    );
    let (status, _) = app
        .post(
            &format!("/api/v1/tickets/{a}/replies"),
            &json!({"body": "noted: wibbleflux", "internal": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    drop_search_index(&app);
    let (status, _) = app.get(&format!("/api/v1/tickets?{}", q("blorptastic"))).await;
    assert!(status.is_server_error(), "without the index the search fails: {status}");
    rebuild_search_index(&app);
    for word in ["blorptastic", "wibbleflux", "gus@corp.test", "old invoice"] {
        assert_eq!(refs(&app, &q(word)).await, vec![a.clone()], "{word}");
    }
}

/// The search index's migrations for the app's backend, oldest first: the index itself, then
/// (SQLite) one row per message or (PostgreSQL) how much of each document's text is used and
/// the documents' words made by the desk's rule.
fn search_migrations(app: &TestApp) -> Vec<String> {
    let (folder, later): (_, &[&str]) = match app.backend() {
        Backend::Sqlite => ("sqlite", &["2026-12-10-000034_search_by_message"]),
        Backend::Postgres => (
            "postgres",
            &["2026-12-09-000033_search_append", "2026-12-11-000035_search_words"],
        ),
    };
    std::iter::once(&"2026-12-07-000013_ticket_search")
        .chain(later)
        .map(|name| format!("{}/migrations/{folder}/{name}", env!("CARGO_MANIFEST_DIR")))
        .collect()
}

/// Reverts the search migrations, newest first: the index is gone.
fn drop_search_index(app: &TestApp) {
    let mut conn = app.conn();
    for dir in search_migrations(app).iter().rev() {
        let down = std::fs::read_to_string(format!("{dir}/down.sql")).unwrap();
        conn.batch_execute(&down).unwrap_or_else(|e| panic!("{dir} down: {e}"));
    }
}

/// Applies the search migrations' `up` scripts, oldest first, then what the desk does right
/// after its migrations (PostgreSQL: the documents' words made again with its rule): the index
/// built from what is stored, as an upgrade builds it.
fn rebuild_search_index(app: &TestApp) {
    let mut conn = app.conn();
    for dir in search_migrations(app) {
        let up = std::fs::read_to_string(format!("{dir}/up.sql")).unwrap();
        conn.batch_execute(&up).unwrap_or_else(|e| panic!("{dir} up: {e}"));
    }
    recoverydesk::db::search::rebuild_postgres_words(&mut conn).unwrap();
}

/// Every stored search row as text, by rowid (SQLite: a row per message, then each ticket's
/// extent under its negated id) or by ticket id (PostgreSQL: with the characters used).
fn search_documents(app: &TestApp) -> Vec<(i64, String)> {
    #[derive(diesel::QueryableByName)]
    struct Document {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
        #[diesel(sql_type = diesel::sql_types::Text)]
        text: String,
    }
    let sql = match app.backend() {
        Backend::Sqlite => {
            "SELECT rowid AS id, document AS text FROM ticket_search UNION ALL \
             SELECT -ticket_id, message_rows || ' @' || indexed_chars FROM ticket_search_extent ORDER BY id"
        }
        Backend::Postgres => {
            "SELECT ticket_id AS id, document::text || ' @' || indexed_chars AS text FROM ticket_search ORDER BY ticket_id"
        }
    };
    let mut conn = app.conn();
    diesel::RunQueryDsl::load::<Document>(diesel::sql_query(sql), &mut *conn)
        .unwrap()
        .into_iter()
        .map(|d| (d.id, d.text))
        .collect()
}

/// A thread written reply by reply (on PostgreSQL each reply's words are added to the stored
/// document) holds exactly the words of the same thread indexed whole, up to the same cut at
/// 262,144 characters: long bodies, words of every script, punctuation, a word across the cut.
async fn appended_equals_whole(app: TestApp) {
    let r = reference(
        &app.create_ticket(json!({"kind": "general", "requester": "Zoë@Corp.test",
            "subject": "Ünïcode: «subject» line", "body": "first—body, with; punctuation!"}))
            .await,
    );
    let long_words = |seed: usize| -> String {
        (0..9_000)
            .map(|i| format!("w{}x{}", seed, i % 997))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (i, body) in [
        "second 日本語 reply, émigré's café; ΟΔΟΣ İstanbul x² ½ CAFÉ".to_string(),
        "short one".to_string(),
    ]
    .into_iter()
    .chain((1..=9).map(long_words))
    .chain(["beyondthecutword after the document is full".to_string()])
    .enumerate()
    {
        let (status, body) = app
            .post(
                &format!("/api/v1/tickets/{r}/replies"),
                &json!({"body": body, "internal": i % 2 == 0}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let appended = search_documents(&app);
    assert_eq!(refs(&app, &q("émigré café")).await, vec![r.clone()]);
    assert_eq!(
        refs(&app, &q("οδος x²")).await,
        vec![r.clone()],
        "a final sigma, a superscript"
    );
    assert_eq!(refs(&app, &q("w8x5")).await, vec![r.clone()], "before the cut");
    assert_eq!(refs(&app, &q("w9x5")).await, Vec::<String>::new(), "past the cut");
    assert_eq!(refs(&app, &q("beyondthecutword")).await, Vec::<String>::new());

    drop_search_index(&app);
    rebuild_search_index(&app);
    let whole = search_documents(&app);
    // PostgreSQL: one document; SQLite: the ticket's row, a row per message up to the cut
    // (the first message, the two short replies, seven long ones and part of the eighth),
    // and the extent.
    let rows = match app.backend() {
        Backend::Sqlite => 1 + 1 + 2 + 8 + 1,
        Backend::Postgres => 1,
    };
    assert_eq!(
        appended.len(),
        rows,
        "{:?}",
        appended.iter().map(|(id, _)| id).collect::<Vec<_>>()
    );
    assert_eq!(appended, whole, "the same words, the same characters used");
}

/// The same for a thread far from the cut, where every character counts: on PostgreSQL a new
/// ticket's document and each reply's words are made from what the transaction stored, without
/// reading it back, and must match the document made from the stored rows, characters used
/// included.
async fn short_thread_equals_whole(app: TestApp) {
    let r = reference(
        &app.create_ticket(json!({"kind": "general", "requester": "Åsa@Corp.test",
            "subject": "Straße ½ «quoted»", "body": "first body: ΟΔΟΣ, naïve"}))
            .await,
    );
    for (i, body) in ["second reply, 日本語", "third — the last"].into_iter().enumerate() {
        let (status, body) = app
            .post(
                &format!("/api/v1/tickets/{r}/replies"),
                &json!({"body": body, "internal": i == 1}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // A ticket opened by mail whose subject and body are long: the body's cut at 32,768
    // characters (multi-byte ones) on the path that does not read the message back.
    let subject = (0..300).map(|i| format!("sujet{i}ü")).collect::<Vec<_>>().join(" ");
    let body = (0..8_000).map(|i| format!("mot{i}é")).collect::<Vec<_>>().join(" ");
    let raw = format!(
        "From: long@corp.test\r\nTo: support@desk.test\r\nSubject: {subject}\r\n\
         Message-ID: <long@corp.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    );
    let opened = app.ingest(raw.as_bytes());
    assert_eq!(opened.outcome, recoverydesk::services::inbound::Outcome::Created);
    let appended = search_documents(&app);
    assert_eq!(refs(&app, &q("naïve")).await, vec![r.clone()]);
    assert_eq!(refs(&app, &q("mot3000é")).await.len(), 1, "before the cut");
    assert_eq!(refs(&app, &q("mot7999é")).await, Vec::<String>::new(), "past the cut");
    drop_search_index(&app);
    rebuild_search_index(&app);
    assert_eq!(
        appended,
        search_documents(&app),
        "the same words, the same characters used"
    );
}

async fn accounts_in_the_console(app: TestApp) {
    app.import_accounts(&[
        account("acc_3001", "acme-mailer", "ops@acme.test", "active"),
        account("acc_3002", "acme-billing", "billing@acme.test", "terminated"),
        account("acc_4001", "initech", "it@initech.test", "active"),
    ]);
    let r = reference(
        &app.create_ticket(json!({"kind": "general", "requester": "ops@acme.test", "subject": "Help"}))
            .await,
    );
    let console = Console::admin(&app).await;
    let row = |id: &str| format!(r#"href="/agent/accounts/{id}""#);
    let (status, _, page) = console.get("/agent/accounts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        ["acc_3001", "acc_3002", "acc_4001"]
            .iter()
            .all(|id| page.contains(&row(id)))
    );
    for (text, expected) in [
        ("acme", vec!["acc_3001", "acc_3002"]),
        ("acme-mailer", vec!["acc_3001"]),
        ("OPS@ACME.TEST", vec!["acc_3001"]),
        ("acc_4", vec!["acc_4001"]),
        ("billing@", vec!["acc_3002"]),
        ("nobody", vec![]),
        (r#""<script>*%_"#, vec![]),
    ] {
        let (status, _, page) = console.get(&format!("/agent/accounts?{}", q(text))).await;
        assert_eq!(status, StatusCode::OK);
        for id in ["acc_3001", "acc_3002", "acc_4001"] {
            assert_eq!(page.contains(&row(id)), expected.contains(&id), "{text}: {id}");
        }
        assert!(!page.contains("<script>"), "escaped");
    }

    // Link an account by finding it: the ticket page offers the search, the results a button.
    let (_, _, ticket_page) = console.get(&format!("/agent/tickets/{r}")).await;
    let find = format!("/agent/accounts?link={r}&amp;q=ops%40acme.test");
    assert!(ticket_page.contains(&find), "{ticket_page}");
    let (status, _, found) = console
        .get(&format!("/agent/accounts?link={r}&q=ops%40acme.test"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let action = format!("/agent/tickets/{r}/actions/link_account");
    assert!(found.contains(&action) && found.contains(r#"name="account_id" value="acc_3001""#));
    let (status, location, _) = console
        .submit(
            &format!("/agent/accounts?link={r}&q=ops%40acme.test"),
            &action,
            &[("account_id", "acc_3001")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{location:?}");
    assert_eq!(app.ticket(&r).await["account_id"], json!("acc_3001"));
    let (status, _, _) = console.get("/agent/accounts?link=nonsense").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = Console::new(&app).get("/agent/accounts").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "anonymous: to the sign-in page");
}

/// The number of a reference (`RD-12` is 12).
fn number(reference: &str) -> i64 {
    reference.rsplit('-').next().unwrap().parse().expect("a ticket number")
}

/// The next ticket made gets the number `next`.
fn next_ticket_number(app: &TestApp, next: i64) {
    let sql = match app.backend() {
        Backend::Sqlite => format!("UPDATE sqlite_sequence SET seq = {} WHERE name = 'tickets'", next - 1),
        Backend::Postgres => format!("SELECT setval('tickets_id_seq', {})", next - 1),
    };
    app.conn().batch_execute(&sql).expect("move the ticket numbers on");
}

/// Tickets far apart in number (a big desk's old and new tickets): on PostgreSQL the newest
/// are read first in windows of 2,000 and then 20,000 numbers, and what lies below them comes
/// from the GIN index (src/db/search.rs). One match sits on each side of each window's edge:
/// every page holds the next matches, newest first, each once, with and without a filter.
async fn far_apart_ids(app: TestApp) {
    let make = |subject: &str, body: &str| json!({"kind": "general", "requester": "far@apart.test", "subject": subject, "body": body});
    // Oldest first: c, then b 20,000 numbers later, a just after b, newest 1,999 after a.
    let c = reference(&app.create_ticket(make("Old one", "the quillwort report")).await);
    let filler = reference(&app.create_ticket(make("Unrelated", "nothing to see")).await);
    next_ticket_number(&app, number(&c) + 20_000);
    let b = reference(&app.create_ticket(make("Middle one", "quillwort again")).await);
    let a = reference(&app.create_ticket(make("Newer one", "still quillwort")).await);
    assert_eq!(number(&a), number(&b) + 1);
    next_ticket_number(&app, number(&a) + 1_999);
    let newest = reference(&app.create_ticket(make("Newest", "quillwort at last")).await);
    assert_eq!(number(&newest) - 1_999, number(&a), "a opens the first window");
    assert_eq!(number(&b) - 20_000, number(&c), "c is just below the second window");

    let all = vec![newest.clone(), a.clone(), b.clone(), c.clone()];
    assert_eq!(refs(&app, &q("quillwort")).await, all, "one page");
    for limit in 1..=3 {
        let seen = every_page(&app, &format!("{}&limit={limit}", q("quillwort"))).await;
        assert_eq!(seen, all, "pages of {limit}, newest first, each once");
    }
    // Words only the oldest tickets have: nothing in the newest windows, all from the index.
    assert_eq!(refs(&app, &q("report quillwort")).await, vec![c.clone()]);
    assert_eq!(refs(&app, &q("nothing")).await, vec![filler.clone()]);
    // A filter over the index's matches.
    let (status, _) = app.action(&c, "resolve", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        refs(&app, &format!("{}&state=resolved", q("quillwort"))).await,
        vec![c.clone()]
    );
    assert_eq!(
        refs(&app, &format!("{}&state=awaiting_agent", q("quillwort"))).await,
        vec![newest, a, b],
        "the open ones"
    );
}
