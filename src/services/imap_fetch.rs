//! The IMAP channel (docs/reference.md#imap): each message of the folder goes through the one
//! ingestion function, and only after its commit (stored, duplicate or quarantined) is it
//! flagged `\Seen` and moved to the done folder. A crash between the commit and the move
//! leaves it in the folder; the next round ingests it again and ingestion recognises the
//! duplicate, so nothing is lost and nothing is stored twice, whatever the UIDs (a new
//! UIDVALIDITY changes nothing). One instance fetches at a time: a lease row in the database.

use super::Desk;
use super::inbound::{IngestError, Outcome, ingest};
use crate::db::{self, Pool, imap as lease};
use crate::mail::imap::ImapSettings;
use crate::mail::imap::connect::{self, ConnectError, ImapSession};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a lease lasts without renewal; renewed before every batch.
const LEASE: Duration = Duration::from_secs(120);
/// Messages fetched per round trip, and their total size at most (bounded memory).
const BATCH_MESSAGES: usize = 100;
const BATCH_BYTES: u64 = 32 * 1024 * 1024;

/// A message's UID and `RFC822.SIZE`.
type UidSize = (u32, u64);

/// What one round did, per outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub created: usize,
    pub appended: usize,
    pub duplicate: usize,
    pub quarantined: usize,
    /// Larger than RECOVERYDESK_MAX_MESSAGE_BYTES: flagged `\Flagged` and left in the folder.
    pub too_large: usize,
    /// Failed temporarily: left for the next round.
    pub failed: usize,
    /// Another instance holds the lease: this one fetched nothing.
    pub lease_held_elsewhere: bool,
}

impl Summary {
    pub fn line(&self, mailbox: &str) -> String {
        if self.lease_held_elsewhere {
            return format!("{mailbox}: another instance is fetching this mailbox; nothing fetched");
        }
        format!(
            "{mailbox}: {} created, {} appended, {} duplicate, {} quarantined, {} too large, {} failed",
            self.created, self.appended, self.duplicate, self.quarantined, self.too_large, self.failed
        )
    }

    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Appended => self.appended += 1,
            Outcome::Duplicate => self.duplicate += 1,
            Outcome::Quarantined => self.quarantined += 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("IMAP: {0}")]
    Imap(String),
    #[error("database: {0}")]
    Database(String),
}

impl From<async_imap::error::Error> for FetchError {
    fn from(e: async_imap::error::Error) -> Self {
        FetchError::Imap(e.to_string())
    }
}

/// Who holds a lease: this process, told apart from every other.
pub fn holder_id() -> String {
    let host = hostname();
    let nonce: String = crate::crypto::random_token()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    format!("{host}:{}:{nonce}", std::process::id())
}

async fn blocking<T: Send + 'static>(
    pool: &Pool,
    f: impl FnOnce(&mut db::AnyConnection) -> Result<T, String> + Send + 'static,
) -> Result<T, FetchError> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        f(&mut conn)
    })
    .await
    .map_err(|e| FetchError::Database(e.to_string()))?
    .map_err(FetchError::Database)
}

