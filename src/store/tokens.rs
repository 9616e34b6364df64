//! API tokens: random, shown once, stored as SHA-256 hashes.
use super::{Db, Sql};
use crate::crypto::hash_token;
use crate::domain::{ids, now_ms};
use rand::RngCore;

/// Creates a token and returns it; only its hash is stored.
pub async fn create(db: &Db, name: &str) -> Result<String, sqlx::Error> {
    let mut raw = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut raw);
    let token = format!("cw_{}", hex::encode(raw));
    let sql = Sql::new(
        "INSERT INTO api_tokens (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)",
    )
    .arg(ids::new_id())
    .arg(name)
    .arg(hash_token(&token))
    .arg(now_ms());
    db.exec(&sql).await?;
    Ok(token)
}
