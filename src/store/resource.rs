//! Generic storage for the management API's resources.
//!
//! Every ChatBotKit resource has the same shape on the wire (id, alias, name, description, meta,
//! its own fields, ms timestamps) and the same verbs. A [`Resource`] describes one as data: its
//! table, its fields with wire names and types, its parent scope and list filters. The verbs
//! here and the HTTP handlers in `http::api::crud` are written once against that description.
use super::{Backend, Db, Param, Sql};
use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A field's type decides validation, its column type and its wire form.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    /// Non-null string defaulting to `""` (`name`, `description`); null writes `""`.
    Name,
    /// Non-null string with a default; null writes the default.
    Text(&'static str),
    /// Nullable string.
    OptStr,
    /// Nullable string unique per table.
    Alias,
    /// One of a fixed set, with a default.
    Enum(&'static [&'static str], &'static str),
    /// Non-null boolean with a default.
    Bool(bool),
    /// Nullable integer within bounds.
    Int(i64, i64),
    /// Nullable float within bounds (inclusive); NaN and infinities never pass.
    Float(f64, f64),
    /// ChatBotKit `meta`: an object or null, no keys starting with `_`.
    Meta,
    /// Any JSON value or null (engine settings such as a Studio flow).
    Json,
    /// Nullable id of another resource: (table, label used in "X not found").
    Ref(&'static str, &'static str),
    /// Write-only secret, sealed at rest, never read back.
    Secret,
    /// Nullable Twilio SID: this two-letter prefix and 32 hex digits (`AC…` for accounts).
    Sid(&'static str),
    /// Nullable phone number, normalised to E.164.
    Phone,
    /// Nullable phone number that may carry a `whatsapp:` prefix.
    Address,
    /// Nullable email address.
    Email,
    /// Unique non-null string, generated when absent.
    Fingerprint,
}

/// The database-side type of a column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Col {
    Text,
    Int,
    Bool,
    Float,
    Json,
}

impl Ty {
    pub fn col(self) -> Col {
        match self {
            Ty::Bool(_) => Col::Bool,
            Ty::Int(..) => Col::Int,
            Ty::Float(..) => Col::Float,
            Ty::Meta | Ty::Json => Col::Json,
            _ => Col::Text,
        }
    }
}

#[derive(Debug)]
pub struct Field {
    pub wire: &'static str,
    pub column: &'static str,
    pub ty: Ty,
    pub read: bool,
    pub write: bool,
    pub doc: &'static str,
}

impl Field {
    /// A field that is both written and read.
    pub const fn rw(wire: &'static str, column: &'static str, ty: Ty, doc: &'static str) -> Self {
        Self {
            wire,
            column,
            ty,
            read: true,
            write: true,
            doc,
        }
    }
    /// A field that is written but never read back (secrets).
    pub const fn wo(wire: &'static str, column: &'static str, ty: Ty, doc: &'static str) -> Self {
        Self {
            wire,
            column,
            ty,
            read: false,
            write: true,
            doc,
        }
    }
    /// A field that is read but set only by Chatwire itself.
    pub const fn ro(wire: &'static str, column: &'static str, ty: Ty, doc: &'static str) -> Self {
        Self {
            wire,
            column,
            ty,
            read: true,
            write: false,
            doc,
        }
    }
}

/// A resource: a table and how its rows look on the wire.
#[derive(Debug)]
pub struct Resource {
    /// Route prefix and OpenAPI tag, e.g. `integration/twilio`.
    pub path: &'static str,
    /// Human name used in messages, e.g. `Twilio integration`.
    pub label: &'static str,
    pub table: &'static str,
    /// Column holding the parent id for nested resources, with the parent resource.
    pub parent: Option<(&'static str, &'static Resource)>,
    pub fields: &'static [Field],
    /// Query parameters that filter lists by equality (comma-separated values are ORed).
    pub list_filters: &'static [(&'static str, &'static str)],
    /// Default list order: `false` = desc (ChatBotKit's default), `true` = asc (messages).
    pub list_asc: bool,
    pub has_alias: bool,
    /// Wire names that create must be given.
    pub required: &'static [&'static str],
}

impl Resource {
    pub fn field(&self, wire: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.wire == wire)
    }
    fn readable(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| f.read)
    }
    fn select_list(&self) -> String {
        let mut cols = vec!["id"];
        cols.extend(self.readable().map(|f| f.column));
        cols.extend(["created_at", "updated_at"]);
        cols.join(", ")
    }
}

/// Sort direction of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// A page request, already parsed from the query string.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub cursor: Option<String>,
    pub order: Order,
    pub take: i64,
    /// (`a.b` path segments, expected JSON value).
    pub meta: Vec<(Vec<String>, Value)>,
    /// (column, allowed values).
    pub eq: Vec<(&'static str, Vec<String>)>,
    /// Parent id for nested resources.
    pub scope: Option<String>,
}

