//! Failed management-API authentications per client address: past `limit` failures in one
//! window, the address is refused with 429 and `Retry-After` until the window ends, even with
//! a valid token, so a guesser learns nothing from its next tries. IPv6 clients are counted
//! per /64, the block one host usually holds.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one counting window lasts.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered before expired windows are swept.
const SWEEP_AT: usize = 10_000;

pub struct AuthThrottle {
    limit: u32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AuthThrottle {
    /// `limit` failures per window per address; 0 turns throttling off.
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            windows: Mutex::default(),
        }
    }

    /// How long `ip` must still wait, when it used up its failures in the current window.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let (start, failures) = windows.get(&key(ip))?;
        let left = WINDOW.checked_sub(now.saturating_duration_since(*start))?;
        (*failures >= self.limit && !left.is_zero()).then_some(left)
    }

    /// Counts one failed authentication of `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        if self.limit == 0 {
            return;
        }
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= SWEEP_AT {
            windows.retain(|_, (start, _)| now.saturating_duration_since(*start) < WINDOW);
        }
        let entry = windows.entry(key(ip)).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

/// The address an attacker cannot cheaply vary: IPv4 as is, IPv6 by its /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_failures_until_the_window_ends() {
        let throttle = AuthThrottle::new(3);
        let (ip, other) = (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2]));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(throttle.blocked(ip, t0), None);
            throttle.failed(ip, t0);
        }
        let wait = throttle.blocked(ip, t0 + Duration::from_secs(10));
        assert_eq!(wait, Some(Duration::from_secs(50)));
        assert_eq!(
            throttle.blocked(other, t0),
            None,
            "other addresses are not affected"
        );
        assert_eq!(
            throttle.blocked(ip, t0 + WINDOW),
            None,
            "a new window forgives"
        );
        throttle.failed(ip, t0 + WINDOW);
        assert_eq!(
            throttle.blocked(ip, t0 + WINDOW),
            None,
            "counting restarted"
        );
    }

    #[test]
    fn ipv6_hosts_are_counted_per_64_and_zero_turns_it_off() {
        let throttle = AuthThrottle::new(1);
        let t0 = Instant::now();
        let a: IpAddr = IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, 1]);
        let same_64: IpAddr = IpAddr::from([0x2001, 0xdb8, 0, 1, 0xffff, 1, 2, 3]);
        let next_64: IpAddr = IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]);
        throttle.failed(a, t0);
        assert!(throttle.blocked(same_64, t0).is_some());
        assert!(throttle.blocked(next_64, t0).is_none());
        let off = AuthThrottle::new(0);
        for _ in 0..100 {
            off.failed(a, t0);
        }
        assert_eq!(off.blocked(a, t0), None);
    }
}
