//! A time the customer gives on their own clock, in a zone they choose (an IANA name such as
//! `Europe/Paris`, or a fixed offset such as `+05:30`), turned into UTC for storage
//! (docs/reference.md#customer-pages).

use chrono::{DateTime, Datelike, FixedOffset, LocalResult, NaiveDateTime, TimeZone, Utc};

/// The widest offset any zone uses (Kiribati, +14:00; the other way, −12:00 is the least).
pub const MAX_OFFSET_MINUTES: i32 = 14 * 60;
/// Longer than any zone name: anything longer is not read at all.
const MAX_ZONE_CHARS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Utc,
    Offset(FixedOffset),
    Named(chrono_tz::Tz),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneError {
    /// Not a zone name nor an offset.
    Unknown,
    /// An offset no place on Earth uses (beyond −12:00 … +14:00).
    OffsetOutOfRange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalTimeError {
    /// The clocks skipped this time that night (daylight saving began).
    Skipped,
    /// Outside the times the desk can represent.
    OutOfRange,
}

impl Zone {
    /// The zone as the form sends it back (`UTC`, `+05:30`, `Europe/Paris`).
    pub fn name(&self) -> String {
        match self {
            Zone::Utc => "UTC".to_string(),
            Zone::Offset(o) => offset_name(o.local_minus_utc() / 60),
            Zone::Named(tz) => tz.name().to_string(),
        }
    }
}

/// `+05:30`, `-03:00`: how a fixed offset is written.
pub fn offset_name(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.unsigned_abs();
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

/// Reads a zone: empty or `UTC` is UTC; `+HH:MM`, `+HHMM`, `+HH` (or with `-`, or `UTC+…`) a
/// fixed offset within −12:00 … +14:00; anything else must be an IANA zone name, exactly.
pub fn parse_zone(text: &str) -> Result<Zone, ZoneError> {
    let text = text.trim();
    if text.chars().count() > MAX_ZONE_CHARS {
        return Err(ZoneError::Unknown);
    }
    if text.is_empty() || text.eq_ignore_ascii_case("utc") || text.eq_ignore_ascii_case("z") {
        return Ok(Zone::Utc);
    }
    let offset = text
        .strip_prefix("UTC")
        .or_else(|| text.strip_prefix("GMT"))
        .unwrap_or(text);
    let sign = match offset.chars().next() {
        Some('+') => Some(1),
        // ASCII hyphen-minus, or the minus sign a label may show.
        Some('-') | Some('\u{2212}') => Some(-1),
        _ => None,
    };
    if let Some(sign) = sign {
        let digits = &offset[offset.chars().next().map_or(0, char::len_utf8)..];
        let minutes = parse_offset_digits(digits).ok_or(ZoneError::Unknown)?;
        let minutes = sign * minutes;
        if !(-12 * 60..=MAX_OFFSET_MINUTES).contains(&minutes) {
            return Err(ZoneError::OffsetOutOfRange);
        }
        if minutes == 0 {
            return Ok(Zone::Utc);
        }
        return FixedOffset::east_opt(minutes * 60)
            .map(Zone::Offset)
            .ok_or(ZoneError::OffsetOutOfRange);
    }
    text.parse::<chrono_tz::Tz>()
        .map(Zone::Named)
        .map_err(|_| ZoneError::Unknown)
}

/// `HH`, `HH:MM` or `HHMM` (one or two hour digits, two minute digits below 60) → minutes.
fn parse_offset_digits(digits: &str) -> Option<i32> {
    let all_digits = |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    let (hours, minutes) = match digits.split_once(':') {
        Some((h, m)) if m.len() == 2 => (h, m),
        Some(_) => return None,
        None if digits.len() == 4 => (&digits[..2], &digits[2..]),
        None => (digits, "00"),
    };
    if !all_digits(hours) || !all_digits(minutes) {
        return None;
    }
    let (h, m): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
    (m < 60).then_some(h * 60 + m)
}

/// The instant a wall-clock time in `zone` names. A time the clocks skipped is refused; a time
/// they showed twice (when daylight saving ended) is taken as the earlier of the two.
pub fn to_utc(local: NaiveDateTime, zone: Zone) -> Result<DateTime<Utc>, LocalTimeError> {
    let resolved = match zone {
        Zone::Utc => return Ok(local.and_utc()),
        Zone::Offset(offset) => offset.from_local_datetime(&local).map(|t| t.with_timezone(&Utc)),
        Zone::Named(tz) => tz.from_local_datetime(&local).map(|t| t.with_timezone(&Utc)),
    };
    match resolved {
        LocalResult::Single(t) => Ok(t),
        LocalResult::Ambiguous(earlier, later) => Ok(earlier.min(later)),
        LocalResult::None => {
            // A fixed offset skips nothing: only an overflow at the ends of time lands here.
            if matches!(zone, Zone::Named(_)) && local.and_utc().timestamp().abs() < 1 << 40 {
                Err(LocalTimeError::Skipped)
            } else {
                Err(LocalTimeError::OutOfRange)
            }
        }
    }
}

/// Why the time of a failed attempt could not be read (the words are for the customer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailedAtError {
    #[error("Use a date and time such as 2026-11-20T10:00.")]
    Unreadable,
    #[error("Use a date between the years 2000 and 2100.")]
    OutOfRange,
    #[error(
        "The clocks skipped this time in {0} (daylight saving began): use the time your clock showed, such as an hour later."
    )]
    Skipped(String),
}

