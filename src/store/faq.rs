//! Content ratings given to a FAQ bot's answers (`faq_ratings`): written by the FAQ engine
//! through `bot::EngineStore`, listed by the management API.
use super::{Db, Sql};
use crate::bot::engine_store::NewRating;
use serde_json::{json, Value};
use sqlx::Row;

/// Longest comment kept, in characters; the rest is dropped.
const MAX_COMMENT_CHARS: usize = 4000;

pub async fn record_rating(db: &Db, rating: &NewRating<'_>) -> Result<(), sqlx::Error> {
    let sql = Sql::new(
        "INSERT INTO faq_ratings (id, bot_id, conversation_id, record_id, rating_id, negative, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .arg(rating.id)
    .arg(rating.bot_id)
    .arg(rating.conversation_id)
    .arg(rating.record_id)
    .arg(rating.rating_id)
    .arg(rating.negative)
    .arg(rating.created_at);
    db.exec(&sql).await.map(|_| ())
}

/// Sets the comment of a rating.
pub async fn record_comment(db: &Db, rating_id: &str, comment: &str) -> Result<(), sqlx::Error> {
    let comment: String = comment.chars().take(MAX_COMMENT_CHARS).collect();
    let sql = Sql::new("UPDATE faq_ratings SET comment = $1 WHERE id = $2")
        .arg(comment)
        .arg(rating_id);
    db.exec(&sql).await.map(|_| ())
}

/// Ratings of a bot on the wire, newest first; `cursor` is the last id of the previous page.
pub async fn list_ratings(
    db: &Db,
    bot_id: &str,
    cursor: Option<&str>,
    take: i64,
) -> Result<Vec<Value>, sqlx::Error> {
    let mut sql = Sql::new(
        "SELECT id, conversation_id, record_id, rating_id, negative, comment, created_at \
         FROM faq_ratings WHERE bot_id = ",
    );
    sql.bind(bot_id);
    sql.newest_first_page("faq_ratings", cursor, take);
    Ok(db
        .fetch_all(&sql)
        .await?
        .iter()
        .map(|r| {
            json!({
                "id": r.try_get::<String, _>(0).unwrap_or_default(),
                "conversationId": r.try_get::<Option<String>, _>(1).ok().flatten(),
                "recordId": r.try_get::<String, _>(2).unwrap_or_default(),
                "ratingId": r.try_get::<String, _>(3).unwrap_or_default(),
                "negative": r.try_get::<i64, _>(4).unwrap_or_default() != 0,
                "comment": r.try_get::<Option<String>, _>(5).ok().flatten(),
                "createdAt": r.try_get::<i64, _>(6).unwrap_or_default(),
            })
        })
        .collect())
}
