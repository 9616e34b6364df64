//! The 17 `split-based-on` condition types.
//!
//! Twilio documents that conditions are not case-sensitive and that leading and trailing spaces
//! are trimmed, so both the tested text and the operand are trimmed and compared lowercased
//! (regular expressions run case-insensitively). `matches_any_of` takes a comma-separated list
//! whose items are trimmed. `less_than`/`greater_than` compare numbers and are false when either
//! side is not a number. Times compare the time of day (`HH:MM`, `HH:MM:SS`, `h:mm am/pm`, or
//! the time part of an ISO date-time); dates compare calendar days (`YYYY-MM-DD`, optionally
//! followed by a time, or US `MM/DD/YYYY` / `MM-DD-YYYY`). An input or operand that cannot be
//! read as a time or date makes the condition false, never an error.
use std::cmp::Ordering;

/// A condition type as written in the flow JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionKind {
    EqualTo,
    NotEqualTo,
    MatchesAnyOf,
    DoesNotMatchAnyOf,
    IsBlank,
    IsNotBlank,
    Regex,
    Contains,
    DoesNotContain,
    StartsWith,
    DoesNotStartWith,
    LessThan,
    GreaterThan,
    IsBeforeTime,
    IsAfterTime,
    IsBeforeDate,
    IsAfterDate,
}

/// Every condition type with its JSON name.
pub const ALL: &[(&str, ConditionKind)] = &[
    ("equal_to", ConditionKind::EqualTo),
    ("not_equal_to", ConditionKind::NotEqualTo),
    ("matches_any_of", ConditionKind::MatchesAnyOf),
    ("does_not_match_any_of", ConditionKind::DoesNotMatchAnyOf),
    ("is_blank", ConditionKind::IsBlank),
    ("is_not_blank", ConditionKind::IsNotBlank),
    ("regex", ConditionKind::Regex),
    ("contains", ConditionKind::Contains),
    ("does_not_contain", ConditionKind::DoesNotContain),
    ("starts_with", ConditionKind::StartsWith),
    ("does_not_start_with", ConditionKind::DoesNotStartWith),
    ("less_than", ConditionKind::LessThan),
    ("greater_than", ConditionKind::GreaterThan),
    ("is_before_time", ConditionKind::IsBeforeTime),
    ("is_after_time", ConditionKind::IsAfterTime),
    ("is_before_date", ConditionKind::IsBeforeDate),
    ("is_after_date", ConditionKind::IsAfterDate),
];

impl ConditionKind {
    pub fn parse(name: &str) -> Option<Self> {
        ALL.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }
}

/// Largest compiled regular expression accepted from a flow, so a hostile pattern cannot eat
/// memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Backtracking steps one match may take (look-arounds and back-references backtrack), so a
/// pathological pattern fails to match instead of stalling the turn.
const REGEX_BACKTRACK_LIMIT: usize = 100_000;

/// Builds a condition's regular expression (case-insensitive). `fancy-regex` runs what
/// Twilio's (JavaScript-style) patterns use beyond the `regex` crate: look-ahead and
/// look-behind (`^(?=.*\d)`), back-references.
pub fn regex(pattern: &str) -> Result<fancy_regex::Regex, String> {
    // The inline flag, not the builder's, so look-arounds ignore case too.
    fancy_regex::RegexBuilder::new(&format!("(?i){}", pattern.trim()))
        .delegate_size_limit(REGEX_SIZE_LIMIT)
        .backtrack_limit(REGEX_BACKTRACK_LIMIT)
        .build()
        .map_err(|e| e.to_string())
}

