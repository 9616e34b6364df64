//! The Twilio integration as the channel uses it (typed, auth token opened).
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
    /// Burst debounce window in milliseconds; 0 is off (`burstWindow`).
    pub burst_window_ms: i64,
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
        let sql = Sql::new(
            "SELECT id, bot_id, account_sid, auth_token, allow_from, contact_collection, session_duration, \
             phone_number, send_rate, whatsapp_keywords, burst_window FROM twilio_integrations WHERE id = $1",
        )
        .arg(id);
        let Some(row) = self.fetch_optional(&sql).await? else {
            return Ok(None);
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
            phone_number: opt_text(&row, "phone_number"),
            send_rate: row.try_get::<Option<f64>, _>("send_rate").ok().flatten(),
            whatsapp_keywords: int(&row, "whatsapp_keywords") != 0,
            burst_window_ms: int(&row, "burst_window").max(0),
        };
        self.integrations.put(id, &integration);
        Ok(Some(integration))
    }
}
