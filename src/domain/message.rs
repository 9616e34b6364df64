//! What a message carries besides its text.
use serde::{Deserialize, Serialize};

/// A media item attached to a message: its URL and content type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    pub url: String,
    pub content_type: String,
}
