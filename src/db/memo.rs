//! What a write transaction already knows, so that it does not ask the database again: the
//! tickets whose rows it has locked, the last link of each ticket chain it has appended to,
//! and the ticket prefix the chain names tickets with.
//!
//! Why: a new ticket by mail writes three to five events, and each used to lock its ticket
//! again and read its chain's last link again (docs/benchmarks.md, "Statements per message").
//! Both answers cannot change while the transaction runs: the ticket's lock (PostgreSQL) or
//! the write lock (SQLite) keeps every other writer out of the chain until the commit.
//!
//! What a savepoint learnt is kept only if the savepoint is released: rolled back, its locks
//! are released with it (PostgreSQL) and its links are gone. So each transaction and each
//! savepoint has a frame; a released savepoint's frame joins the one below it, and the end of
//! the transaction (a commit, a rollback, an error, a panic) drops them all. Outside a
//! transaction nothing is remembered.

use super::AnyConnection;
use super::search::{BodyText, HeadText};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

/// The last link of a ticket's chain: the name the chain gives the ticket, and the link's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::db) enum ChainHead {
    /// The ticket was opened in this transaction: its chain has no link yet.
    Empty,
    Link {
        ticket_ref: String,
        hash: String,
    },
}

#[derive(Default)]
struct Known {
    locked_tickets: HashSet<i64>,
    chain_heads: HashMap<i64, ChainHead>,
    prefix: Option<String>,
    /// The search text of what this transaction stored: the head of each ticket it opened, by
    /// ticket, and each indexed message it added, by message (`search::index`).
    search_heads: HashMap<i64, HeadText>,
    search_messages: HashMap<i64, (i64, BodyText)>,
    /// Tickets this transaction inserted, and those it wrote a `ticket_activity` row for: a
    /// ticket in the first set and not in the second has no such row yet. Not read off
    /// `search_heads`, which also name the tickets opened here: a head is taken when the
    /// search index is written and dropped by an erase, a ticket stays opened.
    opened_tickets: HashSet<i64>,
    activity_written: HashSet<i64>,
}

impl Known {
    /// What a released savepoint knew, added to what its transaction knows.
    fn absorb(&mut self, later: Known) {
        self.locked_tickets.extend(later.locked_tickets);
        self.chain_heads.extend(later.chain_heads);
        if later.prefix.is_some() {
            self.prefix = later.prefix;
        }
        self.search_heads.extend(later.search_heads);
        self.search_messages.extend(later.search_messages);
        self.opened_tickets.extend(later.opened_tickets);
        self.activity_written.extend(later.activity_written);
    }
}

thread_local! {
    /// The open frames on this thread, innermost last, each with the address of the
    /// connection whose transaction or savepoint it is.
    static FRAMES: RefCell<Vec<(usize, Known)>> = const { RefCell::new(Vec::new()) };
}

fn key(conn: &AnyConnection) -> usize {
    std::ptr::from_ref(conn) as usize
}

/// The frame of one transaction or savepoint of a connection. Dropped, it forgets what it
/// learnt; [`Frame::release`] hands it to the frame below.
pub(in crate::db) struct Frame {
    key: usize,
    depth: usize,
}

impl Frame {
    pub(in crate::db) fn begin(conn: &AnyConnection) -> Frame {
        let key = key(conn);
        let depth = FRAMES.with(|f| {
            let mut frames = f.borrow_mut();
            frames.push((key, Known::default()));
            frames.len()
        });
        Frame { key, depth }
    }

    /// The savepoint was released: what it learnt holds for its transaction too.
    pub(in crate::db) fn release(self) {
        FRAMES.with(|f| {
            let mut frames = f.borrow_mut();
            if frames.len() == self.depth && frames.last().is_some_and(|(k, _)| *k == self.key) {
                let (_, known) = frames.pop().expect("the frame is the last one");
                if let Some((_, below)) = frames.iter_mut().rev().find(|(k, _)| *k == self.key) {
                    below.absorb(known);
                }
            }
        });
        // Popped already (or not ours to pop): `Drop` finds nothing more to do.
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        let _ = FRAMES.try_with(|f| {
            let mut frames = f.borrow_mut();
            // This frame and any a panic left above it.
            if frames.len() >= self.depth && frames[self.depth - 1].0 == self.key {
                frames.truncate(self.depth - 1);
            }
        });
    }
}

