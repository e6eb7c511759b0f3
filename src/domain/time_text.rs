//! Every way the desk writes a time, in one place: machines read RFC 3339, people read minutes
//! (or seconds, where a log line is matched against them) and always "UTC" beside it.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// "2026-12-07T09:14:03Z" (fractions only when there are some): for JSON.
pub fn rfc3339(t: NaiveDateTime) -> String {
    rfc3339_utc(t.and_utc())
}

/// [`rfc3339`] for a time that carries its zone already.
pub fn rfc3339_utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// "2026-12-07 09:14 UTC": the absolute time beside a relative one, on pages.
pub fn minutes_utc(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// "2026-12-07 09:14": in a table whose heading says UTC.
pub fn minutes(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// "2026-11-23 09:14:03 UTC": where the customer matches the time against their own logs.
pub fn seconds_utc(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// "2026-12-07": a day.
pub fn day(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// "3 h", "2 d": how long something has waited, for people scanning a queue.
pub fn age(since: NaiveDateTime, now: NaiveDateTime) -> String {
    let minutes = (now - since).num_minutes().max(0);
    match minutes {
        0..=59 => format!("{minutes} min"),
        60..=2879 => format!("{} h", minutes / 60),
        _ => format!("{} d", minutes / 1440),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").expect("a test time")
    }

    #[test]
    fn each_reader_gets_its_format() {
        let t = at("2026-12-07 09:14:03");
        assert_eq!(rfc3339(t), "2026-12-07T09:14:03Z");
        assert_eq!(rfc3339(at("2026-12-07 09:14:03.250")), "2026-12-07T09:14:03.250Z");
        assert_eq!(minutes_utc(t), "2026-12-07 09:14 UTC");
        assert_eq!(minutes(t), "2026-12-07 09:14");
        assert_eq!(seconds_utc(t), "2026-12-07 09:14:03 UTC");
        assert_eq!(day(t), "2026-12-07");
    }

    #[test]
    fn ages_round_down_to_the_unit_people_scan_for() {
        let t = at("2026-12-07 09:00:00");
        assert_eq!(age(t, t + chrono::Duration::minutes(59)), "59 min");
        assert_eq!(age(t, t + chrono::Duration::minutes(60)), "1 h");
        assert_eq!(age(t, t + chrono::Duration::hours(48)), "2 d");
        assert_eq!(age(t + chrono::Duration::minutes(5), t), "0 min");
    }
}