/// The wall-clock forms read (`%.f` takes seconds and their fraction, or nothing).
const WALL_CLOCK_FORMATS: [&str; 4] = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
];

/// The time of a failed attempt as people write it, whoever reads it (form, API, mail, agent):
/// RFC 3339 or RFC 2822, whose own offset wins; `2026-11-23T09:14` (a `datetime-local` field)
/// or `2026-11-23 09:14[:05]`, followed or not by `UTC`, `GMT` or an offset such as `+0100`.
/// A time that names no offset is read on the clock of `zone`. Years 2000 to 2100 only: a
/// typo of a century is not a time the logs could hold.
pub fn parse_failed_at(text: &str, zone: Zone) -> Result<DateTime<Utc>, FailedAtError> {
    let text = text.trim().trim_end_matches('.');
    let with_offset = DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_rfc2822(text))
        .ok()
        .map(|t| t.with_timezone(&Utc));
    let t = match with_offset {
        Some(t) => t,
        None => {
            let (wall_clock, offset) = split_offset(text);
            let local = WALL_CLOCK_FORMATS
                .iter()
                .find_map(|format| NaiveDateTime::parse_from_str(wall_clock, format).ok())
                .ok_or(FailedAtError::Unreadable)?;
            if !plausible(local.year()) {
                return Err(FailedAtError::OutOfRange);
            }
            match offset {
                Some(offset) => local.and_utc() - offset,
                None => to_utc(local, zone).map_err(|e| match e {
                    LocalTimeError::Skipped => FailedAtError::Skipped(zone.name()),
                    LocalTimeError::OutOfRange => FailedAtError::OutOfRange,
                })?,
            }
        }
    };
    if plausible(t.year()) {
        Ok(t)
    } else {
        Err(FailedAtError::OutOfRange)
    }
}

fn plausible(year: i32) -> bool {
    (2000..=2100).contains(&year)
}

/// "2026-11-23 09:14 UTC" → ("2026-11-23 09:14", Some(0)); "… +0100" → (…, Some(+1 h));
/// no zone → (text, None).
fn split_offset(text: &str) -> (&str, Option<chrono::Duration>) {
    let Some((head, zone)) = text.rsplit_once(' ') else {
        return (text, None);
    };
    if matches!(zone.to_ascii_uppercase().as_str(), "UTC" | "GMT" | "Z") {
        return (head, Some(chrono::Duration::zero()));
    }
    let sign = match zone.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return (text, None),
    };
    let digits: String = zone[1..].chars().filter(char::is_ascii_digit).collect();
    if digits.len() != 4 || zone[1..].chars().any(|c| !(c.is_ascii_digit() || c == ':')) {
        return (text, None);
    }
    let hours: i64 = digits[..2].parse().unwrap_or(0);
    let minutes: i64 = digits[2..].parse().unwrap_or(0);
    (head, Some(chrono::Duration::minutes(sign * (hours * 60 + minutes))))
}