/// Reads what the innermost frames of `conn` know, innermost first.
fn recall<T>(conn: &AnyConnection, f: impl Fn(&Known) -> Option<T>) -> Option<T> {
    let key = key(conn);
    FRAMES.with(|frames| {
        frames
            .borrow()
            .iter()
            .rev()
            .filter(|(k, _)| *k == key)
            .find_map(|(_, known)| f(known))
    })
}

/// Adds to the innermost frame of `conn`, if it is in a transaction.
fn learn(conn: &AnyConnection, f: impl FnOnce(&mut Known)) {
    let key = key(conn);
    FRAMES.with(|frames| {
        if let Some((_, known)) = frames.borrow_mut().iter_mut().rev().find(|(k, _)| *k == key) {
            f(known);
        }
    });
}

pub(in crate::db) fn ticket_locked(conn: &AnyConnection, id: i64) -> bool {
    recall(conn, |k| k.locked_tickets.contains(&id).then_some(())).is_some()
}

pub(in crate::db) fn tickets_locked(conn: &AnyConnection, ids: &[i64]) {
    learn(conn, |k| k.locked_tickets.extend(ids));
}

/// A ticket this transaction inserted.
pub(in crate::db) fn set_opened(conn: &AnyConnection, ticket_id: i64) {
    learn(conn, |k| {
        k.opened_tickets.insert(ticket_id);
    });
}

/// This transaction wrote the `ticket_activity` row of `ticket_id`.
pub(in crate::db) fn set_activity_written(conn: &AnyConnection, ticket_id: i64) {
    learn(conn, |k| {
        k.activity_written.insert(ticket_id);
    });
}

/// Whether `ticket_id` certainly has no `ticket_activity` row: this transaction inserted the
/// ticket and has not written one for it. False when not known (then it is read).
pub(in crate::db) fn has_no_activity_row(conn: &AnyConnection, ticket_id: i64) -> bool {
    let opened = recall(conn, |k| k.opened_tickets.contains(&ticket_id).then_some(())).is_some();
    opened && recall(conn, |k| k.activity_written.contains(&ticket_id).then_some(())).is_none()
}

pub(in crate::db) fn chain_head(conn: &AnyConnection, ticket_id: i64) -> Option<ChainHead> {
    recall(conn, |k| k.chain_heads.get(&ticket_id).cloned())
}

pub(in crate::db) fn set_chain_head(conn: &AnyConnection, ticket_id: i64, head: ChainHead) {
    learn(conn, |k| {
        k.chain_heads.insert(ticket_id, head);
    });
}

pub(in crate::db) fn prefix(conn: &AnyConnection) -> Option<String> {
    recall(conn, |k| k.prefix.clone())
}

pub(in crate::db) fn set_prefix(conn: &AnyConnection, prefix: &str) {
    learn(conn, |k| k.prefix = Some(prefix.to_string()));
}

/// A ticket opened in this transaction, with the head of its search text.
pub(in crate::db) fn set_search_head(conn: &AnyConnection, ticket_id: i64, head: HeadText) {
    learn(conn, |k| {
        k.search_heads.insert(ticket_id, head);
    });
}

/// An indexed message this transaction stored, with its search text.
pub(in crate::db) fn set_search_message(conn: &AnyConnection, ticket_id: i64, message_id: i64, text: BodyText) {
    learn(conn, |k| {
        k.search_messages.insert(message_id, (ticket_id, text));
    });
}

/// Whether this transaction opened `ticket_id` (and knows its head).
pub(in crate::db) fn opened_here(conn: &AnyConnection, ticket_id: i64) -> bool {
    recall(conn, |k| k.search_heads.contains_key(&ticket_id).then_some(())).is_some()
}

