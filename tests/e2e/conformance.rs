//! The store conformance suite: every domain verb, run against each backend of `backends()`
//! (SQLite always, PostgreSQL when `CHATWIRE_TEST_POSTGRES_URL` is set), through the same `Db`
//! the server uses. A backend passes when it behaves exactly like the other.
use crate::common::{backends, fresh_database, Backend};
use chatwire::store::resource::{ListQuery, NewRow, Order, Resource};
use chatwire::store::schema::{BOT, CONTACT, CONVERSATION, DATASET, DATASET_RECORD, MESSAGE};
use chatwire::store::search::{self, MetaFilter, Options};
use chatwire::store::{contacts, is_unique_violation, Db, Param};
use serde_json::{json, Value};

/// A migrated, empty database; the temp dir (SQLite) lives as long as the returned guard.
async fn db(backend: Backend) -> (Db, Option<crate::common::Scratch>) {
    let (url, dir) = fresh_database(backend).await;
    let db = Db::connect(&url).await.expect("connect and migrate");
    (db, dir)
}

fn new_id() -> String {
    chatwire::domain::ids::new_id()
}

fn now() -> i64 {
    chatwire::domain::now_ms()
}

/// Inserts a row with the given columns and returns its id.
async fn insert(db: &Db, res: &Resource, cols: Vec<(&'static str, Param)>) -> String {
    let id = new_id();
    db.insert_resource(res, &id, &cols, now())
        .await
        .expect("insert");
    id
}

fn query(order: Order, take: i64) -> ListQuery {
    ListQuery {
        cursor: None,
        order,
        take,
        meta: Vec::new(),
        eq: Vec::new(),
        scope: None,
    }
}

fn ids(items: &[serde_json::Map<String, Value>]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| i.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// Pages through `res` with `take` per page, calling `between` after the first page.
async fn page_all(db: &Db, res: &Resource, mut q: ListQuery) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let page = db.list_resources(res, &q).await.expect("list");
        if page.is_empty() {
            return seen;
        }
        let page_ids = ids(&page);
        q.cursor = page_ids.last().cloned();
        seen.extend(page_ids);
    }
}

