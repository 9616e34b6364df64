//! Phone numbers: the one normaliser of what people type, and the one E.164 rule of what
//! providers send.
//!
//! ChatBotKit validates contact phones with libphonenumber and a default country of US; the
//! `phonenumber` crate carries the same metadata, so a national number is read by the rules of
//! its region ("020 7946 0958" in GB is +442079460958) instead of being guessed. The default
//! region is a setting (`CHATWIRE_DEFAULT_REGION`). Numbers are parsed, not validated against
//! the allocation tables: test and fictional numbers (+1 555 ...) must keep working.
use phonenumber::country;
use phonenumber::Mode;
use std::fmt;
use std::str::FromStr;

/// The country whose national format applies to numbers written without `+`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(country::Id);

impl Region {
    pub const US: Region = Region(country::Id::US);
}

impl Default for Region {
    fn default() -> Self {
        Region::US
    }
}

impl FromStr for Region {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .to_ascii_uppercase()
            .parse::<country::Id>()
            .map(Region)
            .map_err(|_| format!("{s:?} is not an ISO 3166 region code such as US or GB"))
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Normalises `raw` (spaces, dashes, dots, brackets allowed; `+` or `00` for international) to
/// `+<digits>`, reading national numbers as numbers of `region`.
pub fn normalize_e164(raw: &str, region: Region) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty()
        || !trimmed
            .chars()
            .all(|c| c.is_ascii_digit() || " -.()+".contains(c))
    {
        return None;
    }
    let international = trimmed
        .strip_prefix("00")
        .map(|rest| format!("+{rest}"))
        .unwrap_or_else(|| trimmed.to_owned());
    let parsed = phonenumber::parse(Some(region.0), &international).ok()?;
    let e164 = parsed.format().mode(Mode::E164).to_string();
    is_e164(&e164).then_some(e164)
}

/// `+` followed by 7-15 digits, the first not 0 (the shortest assigned numbers have 7): the form
/// providers send and expect.
pub fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(raw: &str) -> Option<String> {
        normalize_e164(raw, Region::US)
    }

    #[test]
    fn normalizes_common_forms() {
        assert_eq!(us("+1 (415) 867-5309").as_deref(), Some("+14158675309"));
        assert_eq!(us("415.867.5309").as_deref(), Some("+14158675309"));
        assert_eq!(us("14158675309").as_deref(), Some("+14158675309"));
        assert_eq!(us("+44 20 7946 0958").as_deref(), Some("+442079460958"));
        assert_eq!(us("0044 20 7946 0958").as_deref(), Some("+442079460958"));
        assert_eq!(us("+1 555 123 0001").as_deref(), Some("+15551230001"));
    }

    #[test]
    fn national_numbers_follow_the_default_region() {
        let gb: Region = "gb".parse().expect("GB");
        assert_eq!(
            normalize_e164("020 7946 0958", gb).as_deref(),
            Some("+442079460958")
        );
        let de: Region = "DE".parse().expect("DE");
        assert_eq!(
            normalize_e164("030 123456", de).as_deref(),
            Some("+4930123456")
        );
        assert!("XX".parse::<Region>().is_err());
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(us("hello"), None);
        assert_eq!(us("123"), None);
        assert_eq!(us("+1234567890123456"), None);
        assert_eq!(us(""), None);
        assert_eq!(us("+1 415 867 5309 ext. 4"), None);
    }
}