/// The head of a ticket opened in this transaction, taken out of the memo (the innermost
/// frame's if several know it). Taken, not copied: the texts are asked for once, at the end of
/// the transaction, and a batch's texts are not held twice.
pub(in crate::db) fn take_search_head(conn: &AnyConnection, ticket_id: i64) -> Option<HeadText> {
    let key = key(conn);
    FRAMES.with(|frames| {
        let mut found = None;
        for (_, known) in frames.borrow_mut().iter_mut().filter(|(k, _)| *k == key) {
            if let Some(head) = known.search_heads.remove(&ticket_id) {
                found = Some(head);
            }
        }
        found
    })
}

/// The search text of a message of `ticket_id` this transaction stored, taken out of the memo.
pub(in crate::db) fn take_search_message(conn: &AnyConnection, ticket_id: i64, message_id: i64) -> Option<BodyText> {
    let key = key(conn);
    FRAMES.with(|frames| {
        let mut found = None;
        for (_, known) in frames.borrow_mut().iter_mut().filter(|(k, _)| *k == key) {
            if known
                .search_messages
                .get(&message_id)
                .is_some_and(|(ticket, _)| *ticket == ticket_id)
                && let Some((_, text)) = known.search_messages.remove(&message_id)
            {
                found = Some(text);
            }
        }
        found
    })
}

/// The indexed messages of `ticket_id` this transaction stored, in the order of their ids,
/// taken out of the memo.
pub(in crate::db) fn take_search_messages_of(conn: &AnyConnection, ticket_id: i64) -> Vec<(i64, BodyText)> {
    let key = key(conn);
    let mut found = std::collections::BTreeMap::new();
    FRAMES.with(|frames| {
        for (_, known) in frames.borrow_mut().iter_mut().filter(|(k, _)| *k == key) {
            let ids: Vec<i64> = known
                .search_messages
                .iter()
                .filter(|(_, (ticket, _))| *ticket == ticket_id)
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                if let Some((_, text)) = known.search_messages.remove(&id) {
                    found.insert(id, text);
                }
            }
        }
    });
    found.into_iter().collect()
}

