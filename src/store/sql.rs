//! A small statement builder: SQL text with numbered `$n` placeholders and typed parameters.
use super::Backend;
use sqlx::any::{Any, AnyArguments};
use sqlx::query::Query;

/// A bind parameter. `Any` supports these scalar types on both backends.
#[derive(Debug, Clone, PartialEq)]
/// NULLs are typed because PostgreSQL checks a parameter's declared type against its column.
pub enum Param {
    Text(Option<String>),
    Int(Option<i64>),
    Float(Option<f64>),
}

impl From<&str> for Param {
    fn from(v: &str) -> Self {
        Param::Text(Some(v.to_owned()))
    }
}
impl From<String> for Param {
    fn from(v: String) -> Self {
        Param::Text(Some(v))
    }
}
impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Param::Int(Some(v))
    }
}
impl From<bool> for Param {
    fn from(v: bool) -> Self {
        Param::Int(Some(i64::from(v)))
    }
}
impl From<f64> for Param {
    fn from(v: f64) -> Self {
        Param::Float(Some(v))
    }
}
impl From<Option<String>> for Param {
    fn from(v: Option<String>) -> Self {
        Param::Text(v)
    }
}
impl From<Option<&str>> for Param {
    fn from(v: Option<&str>) -> Self {
        Param::Text(v.map(str::to_owned))
    }
}
impl From<Option<i64>> for Param {
    fn from(v: Option<i64>) -> Self {
        Param::Int(v)
    }
}
impl From<Option<f64>> for Param {
    fn from(v: Option<f64>) -> Self {
        Param::Float(v)
    }
}

/// SQL text plus its parameters, built left to right.
#[derive(Debug, Default, Clone)]
pub struct Sql {
    pub text: String,
    pub params: Vec<Param>,
}

impl Sql {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            params: Vec::new(),
        }
    }

    /// Appends raw SQL text.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: impl Into<Param>) -> &mut Self {
        self.params.push(value.into());
        let n = self.params.len();
        self.text.push('$');
        self.text.push_str(&n.to_string());
        self
    }

    /// Appends `($1, $2, ...)`, one placeholder per item: the list of an `IN`.
    pub fn in_list<P: Into<Param>>(&mut self, items: impl IntoIterator<Item = P>) -> &mut Self {
        self.push("(");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(item);
        }
        self.push(")")
    }

    /// Appends rows of placeholders, `($1, $2), ($3, $4)`, one row per item.
    pub fn values(&mut self, rows: impl IntoIterator<Item = Vec<Param>>) -> &mut Self {
        for (i, row) in rows.into_iter().enumerate() {
            self.push(if i == 0 { "(" } else { ", (" });
            for (j, value) in row.into_iter().enumerate() {
                if j > 0 {
                    self.push(", ");
                }
                self.bind(value);
            }
            self.push(")");
        }
        self
    }

    /// Adds a parameter without writing a placeholder (the text already names `$n`).
    pub fn arg(mut self, value: impl Into<Param>) -> Self {
        self.params.push(value.into());
        self
    }

    pub fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for p in &self.params {
            q = match p {
                Param::Text(s) => q.bind(s.as_deref()),
                Param::Int(i) => q.bind(*i),
                Param::Float(f) => q.bind(*f),
            };
        }
        q
    }
}

impl Sql {
    /// Appends the newest-first keyset page of `table`: rows older than the `cursor` row (if
    /// any), ordered by `(created_at, id)` descending, at most `take`.
    pub fn newest_first_page(&mut self, table: &str, cursor: Option<&str>, take: i64) -> &mut Self {
        if let Some(cursor) = cursor {
            self.push(&format!(
                " AND (created_at, id) < (SELECT created_at, id FROM {table} WHERE id = "
            ))
            .bind(cursor)
            .push(")");
        }
        self.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .bind(take)
    }
}

impl Param {
    /// The value as JSON, appended to `out`.
    fn write_json(&self, out: &mut String) {
        match self {
            Param::Text(Some(s)) => {
                // A JSON string of a Rust string cannot fail to serialize.
                out.push_str(&serde_json::to_string(s).unwrap_or_default());
            }
            Param::Int(Some(i)) => out.push_str(&i.to_string()),
            Param::Float(Some(f)) if f.is_finite() => out.push_str(&f.to_string()),
            _ => out.push_str("null"),
        }
    }

    /// What PostgreSQL casts the JSON field to.
    fn pg_type(&self) -> &'static str {
        match self {
            Param::Text(_) => "text",
            Param::Int(_) => "bigint",
            Param::Float(_) => "double precision",
        }
    }
}

impl Sql {
    /// Appends `SELECT c1, c2, ... FROM <rows>`: the rows of a batch as ONE parameter, a JSON
    /// array of arrays, read back by `json_each` (SQLite) or `chatwire_rows`, a wrapper of
    /// `json_array_elements` that tells the planner to expect ten rows rather than a hundred
    /// (PostgreSQL; see its migration, 0020). The statement's text is then the same whatever the batch size, so each
    /// connection prepares it once and finds it in its statement cache afterwards, where a
    /// `VALUES` list with one placeholder per cell made a new statement for every batch size
    /// (parsed again, and its placeholders bound by name one by one). Usable wherever
    /// `VALUES ...` was: after `INSERT INTO t (cols) ` (it ends with `WHERE true`, which
    /// SQLite needs before an `ON CONFLICT`) and in `WITH v (cols) AS (...)`. Every row must
    /// have the same types in the same order (PostgreSQL's casts come from the first row).
    /// On SQLite the rows of `json_each` are materialized first: read straight from it, each
    /// column read made `json_each` render its row as text again (12% of the server's
    /// instructions in a profile); materialized, a row is rendered once and its columns read
    /// from that one text (SQLite keeps the parse of a recent JSON argument).
    pub fn json_rows(
        &mut self,
        backend: Backend,
        rows: impl IntoIterator<Item = Vec<Param>>,
    ) -> &mut Self {
        let mut json = String::from("[");
        let mut types: Vec<&'static str> = Vec::new();
        for (i, row) in rows.into_iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push('[');
            for (j, value) in row.iter().enumerate() {
                if j > 0 {
                    json.push(',');
                }
                value.write_json(&mut json);
            }
            json.push(']');
            if i == 0 {
                types = row.iter().map(Param::pg_type).collect();
            }
        }
        json.push(']');
        self.push("SELECT ");
        for (j, pg_type) in types.iter().enumerate() {
            if j > 0 {
                self.push(", ");
            }
            match backend {
                Backend::Sqlite => self.push(&format!("r.v->>{j}")),
                Backend::Postgres => self.push(&format!("(value->>{j})::{pg_type}")),
            };
        }
        match backend {
            Backend::Sqlite => self
                .push(" FROM (WITH m AS MATERIALIZED (SELECT value AS v FROM json_each(")
                .bind(json)
                .push(")) SELECT v FROM m) AS r WHERE true"),
            Backend::Postgres => self
                .push(" FROM chatwire_rows(")
                .bind(json)
                .push("::json) AS r(value, ord) WHERE true ORDER BY ord"),
        }
    }
}
