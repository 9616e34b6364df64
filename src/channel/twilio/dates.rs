//! The two date formats of Twilio's 2010 API.
//!
//! Resources carry RFC 2822 dates (`Thu, 24 Aug 2023 05:01:45 +0000`); list filters such as
//! `DateSent>=` take ISO 8601 (`2023-08-24T05:01:45Z` or a bare `2023-08-24`). Everything is
//! UTC at one-second resolution, which is all either format expresses.

use std::time::{SystemTime, UNIX_EPOCH};
use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

// Twilio writes `+0000` where `time`'s RFC 2822 formatter would too, but that formatter refuses
// years before 1900; a fixed description cannot fail.
const RFC2822: &[BorrowedFormatItem<'_>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] +0000"
);
const ISO8601: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
const DLR_DONE_DATE: &[BorrowedFormatItem<'_>] =
    format_description!("[year repr:last_two][month][day][hour][minute]");
const DATE: &[BorrowedFormatItem<'_>] = format_description!("[year]-[month]-[day]");
const DATE_TIME: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");

/// `time` to whole seconds in UTC; a time outside years 1-9999 is clamped rather than panicking
/// the way `OffsetDateTime::from(SystemTime)` would.
fn utc(time: SystemTime) -> OffsetDateTime {
    let seconds = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or_else(|_| {
        if seconds < 0 {
            PrimitiveDateTime::MIN.assume_utc()
        } else {
            PrimitiveDateTime::MAX.assume_utc()
        }
    })
}

fn format(time: SystemTime, description: &[BorrowedFormatItem<'_>]) -> String {
    utc(time).format(description).unwrap_or_default()
}

/// `Thu, 24 Aug 2023 05:01:45 +0000`, as in `date_created`.
pub fn rfc2822(time: SystemTime) -> String {
    format(time, RFC2822)
}

/// `2023-08-24T05:01:45Z`, as Twilio's SDKs send date-time filters.
pub fn iso8601(time: SystemTime) -> String {
    format(time, ISO8601)
}

/// `YYMMDDhhmm`, the carrier "done date" of a delivery receipt (`RawDlrDoneDate`).
pub fn dlr_done_date(time: SystemTime) -> String {
    format(time, DLR_DONE_DATE)
}

/// Parses `YYYY-MM-DD` (midnight UTC), `YYYY-MM-DDTHH:MM:SS` (UTC) or RFC 3339 with an offset.
pub fn parse_iso8601(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t.into());
    }
    let local = text.strip_suffix('Z').unwrap_or(text).replacen(' ', "T", 1);
    let local = PrimitiveDateTime::parse(&local, DATE_TIME);
    let midnight = || Date::parse(text, DATE).map(Date::midnight);
    local
        .or_else(|_| midnight())
        .ok()
        .map(|t| t.assume_utc().into())
}

/// Parses `Thu, 24 Aug 2023 05:01:45 +0000` (any offset, converted to UTC).
pub fn parse_rfc2822(text: &str) -> Option<SystemTime> {
    OffsetDateTime::parse(text.trim(), &Rfc2822)
        .ok()
        .map(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn from_unix_seconds(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

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
        assert_eq!(parse_iso8601("2023-08-24 00:00:00Z"), Some(midnight));
        assert_eq!(parse_iso8601("2023-08-24T02:00:00+02:00"), Some(midnight));
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
