//! Background upkeep `serve` runs: deleting rows nothing reads any more, folding the queue's
//! count deltas into their totals.

use crate::db::{self, submissions};
use chrono::Duration;

/// Deletes form submissions and sign-in attempts that no rate limit reads any more. Returns
/// how many of each were deleted.
#[tracing::instrument(level = "debug", skip_all)]
pub fn purge_rate_limits(
    conn: &mut db::AnyConnection,
    now: chrono::NaiveDateTime,
) -> Result<(usize, usize), db::DbError> {
    let before = now - Duration::hours(submissions::RATE_LIMIT_ROWS_KEPT_HOURS);
    Ok(submissions::purge_rate_limit_rows(conn, before)?)
}

/// Once at start, then hourly, for the life of the server.
pub async fn purge_rate_limits_periodically(pool: db::Pool) {
    loop {
        let pool_now = pool.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut conn = pool_now.get().map_err(|e| e.to_string())?;
            purge_rate_limits(&mut conn, db::now()).map_err(|e| e.to_string())
        })
        .await;
        match outcome {
            Ok(Ok((0, 0))) => {}
            Ok(Ok((forms, logins))) => {
                tracing::info!(forms, logins, "purged expired rate-limit rows")
            }
            Ok(Err(e)) => tracing::error!(error = %e, "purging rate-limit rows failed; retrying later"),
            Err(e) => tracing::error!(error = %e, "the rate-limit purge stopped unexpectedly"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
}

/// How often `serve` folds the queue's count deltas (each fold is one short transaction).
pub const FOLD_COUNTS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Moves the count deltas the triggers appended into the totals (see `db::console::counts`).
/// Returns how many (kind, state) totals changed.
#[tracing::instrument(level = "debug", skip_all)]
pub fn fold_counts(conn: &mut db::AnyConnection) -> Result<usize, db::DbError> {
    Ok(db::write_transaction(conn, db::console::fold_counts)?)
}

/// Every [`FOLD_COUNTS_EVERY`], for the life of the server. Between folds the queue reads the
/// unfolded deltas too, so a late fold makes the counts slower to read, never wrong.
pub async fn fold_counts_periodically(pool: db::Pool) {
    loop {
        let pool_now = pool.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut conn = pool_now.get().map_err(|e| e.to_string())?;
            fold_counts(&mut conn).map_err(|e| e.to_string())
        })
        .await;
        match outcome {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "folding the queue counts failed; retrying later"),
            Err(e) => tracing::error!(error = %e, "the queue count fold stopped unexpectedly"),
        }
        tokio::time::sleep(FOLD_COUNTS_EVERY).await;
    }
}
