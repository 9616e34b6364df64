//! A small statement builder: SQL text with numbered `$n` placeholders and typed parameters.
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
