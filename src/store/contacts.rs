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