fn decode(row: &AnyRow, idx: usize, col: Col) -> Value {
    match col {
        Col::Text => row
            .try_get::<Option<String>, _>(idx)
            .ok()
            .flatten()
            .map(Value::String)
            .unwrap_or(Value::Null),
        Col::Int => row
            .try_get::<Option<i64>, _>(idx)
            .ok()
            .flatten()
            .map(Value::from)
            .unwrap_or(Value::Null),
        Col::Bool => row
            .try_get::<Option<i64>, _>(idx)
            .ok()
            .flatten()
            .map(|i| Value::Bool(i != 0))
            .unwrap_or(Value::Null),
        Col::Float => row
            .try_get::<Option<f64>, _>(idx)
            .ok()
            .flatten()
            .map(Value::from)
            .unwrap_or(Value::Null),
        Col::Json => row
            .try_get::<Option<String>, _>(idx)
            .ok()
            .flatten()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null),
    }
}

/// Turns a row selected with `select_list` into the wire object.
fn to_wire(res: &Resource, row: &AnyRow) -> Map<String, Value> {
    let mut obj = Map::new();
    obj.insert("id".into(), decode(row, 0, Col::Text));
    for (i, f) in res.readable().enumerate() {
        obj.insert(f.wire.into(), decode(row, i + 1, f.ty.col()));
    }
    let n = res.readable().count();
    obj.insert("createdAt".into(), decode(row, n + 1, Col::Int));
    obj.insert("updatedAt".into(), decode(row, n + 2, Col::Int));
    obj
}

/// A row to insert with [`Db::insert_resources`]: its resource, new id and validated columns.
#[derive(Debug)]
pub struct NewRow<'a> {
    pub res: &'a Resource,
    pub id: String,
    pub cols: Vec<(&'static str, Param)>,
}

/// `INSERT INTO <table> (id, created_at, updated_at, <cols>) VALUES (...)`.
pub fn insert_sql(res: &Resource, id: &str, cols: &[(&str, Param)], now: i64) -> Sql {
    let mut sql = Sql::new(format!(
        "INSERT INTO {} (id, created_at, updated_at",
        res.table
    ));
    for (c, _) in cols {
        sql.push(", ").push(c);
    }
    sql.push(") VALUES (")
        .bind(id)
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(now);
    for (_, v) in cols {
        sql.push(", ").bind(v.clone());
    }
    sql.push(")");
    sql
}

fn push_scope(sql: &mut Sql, res: &Resource, scope: Option<&str>) {
    if let (Some((col, _)), Some(parent)) = (res.parent, scope) {
        sql.push(" AND ").push(col).push(" = ").bind(parent);
    }
}

impl Db {
    /// Resolves an id or alias to the row's id (within `scope` for nested resources).
    pub async fn resolve_id(
        &self,
        res: &Resource,
        scope: Option<&str>,
        key: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        let mut sql = Sql::new(format!("SELECT id FROM {} WHERE (id = ", res.table));
        sql.bind(key);
        if res.has_alias {
            sql.push(" OR alias = $1");
        }
        sql.push(")");
        push_scope(&mut sql, res, scope);
        let row = self.fetch_optional(&sql).await?;
        Ok(row.and_then(|r| r.try_get::<String, _>(0).ok()))
    }

    pub async fn insert_resource(
        &self,
        res: &Resource,
        id: &str,
        cols: &[(&str, Param)],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        self.exec(&insert_sql(res, id, cols, now)).await.map(|_| ())
    }

