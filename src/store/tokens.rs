//! API tokens: random, shown once, stored as SHA-256 hashes. They can be listed (never their
//! value) and revoked by id or name.
use super::channel::{int, text};
use super::{Db, Sql};
use crate::crypto::hash_token;
use crate::domain::{ids, now_ms};
use rand::RngCore;

/// A stored token as it can be shown: never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

/// Creates a token and returns its id and value; only its hash is stored.
pub async fn create(db: &Db, name: &str) -> Result<(String, String), sqlx::Error> {
    let mut raw = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut raw);
    let token = format!("cw_{}", hex::encode(raw));
    let id = ids::new_id();
    let sql = Sql::new(
        "INSERT INTO api_tokens (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)",
    )
    .arg(id.as_str())
    .arg(name)
    .arg(hash_token(&token))
    .arg(now_ms());
    db.exec(&sql).await?;
    Ok((id, token))
}

/// Every stored token, oldest first.
pub async fn list(db: &Db) -> Result<Vec<TokenInfo>, sqlx::Error> {
    let sql = Sql::new("SELECT id, name, created_at FROM api_tokens ORDER BY created_at, id");
    Ok(db
        .fetch_all(&sql)
        .await?
        .iter()
        .map(|row| TokenInfo {
            id: text(row, "id"),
            name: text(row, "name"),
            created_at: int(row, "created_at"),
        })
        .collect())
}

/// What [`revoke`] found for the id or name it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    One(TokenInfo),
    NotFound,
    /// A name several tokens share: the caller must pick one by id.
    Ambiguous(Vec<TokenInfo>),
}

/// Deletes the token whose id, or else whose name, is `key`.
pub async fn revoke(db: &Db, key: &str) -> Result<Revoked, sqlx::Error> {
    let all = list(db).await?;
    let by_id: Vec<_> = all.iter().filter(|t| t.id == key).cloned().collect();
    let matching = if by_id.is_empty() {
        all.into_iter().filter(|t| t.name == key).collect()
    } else {
        by_id
    };
    match matching.as_slice() {
        [] => Ok(Revoked::NotFound),
        [one] => {
            db.exec(&Sql::new("DELETE FROM api_tokens WHERE id = $1").arg(one.id.as_str()))
                .await?;
            Ok(Revoked::One(one.clone()))
        }
        _ => Ok(Revoked::Ambiguous(matching)),
    }
}

/// Is `token` one of the stored tokens?
pub async fn is_known(db: &Db, token: &str) -> Result<bool, sqlx::Error> {
    let mut sql = Sql::new("SELECT id FROM api_tokens WHERE token_hash = ");
    sql.bind(hash_token(token));
    Ok(db.fetch_optional(&sql).await?.is_some())
}

/// How many tokens are stored (0 on a first start).
pub async fn count(db: &Db) -> Result<i64, sqlx::Error> {
    let sql = Sql::new("SELECT COUNT(*) AS n FROM api_tokens");
    Ok(db.fetch_optional(&sql).await?.map_or(0, |r| int(&r, "n")))
}
