//! Twilio's webhook connection overrides: a URL fragment such as
//! `#ct=2000&rt=5000&tt=15000&rc=5&rp=ct,rt,5xx` that tells Twilio how to connect to a webhook
//! and when to retry it. Without one Twilio retries an inbound webhook once, and only when the
//! connection failed, so a restart of a few seconds loses messages; `setup` therefore appends
//! [`ConnectionOverrides::chatwire`]. The emulator reads the same fragment to retry as Twilio
//! does.
//!
//! A fragment never travels over HTTP, so Twilio's signature is computed without it (see
//! `signature::compute`); the webhook edge also accepts a signature over the URL with the
//! fragment, in case Twilio's signer ever includes it.
use std::time::Duration;

/// Which failures a retry follows (`rp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryOn {
    /// The TCP connection could not be made (`ct`).
    pub connect: bool,
    /// No answer within the read timeout (`rt`).
    pub read_timeout: bool,
    pub status_4xx: bool,
    pub status_5xx: bool,
}

/// The overrides of one webhook URL, with Twilio's defaults for what the fragment leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionOverrides {
    /// `ct`: 100..=10000 ms, default 5000.
    pub connect_timeout: Duration,
    /// `rt`: 100..=15000 ms, default 15000.
    pub read_timeout: Duration,
    /// `tt`: all attempts together, 100..=15000 ms, default 15000.
    pub total_timeout: Duration,
    /// `rc`: retries after the first attempt, 0..=5, default 1.
    pub retries: u32,
    /// `rp`, default `ct`.
    pub retry_on: RetryOn,
}

impl Default for ConnectionOverrides {
    /// What Twilio does for a URL without a fragment.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_millis(5000),
            read_timeout: Duration::from_millis(15000),
            total_timeout: Duration::from_millis(15000),
            retries: 1,
            retry_on: RetryOn {
                connect: true,
                ..RetryOn::default()
            },
        }
    }
}

impl ConnectionOverrides {
    /// What `setup` asks of Twilio: as many retries as Twilio allows (5) on a failed
    /// connection, a read timeout or a 5xx, within its 15 s total; a 2 s connect timeout and
    /// a 5 s read timeout leave room for retries inside that total. A 4xx is an answer (a
    /// refused signature stays refused). Retries are harmless: a repeated MessageSid is
    /// recognised and answered once.
    pub fn chatwire() -> Self {
        Self {
            connect_timeout: Duration::from_millis(2000),
            read_timeout: Duration::from_millis(5000),
            total_timeout: Duration::from_millis(15000),
            retries: 5,
            retry_on: RetryOn {
                connect: true,
                read_timeout: true,
                status_4xx: false,
                status_5xx: true,
            },
        }
    }

    /// The URL fragment, `#` included.
    pub fn to_fragment(&self) -> String {
        let policy: Vec<&str> = [
            (self.retry_on.connect, "ct"),
            (self.retry_on.read_timeout, "rt"),
            (self.retry_on.status_4xx, "4xx"),
            (self.retry_on.status_5xx, "5xx"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        format!(
            "#ct={}&rt={}&tt={}&rc={}&rp={}",
            self.connect_timeout.as_millis(),
            self.read_timeout.as_millis(),
            self.total_timeout.as_millis(),
            self.retries,
            policy.join(",")
        )
    }

    /// The overrides of `url` (its fragment, if any) and the URL without the fragment.
    /// Out-of-range values are clamped to Twilio's ranges; unknown keys are ignored; an
    /// unknown retry policy is an error, as Twilio's 11243.
    pub fn of_url(url: &str) -> Result<(Self, &str), String> {
        let Some((base, fragment)) = url.split_once('#') else {
            return Ok((Self::default(), url));
        };
        let mut out = Self::default();
        let ms = |value: &str, min: u64, max: u64| -> Result<Duration, String> {
            let n: u64 = value
                .parse()
                .map_err(|_| format!("{value:?} is not a number of milliseconds"))?;
            Ok(Duration::from_millis(n.clamp(min, max)))
        };
        for pair in fragment.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "ct" => out.connect_timeout = ms(value, 100, 10_000)?,
                "rt" => out.read_timeout = ms(value, 100, 15_000)?,
                "tt" => out.total_timeout = ms(value, 100, 15_000)?,
                "rc" => {
                    out.retries = value
                        .parse::<u32>()
                        .map_err(|_| format!("rc {value:?} is not a count"))?
                        .min(5)
                }
                "rp" => {
                    let mut on = RetryOn::default();
                    for policy in value.split(',') {
                        match policy.trim() {
                            "ct" => on.connect = true,
                            "rt" => on.read_timeout = true,
                            "4xx" => on.status_4xx = true,
                            "5xx" => on.status_5xx = true,
                            "all" => {
                                on = RetryOn {
                                    connect: true,
                                    read_timeout: true,
                                    status_4xx: true,
                                    status_5xx: true,
                                }
                            }
                            other => return Err(format!("11243: unknown retry policy {other:?}")),
                        }
                    }
                    out.retry_on = on;
                }
                _ => {}
            }
        }
        Ok((out, base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatwire_overrides_round_trip_through_the_fragment() {
        let fragment = ConnectionOverrides::chatwire().to_fragment();
        assert_eq!(fragment, "#ct=2000&rt=5000&tt=15000&rc=5&rp=ct,rt,5xx");
        let url = format!("https://example.com/v1/x/webhook{fragment}");
        let (parsed, base) = ConnectionOverrides::of_url(&url).expect("valid");
        assert_eq!(parsed, ConnectionOverrides::chatwire());
        assert_eq!(base, "https://example.com/v1/x/webhook");
    }

    #[test]
    fn no_fragment_means_one_retry_on_connection_failure_only() {
        let (o, base) = ConnectionOverrides::of_url("https://example.com/hook?a=1").expect("ok");
        assert_eq!(base, "https://example.com/hook?a=1");
        assert_eq!(o.retries, 1);
        assert!(o.retry_on.connect && !o.retry_on.status_5xx && !o.retry_on.read_timeout);
        assert_eq!(o.total_timeout, Duration::from_secs(15));
    }

    #[test]
    fn values_are_clamped_to_twilios_ranges_and_bad_policies_refused() {
        let (o, _) =
            ConnectionOverrides::of_url("h#rc=9&tt=60000&ct=1&rp=all&e=dublin").expect("valid");
        assert_eq!(o.retries, 5);
        assert_eq!(o.total_timeout, Duration::from_millis(15_000));
        assert_eq!(o.connect_timeout, Duration::from_millis(100));
        assert!(o.retry_on.status_4xx && o.retry_on.status_5xx);
        assert!(ConnectionOverrides::of_url("h#rp=sometimes").is_err());
        assert!(ConnectionOverrides::of_url("h#rc=many").is_err());
    }
}