/// Something other than an added message changed `ticket_id`'s text (an erase): what this
/// transaction knew of it no longer holds, in any frame.
pub(in crate::db) fn forget_search_texts(conn: &AnyConnection, ticket_id: i64) {
    let key = key(conn);
    FRAMES.with(|frames| {
        for (_, known) in frames.borrow_mut().iter_mut().filter(|(k, _)| *k == key) {
            known.search_heads.remove(&ticket_id);
            known.search_messages.retain(|_, (ticket, _)| *ticket != ticket_id);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::Connection;

    fn conn() -> AnyConnection {
        AnyConnection::Sqlite(diesel::SqliteConnection::establish(":memory:").unwrap())
    }

    fn head(hash: &str) -> ChainHead {
        ChainHead::Link {
            ticket_ref: "RD-1".into(),
            hash: hash.into(),
        }
    }

    #[test]
    fn nothing_is_remembered_outside_a_transaction_or_after_it() {
        let c = conn();
        tickets_locked(&c, &[1]);
        set_chain_head(&c, 1, head("a"));
        assert!(!ticket_locked(&c, 1));
        assert_eq!(chain_head(&c, 1), None);

        let transaction = Frame::begin(&c);
        tickets_locked(&c, &[1]);
        set_chain_head(&c, 1, head("a"));
        set_prefix(&c, "RD");
        assert!(ticket_locked(&c, 1));
        assert_eq!(chain_head(&c, 1), Some(head("a")));
        drop(transaction);
        assert!(!ticket_locked(&c, 1));
        assert_eq!(chain_head(&c, 1), None);
        assert_eq!(prefix(&c), None);
    }

    #[test]
    fn a_new_ticket_has_no_turn_until_one_is_written_and_a_rolled_back_one_is_forgotten() {
        let c = conn();
        assert!(!has_no_activity_row(&c, 1), "outside a transaction nothing is known");
        let _transaction = Frame::begin(&c);
        assert!(!has_no_activity_row(&c, 1), "a ticket not opened here is read");
        set_opened(&c, 1);
        assert!(has_no_activity_row(&c, 1));
        let rolled_back = Frame::begin(&c);
        set_activity_written(&c, 1);
        assert!(!has_no_activity_row(&c, 1));
        drop(rolled_back);
        assert!(has_no_activity_row(&c, 1), "the row went with its savepoint");
        let released = Frame::begin(&c);
        set_activity_written(&c, 1);
        released.release();
        assert!(
            !has_no_activity_row(&c, 1),
            "written, and kept with the released savepoint"
        );
        let rolled_back = Frame::begin(&c);
        set_opened(&c, 2);
        drop(rolled_back);
        assert!(
            !has_no_activity_row(&c, 2),
            "an insert rolled back is not a ticket opened here"
        );
    }

    #[test]
    fn search_texts_go_with_a_rolled_back_savepoint_and_with_an_erase() {
        let c = conn();
        let _transaction = Frame::begin(&c);
        let text = |body: &str| BodyText {
            subject: "help".into(),
            body: body.into(),
        };
        let head = HeadText {
            requester: "a@x.test".into(),
            subject: "help".into(),
        };
        set_search_head(&c, 1, head.clone());
        set_search_message(&c, 1, 10, text("first"));
        let released = Frame::begin(&c);
        set_search_message(&c, 1, 11, text("second"));
        released.release();
        let rolled_back = Frame::begin(&c);
        set_search_message(&c, 1, 12, text("third"));
        set_search_message(&c, 2, 13, text("another ticket"));
        assert!(opened_here(&c, 1));
        drop(rolled_back);
        assert_eq!(take_search_message(&c, 1, 12), None, "rolled back with its message");
        assert_eq!(take_search_message(&c, 2, 11), None, "a message of another ticket");
        assert_eq!(
            take_search_messages_of(&c, 1),
            vec![(10, text("first")), (11, text("second"))]
        );
        assert_eq!(take_search_messages_of(&c, 1), vec![], "taken, not copied");
        assert_eq!(take_search_head(&c, 1), Some(head.clone()));
        assert!(!opened_here(&c, 1));

        set_search_head(&c, 1, head);
        set_search_message(&c, 1, 14, text("fourth"));
        let inner = Frame::begin(&c);
        forget_search_texts(&c, 1);
        drop(inner);
        assert_eq!(take_search_head(&c, 1), None, "forgotten in every frame");
        assert_eq!(take_search_messages_of(&c, 1), vec![]);
    }

    #[test]
    fn a_savepoint_rolled_back_forgets_a_released_one_hands_on() {
        let c = conn();
        let _transaction = Frame::begin(&c);
        set_chain_head(&c, 1, head("a"));

        let rolled_back = Frame::begin(&c);
        tickets_locked(&c, &[2]);
        set_chain_head(&c, 1, head("b"));
        assert_eq!(chain_head(&c, 1), Some(head("b")), "the innermost frame answers first");
        drop(rolled_back);
        assert!(!ticket_locked(&c, 2), "its lock went with it");
        assert_eq!(chain_head(&c, 1), Some(head("a")), "and its link");

        let released = Frame::begin(&c);
        tickets_locked(&c, &[3]);
        set_chain_head(&c, 1, head("c"));
        released.release();
        assert!(ticket_locked(&c, 3));
        assert_eq!(chain_head(&c, 1), Some(head("c")));
    }

    #[test]
    fn another_connection_on_the_thread_knows_nothing_of_this_one() {
        let (a, b) = (conn(), conn());
        let _in_a = Frame::begin(&a);
        let _in_b = Frame::begin(&b);
        tickets_locked(&a, &[1]);
        set_chain_head(&b, 1, head("b"));
        assert!(!ticket_locked(&b, 1));
        assert_eq!(chain_head(&a, 1), None);
        assert!(ticket_locked(&a, 1));
    }

    #[test]
    fn a_panic_in_a_savepoint_leaves_no_frame_behind() {
        let c = conn();
        let transaction = Frame::begin(&c);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _savepoint = Frame::begin(&c);
            tickets_locked(&c, &[9]);
            panic!("a bug inside a savepoint");
        }));
        assert!(panicked.is_err());
        assert!(!ticket_locked(&c, 9));
        drop(transaction);
        assert_eq!(FRAMES.with(|f| f.borrow().len()), 0);
    }
}
