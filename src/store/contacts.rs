//! Contacts: get-or-create by fingerprint, safe when several requests (or replicas) ensure the
//! same contact at once.
//!
//! The fingerprint column is unique, so the database decides the race: the insert does nothing
//! when another writer got there first, and the contact is then re-read. No transaction or lock
//! is held, which keeps the verb cheap on the inbound path (contact collection) too.
use super::resource::{insert_sql, Resource};
use super::{is_unique_violation, Db, Param, Sql};
use crate::domain::ids;
use sqlx::Row;

/// The id of the contact whose fingerprint is `fingerprint`, if any.
pub async fn find_by_fingerprint(
    db: &Db,
    fingerprint: &str,
) -> Result<Option<String>, sqlx::Error> {
    let mut sql = Sql::new("SELECT id FROM contacts WHERE fingerprint = ");
    sql.bind(fingerprint);
    let row = db.fetch_optional(&sql).await?;
    Ok(row.and_then(|r| r.try_get::<String, _>(0).ok()))
}

/// Returns the id of the contact with `fingerprint`, creating it from `cols` when there is none,
/// and whether it was created. `res` is the contacts resource; a `fingerprint` entry in `cols`
/// is replaced by `fingerprint`. Concurrent calls with one fingerprint all get the same id.
pub async fn ensure(
    db: &Db,
    res: &Resource,
    fingerprint: &str,
    cols: &[(&'static str, Param)],
    now: i64,
) -> Result<(String, bool), sqlx::Error> {
    if let Some(id) = find_by_fingerprint(db, fingerprint).await? {
        return Ok((id, false));
    }
    let mut cols: Vec<(&str, Param)> = cols
        .iter()
        .filter(|(c, _)| *c != "fingerprint")
        .cloned()
        .collect();
    cols.push(("fingerprint", Param::from(fingerprint)));
    let id = ids::new_id();
    let mut sql = insert_sql(res, &id, &cols, now);
    sql.push(" ON CONFLICT (fingerprint) DO NOTHING");
    let violation = match db.exec(&sql).await {
        Ok(0) => None,
        Ok(_) => return Ok((id, true)),
        // Another unique column (an alias) may still collide; that is the caller's conflict
        // unless the fingerprint's contact now exists.
        Err(err) if is_unique_violation(&err) => Some(err),
        Err(err) => return Err(err),
    };
    match find_by_fingerprint(db, fingerprint).await? {
        Some(existing) => Ok((existing, false)),
        None => Err(violation.unwrap_or(sqlx::Error::RowNotFound)),
    }
}

impl Db {
    /// The contact of a phone number collected by a channel (`contactCollection`), created on
    /// first contact. Its fingerprint is ChatBotKit's for Twilio contacts (a UUIDv5 of the
    /// number in the Twilio namespace), so `contact/ensure` with that fingerprint finds the same
    /// contact, and the contact is trusted (verified) like ChatBotKit's.
    pub async fn ensure_phone_contact(
        &self,
        phone: &str,
        name: Option<&str>,
    ) -> Result<String, sqlx::Error> {
        let fingerprint = phone_fingerprint(phone);
        if let Some(id) = find_by_fingerprint(self, &fingerprint).await? {
            return Ok(id);
        }
        let now = crate::domain::now_ms();
        let insert = Sql::new(
            "INSERT INTO contacts (id, name, fingerprint, phone, meta, verified_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $6) ON CONFLICT (fingerprint) DO NOTHING",
        )
        .arg(ids::new_id())
        .arg(name.unwrap_or_default())
        .arg(fingerprint.as_str())
        .arg(phone)
        .arg(serde_json::json!({"app": "twilio"}).to_string())
        .arg(now);
        self.exec(&insert).await?;
        find_by_fingerprint(self, &fingerprint)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// Re-fingerprints contacts collected before fingerprints were ChatBotKit's (a SHA-256 of
    /// `namespace:phone`, 64 hex digits) and merges each into the contact that already has the
    /// new fingerprint, if any, moving its conversations there. Idempotent: run on every start.
    pub async fn refingerprint_phone_contacts(&self) -> Result<u64, sqlx::Error> {
        let old = Sql::new(
            "SELECT id, phone, fingerprint FROM contacts WHERE phone IS NOT NULL AND LENGTH(fingerprint) = 64",
        );
        let mut changed = 0;
        for row in self.fetch_all(&old).await? {
            let (id, phone, fp) = (
                row.try_get::<String, _>("id")?,
                row.try_get::<String, _>("phone")?,
                row.try_get::<String, _>("fingerprint")?,
            );
            if !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let new = phone_fingerprint(&phone);
            let mut tx = self.pool.begin().await?;
            let existing = Sql::new("SELECT id FROM contacts WHERE fingerprint = $1")
                .arg(new.as_str())
                .query()
                .fetch_optional(&mut *tx)
                .await?
                .and_then(|r| r.try_get::<String, _>("id").ok());
            match existing {
                Some(keep) => {
                    Sql::new("UPDATE conversations SET contact_id = $1 WHERE contact_id = $2")
                        .arg(keep.as_str())
                        .arg(id.as_str())
                        .query()
                        .execute(&mut *tx)
                        .await?;
                    Sql::new("DELETE FROM contacts WHERE id = $1")
                        .arg(id.as_str())
                        .query()
                        .execute(&mut *tx)
                        .await?;
                }
                None => {
                    Sql::new("UPDATE contacts SET fingerprint = $1 WHERE id = $2")
                        .arg(new.as_str())
                        .arg(id.as_str())
                        .query()
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            changed += 1;
        }
        Ok(changed)
    }
}

/// ChatBotKit's fingerprint of a contact collected by phone number.
pub fn phone_fingerprint(phone: &str) -> String {
    crate::domain::fingerprint::fingerprint(
        crate::domain::fingerprint::TWILIO_NAMESPACE,
        &[Some(phone)],
    )
}
