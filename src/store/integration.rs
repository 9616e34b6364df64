//! The Twilio integration as the channel uses it (typed, auth token opened).
use super::channel::{int, opt_text, text};
use super::{Db, Sql};
use crate::config::Secret;
use crate::crypto::Cipher;
use sqlx::Row;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a loaded integration is trusted without reading it again. Every webhook, status
/// callback, turn and send needs its integration (and the auth token decrypted); reading it
/// once per second instead of four times per message takes it off the hot path. Changes made
/// through this process clear the cache at once; those made through another replica are seen
/// within this time.
const CACHE_TTL: Duration = Duration::from_secs(1);
/// Past this many entries the cache starts again from empty rather than growing.
const CACHE_MAX: usize = 10_000;

/// Recently loaded integrations, shared by the clones of one [`Db`].
#[derive(Clone, Default, Debug)]
pub struct IntegrationCache(Arc<Mutex<HashMap<String, (Instant, Integration)>>>);

impl IntegrationCache {
    fn get(&self, id: &str) -> Option<Integration> {
        let cache = self.0.lock().ok()?;
        let (loaded, integration) = cache.get(id)?;
        (loaded.elapsed() < CACHE_TTL).then(|| integration.clone())
    }

    fn put(&self, integration: &Integration) {
        if let Ok(mut cache) = self.0.lock() {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(
                integration.id.clone(),
                (Instant::now(), integration.clone()),
            );
        }
    }

    /// Forgets everything; called on every resource update or delete.
    pub fn clear(&self) {
        if let Ok(mut cache) = self.0.lock() {
            cache.clear();
        }
    }
}

/// A Twilio integration row, with its auth token decrypted for signing and sending.
#[derive(Debug, Clone)]
pub struct Integration {
    pub id: String,
    pub bot_id: Option<String>,
    pub account_sid: Option<String>,
    pub auth_token: Option<Secret>,
    pub allow_from: String,
    pub contact_collection: bool,
    pub session_duration: Option<i64>,
    pub phone_number: Option<String>,
    pub send_rate: Option<f64>,
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
             phone_number, send_rate FROM twilio_integrations WHERE id = $1",
        )
        .arg(id);
        let Some(row) = self.fetch_optional(&sql).await? else {
            return Ok(None);
        };
        let auth_token = opt_text(&row, "auth_token").and_then(|sealed| match cipher.open(&sealed) {
            Ok(token) => Some(Secret::new(token)),
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
        };
        self.integrations.put(&integration);
        Ok(Some(integration))
    }
}
