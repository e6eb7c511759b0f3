//! Throttles: which client a count belongs to, and when a lockout ends.

use chrono::{Duration, NaiveDateTime};
use std::net::IpAddr;

/// The key a client address counts under: an IPv4 address as itself, an IPv6 address by its
/// /64 (one subscriber usually holds a whole /64 and can pick any address in it, so counting
/// single IPv6 addresses would give them 2^64 fresh budgets). Text that is not an address (no
/// peer address at all) is kept as it is.
pub fn client_key(client: &str) -> String {
    match client.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(bits))
        }
        Err(_) => client.trim().to_string(),
    }
}

/// Until when a key is locked out, given the times of its failures (any order): once `limit`
/// failures fall within `window`, the lockout lasts `window` from the failure that reached the
/// limit, whatever ages out of the window meanwhile (a sliding count would lift the lockout as
/// soon as the oldest failure is older than the window). Failures older than twice the window
/// before `now` cannot matter and may be left out by the caller.
pub fn locked_until(failures: &[NaiveDateTime], limit: usize, window: Duration) -> Option<NaiveDateTime> {
    if limit == 0 {
        return None;
    }
    let mut times = failures.to_vec();
    times.sort_unstable();
    times
        .windows(limit)
        .filter(|w| w[limit - 1] - w[0] <= window)
        .map(|w| w[limit - 1] + window)
        .max()
}

/// When a sliding count that is at or over `limit` falls below it again: the moment the
/// `limit`-th newest of `times` (any order, all within `window` before `now`) leaves the
/// window. `None` when the count is below the limit already.
pub fn below_limit_at(times: &[NaiveDateTime], limit: usize, window: Duration) -> Option<NaiveDateTime> {
    if limit == 0 || times.len() < limit {
        return None;
    }
    let mut newest_first = times.to_vec();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    Some(newest_first[limit - 1] + window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_hour_frees_a_place_when_the_oldest_counted_submission_leaves_it() {
        let hour = Duration::hours(1);
        let five = [at(0), at(10), at(20), at(30), at(40)];
        assert_eq!(below_limit_at(&five, 5, hour), Some(at(60)));
        // Over the limit (a higher limit earlier): the place frees when enough have left.
        let seven = [at(40), at(0), at(5), at(10), at(20), at(30), at(35)];
        assert_eq!(below_limit_at(&seven, 5, hour), Some(at(70)));
        assert_eq!(below_limit_at(&five[..4], 5, hour), None);
        assert_eq!(below_limit_at(&five, 0, hour), None);
    }

    fn at(minute: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000, 0)
            .expect("a time")
            .naive_utc()
            + Duration::minutes(minute)
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_ipv4_by_itself() {
        assert_eq!(client_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(client_key("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(client_key("2001:db8:1:3::1"), client_key("2001:db8:1:2::1"));
        assert_eq!(client_key("203.0.113.7"), "203.0.113.7");
        assert_eq!(client_key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(client_key(""), "");
    }

    #[test]
    fn a_lockout_lasts_the_window_from_the_failure_that_reached_the_limit() {
        let window = Duration::minutes(15);
        // Five failures over 14 minutes: locked until 15 minutes after the fifth, not lifted
        // a minute later when the first one leaves the window.
        let failures: Vec<_> = [0, 1, 2, 3, 14].into_iter().map(at).collect();
        assert_eq!(locked_until(&failures, 5, window), Some(at(29)));
        assert_eq!(locked_until(&failures[..4], 5, window), None);
        // Spread wider than the window: never five within 15 minutes.
        let spread: Vec<_> = [0, 4, 8, 12, 16].into_iter().map(at).collect();
        assert_eq!(locked_until(&spread, 5, window), None);
        // Unsorted input gives the same answer.
        let shuffled: Vec<_> = [14, 0, 3, 1, 2].into_iter().map(at).collect();
        assert_eq!(locked_until(&shuffled, 5, window), Some(at(29)));
    }
}
