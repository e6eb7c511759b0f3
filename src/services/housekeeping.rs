//! Background upkeep `serve` runs: deleting rows nothing reads any more.

use crate::db::{self, submissions};
use chrono::Duration;

/// Deletes form submissions and sign-in attempts that no rate limit reads any more. Returns
/// how many of each were deleted.
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
