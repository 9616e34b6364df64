//! Burst debounce: a person who types one thought as several quick messages ("hi" / "I need" /
//! "to change my booking") gets one turn over all of them, not one answer each.
//!
//! With an integration's `burstWindow` set, a claimed message waits, still claimed, until its
//! sender has been quiet for the window (the claim is simply deferred, so no worker sleeps,
//! and the oldest-first claim keeps the later messages from being taken meanwhile). The turn
//! then folds in the sender's later pending messages, up to the first keyword or timer, which
//! keep their own turns after it. A person who never pauses is answered anyway once the first
//! message has waited [`MAX_WINDOWS`] windows.
use crate::domain::address::{Address, ChannelKind};
use crate::domain::keywords;
use crate::store::channel::Inbound;
use crate::store::integration::Integration;
use crate::store::Db;

/// Longest a first message waits, in windows.
const MAX_WINDOWS: i64 = 4;

/// What to do with a claimed message under the burst rule.
#[derive(Debug)]
pub enum Burst {
    /// The sender may still be typing: claim the message again at this time (ms).
    Wait(i64),
    /// Run the turn now, over the claimed message and these later ones, in order.
    Run(Vec<Inbound>),
}

/// Decides whether the claimed `m` waits or runs, and with which later messages.
pub async fn gather(
    db: &Db,
    integration: &Integration,
    m: &Inbound,
    now: i64,
) -> Result<Burst, sqlx::Error> {
    let window = integration.burst_window_ms;
    if window <= 0 {
        return Ok(Burst::Run(Vec::new()));
    }
    let later = db
        .pending_of_sender(&integration.id, &m.sender, &m.id, now)
        .await?;
    let kind = Address::parse(&m.sender)
        .map(|a| a.channel())
        .unwrap_or(ChannelKind::Sms);
    let folded: Vec<Inbound> = later
        .into_iter()
        .take_while(|l| {
            !l.message_sid.starts_with("timer-")
                && keywords::classify(&l.body, kind, integration.whatsapp_keywords).is_none()
        })
        .collect();
    let newest = folded.last().map_or(m.created_at, |l| l.created_at);
    let until = (newest + window).min(m.created_at + MAX_WINDOWS * window);
    Ok(if now < until {
        Burst::Wait(until)
    } else {
        Burst::Run(folded)
    })
}

/// The text one turn over a burst answers: its messages, one per line.
pub fn joined(m: &Inbound, folded: &[Inbound]) -> String {
    std::iter::once(m.body.as_str())
        .chain(folded.iter().map(|f| f.body.as_str()))
        .collect::<Vec<_>>()
        .join("\n")
}