async fn take_lease(pool: &Pool, mailbox: &str, holder: &str) -> Result<bool, FetchError> {
    let (mailbox, holder) = (mailbox.to_string(), holder.to_string());
    blocking(pool, move |conn| {
        let now = db::now();
        let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        if lease::acquire(conn, &mailbox, &holder, now, until).map_err(|e| e.to_string())? {
            return Ok(true);
        }
        // A holder on this machine whose process is gone (killed mid-round) need not be
        // waited out.
        let current = lease::find(conn, &mailbox).map_err(|e| e.to_string())?;
        match current.filter(|row| is_dead_local_holder(&row.holder)) {
            Some(row) => {
                tracing::warn!(mailbox = %mailbox, holder = %row.holder, "the IMAP lease's holder is gone: taking over");
                lease::take_over(conn, &mailbox, &row.holder, &holder, until).map_err(|e| e.to_string())
            }
            None => Ok(false),
        }
    })
    .await
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// `host:pid:nonce` of this host, whose process no longer exists.
fn is_dead_local_holder(holder: &str) -> bool {
    let mut parts = holder.split(':');
    let (Some(host), Some(pid)) = (parts.next(), parts.next().and_then(|p| p.parse::<i32>().ok())) else {
        return false;
    };
    if host != hostname() || host.is_empty() || pid <= 0 || pid == std::process::id() as i32 {
        return false;
    }
    // Signal 0 checks that the process exists; ESRCH: it does not.
    let alive =
        unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
    !alive
}

/// One round: takes the lease, fetches every message of the folder, gives the lease back.
/// An error (unreachable, login refused) is recorded for `/healthz` and returned.
pub async fn fetch_once(
    pool: &Pool,
    desk: &Desk,
    settings: &ImapSettings,
    holder: &str,
) -> Result<Summary, FetchError> {
    let mailbox = settings.mailbox_name();
    if !take_lease(pool, &mailbox, holder).await? {
        return Ok(Summary {
            lease_held_elsewhere: true,
            ..Summary::default()
        });
    }
    let result = round(pool, desk, settings, holder).await;
    let (name, owner) = (mailbox.clone(), holder.to_string());
    let outcome = match &result {
        Ok((_, validity)) => {
            let validity = *validity;
            blocking(pool, move |conn| {
                lease::record_ok(conn, &name, validity, db::now()).map_err(|e| e.to_string())
            })
            .await
        }
        Err(e) => {
            let message = e.to_string();
            tracing::error!(mailbox = %mailbox, error = %message, "IMAP fetch failed");
            blocking(pool, move |conn| {
                lease::record_error(conn, &name, &message, db::now()).map_err(|e| e.to_string())
            })
            .await
        }
    };
    let (name, owner2) = (mailbox.clone(), owner.clone());
    let _ = blocking(pool, move |conn| {
        lease::release(conn, &name, &owner2, db::now()).map_err(|e| e.to_string())
    })
    .await;
    outcome?;
    result.map(|(summary, _)| summary)
}

async fn round(
    pool: &Pool,
    desk: &Desk,
    settings: &ImapSettings,
    holder: &str,
) -> Result<(Summary, Option<i64>), FetchError> {
    let mailbox = settings.mailbox_name();
    let mut session = connect::open(settings).await?;
    let selected = session.select(&settings.folder).await?;
    let validity = selected.uid_validity.map(i64::from);
    let name = mailbox.clone();
    let before = blocking(pool, move |conn| {
        lease::find(conn, &name)
            .map(|row| row.and_then(|r| r.uid_validity))
            .map_err(|e| e.to_string())
    })
    .await?;
    if let (Some(old), Some(new)) = (before, validity)
        && old != new
    {
        tracing::warn!(
            mailbox = %mailbox, old, new,
            "the folder's UIDVALIDITY changed: every message in it is read again; ingestion recognises those already stored"
        );
    }
    // Created if missing; an error here (it exists already) is not one.
    let _ = session.create(&settings.done_folder).await;
    let can_move = session.capabilities().await.is_ok_and(|c| c.has_str("MOVE"));
    let mut summary = Summary::default();
    let sizes = message_sizes(&mut session).await?;
    let limit = desk.settings.max_message_bytes;
    let (too_large, fitting): (Vec<UidSize>, Vec<UidSize>) = sizes.into_iter().partition(|(_, s)| *s > limit);
    if !too_large.is_empty() {
        summary.too_large = too_large.len();
        let set = uid_set(too_large.iter().map(|(uid, _)| *uid));
        tracing::warn!(mailbox = %mailbox, count = too_large.len(), limit, "messages larger than RECOVERYDESK_MAX_MESSAGE_BYTES are left in the folder, flagged");
        drain(session.uid_store(&set, "+FLAGS.SILENT (\\Flagged)").await?).await;
    }
    for batch in batches(&fitting) {
        if !take_lease(pool, &mailbox, holder).await? {
            tracing::warn!(mailbox = %mailbox, "the IMAP lease passed to another instance: this round stops");
            break;
        }
        let set = uid_set(batch.iter().copied());
        let mut bodies: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        {
            let mut fetched = session.uid_fetch(&set, "(UID BODY.PEEK[])").await?;
            while let Some(item) = fetched.next().await {
                let item = item?;
                if let (Some(uid), Some(body)) = (item.uid, item.body()) {
                    bodies.insert(uid, body.to_vec());
                }
            }
        }
        let mut done = vec![];
        for (uid, raw) in bodies {
            let (pool, desk) = (pool.clone(), desk.clone());
            let result = tokio::task::spawn_blocking(move || {
                let mut conn = pool.get().map_err(|e| IngestError::Temporary(e.to_string()))?;
                db::with_durable_commits(&mut conn, |conn| ingest(conn, &desk, &raw, "imap"))
            })
            .await
            .map_err(|e| FetchError::Database(e.to_string()))?;
            match result {
                Ok(ingested) => {
                    summary.count(ingested.outcome);
                    done.push(uid);
                }
                Err(IngestError::TooLarge { .. }) => summary.too_large += 1,
                Err(IngestError::Temporary(reason)) => {
                    summary.failed += 1;
                    tracing::error!(mailbox = %mailbox, uid, %reason, "an IMAP message was not stored; it stays for the next round");
                }
            }
        }
        if !done.is_empty() {
            move_done(
                &mut session,
                &uid_set(done.into_iter()),
                &settings.done_folder,
                can_move,
            )
            .await?;
        }
    }
    let _ = session.logout().await;
    Ok((summary, validity))
}

/// The UID and size of every message not deleted, in UID order.
async fn message_sizes(session: &mut ImapSession) -> Result<Vec<UidSize>, FetchError> {
    let uids = session.uid_search("UNDELETED").await?;
    if uids.is_empty() {
        return Ok(vec![]);
    }
    let mut sizes = vec![];
    let mut sorted: Vec<u32> = uids.into_iter().collect();
    sorted.sort_unstable();
    for chunk in sorted.chunks(1000) {
        let mut fetched = session
            .uid_fetch(uid_set(chunk.iter().copied()), "(UID RFC822.SIZE)")
            .await?;
        while let Some(item) = fetched.next().await {
            let item = item?;
            if let Some(uid) = item.uid {
                sizes.push((uid, u64::from(item.size.unwrap_or(0))));
            }
        }
    }
    sizes.sort_unstable();
    sizes.dedup_by_key(|(uid, _)| *uid);
    Ok(sizes)
}

fn batches(messages: &[UidSize]) -> Vec<Vec<u32>> {
    let mut out: Vec<Vec<u32>> = vec![];
    let mut bytes = 0;
    for &(uid, size) in messages {
        match out.last_mut() {
            Some(batch) if batch.len() < BATCH_MESSAGES && bytes + size <= BATCH_BYTES => {
                batch.push(uid);
                bytes += size;
            }
            _ => {
                out.push(vec![uid]);
                bytes = size;
            }
        }
    }
    out
}

/// `1:3,7,9:10` for UIDs in ascending order.
fn uid_set(uids: impl Iterator<Item = u32>) -> String {
    let mut ranges: Vec<(u32, u32)> = vec![];
    for uid in uids {
        match ranges.last_mut() {
            Some((_, end)) if uid == *end + 1 => *end = uid,
            _ => ranges.push((uid, uid)),
        }
    }
    ranges
        .iter()
        .map(|(a, b)| if a == b { a.to_string() } else { format!("{a}:{b}") })
        .collect::<Vec<_>>()
        .join(",")
}

async fn drain<S: futures_util::Stream>(stream: S) {
    let mut stream = std::pin::pin!(stream);
    while stream.next().await.is_some() {}
}

/// Flags the committed messages `\Seen` and moves them (MOVE, else COPY + `\Deleted` + expunge).
async fn move_done(session: &mut ImapSession, set: &str, folder: &str, can_move: bool) -> Result<(), FetchError> {
    drain(session.uid_store(set, "+FLAGS.SILENT (\\Seen)").await?).await;
    if can_move {
        session.uid_mv(set, folder).await?;
    } else {
        session.uid_copy(set, folder).await?;
        drain(session.uid_store(set, "+FLAGS.SILENT (\\Deleted)").await?).await;
        drain(session.uid_expunge(set).await?).await;
    }
    Ok(())
}

/// `serve`'s fetcher: a round, then IDLE until something arrives (or the poll interval when
/// the server offers no IDLE), forever. Errors wait out the poll interval (at least 30 s): a
/// refused login is logged and reported by `/healthz`, never a tight loop.
pub async fn run_forever(pool: Pool, desk: Desk, settings: ImapSettings) {
    let holder = holder_id();
    let poll = Duration::from_secs(settings.poll_seconds);
    tracing::info!(mailbox = %settings.mailbox_name(), "fetching the IMAP mailbox");
    loop {
        match fetch_once(&pool, &desk, &settings, &holder).await {
            Ok(summary) => {
                if summary != Summary::default() && !summary.lease_held_elsewhere {
                    tracing::info!("{}", summary.line(&settings.mailbox_name()));
                }
                if summary.lease_held_elsewhere || summary.failed > 0 || !idle_until_new_mail(&settings, poll).await {
                    tokio::time::sleep(poll).await;
                }
            }
            Err(_) => tokio::time::sleep(poll.max(Duration::from_secs(30))).await,
        }
    }
}

/// Waits in IDLE for new mail (at most 25 minutes, then a round anyway). False when the
/// server offers no IDLE or the wait failed: the caller polls instead.
async fn idle_until_new_mail(settings: &ImapSettings, poll: Duration) -> bool {
    let Ok(mut session) = connect::open(settings).await else {
        return false;
    };
    if !session.capabilities().await.is_ok_and(|c| c.has_str("IDLE")) || session.select(&settings.folder).await.is_err()
    {
        let _ = session.logout().await;
        return false;
    }
    let mut idle = session.idle();
    if idle.init().await.is_err() {
        return false;
    }
    // Re-checked at least every poll interval anyway: a missed notification costs one interval.
    let (wait, _stop) = idle.wait_with_timeout(poll.max(Duration::from_secs(1)).min(Duration::from_secs(25 * 60)));
    let _ = wait.await;
    if let Ok(mut session) = idle.done().await {
        let _ = session.logout().await;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_and_batches() {
        assert_eq!(uid_set([1, 2, 3, 7, 9, 10].into_iter()), "1:3,7,9:10");
        assert_eq!(uid_set([5].into_iter()), "5");
        let many: Vec<(u32, u64)> = (1..=250).map(|u| (u, 10)).collect();
        assert_eq!(batches(&many).iter().map(Vec::len).collect::<Vec<_>>(), [100, 100, 50]);
        let big = [(1, BATCH_BYTES), (2, 1), (3, BATCH_BYTES)];
        assert_eq!(batches(&big), vec![vec![1], vec![2], vec![3]]);
    }
}