/// Does the condition hold for `input` against `value`?
pub fn holds(kind: ConditionKind, input: &str, value: &str) -> bool {
    use ConditionKind::*;
    let input_lc = input.trim().to_lowercase();
    let value_lc = value.trim().to_lowercase();
    let any_of = || {
        value_lc
            .split(',')
            .map(str::trim)
            .any(|item| item == input_lc)
    };
    match kind {
        EqualTo => input_lc == value_lc,
        NotEqualTo => input_lc != value_lc,
        MatchesAnyOf => any_of(),
        DoesNotMatchAnyOf => !any_of(),
        IsBlank => input_lc.is_empty(),
        IsNotBlank => !input_lc.is_empty(),
        // A match that runs out of backtracking budget counts as no match.
        Regex => regex(value).is_ok_and(|re| re.is_match(input.trim()).unwrap_or(false)),
        Contains => input_lc.contains(&value_lc),
        DoesNotContain => !input_lc.contains(&value_lc),
        StartsWith => input_lc.starts_with(&value_lc),
        DoesNotStartWith => !input_lc.starts_with(&value_lc),
        LessThan => compare_numbers(&input_lc, &value_lc) == Some(Ordering::Less),
        GreaterThan => compare_numbers(&input_lc, &value_lc) == Some(Ordering::Greater),
        IsBeforeTime => {
            compare(time_of_day(&input_lc), time_of_day(&value_lc)) == Some(Ordering::Less)
        }
        IsAfterTime => {
            compare(time_of_day(&input_lc), time_of_day(&value_lc)) == Some(Ordering::Greater)
        }
        IsBeforeDate => compare(date(&input_lc), date(&value_lc)) == Some(Ordering::Less),
        IsAfterDate => compare(date(&input_lc), date(&value_lc)) == Some(Ordering::Greater),
    }
}

fn compare<T: Ord>(a: Option<T>, b: Option<T>) -> Option<Ordering> {
    Some(a?.cmp(&b?))
}

fn compare_numbers(a: &str, b: &str) -> Option<Ordering> {
    let a: f64 = a.parse().ok().filter(|f: &f64| f.is_finite())?;
    let b: f64 = b.parse().ok().filter(|f: &f64| f.is_finite())?;
    a.partial_cmp(&b)
}

/// Seconds since midnight of a lowercased time (or the time part of an ISO date-time).
fn time_of_day(s: &str) -> Option<u32> {
    let s = s.trim();
    // "2024-05-01t13:45:00z" / "2024-05-01 13:45": keep what follows the date.
    let s = match s.find(['t', ' ']) {
        Some(i) if date(&s[..i]).is_some() => &s[i + 1..],
        _ => s,
    };
    let (clock, meridiem) = if let Some(rest) = s.strip_suffix("am") {
        (rest.trim(), Some(false))
    } else if let Some(rest) = s.strip_suffix("pm") {
        (rest.trim(), Some(true))
    } else {
        (s, None)
    };
    // Drop a zone or fraction: "13:45:00z", "13:45:00.000+02:00".
    let clock = clock.split(['z', '+', '.']).next().unwrap_or("");
    let clock = match clock.rfind('-') {
        Some(i) if i > 0 => &clock[..i],
        _ => clock,
    };
    let mut parts = clock.split(':');
    let h: u32 = parts.next()?.trim().parse().ok()?;
    let m: u32 = parts.next().map_or(Some(0), |p| p.trim().parse().ok())?;
    let sec: u32 = parts.next().map_or(Some(0), |p| p.trim().parse().ok())?;
    if parts.next().is_some() || m > 59 || sec > 59 {
        return None;
    }
    let h = match meridiem {
        Some(pm) if (1..=12).contains(&h) => (h % 12) + if pm { 12 } else { 0 },
        Some(_) => return None,
        None if h <= 23 => h,
        None => return None,
    };
    Some(h * 3600 + m * 60 + sec)
}