/// The zone names a form offers: `UTC` first, then every `Region/City` zone, sorted.
pub fn zone_names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: Vec<&'static str> = chrono_tz::TZ_VARIANTS
            .iter()
            .map(|tz| tz.name())
            .filter(|n| {
                n.contains('/')
                    && [
                        "Africa/",
                        "America/",
                        "Antarctica/",
                        "Asia/",
                        "Atlantic/",
                        "Australia/",
                        "Europe/",
                        "Indian/",
                        "Pacific/",
                    ]
                    .iter()
                    .any(|region| n.starts_with(region))
            })
            .collect();
        names.sort_unstable();
        names.insert(0, "UTC");
        names
    })
}

/// The fixed offsets a form offers, in minutes: every offset in use, west to east.
pub const OFFSETS_MINUTES: &[i32] = &[
    -720, -660, -600, -570, -540, -480, -420, -360, -300, -240, -210, -180, -120, -60, 60, 120, 180, 210, 240, 270,
    300, 330, 345, 360, 390, 420, 480, 525, 540, 570, 600, 630, 660, 720, 765, 780, 840,
];

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, 0))
            .unwrap_or_default()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn a_named_zone_follows_its_summer_and_winter_time() {
        let paris = parse_zone("Europe/Paris").unwrap_or(Zone::Utc);
        assert_eq!(to_utc(at(2026, 1, 15, 10, 0), paris), Ok(utc("2026-01-15T09:00:00Z")));
        assert_eq!(to_utc(at(2026, 7, 15, 10, 0), paris), Ok(utc("2026-07-15T08:00:00Z")));
        let new_york = parse_zone("America/New_York").unwrap_or(Zone::Utc);
        assert_eq!(
            to_utc(at(2026, 11, 20, 10, 0), new_york),
            Ok(utc("2026-11-20T15:00:00Z"))
        );
    }

    #[test]
    fn the_hour_daylight_saving_skips_is_refused_and_the_hour_it_repeats_is_the_earlier() {
        let paris = parse_zone("Europe/Paris").unwrap_or(Zone::Utc);
        // 2026-03-29: 02:00 → 03:00 in Paris.
        assert_eq!(to_utc(at(2026, 3, 29, 2, 30), paris), Err(LocalTimeError::Skipped));
        assert_eq!(to_utc(at(2026, 3, 29, 1, 59), paris), Ok(utc("2026-03-29T00:59:00Z")));
        assert_eq!(to_utc(at(2026, 3, 29, 3, 0), paris), Ok(utc("2026-03-29T01:00:00Z")));
        // 2026-10-25: 03:00 → 02:00 in Paris; 02:30 happens twice.
        assert_eq!(to_utc(at(2026, 10, 25, 2, 30), paris), Ok(utc("2026-10-25T00:30:00Z")));
        // The southern hemisphere's change, the other way round in the year.
        let sydney = parse_zone("Australia/Sydney").unwrap_or(Zone::Utc);
        assert_eq!(to_utc(at(2026, 10, 4, 2, 30), sydney), Err(LocalTimeError::Skipped));
    }

    #[test]
    fn fixed_offsets_are_read_in_every_spelling_and_within_the_range_in_use() {
        let minutes = |text: &str| match parse_zone(text) {
            Ok(Zone::Offset(o)) => Some(o.local_minus_utc() / 60),
            Ok(Zone::Utc) => Some(0),
            _ => None,
        };
        assert_eq!(minutes("+05:30"), Some(330));
        assert_eq!(minutes("+0530"), Some(330));
        assert_eq!(minutes("UTC+5"), Some(300));
        assert_eq!(minutes("-03:00"), Some(-180));
        assert_eq!(minutes("\u{2212}03:00"), Some(-180));
        assert_eq!(minutes("+14:00"), Some(840));
        assert_eq!(minutes("-12:00"), Some(-720));
        assert_eq!(minutes("+00:00"), Some(0));
        assert_eq!(minutes(" utc "), Some(0));
        assert_eq!(minutes(""), Some(0));
        let five_thirty = parse_zone("+05:30").unwrap_or(Zone::Utc);
        assert_eq!(
            to_utc(at(2026, 11, 20, 10, 0), five_thirty),
            Ok(utc("2026-11-20T04:30:00Z"))
        );
        assert_eq!(five_thirty.name(), "+05:30");
    }

    #[test]
    fn hostile_zones_and_offsets_are_refused() {
        for (text, expected) in [
            ("+14:01", ZoneError::OffsetOutOfRange),
            ("-12:01", ZoneError::OffsetOutOfRange),
            ("+99:00", ZoneError::OffsetOutOfRange),
            ("+24", ZoneError::OffsetOutOfRange),
            ("+05:60", ZoneError::Unknown),
            ("+5:3", ZoneError::Unknown),
            ("+123:00", ZoneError::Unknown),
            ("+", ZoneError::Unknown),
            ("++05", ZoneError::Unknown),
            ("+05:30:00", ZoneError::Unknown),
            ("+٠٥:٣٠", ZoneError::Unknown),
            ("+99999999999999999999", ZoneError::Unknown),
            ("-9223372036854775808", ZoneError::Unknown),
            ("Europe/Atlantis", ZoneError::Unknown),
            ("europe/paris", ZoneError::Unknown),
            ("../../etc/passwd", ZoneError::Unknown),
            ("Europe/Paris\0", ZoneError::Unknown),
            ("<script>", ZoneError::Unknown),
        ] {
            assert_eq!(parse_zone(text), Err(expected), "{text:?}");
        }
        assert_eq!(parse_zone(&"A".repeat(100_000)), Err(ZoneError::Unknown));
        assert_eq!(
            parse_zone(&format!("+{}", "0".repeat(100_000))),
            Err(ZoneError::Unknown)
        );
    }

    #[test]
    fn the_ends_of_time_are_out_of_range_not_a_panic() {
        let east = parse_zone("+14:00").unwrap_or(Zone::Utc);
        let west = parse_zone("-12:00").unwrap_or(Zone::Utc);
        assert_eq!(to_utc(NaiveDateTime::MIN, east), Err(LocalTimeError::OutOfRange));
        assert_eq!(to_utc(NaiveDateTime::MAX, west), Err(LocalTimeError::OutOfRange));
        let paris = parse_zone("Europe/Paris").unwrap_or(Zone::Utc);
        // Paris is ahead of UTC: its earliest instant cannot be represented, its latest can.
        assert_eq!(to_utc(NaiveDateTime::MIN, paris), Err(LocalTimeError::OutOfRange));
        assert!(to_utc(NaiveDateTime::MAX, paris).is_ok());
    }

    #[test]
    fn the_form_offers_utc_first_then_region_zones_only() {
        let names = zone_names();
        assert_eq!(names[0], "UTC");
        assert!(names.contains(&"Europe/Paris") && names.contains(&"Asia/Kolkata"));
        assert!(!names.iter().any(|n| n.starts_with("Etc/") || n.starts_with("US/")));
        for n in names {
            assert!(parse_zone(n).is_ok(), "{n}");
        }
        for m in OFFSETS_MINUTES {
            assert!(parse_zone(&offset_name(*m)).is_ok(), "{m}");
        }
    }

    #[test]
    fn a_failed_attempt_is_read_one_way_on_the_zone_given_unless_it_names_its_own() {
        let paris = parse_zone("Europe/Paris").unwrap_or(Zone::Utc);
        // No offset: the zone's clock (winter in Paris is UTC+1).
        assert_eq!(
            parse_failed_at("2026-11-20T10:00", paris),
            Ok(utc("2026-11-20T09:00:00Z"))
        );
        assert_eq!(
            parse_failed_at("2026-11-20 10:00:30", paris),
            Ok(utc("2026-11-20T09:00:30Z"))
        );
        // Its own offset wins, in every spelling.
        for text in [
            "2026-11-20T10:00:00Z",
            "2026-11-20T11:00:00+01:00",
            "2026-11-20 10:00 UTC",
            "2026-11-20 05:00 -0500",
            "Fri, 20 Nov 2026 10:00:00 +0000",
        ] {
            assert_eq!(parse_failed_at(text, paris), Ok(utc("2026-11-20T10:00:00Z")), "{text}");
        }
        assert_eq!(
            parse_failed_at("2026-03-29T02:30", paris),
            Err(FailedAtError::Skipped("Europe/Paris".into()))
        );
        for text in ["1999-12-31T23:00", "2101-01-01T00:00:00Z", "0001-01-01 00:00 UTC"] {
            assert_eq!(
                parse_failed_at(text, Zone::Utc),
                Err(FailedAtError::OutOfRange),
                "{text}"
            );
        }
        for text in ["", "yesterday", "2026-11-20", &"9".repeat(100_000)] {
            assert_eq!(parse_failed_at(text, Zone::Utc), Err(FailedAtError::Unreadable));
        }
        assert!(FailedAtError::Unreadable.to_string().contains("2026-11-20T10:00"));
    }
}
