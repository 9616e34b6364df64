//! Chatwire's delivery statuses of an outgoing message. They are Twilio's names (the first
//! channel, and the statuses its users know); every channel maps its provider's receipts onto
//! them, and a stored status only ever moves forward.
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A message's delivery status, as in `MessageStatus` callbacks and the REST resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    Scheduled,
    Accepted,
    Queued,
    Sending,
    Sent,
    Receiving,
    Received,
    PartiallyDelivered,
    Delivered,
    Read,
    Failed,
    Undelivered,
    Canceled,
}

pub const ALL_STATUSES: [MessageStatus; 13] = [
    MessageStatus::Scheduled,
    MessageStatus::Accepted,
    MessageStatus::Queued,
    MessageStatus::Sending,
    MessageStatus::Sent,
    MessageStatus::Receiving,
    MessageStatus::Received,
    MessageStatus::PartiallyDelivered,
    MessageStatus::Delivered,
    MessageStatus::Read,
    MessageStatus::Failed,
    MessageStatus::Undelivered,
    MessageStatus::Canceled,
];

impl MessageStatus {
    /// Twilio's wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Scheduled => "scheduled",
            MessageStatus::Accepted => "accepted",
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Receiving => "receiving",
            MessageStatus::Received => "received",
            MessageStatus::PartiallyDelivered => "partially_delivered",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Failed => "failed",
            MessageStatus::Undelivered => "undelivered",
            MessageStatus::Canceled => "canceled",
        }
    }

    /// Position in the lifecycle. Callbacks arrive out of order, so a stored status is only
    /// replaced by one of higher rank: scheduled < accepted < queued < sending < sent <
    /// delivered < read, and the failures (failed, undelivered, canceled) outrank everything
    /// because nothing follows them.
    pub fn rank(self) -> u8 {
        match self {
            MessageStatus::Scheduled => 0,
            MessageStatus::Accepted => 1,
            MessageStatus::Queued => 2,
            MessageStatus::Sending | MessageStatus::Receiving => 3,
            MessageStatus::Sent => 4,
            MessageStatus::PartiallyDelivered => 5,
            MessageStatus::Delivered | MessageStatus::Received => 6,
            MessageStatus::Read => 7,
            MessageStatus::Failed | MessageStatus::Undelivered | MessageStatus::Canceled => 8,
        }
    }

    /// [`Self::rank`] as a SQL expression over a status column; unknown or NULL ranks -1, so
    /// any known status may replace it.
    pub fn rank_sql(column: &str) -> String {
        let arms: String = ALL_STATUSES
            .iter()
            .map(|s| format!(" WHEN '{}' THEN {}", s.as_str(), s.rank()))
            .collect();
        format!("(CASE {column}{arms} ELSE -1 END)")
    }

    /// No later status can follow.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            MessageStatus::Failed
                | MessageStatus::Undelivered
                | MessageStatus::Canceled
                | MessageStatus::Read
        )
    }

    /// The message did not reach the person.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            MessageStatus::Failed | MessageStatus::Undelivered | MessageStatus::Canceled
        )
    }

    /// Whether a callback carrying `self` should replace a stored `current` status.
    pub fn advances(self, current: MessageStatus) -> bool {
        self.rank() > current.rank()
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown status string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown message status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for MessageStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        ALL_STATUSES
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

impl Serialize for MessageStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MessageStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}