/// (year, month, day) of `YYYY-MM-DD[...]`, `MM/DD/YYYY` or `MM-DD-YYYY`.
fn date(s: &str) -> Option<(i32, u32, u32)> {
    let s = s.trim();
    let head = s.split(['t', ' ']).next().unwrap_or("");
    let parts: Vec<&str> = head.split(['-', '/']).collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let (y, m, d) = if a.len() == 4 {
        (*a, *b, *c)
    } else {
        (*c, *a, *b)
    };
    let (y, m, d): (i32, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    ((1..=12).contains(&m) && (1..=31).contains(&d) && y > 0).then_some((y, m, d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConditionKind::*;

    #[test]
    fn all_seventeen_types_parse() {
        assert_eq!(ALL.len(), 17);
        for (name, kind) in ALL {
            assert_eq!(ConditionKind::parse(name), Some(*kind));
        }
        assert_eq!(ConditionKind::parse("equals"), None);
    }

    #[test]
    fn equal_to_ignores_case_and_surrounding_spaces() {
        assert!(holds(EqualTo, "  Confirm Appt ", "CONFIRM APPT"));
        assert!(!holds(EqualTo, "confirm", "CONFIRM APPT"));
        assert!(holds(NotEqualTo, "confirm", "CONFIRM APPT"));
        assert!(!holds(NotEqualTo, " yes", "YES "));
    }

    #[test]
    fn matches_any_of_trims_each_item() {
        assert!(holds(MatchesAnyOf, "existing", "New, Existing"));
        assert!(holds(MatchesAnyOf, " YES", "yes,Yes"));
        assert!(!holds(MatchesAnyOf, "yes please", "yes,Yes"));
        assert!(holds(DoesNotMatchAnyOf, "maybe", "yes,no"));
        assert!(!holds(DoesNotMatchAnyOf, "No", "yes,no"));
    }

    #[test]
    fn blank_means_empty_after_trimming() {
        assert!(holds(IsBlank, "   ", "Is Blank"));
        assert!(holds(IsBlank, "", ""));
        assert!(!holds(IsBlank, "x", ""));
        assert!(holds(IsNotBlank, " x ", "Is Not Blank"));
        assert!(!holds(IsNotBlank, "\t", ""));
    }

    #[test]
    fn regex_is_case_insensitive_and_unanchored() {
        assert!(holds(Regex, "Order ABC-123 please", "[a-z]{3}-\\d+"));
        assert!(holds(Regex, "hello", "^HELLO$"));
        assert!(!holds(Regex, "hello", "^bye"));
        assert!(
            !holds(Regex, "anything", "("),
            "an invalid pattern never matches"
        );
    }

    #[test]
    fn look_ahead_patterns_work_as_on_twilio() {
        // At least one digit and one letter, in any order.
        let both = "^(?=.*\\d)(?=.*[a-z]).+$";
        assert!(holds(Regex, "abc123", both));
        assert!(!holds(Regex, "abcdef", both));
        assert!(holds(Regex, "no thanks", "^(?!yes).*"));
        assert!(!holds(Regex, "Yes please", "^(?!yes).*"));
        assert!(holds(Regex, "price: 20", "(?<=price: )\\d+"));
        assert!(regex("(a)\\1").is_ok(), "back-references parse");
    }

    #[test]
    fn contains_and_starts_with() {
        assert!(holds(Contains, "Yes I would", "yes"));
        assert!(!holds(Contains, "nope", "yes"));
        assert!(holds(DoesNotContain, "nope", "yes"));
        assert!(!holds(DoesNotContain, "YES", "yes"));
        assert!(holds(StartsWith, "  Agente por favor", "agente"));
        assert!(!holds(StartsWith, "hola agente", "agente"));
        assert!(holds(DoesNotStartWith, "hola agente", "agente"));
        assert!(!holds(DoesNotStartWith, "Agente", "agente"));
    }

    #[test]
    fn numbers_compare_numerically() {
        assert!(holds(LessThan, "9", "10"));
        assert!(!holds(LessThan, "10", "9"));
        assert!(holds(GreaterThan, " 2.5 ", "1"));
        assert!(!holds(GreaterThan, "1", "1"));
        assert!(!holds(GreaterThan, "abc", "1"), "not a number: false");
        assert!(!holds(LessThan, "1", ""), "no operand: false");
        assert!(!holds(LessThan, "NaN", "1"));
    }

    #[test]
    fn times_compare_the_time_of_day() {
        assert!(holds(IsBeforeTime, "08:30", "09:00"));
        assert!(!holds(IsBeforeTime, "17:00", "09:00"));
        assert!(holds(IsAfterTime, "5:15 PM", "17:00"));
        assert!(holds(IsAfterTime, "2024-05-01T18:00:00Z", "17:00"));
        assert!(holds(IsBeforeTime, "2024-05-01 07:59:59", "08:00"));
        assert!(holds(IsBeforeTime, "12:00 am", "00:01"));
        assert!(!holds(IsBeforeTime, "lunchtime", "13:00"));
        assert!(!holds(IsAfterTime, "25:00", "13:00"));
    }

    #[test]
    fn dates_compare_calendar_days() {
        assert!(holds(IsBeforeDate, "2024-01-31", "2024-02-01"));
        assert!(!holds(IsBeforeDate, "2024-02-01", "2024-02-01"));
        assert!(holds(IsAfterDate, "03/15/2024", "2024-03-14"));
        assert!(holds(IsAfterDate, "2024-03-15T08:00:00Z", "03-14-2024"));
        assert!(!holds(IsAfterDate, "someday", "2024-03-14"));
        assert!(!holds(IsBeforeDate, "2024-13-01", "2025-01-01"));
    }
}
