//! Looking up references between resources (a bot's dataset, an integration's bot).
use super::{Db, Sql};
use sqlx::Row;

/// The id of the row in `table` whose id or alias is `key`.
pub async fn resolve(db: &Db, table: &str, key: &str) -> Result<Option<String>, sqlx::Error> {
    let has_alias = !matches!(table, "messages" | "dataset_records");
    let mut sql = Sql::new(format!("SELECT id FROM {table} WHERE id = "));
    sql.bind(key);
    if has_alias {
        sql.push(" OR alias = $1");
    }
    let row = db.fetch_optional(&sql).await?;
    Ok(row.and_then(|r| r.try_get::<String, _>(0).ok()))
}