    /// Inserts several rows (of any resources) in one transaction: all of them or none, e.g. a
    /// conversation with its first messages.
    pub async fn insert_resources(&self, rows: &[NewRow<'_>], now: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for row in rows {
            insert_sql(row.res, &row.id, &row.cols, now)
                .query()
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// A top-level row by id or alias, as on the wire.
    pub async fn fetch_by_key(
        &self,
        res: &Resource,
        key: &str,
    ) -> Result<Option<Map<String, Value>>, sqlx::Error> {
        let Some(id) = self.resolve_id(res, None, key).await? else {
            return Ok(None);
        };
        self.fetch_resource(res, None, &id).await
    }

    pub async fn fetch_resource(
        &self,
        res: &Resource,
        scope: Option<&str>,
        id: &str,
    ) -> Result<Option<Map<String, Value>>, sqlx::Error> {
        let mut sql = Sql::new(format!(
            "SELECT {} FROM {} WHERE id = ",
            res.select_list(),
            res.table
        ));
        sql.bind(id);
        push_scope(&mut sql, res, scope);
        let Some(mut item) = self
            .fetch_optional(&sql)
            .await?
            .map(|row| to_wire(res, &row))
        else {
            return Ok(None);
        };
        if res.table == "messages" {
            self.attach_delivery(std::slice::from_mut(&mut item))
                .await?;
        }
        Ok(Some(item))
    }

    /// [`Self::fetch_resource`] for the hot path: the row as read at most [`super::cache::TTL`]
    /// ago (any update or delete through this process is seen at once).
    pub async fn fetch_resource_cached(
        &self,
        res: &Resource,
        id: &str,
    ) -> Result<Option<Map<String, Value>>, sqlx::Error> {
        let key = format!("{}/{id}", res.table);
        if let Some(row) = self.rows.get(&key) {
            return Ok(Some(row));
        }
        let row = self.fetch_resource(res, None, id).await?;
        if let Some(row) = &row {
            self.rows.put(&key, row);
        }
        Ok(row)
    }

    /// Sets the given columns and bumps `updated_at`; returns whether the row existed.
    pub async fn update_resource(
        &self,
        res: &Resource,
        id: &str,
        cols: &[(&str, Param)],
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let mut sql = Sql::new(format!("UPDATE {} SET updated_at = ", res.table));
        sql.bind(now);
        for (c, v) in cols {
            sql.push(", ").push(c).push(" = ").bind(v.clone());
        }
        sql.push(" WHERE id = ").bind(id);
        let changed = self.exec(&sql).await? > 0;
        self.forget_cached();
        Ok(changed)
    }

    pub async fn delete_resource(&self, res: &Resource, id: &str) -> Result<bool, sqlx::Error> {
        let mut sql = Sql::new(format!("DELETE FROM {} WHERE id = ", res.table));
        sql.bind(id);
        let deleted = self.exec(&sql).await? > 0;
        self.forget_cached();
        Ok(deleted)
    }

    /// One page, ordered by (createdAt, id); the cursor is the last id of the previous page, so
    /// rows inserted meanwhile neither repeat nor shift items between pages.
    pub async fn list_resources(
        &self,
        res: &Resource,
        q: &ListQuery,
    ) -> Result<Vec<Map<String, Value>>, sqlx::Error> {
        let mut sql = Sql::new(format!(
            "SELECT {} FROM {} WHERE 1=1",
            res.select_list(),
            res.table
        ));
        push_scope(&mut sql, res, q.scope.as_deref());
        for (col, values) in &q.eq {
            sql.push(" AND ")
                .push(col)
                .push(" IN ")
                .in_list(values.iter().map(String::as_str));
        }
        for (path, value) in &q.meta {
            let expected = serde_json::to_string(value).unwrap_or_default();
            match self.backend {
                Backend::Sqlite => {
                    let p = format!(
                        "$.{}",
                        path.iter()
                            .map(|s| format!("\"{}\"", s.replace('"', "")))
                            .collect::<Vec<_>>()
                            .join(".")
                    );
                    sql.push(" AND (meta -> ")
                        .bind(p)
                        .push(") = ")
                        .bind(expected);
                }
                Backend::Postgres => {
                    let p = format!(
                        "{{{}}}",
                        path.iter()
                            .map(|s| format!("\"{}\"", s.replace(['"', '\\'], "")))
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                    sql.push(" AND (meta::jsonb #> CAST(")
                        .bind(p)
                        .push(" AS text[]))::text = ")
                        .bind(expected);
                }
            }
        }
        let (cmp, dir) = match q.order {
            Order::Asc => (">", "ASC"),
            Order::Desc => ("<", "DESC"),
        };
        if let Some(cursor) = &q.cursor {
            sql.push(&format!(
                " AND (created_at, id) {cmp} (SELECT created_at, id FROM {} WHERE id = ",
                res.table
            ))
            .bind(cursor.as_str())
            .push(")");
        }
        sql.push(&format!(" ORDER BY created_at {dir}, id {dir} LIMIT "))
            .bind(q.take);
        let rows = self.fetch_all(&sql).await?;
        let mut items: Vec<Map<String, Value>> = rows.iter().map(|r| to_wire(res, r)).collect();
        if res.table == "messages" {
            self.attach_delivery(&mut items).await?;
        }
        Ok(items)
    }

    /// Reads one column of a row as text (e.g. a sealed secret or stored meta).
    pub async fn column_text(
        &self,
        res: &Resource,
        id: &str,
        column: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        let mut sql = Sql::new(format!("SELECT {column} FROM {} WHERE id = ", res.table));
        sql.bind(id);
        let row = self.fetch_optional(&sql).await?;
        Ok(row.and_then(|r| r.try_get::<Option<String>, _>(0).ok().flatten()))
    }
}
