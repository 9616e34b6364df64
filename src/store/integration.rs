//! The integrations as the channels use them (typed, auth token opened): Twilio Messaging and
//! Conversations integrations and web chat widgets, one id space, one type.
use super::channel::{int, opt_text, text};
use super::{Db, Sql};
use crate::crypto::Cipher;
use secrecy::SecretString;
use sqlx::Row;

/// A Twilio integration row, with its auth token decrypted for signing and sending.
#[derive(Debug, Clone)]
pub struct Integration {
    pub id: String,
    pub bot_id: Option<String>,
    pub account_sid: Option<String>,
    pub auth_token: Option<SecretString>,
    pub allow_from: String,
    pub contact_collection: bool,
    pub session_duration: Option<i64>,
    pub phone_number: Option<String>,
    pub send_rate: Option<f64>,
    /// Carrier keywords apply to WhatsApp messages too (`whatsappKeywords`).
    pub whatsapp_keywords: bool,
    /// The approved template (`{contentSid, contentVariables}`) for WhatsApp messages outside
    /// the 24-hour window.
    pub whatsapp_template: Option<serde_json::Value>,
    /// Burst debounce window in milliseconds; 0 is off (`burstWindow`).
    pub burst_window_ms: i64,
    /// Set for a Conversations integration.
    pub conversations: Option<ConversationsSettings>,
}

/// What only a Conversations integration has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationsSettings {
    pub service_sid: Option<String>,
    /// The author of the bot's messages.
    pub identity: String,
    /// `closed` or `inactive`: what a session's end does to the Conversation.
    pub session_end: String,
}

impl Db {
    /// Loads an integration by id; a token that does not open (key changed) counts as absent.
    pub async fn integration(
        &self,
        cipher: &Cipher,
        id: &str,
    ) -> Result<Option<Integration>, sqlx::Error> {
        if let Some(hit) = self.integrations.get(id) {
            return Ok(Some(hit));
        }
        let messaging = Sql::new(
            "SELECT id, bot_id, account_sid, auth_token, allow_from, contact_collection, session_duration, \
             phone_number, send_rate, whatsapp_keywords, whatsapp_template, burst_window FROM twilio_integrations WHERE id = $1",
        )
        .arg(id);
        let conversations = Sql::new(
            "SELECT id, bot_id, account_sid, auth_token, allow_from, contact_collection, session_duration, \
             send_rate, whatsapp_template, service_sid, identity, session_end FROM conversations_integrations WHERE id = $1",
        )
        .arg(id);
        // A web chat widget has no provider account; its visitors are allowed as a whole (the
        // widget's `origin` guards who embeds it).
        let widget = Sql::new(
            "SELECT id, bot_id, '*' AS allow_from, contact_collection, session_duration \
             FROM widget_integrations WHERE id = $1",
        )
        .arg(id);
        let (row, is_conversations) = match self.fetch_optional(&messaging).await? {
            Some(row) => (row, false),
            None => match self.fetch_optional(&conversations).await? {
                Some(row) => (row, true),
                None => match self.fetch_optional(&widget).await? {
                    Some(row) => (row, false),
                    None => return Ok(None),
                },
            },
        };
        let auth_token = opt_text(&row, "auth_token").and_then(|sealed| match cipher.open(&sealed) {
            Ok(token) => Some(SecretString::from(token)),
            Err(err) => {
                tracing::error!(integration = id, error = %err, "stored Twilio auth token does not open");
                None
            }
        });
        let integration = Integration {
            id: text(&row, "id"),
            bot_id: opt_text(&row, "bot_id"),
            account_sid: opt_text(&row, "account_sid"),
            auth_token,
            allow_from: text(&row, "allow_from"),
            contact_collection: int(&row, "contact_collection") != 0,
            session_duration: row
                .try_get::<Option<i64>, _>("session_duration")
                .ok()
                .flatten(),
            phone_number: (!is_conversations)
                .then(|| opt_text(&row, "phone_number"))
                .flatten(),
            send_rate: row.try_get::<Option<f64>, _>("send_rate").ok().flatten(),
            whatsapp_keywords: !is_conversations && int(&row, "whatsapp_keywords") != 0,
            whatsapp_template: opt_text(&row, "whatsapp_template")
                .and_then(|t| serde_json::from_str(&t).ok())
                .filter(|t: &serde_json::Value| t.is_object()),
            burst_window_ms: int(&row, "burst_window").max(0),
            conversations: is_conversations.then(|| ConversationsSettings {
                service_sid: opt_text(&row, "service_sid"),
                identity: text(&row, "identity"),
                session_end: text(&row, "session_end"),
            }),
        };
        self.integrations.put(id, &integration);
        Ok(Some(integration))
    }
}

impl Db {
    /// The id and name of an integration, other than `except`, whose `phoneNumber` is `number`.
    pub async fn integration_on_number(
        &self,
        number: &str,
        except: Option<&str>,
    ) -> Result<Option<(String, String)>, sqlx::Error> {
        let sql = Sql::new(
            "SELECT id, name FROM twilio_integrations WHERE phone_number = $1 AND id <> $2 \
             ORDER BY created_at LIMIT 1",
        )
        .arg(number)
        .arg(except.unwrap_or(""));
        Ok(self
            .fetch_optional(&sql)
            .await?
            .map(|row| (text(&row, "id"), text(&row, "name"))))
    }

    /// The `phoneNumber`s among `numbers` that integrations other than `except` hold.
    pub async fn numbers_held_elsewhere(
        &self,
        numbers: &[String],
        except: &str,
    ) -> Result<Vec<String>, sqlx::Error> {
        let mut sql = Sql::new("SELECT phone_number FROM twilio_integrations WHERE id <> ");
        sql.bind(except);
        sql.push(" AND phone_number IN ")
            .in_list(numbers.iter().map(String::as_str));
        let rows = self.fetch_all(&sql).await?;
        Ok(rows.iter().map(|r| text(r, "phone_number")).collect())
    }
}
