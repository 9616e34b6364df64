//! The two date formats of Twilio's 2010 API, without a calendar crate.
//!
//! Resources carry RFC 2822 dates (`Thu, 24 Aug 2023 05:01:45 +0000`); list filters such as
//! `DateSent>=` take ISO 8601 (`2023-08-24T05:01:45Z` or a bare `2023-08-24`). Everything is
//! UTC at one-second resolution, which is all either format expresses.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn from_unix_seconds(seconds: i64) -> SystemTime {
    if seconds >= 0 {
        UNIX_EPOCH + Duration::from_secs(seconds.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs())
    }
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct Parts {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    weekday: usize,
}

fn parts(time: SystemTime) -> Parts {
    let seconds = unix_seconds(time);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    Parts {
        year,
        month,
        day,
        hour: of_day / 3600,
        minute: of_day / 60 % 60,
        second: of_day % 60,
        weekday: (days + 4).rem_euclid(7) as usize,
    }
}

/// `Thu, 24 Aug 2023 05:01:45 +0000`, as in `date_created`.
pub fn rfc2822(time: SystemTime) -> String {
    let p = parts(time);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
        DAYS[p.weekday],
        p.day,
        MONTHS[(p.month - 1) as usize],
        p.year,
        p.hour,
        p.minute,
        p.second
    )
}

/// `2023-08-24T05:01:45Z`, as Twilio's SDKs send date-time filters.
pub fn iso8601(time: SystemTime) -> String {
    let p = parts(time);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        p.year, p.month, p.day, p.hour, p.minute, p.second
    )
}

/// `YYMMDDhhmm`, the carrier "done date" of a delivery receipt (`RawDlrDoneDate`).
pub fn dlr_done_date(time: SystemTime) -> String {
    let p = parts(time);
    format!(
        "{:02}{:02}{:02}{:02}{:02}",
        p.year.rem_euclid(100),
        p.month,
        p.day,
        p.hour,
        p.minute
    )
}

/// A decimal field of at most 4 digits within `range` (no signs, no spaces).
fn number(text: &str, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|v| range.contains(v))
}

fn at(year: i64, month: u32, day: u32, hms: (i64, i64, i64)) -> SystemTime {
    let days = days_from_civil(year, month, day);
    from_unix_seconds(days * 86_400 + hms.0 * 3600 + hms.1 * 60 + hms.2)
}

fn parse_hms(text: &str) -> Option<(i64, i64, i64)> {
    let mut it = text.split(':');
    let h = number(it.next()?, 0..=23)?;
    let m = number(it.next()?, 0..=59)?;
    let s = number(it.next()?, 0..=60)?;
    it.next().is_none().then_some((h, m, s))
}

/// Parses `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SS` with `Z`, `+00:00` or nothing.
pub fn parse_iso8601(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut it = date.split('-');
    let year = number(it.next()?, 1970..=9999)?;
    let month = number(it.next()?, 1..=12)? as u32;
    let day = number(it.next()?, 1..=31)? as u32;
    if it.next().is_some() {
        return None;
    }
    let hms = match time {
        None => (0, 0, 0),
        Some(t) => {
            let t = t
                .strip_suffix('Z')
                .or_else(|| t.strip_suffix("+00:00"))
                .unwrap_or(t);
            parse_hms(t)?
        }
    };
    Some(at(year, month, day, hms))
}

/// Parses `Thu, 24 Aug 2023 05:01:45 +0000` (UTC offsets only, as Twilio always sends).
pub fn parse_rfc2822(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let text = text.split_once(", ").map_or(text, |(_, rest)| rest);
    let mut it = text.split_whitespace();
    let day = number(it.next()?, 1..=31)? as u32;
    let month_name = it.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? as u32 + 1;
    let year = number(it.next()?, 1970..=9999)?;
    let hms = parse_hms(it.next()?)?;
    match it.next() {
        Some("+0000" | "GMT" | "UTC") | None => Some(at(year, month, day, hms)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_reference_example() {
        let t = from_unix_seconds(1_692_853_305);
        assert_eq!(rfc2822(t), "Thu, 24 Aug 2023 05:01:45 +0000");
        assert_eq!(iso8601(t), "2023-08-24T05:01:45Z");
        assert_eq!(dlr_done_date(t), "2308240501");
    }

    #[test]
    fn parses_what_it_formats() {
        for seconds in [0, 951_782_400, 1_692_853_305, 4_102_444_799] {
            let t = from_unix_seconds(seconds);
            assert_eq!(parse_rfc2822(&rfc2822(t)), Some(t));
            assert_eq!(parse_iso8601(&iso8601(t)), Some(t));
        }
    }

    #[test]
    fn parses_bare_dates_and_offsets() {
        let midnight = from_unix_seconds(1_692_835_200);
        assert_eq!(parse_iso8601("2023-08-24"), Some(midnight));
        assert_eq!(parse_iso8601("2023-08-24T00:00:00+00:00"), Some(midnight));
        assert_eq!(
            parse_rfc2822("Thu, 24 Aug 2023 00:00:00 +0000"),
            Some(midnight)
        );
        assert_eq!(
            rfc2822(from_unix_seconds(951_782_400)),
            "Tue, 29 Feb 2000 00:00:00 +0000"
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "2023-13-01",
            "2023-08-24T25:00:00Z",
            "yesterday",
            "2023-08-24T00:00",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
        assert_eq!(parse_rfc2822("Thu, 24 Foo 2023 00:00:00 +0000"), None);
    }
}
