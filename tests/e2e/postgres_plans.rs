//! PostgreSQL's plans: the claim queries' work does not grow with the backlog whatever the
//! planner's statistics say, and on a server whose autovacuum is off Chatwire refreshes those
//! statistics itself.
//!
//! Each claim keeps only the oldest open row of a sender (inbound) or recipient (outbox),
//! checked by a "no older open row" subquery. PostgreSQL's planner may turn that subquery into
//! an anti-join that reads every open row once per candidate; it does so when its statistics
//! were taken while the queue was empty, which is what autovacuum's ANALYZE records in a quiet
//! hour. A backlog then made every claim read backlog x candidates rows (the bench saw end to
//! end fall to 7 messages/s). These tests take the statistics of a quiet queue, build a backlog,
//! and count the rows the subquery reads in the claim's real plan (`EXPLAIN ANALYZE`, rolled
//! back).
//!
//! Batched writes read their rows from one JSON parameter; the planner must expect a batch to
//! be small, or `UPDATE ... FROM <rows>` scans the whole table for a batch of one.
use crate::common::{backends, fresh_database, Backend, Scratch};
use chatwire::store::{Db, Param, Sql};
use serde_json::Value;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};

/// Senders (or recipients) of the backlog, and open rows of each.
const PEOPLE: usize = 200;
const EACH: usize = 3;
/// Rows finished before the statistics are taken: a queue that has been busy, now quiet.
const FINISHED: usize = 2_000;

#[tokio::test]
async fn an_inbound_claim_reads_each_senders_rows_not_the_whole_backlog() {
    claims_read_each_persons_rows(Queue::Inbound).await;
}

#[tokio::test]
async fn an_outbox_claim_reads_each_recipients_rows_not_the_whole_backlog() {
    claims_read_each_persons_rows(Queue::Outbox).await;
}

#[derive(Clone, Copy, Debug)]
enum Queue {
    Inbound,
    Outbox,
}

impl Queue {
    fn table(self) -> &'static str {
        match self {
            Queue::Inbound => "inbound",
            Queue::Outbox => "outbox",
        }
    }

    /// The claim's "no older open row" subquery names its table so.
    fn subquery_alias(self) -> &'static str {
        match self {
            Queue::Inbound => "j",
            Queue::Outbox => "p",
        }
    }

    fn finished(self) -> &'static str {
        match self {
            Queue::Inbound => "done",
            Queue::Outbox => "sent",
        }
    }

    fn claim(self, db: &Db) -> Sql {
        let now = chatwire::domain::now_ms();
        match self {
            Queue::Inbound => db.claim_inbound_statement(now, 15_000, 64),
            Queue::Outbox => db.claim_outbox_statement(now, 15_000, 64),
        }
    }
}

async fn claims_read_each_persons_rows(queue: Queue) {
    let Some((url, db, _guard)) = postgres().await else {
        return;
    };
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    let at = chatwire::domain::now_ms() - 60_000;
    insert(&mut conn, queue, 0, FINISHED, queue.finished(), at).await;
    analyze(&mut conn, queue.table()).await;
    insert(&mut conn, queue, FINISHED, PEOPLE * EACH, "pending", at).await;

    let claim = queue.claim(&db);
    let (claimed, read) =
        rows_read_in_plan(&mut conn, &claim, queue.table(), queue.subquery_alias()).await;
    assert_eq!(claimed, 64, "{queue:?}: a full batch is claimed");
    assert!(
        read < PEOPLE * EACH,
        "{queue:?}: the claim read {read} rows of its people's queues for {claimed} claimed \
         rows, more than the whole backlog of {}: the check ran as a scan of every open row",
        PEOPLE * EACH
    );
}

#[tokio::test]
async fn a_batched_update_looks_its_rows_up_rather_than_scanning_the_table() {
    let Some((url, _db, _guard)) = postgres().await else {
        return;
    };
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    let at = chatwire::domain::now_ms() - 60_000;
    insert(&mut conn, Queue::Inbound, 0, FINISHED * 4, "processing", at).await;
    analyze(&mut conn, "inbound").await;
    // The shape of the one door's inbound update (and of the sent and status updates): two
    // rows of a batch, joined to the table by primary key.
    let mut update = Sql::new("WITH v (vid, vconv) AS (");
    update
        .json_rows(
            chatwire::store::Backend::Postgres,
            ["in7", "in8"].map(|id| vec![Param::from(id), Param::from("conversation")]),
        )
        .push(
            ") UPDATE inbound SET status = 'done', conversation_id = v.vconv FROM v \
             WHERE inbound.id = v.vid RETURNING id",
        );
    let (updated, read) = rows_read_in_plan(&mut conn, &update, "inbound", "inbound").await;
    assert_eq!(updated, 2, "both rows of the batch are updated");
    assert!(
        read <= 2 * 2,
        "the update read {read} rows of inbound's {} to update 2: it scanned the table",
        FINISHED * 4
    );
}

async fn postgres() -> Option<(String, Db, Option<Scratch>)> {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("skipped: set CHATWIRE_TEST_POSTGRES_URL to check PostgreSQL's claim plans");
        return None;
    }
    let (url, guard) = fresh_database(Backend::Postgres).await;
    let db = Db::connect(&url).await.expect("database");
    Some((url, db, guard))
}

