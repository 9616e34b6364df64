//! Deletes that take dependent rows with them, each in one transaction.
//!
//! ChatBotKit deletes a conversation's messages with the conversation and a dataset's records
//! with the dataset, and a blueprint either takes its resources with it or leaves them
//! unlinked. The tables carry no foreign keys (SQLite and PostgreSQL would need different
//! migrations to add them to existing tables), so the cascade is written here once, driven by
//! the parent descriptions in [`Resource`], and done in a transaction so a crash midway never
//! leaves orphans behind.
use super::resource::Resource;
use super::{Db, Sql};

/// A resource linked to a blueprint, and the resources nested under it (a dataset's records).
#[derive(Debug, Clone, Copy)]
pub struct Member {
    pub res: &'static Resource,
    pub children: &'static [&'static Resource],
}

/// `DELETE FROM child WHERE <parent column> IN (<ids>)` for each child, with `ids` a subquery
/// whose parameters are already bound as `$1`.
fn delete_children(children: &[&Resource], ids: &str) -> Vec<Sql> {
    children
        .iter()
        .filter_map(|child| child.parent.map(|(col, _)| (child.table, col)))
        .map(|(table, col)| Sql::new(format!("DELETE FROM {table} WHERE {col} IN ({ids})")))
        .collect()
}

impl Db {
    /// Deletes the row `id` of `res` and every row of `children` nested under it. Returns whether
    /// the row existed.
    pub async fn delete_with_children(
        &self,
        res: &Resource,
        id: &str,
        children: &[&Resource],
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for sql in delete_children(children, "$1") {
            sql.arg(id).query().execute(&mut *tx).await?;
        }
        let mut sql = Sql::new(format!("DELETE FROM {} WHERE id = ", res.table));
        sql.bind(id);
        let deleted = sql.query().execute(&mut *tx).await?.rows_affected() > 0;
        tx.commit().await?;
        self.forget_cached();
        Ok(deleted)
    }

    /// Deletes a blueprint. With `delete_resources` its members (and their children) go too;
    /// without, they stay and lose the link, as ChatBotKit leaves them "unassociated".
    pub async fn delete_blueprint(
        &self,
        blueprint: &Resource,
        id: &str,
        members: &[Member],
        delete_resources: bool,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for member in members {
            let table = member.res.table;
            let statements = if delete_resources {
                let ids = format!("SELECT id FROM {table} WHERE blueprint_id = $1");
                let mut all = delete_children(member.children, &ids);
                all.push(Sql::new(format!(
                    "DELETE FROM {table} WHERE blueprint_id = $1"
                )));
                all
            } else {
                vec![Sql::new(format!(
                    "UPDATE {table} SET blueprint_id = NULL WHERE blueprint_id = $1"
                ))]
            };
            for sql in statements {
                sql.arg(id).query().execute(&mut *tx).await?;
            }
        }
        let mut sql = Sql::new(format!("DELETE FROM {} WHERE id = ", blueprint.table));
        sql.bind(id);
        let deleted = sql.query().execute(&mut *tx).await?.rows_affected() > 0;
        tx.commit().await?;
        self.forget_cached();
        Ok(deleted)
    }
}