#[tokio::test]
async fn resource_insert_fetch_update_delete_round_trip() {
    for backend in backends() {
        let (db, _dir) = db(backend).await;
        let id = insert(
            &db,
            &BOT,
            vec![
                ("name", Param::from("Echo")),
                ("model", Param::from("echo")),
                ("meta", Param::from(r#"{"env":"prod"}"#)),
            ],
        )
        .await;
        let row = db
            .fetch_resource(&BOT, None, &id)
            .await
            .expect("fetch")
            .expect("row exists");
        assert_eq!(row["name"], "Echo", "{backend:?}");
        assert_eq!(row["description"], "", "{backend:?}: DB default");
        assert_eq!(row["alias"], Value::Null, "{backend:?}");
        assert_eq!(row["privacy"], false, "{backend:?}");
        assert_eq!(row["meta"], json!({"env": "prod"}), "{backend:?}");
        let created = row["createdAt"].as_i64().expect("ms timestamp");

        let later = created + 5;
        let existed = db
            .update_resource(&BOT, &id, &[("name", Param::from("Renamed"))], later)
            .await
            .expect("update");
        assert!(existed, "{backend:?}");
        let row = db
            .fetch_resource(&BOT, None, &id)
            .await
            .expect("fetch")
            .expect("row");
        assert_eq!(
            (row["name"].clone(), row["updatedAt"].as_i64()),
            (json!("Renamed"), Some(later)),
            "{backend:?}"
        );
        assert_eq!(row["model"], "echo", "{backend:?}: untouched columns stay");
        assert_eq!(
            db.resolve_id(&BOT, None, &id).await.expect("resolve"),
            Some(id.clone())
        );

        assert!(
            db.delete_resource(&BOT, &id).await.expect("delete"),
            "{backend:?}"
        );
        assert!(
            db.fetch_resource(&BOT, None, &id)
                .await
                .expect("fetch")
                .is_none(),
            "{backend:?}"
        );
        assert!(
            !db.delete_resource(&BOT, &id).await.expect("delete again"),
            "{backend:?}: second delete finds nothing"
        );
        assert!(
            !db.update_resource(&BOT, &id, &[], later)
                .await
                .expect("update gone"),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn lists_order_by_creation_and_page_with_the_last_id() {
    for backend in backends() {
        let (db, _dir) = db(backend).await;
        let mut created = Vec::new();
        for i in 0..12 {
            created.push(insert(&db, &BOT, vec![("name", Param::from(format!("b{i}")))]).await);
        }
        let asc = page_all(&db, &BOT, query(Order::Asc, 5)).await;
        assert_eq!(asc, created, "{backend:?}: asc is insertion order");
        let mut desc_expected = created.clone();
        desc_expected.reverse();
        let desc = page_all(&db, &BOT, query(Order::Desc, 5)).await;
        assert_eq!(desc, desc_expected, "{backend:?}: desc is the reverse");
        let mut q = query(Order::Desc, 100);
        q.cursor = Some(created[0].clone());
        assert!(
            db.list_resources(&BOT, &q).await.expect("list").is_empty(),
            "{backend:?}: nothing after the oldest"
        );
    }
}

#[tokio::test]
async fn cursor_paging_is_stable_while_rows_are_inserted_concurrently() {
    for backend in backends() {
        let (db, _dir) = db(backend).await;
        let mut originals = Vec::new();
        for i in 0..30 {
            originals.push(insert(&db, &BOT, vec![("name", Param::from(format!("old{i}")))]).await);
        }
        for order in [Order::Desc, Order::Asc] {
            let mut q = query(order, 4);
            let first = db.list_resources(&BOT, &q).await.expect("first page");
            let mut seen = ids(&first);
            q.cursor = seen.last().cloned();
            // Writers race the reader for the rest of the walk.
            let writer = {
                let db = db.clone();
                tokio::spawn(async move {
                    let mut added = Vec::new();
                    for i in 0..20 {
                        added.push(
                            insert(&db, &BOT, vec![("name", Param::from(format!("new{i}")))]).await,
                        );
                        tokio::task::yield_now().await;
                    }
                    added
                })
            };
            loop {
                let page = db.list_resources(&BOT, &q).await.expect("page");
                if page.is_empty() {
                    break;
                }
                let page_ids = ids(&page);
                q.cursor = page_ids.last().cloned();
                seen.extend(page_ids);
                tokio::task::yield_now().await;
            }
            let added = writer.await.expect("writer");
            let mut unique = seen.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(
                unique.len(),
                seen.len(),
                "{backend:?} {order:?}: no row is listed twice"
            );
            let old_seen: Vec<&String> = seen.iter().filter(|id| originals.contains(id)).collect();
            let mut expected: Vec<&String> = originals.iter().collect();
            if order == Order::Desc {
                expected.reverse();
            }
            assert_eq!(
                old_seen, expected,
                "{backend:?} {order:?}: every existing row once, in order"
            );
            if order == Order::Desc {
                assert!(
                    seen[4..].iter().all(|id| originals.contains(id)),
                    "{backend:?}: newer rows never shift later pages"
                );
            }
            originals.extend(added);
        }
    }
}

#[tokio::test]
async fn meta_filters_match_values_nested_paths_and_booleans() {
    for backend in backends() {
        let (db, _dir) = db(backend).await;
        let a = insert(
            &db,
            &BOT,
            vec![(
                "meta",
                Param::from(r#"{"env":"prod","flag":true,"deep":{"tier":"gold"}}"#),
            )],
        )
        .await;
        let b = insert(
            &db,
            &BOT,
            vec![("meta", Param::from(r#"{"env":"prod","flag":false}"#))],
        )
        .await;
        let _c = insert(&db, &BOT, vec![("meta", Param::from(r#"{"env":"dev"}"#))]).await;
        let _d = insert(&db, &BOT, vec![]).await;
        let filtered = |meta: Vec<(Vec<String>, Value)>| {
            let db = db.clone();
            async move {
                let mut q = query(Order::Asc, 100);
                q.meta = meta;
                ids(&db.list_resources(&BOT, &q).await.expect("list"))
            }
        };
        let path = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            filtered(vec![(path("env"), json!("prod"))]).await,
            vec![a.clone(), b.clone()],
            "{backend:?}"
        );
        assert_eq!(
            filtered(vec![
                (path("env"), json!("prod")),
                (path("flag"), json!(true))
            ])
            .await,
            vec![a.clone()],
            "{backend:?}: filters AND together"
        );
        assert_eq!(
            filtered(vec![(path("deep.tier"), json!("gold"))]).await,
            vec![a.clone()],
            "{backend:?}: nested path"
        );
        assert!(
            filtered(vec![(path("env"), json!("staging"))])
                .await
                .is_empty(),
            "{backend:?}"
        );
        let mut q = query(Order::Asc, 100);
        q.eq = vec![("id", vec![b.clone()])];
        assert_eq!(
            ids(&db.list_resources(&BOT, &q).await.expect("list")),
            vec![b.clone()],
            "{backend:?}: equality filter"
        );
    }
}

#[tokio::test]
async fn duplicate_alias_is_a_unique_violation_and_changes_nothing() {
    for backend in backends() {
        let (db, _dir) = db(backend).await;
        let first = insert(
            &db,
            &BOT,
            vec![
                ("alias", Param::from("support")),
                ("name", Param::from("first")),
            ],
        )
        .await;
        let err = db
            .insert_resource(
                &BOT,
                &new_id(),
                &[
                    ("alias", Param::from("support")),
                    ("name", Param::from("second")),
                ],
                now(),
            )
            .await
            .expect_err("duplicate alias refused");
        assert!(is_unique_violation(&err), "{backend:?}: {err}");
        let all = ids(&db
            .list_resources(&BOT, &query(Order::Asc, 100))
            .await
            .expect("list"));
        assert_eq!(all, vec![first.clone()], "{backend:?}");
        assert_eq!(
            db.resolve_id(&BOT, None, "support").await.expect("resolve"),
            Some(first),
            "{backend:?}: alias resolves"
        );
        let other = insert(&db, &BOT, vec![]).await;
        let err = db
            .update_resource(&BOT, &other, &[("alias", Param::from("support"))], now())
            .await
            .expect_err("update too");
        assert!(is_unique_violation(&err), "{backend:?}");
    }
}

/// A dataset with records; returns (dataset id, record ids in the order given).
async fn dataset_with(db: &Db, texts: &[(&str, Value)]) -> (String, Vec<String>) {
    let dataset = insert(db, &DATASET, vec![]).await;
    let mut records = Vec::new();
    for (text, meta) in texts {
        let cols = vec![
            ("text", Param::from(*text)),
            ("meta", Param::from(meta.to_string())),
            ("dataset_id", Param::from(dataset.clone())),
        ];
        records.push(insert(db, &DATASET_RECORD, cols).await);
    }
    (dataset, records)
}

#[tokio::test]
async fn search_ranks_the_more_relevant_record_first_with_scores() {
    for backend in backends() {
        let (db, _dir) = db(backend).await;
        let (dataset, records) = dataset_with(
            &db,
            &[
                ("Our office is open Monday to Friday.", json!({})),
                ("Refunds: you can request a refund within 30 days. The refund policy covers all plans.", json!({})),
                ("Shipping takes five days. Returns are accepted, see the refund page.", json!({})),
                ("Opening hours and parking information.", json!({})),
            ],
        )
        .await;
        let (_other, other_records) =
            dataset_with(&db, &[("refund refund refund policy", json!({}))]).await;
        let found = search::search(&db, &dataset, "What is your refund policy?", 10)
            .await
            .expect("search");
        let found_ids: Vec<&str> = found.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            found_ids,
            vec![records[1].as_str(), records[2].as_str()],
            "{backend:?}: best match first, only matches"
        );
        assert!(
            found[0].score > found[1].score,
            "{backend:?}: scores descend: {found:?}"
        );
        assert!(
            found.iter().all(|r| r.score.is_finite() && r.score > 0.0),
            "{backend:?}: scores present"
        );
        assert!(
            !found_ids.contains(&other_records[0].as_str()),
            "{backend:?}: other datasets stay out"
        );
        assert!(found[0].text.starts_with("Refunds"), "{backend:?}");
        assert_eq!(found[0].meta, Some(json!({})), "{backend:?}");
        // Stemming: "opening" and "open" meet.
        let stemmed = search::search(&db, &dataset, "opens", 10)
            .await
            .expect("search");
        assert!(
            stemmed.iter().any(|r| r.id == records[0]),
            "{backend:?}: stemmed match {stemmed:?}"
        );
        let limited = search::search(&db, &dataset, "refund", 1)
            .await
            .expect("search");
        assert_eq!(limited.len(), 1, "{backend:?}: limit honoured");
    }
}

#[tokio::test]
async fn search_never_fails_on_query_syntax() {
    for backend in backends() {
        let (db, _dir) = db(backend).await;
        let (dataset, _) = dataset_with(&db, &[("alpha beta gamma", json!({}))]).await;
        for hostile in [
            "\"",
            "\"unterminated",
            "alpha AND",
            "OR",
            "NOT alpha",
            "(alpha",
            "alpha*",
            "NEAR(alpha beta)",
            "alpha:beta",
            "col:alpha",
            "a & b | !c",
            "':*",
            "\\",
            "",
            "   ",
            "🙂",
            "alpha'); DROP TABLE dataset_records; --",
        ] {
            let result = search::search(&db, &dataset, hostile, 5).await;
            assert!(result.is_ok(), "{backend:?}: {hostile:?} -> {result:?}");
        }
        let hit = search::search(&db, &dataset, "NEAR(alpha", 5)
            .await
            .expect("search");
        assert_eq!(
            hit.len(),
            1,
            "{backend:?}: the words of a hostile query still match"
        );
        let table_intact = search::search(&db, &dataset, "gamma", 5)
            .await
            .expect("search");
        assert_eq!(table_intact.len(), 1, "{backend:?}");
    }
}

#[tokio::test]
async fn search_applies_min_score_and_meta_filter() {
    for backend in backends() {
        let (db, _dir) = db(backend).await;
        let (dataset, records) = dataset_with(
            &db,
            &[
                (
                    "billing question about invoices",
                    json!({"lang": "en", "rank": 1}),
                ),
                (
                    "billing billing invoices invoices",
                    json!({"lang": "de", "rank": 5}),
                ),
                ("billing notes", json!({"lang": "en", "rank": 3})),
            ],
        )
        .await;
        let filter = |v: Value| MetaFilter::parse(v.as_object().expect("object")).expect("filter");
        let opts = Options {
            limit: 10,
            min_score: None,
            filter: filter(json!({"lang": "en"})),
        };
        let en = search::search_with(&db, &dataset, "billing invoices", &opts)
            .await
            .expect("search");
        assert_eq!(
            en.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            vec![records[0].clone(), records[2].clone()],
            "{backend:?}"
        );
        let opts = Options {
            limit: 10,
            min_score: None,
            filter: filter(json!({"rank": {"$gte": 3}, "lang": {"$ne": "de"}})),
        };
        let ranked = search::search_with(&db, &dataset, "billing", &opts)
            .await
            .expect("search");
        assert_eq!(
            ranked.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            vec![records[2].clone()],
            "{backend:?}"
        );

        let all = search::search(&db, &dataset, "billing invoices", 10)
            .await
            .expect("search");
        assert_eq!(all.len(), 3, "{backend:?}");
        let cut = all[1].score;
        let opts = Options {
            limit: 10,
            min_score: Some(cut),
            filter: MetaFilter::default(),
        };
        let strong = search::search_with(&db, &dataset, "billing invoices", &opts)
            .await
            .expect("search");
        assert_eq!(
            strong.len(),
            2,
            "{backend:?}: records under the minimum score are dropped"
        );
        assert!(strong.iter().all(|r| r.score >= cut), "{backend:?}");
    }
}

#[tokio::test]
async fn search_follows_record_updates_and_deletes() {
    for backend in backends() {
        let (db, _dir) = db(backend).await;
        let (dataset, records) = dataset_with(
            &db,
            &[("kangaroo facts", json!({})), ("wombat facts", json!({}))],
        )
        .await;
        db.update_resource(
            &DATASET_RECORD,
            &records[0],
            &[("text", Param::from("platypus facts"))],
            now(),
        )
        .await
        .expect("update");
        assert!(
            search::search(&db, &dataset, "kangaroo", 5)
                .await
                .expect("search")
                .is_empty(),
            "{backend:?}: old text gone"
        );
        let found = search::search(&db, &dataset, "platypus", 5)
            .await
            .expect("search");
        assert_eq!(
            found.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            vec![records[0].clone()],
            "{backend:?}"
        );
        db.delete_resource(&DATASET_RECORD, &records[1])
            .await
            .expect("delete");
        assert!(
            search::search(&db, &dataset, "wombat", 5)
                .await
                .expect("search")
                .is_empty(),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn deleting_a_parent_deletes_its_children_only() {
    for backend in backends() {
        let (db, _dir) = db(backend).await;
        let keep = insert(&db, &CONVERSATION, vec![]).await;
        let gone = insert(&db, &CONVERSATION, vec![]).await;
        let mut rows = Vec::new();
        for (conversation, text) in [(&keep, "kept"), (&gone, "one"), (&gone, "two")] {
            rows.push(NewRow {
                res: &MESSAGE,
                id: new_id(),
                cols: vec![
                    ("type", Param::from("user")),
                    ("text", Param::from(text)),
                    ("conversation_id", Param::from(conversation.clone())),
                ],
            });
        }
        db.insert_resources(&rows, now())
            .await
            .expect("insert messages");
        assert!(
            db.delete_with_children(&CONVERSATION, &gone, &[&MESSAGE])
                .await
                .expect("delete"),
            "{backend:?}"
        );
        let mut q = query(Order::Asc, 100);
        q.scope = Some(gone.clone());
        assert!(
            db.list_resources(&MESSAGE, &q)
                .await
                .expect("list")
                .is_empty(),
            "{backend:?}: messages went too"
        );
        q.scope = Some(keep.clone());
        assert_eq!(
            db.list_resources(&MESSAGE, &q).await.expect("list").len(),
            1,
            "{backend:?}: others untouched"
        );
    }
}

#[tokio::test]
async fn a_failed_batch_insert_writes_nothing() {
    for backend in backends() {
        let (db, _dir) = db(backend).await;
        insert(&db, &BOT, vec![("alias", Param::from("taken"))]).await;
        let rows = [
            NewRow {
                res: &CONVERSATION,
                id: new_id(),
                cols: vec![("name", Param::from("half"))],
            },
            NewRow {
                res: &BOT,
                id: new_id(),
                cols: vec![("alias", Param::from("taken"))],
            },
        ];
        let err = db
            .insert_resources(&rows, now())
            .await
            .expect_err("second row collides");
        assert!(is_unique_violation(&err), "{backend:?}");
        assert!(
            db.fetch_resource(&CONVERSATION, None, &rows[0].id)
                .await
                .expect("fetch")
                .is_none(),
            "{backend:?}: rolled back"
        );
    }
}

#[tokio::test]
async fn contact_ensure_is_idempotent_under_concurrency() {
    for backend in backends() {
        let (db, _dir) = db(backend).await;
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move {
                    let cols = vec![("name", Param::from(format!("caller {i}")))];
                    contacts::ensure(&db, &CONTACT, "fp-concurrent-0001", &cols, now()).await
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("join").expect("ensure"));
        }
        let first = results[0].0.clone();
        assert!(
            results.iter().all(|(id, _)| *id == first),
            "{backend:?}: one id for all: {results:?}"
        );
        assert_eq!(
            results.iter().filter(|(_, created)| *created).count(),
            1,
            "{backend:?}: created exactly once"
        );
        let all = db
            .list_resources(&CONTACT, &query(Order::Asc, 100))
            .await
            .expect("list");
        assert_eq!(all.len(), 1, "{backend:?}: one row");
        assert_eq!(all[0]["fingerprint"], "fp-concurrent-0001", "{backend:?}");

        let (again, created) = contacts::ensure(&db, &CONTACT, "fp-concurrent-0001", &[], now())
            .await
            .expect("ensure");
        assert_eq!(
            (again, created),
            (first, false),
            "{backend:?}: later calls find it"
        );
        let (other, created) = contacts::ensure(&db, &CONTACT, "fp-other", &[], now())
            .await
            .expect("ensure");
        assert!(
            created && other != results[0].0,
            "{backend:?}: another fingerprint is another contact"
        );
    }
}

/// SQLite's VACUUM may renumber implicit rowids; the FTS index is keyed on an explicit integer
/// key (migration 0003) so it keeps pointing at the right records.
#[tokio::test]
async fn sqlite_search_index_survives_vacuum() {
    let (db, _dir) = db(Backend::Sqlite).await;
    let (dataset, records) = dataset_with(
        &db,
        &[
            ("red apples", json!({})),
            ("green pears", json!({})),
            ("red cherries", json!({})),
        ],
    )
    .await;
    db.delete_resource(&DATASET_RECORD, &records[0])
        .await
        .expect("delete");
    sqlx::query("VACUUM")
        .execute(&db.pool)
        .await
        .expect("vacuum");
    let found = search::search(&db, &dataset, "red", 5)
        .await
        .expect("search");
    let found: Vec<(String, String)> = found.into_iter().map(|r| (r.id, r.text)).collect();
    assert_eq!(found, vec![(records[2].clone(), "red cherries".to_owned())]);
}