/// Rows `from..from + n` of `queue`, person `k % PEOPLE`, one millisecond apart.
async fn insert(
    conn: &mut PgConnection,
    queue: Queue,
    from: usize,
    n: usize,
    status: &str,
    at: i64,
) {
    let sql = match queue {
        Queue::Inbound => {
            "INSERT INTO inbound (id, integration_id, channel, message_sid, sender, recipient, body, status, created_at) \
             SELECT 'in' || k, 'int', 'twilio', 'SM' || k, '+1555' || (k % $3), '+15550000000', 'hi', $4, $5 + k \
             FROM generate_series($1::bigint, $2::bigint) AS k"
        }
        Queue::Outbox => {
            "INSERT INTO outbox (id, integration_id, recipient, sender, body, status, next_attempt_at, created_at, updated_at) \
             SELECT 'out' || k, 'int', '+1555' || (k % $3), '+15550000000', 'hi', $4, $5 + k, $5 + k, $5 + k \
             FROM generate_series($1::bigint, $2::bigint) AS k"
        }
    };
    sqlx::query(sql)
        .bind(from as i64)
        .bind((from + n - 1) as i64)
        .bind(PEOPLE as i64)
        .bind(status)
        .bind(at)
        .execute(conn)
        .await
        .expect("insert");
}

async fn analyze(conn: &mut PgConnection, table: &str) {
    sqlx::query(&format!("ANALYZE {table}"))
        .execute(conn)
        .await
        .expect("analyze");
}

/// Runs `claim` (or another write) under `EXPLAIN ANALYZE` in a transaction that is rolled
/// back. Returns the rows it wrote and the rows its scans of `table` under `alias` read.
async fn rows_read_in_plan(
    conn: &mut PgConnection,
    claim: &Sql,
    table: &str,
    alias: &str,
) -> (usize, usize) {
    let mut tx = conn.begin().await.expect("begin");
    let text = format!("EXPLAIN (ANALYZE, FORMAT JSON) {}", claim.text);
    let mut query = sqlx::query(&text);
    for param in &claim.params {
        query = match param {
            Param::Text(s) => query.bind(s.clone()),
            Param::Int(i) => query.bind(*i),
            Param::Float(f) => query.bind(*f),
        };
    }
    let row = query.fetch_one(&mut *tx).await.expect("explain the claim");
    let plan: Value = row.try_get(0).expect("the plan as JSON");
    tx.rollback().await.expect("rollback");
    let top = &plan[0]["Plan"];
    let claimed = top["Actual Rows"].as_u64().expect("claimed rows") as usize;
    (claimed, read_by(top, table, alias))
}

/// Rows that the plan's nodes scanning `table` as `alias` returned or filtered out, over all
/// their loops.
fn read_by(node: &Value, table: &str, alias: &str) -> usize {
    let own = if node["Relation Name"] == table && node["Alias"] == alias {
        let loops = node["Actual Loops"].as_u64().unwrap_or(1);
        let seen = node["Actual Rows"].as_u64().unwrap_or(0)
            + node["Rows Removed by Filter"].as_u64().unwrap_or(0)
            + node["Rows Removed by Index Recheck"].as_u64().unwrap_or(0);
        (seen * loops) as usize
    } else {
        0
    };
    let children = node["Plans"]
        .as_array()
        .map(|plans| plans.iter().map(|p| read_by(p, table, alias)).sum())
        .unwrap_or(0);
    own + children
}

#[tokio::test]
async fn tables_that_changed_are_analyzed_and_others_left_alone() {
    let Some((url, db, _guard)) = postgres().await else {
        return;
    };
    // When this server's autovacuum is off, the database's own task analyzes every 10 s; once
    // the `Db` is gone it stops at its next turn, so the analysis below is the only one.
    drop(db);
    let pool = sqlx::AnyPool::connect(&url).await.expect("pool");
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    insert(
        &mut conn,
        Queue::Inbound,
        0,
        200,
        "done",
        chatwire::domain::now_ms(),
    )
    .await;
    // A session's counts reach the statistics when it ends.
    conn.close().await.expect("close");
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    let mut changed = 0;
    for _ in 0..50 {
        changed = stat(&mut conn, "inbound", "n_mod_since_analyze").await;
        if changed >= 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(changed >= 200, "the inserts are counted ({changed})");

    chatwire::store::planner_stats::analyze_changed(&pool)
        .await
        .expect("analyze");
    assert_eq!(
        stat(&mut conn, "inbound", "analyze_count").await,
        1,
        "inbound changed by 200 rows, past the threshold of 50, and was analyzed"
    );
    assert_eq!(
        stat(&mut conn, "bots", "analyze_count").await,
        0,
        "bots did not change and was left alone"
    );
}

/// A counter of `pg_stat_user_tables` for `table`.
async fn stat(conn: &mut PgConnection, table: &str, column: &str) -> i64 {
    sqlx::query(&format!(
        "SELECT {column} FROM pg_stat_user_tables WHERE relname = $1"
    ))
    .bind(table)
    .fetch_one(conn)
    .await
    .expect("table statistics")
    .get(0)
}
