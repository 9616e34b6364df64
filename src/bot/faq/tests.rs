//! FAQ engine tests over a real dataset in SQLite: answers, numbered choices, ratings and
//! comments, related contents, forms, and both escalation counters.
use super::*;
use crate::bot::studio::testkit::Scratch;
use crate::bot::studio::testkit::{bot, context, serve, turn, Chat, T0};
use crate::bot::BotConfig;
use crate::store::schema::{DATASET, DATASET_RECORD};
use crate::store::{faq, Db, Param};
use std::sync::{Arc, Mutex};

async fn dataset(db: &Db, webhook: &str) {
    db.insert_resource(&DATASET, "ds-1", &[], T0)
        .await
        .expect("dataset");
    let records = [
        (
            "r1",
            "Q: What are your opening hours?\nA: We are open 9am to 5pm, Monday to Friday.",
            json!({"related": ["r3", "missing"]}),
        ),
        (
            "r2",
            "Q: What are your opening hours on holidays?\nA: We are closed on public holidays.",
            Value::Null,
        ),
        (
            "r3",
            "Q: Where can I park?\nA: Free parking behind the building.",
            Value::Null,
        ),
        (
            "r4",
            "Q: How much does a consultation cost?\nA: A consultation costs $50.",
            Value::Null,
        ),
        (
            "r5",
            "Q: How do I book an appointment?\nA: I can book one for you.",
            json!({"form": {
            "fields": [{"name": "name", "question": "What is your name?"}, {"name": "email", "question": "What is your email?", "type": "email"}],
            "errorRetries": 2, "done": "Booked, $name! We will confirm to $email.", "webhook": webhook}}),
        ),
        (
            "r6",
            "Q: I want to talk to a person\nA: Let me find someone for you.",
            json!({"escalate": true}),
        ),
    ];
    for (id, text, meta) in records {
        let mut cols = vec![
            ("dataset_id", Param::from("ds-1")),
            ("text", Param::from(text)),
        ];
        if !meta.is_null() {
            cols.push(("meta", Param::from(meta.to_string())));
        }
        db.insert_resource(&DATASET_RECORD, id, &cols, T0)
            .await
            .expect("record");
    }
}

/// A FAQ bot over the test dataset, and a stand-in receiving form submissions.
async fn setup(
    settings: Value,
    extra: Value,
) -> (
    FaqEngine,
    BotConfig,
    EngineContext,
    Arc<Mutex<Vec<Value>>>,
    Scratch,
) {
    let (ctx, scratch) = context(true).await;
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let url = serve(axum::Router::new().route(
        "/forms",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().expect("lock").push(body);
                "ok"
            }
        }),
    ))
    .await;
    dataset(&scratch.db, &format!("{url}/forms")).await;
    let mut fields = json!({"datasetId": "ds-1", "faq": settings});
    if let (Value::Object(f), Value::Object(e)) = (&mut fields, extra) {
        f.extend(e);
    }
    (
        FaqEngine::new(ctx.clone()),
        bot("faq", fields),
        ctx,
        received,
        scratch,
    )
}

const RATE: &str = "Was this answer helpful?\n1. Yes\n2. No\nReply 1 or 2.";

#[tokio::test]
async fn the_best_match_is_answered_and_rated() {
    let (engine, bot, _ctx, _, _dir) = setup(json!({}), json!({})).await;
    let mut chat = Chat::new(&engine, bot);
    let r = chat.say("How much is a consultation?").await;
    assert_eq!(r.messages, vec!["A consultation costs $50.", RATE]);
    assert_eq!(chat.say("1").await.messages, vec!["Thanks!"]);
}

#[tokio::test]
async fn close_matches_become_a_numbered_choice() {
    let (engine, bot, _ctx, _, _dir) = setup(
        json!({"ambiguityMargin": 0.2, "ratings": {"enabled": false}}),
        json!({}),
    )
    .await;
    let mut chat = Chat::new(&engine, bot.clone());
    let r = chat.say("opening?").await;
    assert_eq!(
        r.messages,
        vec!["I found several answers. Which one do you mean?\n1. What are your opening hours?\n2. What are your opening hours on holidays?\nReply 1 or 2."]
    );
    assert_eq!(
        chat.say("2").await.messages,
        vec!["We are closed on public holidays."]
    );
    // The label (or a unique start of it) works as well as the number.
    let mut chat = Chat::new(&engine, bot);
    chat.say("opening?").await;
    assert_eq!(
        chat.say("what are your opening hours on").await.messages,
        vec!["We are closed on public holidays."]
    );
}

#[tokio::test]
async fn a_reply_that_is_not_an_option_is_a_new_question() {
    let (engine, bot, _ctx, _, _dir) = setup(
        json!({"ambiguityMargin": 0.2, "ratings": {"enabled": false}}),
        json!({}),
    )
    .await;
    let mut chat = Chat::new(&engine, bot);
    chat.say("opening?").await;
    assert_eq!(
        chat.say("where can I park").await.messages,
        vec!["Free parking behind the building."]
    );
}

#[tokio::test]
async fn no_results_count_towards_escalation_and_reset_on_an_answer() {
    let (engine, bot, _ctx, _, _dir) = setup(
        json!({"triesBeforeEscalation": 2, "ratings": {"enabled": false}}),
        json!({}),
    )
    .await;
    let mut chat = Chat::new(&engine, bot);
    let no_result = "Sorry, I couldn't find an answer to that. Please, reformulate your question.";
    assert_eq!(
        chat.say("do you sell bicycles").await.messages,
        vec![no_result]
    );
    // An answer in between resets the count ("in a row").
    chat.say("where can I park").await;
    assert!(chat.say("bicycles?").await.actions.is_empty());
    let r = chat.say("unicycles?").await;
    assert_eq!(
        r.messages,
        vec![
            no_result,
            "I will try to connect you with an agent. Please wait."
        ]
    );
    assert!(matches!(r.actions.as_slice(), [Action::Handoff { .. }]));
}

#[tokio::test]
async fn escalation_can_be_offered_as_a_yes_no_question() {
    let (engine, bot, _ctx, _, _dir) = setup(
        json!({"triesBeforeEscalation": 1, "askBeforeEscalation": true}),
        json!({}),
    )
    .await;
    let mut chat = Chat::new(&engine, bot.clone());
    let r = chat.say("bicycles").await;
    assert_eq!(
        r.messages[1],
        "Do you want to start a chat with a human agent?\n1. Yes\n2. No\nReply 1 or 2."
    );
    let r = chat.say("hmm").await;
    assert!(
        r.messages[0]
            .starts_with("Sorry, I didn't understand your answer.\nDo you want to start a chat"),
        "unclear is asked again"
    );
    let r = chat.say("yes please").await;
    assert!(matches!(r.actions.as_slice(), [Action::Handoff { .. }]));
    // Declining keeps the bot, and the counter starts over.
    let mut chat = Chat::new(&engine, bot);
    chat.say("bicycles").await;
    let r = chat.say("no").await;
    assert_eq!(r.messages, vec!["What else can I do for you?"]);
    assert!(r.actions.is_empty());
}

#[tokio::test]
async fn repeated_unclear_answers_to_the_offer_fall_back_to_searching() {
    let (engine, bot, _ctx, _, _dir) = setup(json!({"triesBeforeEscalation": 1, "askBeforeEscalation": true, "ratings": {"enabled": false}}), json!({})).await;
    let mut chat = Chat::new(&engine, bot);
    chat.say("bicycles").await;
    chat.say("hmm").await;
    assert_eq!(
        chat.say("where can I park").await.messages,
        vec!["Free parking behind the building."]
    );
}

#[tokio::test]
async fn a_positive_rating_thanks_and_offers_related_contents() {
    let (engine, bot, _ctx, _, scratch) = setup(json!({}), json!({})).await;
    let mut chat = Chat::new(&engine, bot);
    chat.say("opening hours").await;
    let r = chat.say("yeah").await;
    assert_eq!(
        r.messages,
        vec![
            "Thanks!",
            "You may also be interested in:\n1. Where can I park?\nReply 1."
        ]
    );
    let r = chat.say("1").await;
    assert_eq!(r.messages, vec!["Free parking behind the building.", RATE]);
    let ratings = faq::list_ratings(&scratch.db, "bot-1", None, 10)
        .await
        .expect("ratings");
    assert_eq!(ratings.len(), 1);
    assert_eq!(ratings[0]["recordId"], json!("r1"));
    assert_eq!(ratings[0]["negative"], json!(false));
}

#[tokio::test]
async fn a_negative_rating_asks_why_and_counts_towards_escalation() {
    let (engine, bot, _ctx, _, scratch) =
        setup(json!({"negativeRatingsBeforeEscalation": 2}), json!({})).await;
    let mut chat = Chat::new(&engine, bot);
    chat.say("How much is a consultation?").await;
    assert_eq!(chat.say("2").await.messages, vec!["Please tell us why"]);
    assert_eq!(chat.say("too expensive").await.messages, vec!["Thanks!"]);
    chat.say("where can I park").await;
    chat.say("No").await;
    let r = chat.say("not clear").await;
    assert_eq!(
        r.messages,
        vec![
            "Thanks!",
            "I will try to connect you with an agent. Please wait."
        ]
    );
    assert!(
        matches!(r.actions.as_slice(), [Action::Handoff { reason: Some(reason), .. }] if reason.contains("negative"))
    );
    let mut ratings = faq::list_ratings(&scratch.db, "bot-1", None, 10)
        .await
        .expect("ratings");
    // Listed newest first.
    ratings.reverse();
    let comments: Vec<&Value> = ratings.iter().map(|r| &r["comment"]).collect();
    assert_eq!(comments, [&json!("too expensive"), &json!("not clear")]);
    assert!(ratings.iter().all(|r| r["negative"] == json!(true)));
}

#[tokio::test]
async fn a_positive_rating_resets_the_negative_count() {
    let (engine, bot, _ctx, _, _dir) =
        setup(json!({"negativeRatingsBeforeEscalation": 2}), json!({})).await;
    let mut chat = Chat::new(&engine, bot);
    for rating in ["2", "1", "2"] {
        chat.say("How much is a consultation?").await;
        let r = chat.say(rating).await;
        if rating == "2" {
            let r = chat.say("meh").await;
            assert!(r.actions.is_empty());
        } else {
            assert!(r.actions.is_empty());
        }
    }
}

#[tokio::test]
async fn ignoring_the_rating_question_just_asks_something_else() {
    let (engine, bot, _ctx, _, _dir) = setup(json!({}), json!({})).await;
    let mut chat = Chat::new(&engine, bot);
    chat.say("How much is a consultation?").await;
    let r = chat.say("where can I park").await;
    assert_eq!(r.messages[0], "Free parking behind the building.");
}

#[tokio::test]
async fn an_entry_form_is_asked_validated_and_submitted() {
    let (engine, bot, _ctx, received, _dir) = setup(json!({}), json!({})).await;
    let mut chat = Chat::new(&engine, bot);
    let r = chat.say("book an appointment").await;
    assert_eq!(
        r.messages,
        vec!["I can book one for you.", "What is your name?"]
    );
    assert_eq!(chat.say("Ana").await.messages, vec!["What is your email?"]);
    assert_eq!(
        chat.say("ana at example").await.messages,
        vec!["That doesn't look right.\nWhat is your email?"]
    );
    assert_eq!(
        chat.say("ana@example.com").await.messages,
        vec!["Booked, Ana! We will confirm to ana@example.com."]
    );
    let got = received.lock().expect("lock").clone();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0]["values"],
        json!({"name": "Ana", "email": "ana@example.com"})
    );
    assert_eq!(got[0]["recordId"], json!("r5"));
}

#[tokio::test]
async fn a_form_offers_to_leave_after_its_retries_and_can_be_abandoned() {
    let (engine, bot, _ctx, received, _dir) = setup(json!({}), json!({})).await;
    let mut chat = Chat::new(&engine, bot.clone());
    chat.say("book an appointment").await;
    chat.say("Ana").await;
    chat.say("nope").await;
    let r = chat.say("still nope").await;
    assert!(
        r.messages[0].starts_with("Do you want to leave the form?"),
        "{:?}",
        r.messages
    );
    assert_eq!(
        chat.say("1").await.messages,
        vec!["OK, I have cancelled the form."]
    );
    // Back to normal questions.
    assert_eq!(
        chat.say("where can I park").await.messages[0],
        "Free parking behind the building."
    );
    // The keyword leaves at once.
    let mut chat = Chat::new(&engine, bot);
    chat.say("book an appointment").await;
    assert_eq!(
        chat.say("cancel").await.messages,
        vec!["OK, I have cancelled the form."]
    );
    assert!(received.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn an_escalating_entry_hands_off() {
    let (engine, bot, _ctx, _, _dir) = setup(json!({}), json!({})).await;
    let r = Chat::new(&engine, bot)
        .say("I want to talk to a person")
        .await;
    assert_eq!(
        r.messages,
        vec![
            "Let me find someone for you.",
            "I will try to connect you with an agent. Please wait."
        ]
    );
    assert!(matches!(r.actions.as_slice(), [Action::Handoff { .. }]));
}

#[tokio::test]
async fn fixed_texts_follow_the_bots_language_and_overrides() {
    let (engine, bot, _ctx, _, _dir) = setup(
        json!({}),
        json!({"lang": "es", "labels": {"thanks": "¡Genial!"}}),
    )
    .await;
    let mut chat = Chat::new(&engine, bot);
    let r = chat.say("How much is a consultation?").await;
    assert_eq!(
        r.messages[1],
        "¿Te ha resultado útil esta respuesta?\n1. Sí\n2. No\nResponde 1 o 2."
    );
    assert_eq!(chat.say("si").await.messages, vec!["¡Genial!"]);
}

#[tokio::test]
async fn empty_and_odd_input_never_breaks_a_turn() {
    let (engine, bot, _ctx, _, _dir) = setup(json!({}), json!({})).await;
    let r = engine
        .respond(&turn(&bot, "   ", &Value::Null, T0))
        .await
        .expect("turn");
    assert!(r.messages.is_empty());
    let mut chat = Chat::new(&engine, bot);
    for odd in [
        "\"",
        "*",
        "OR AND NOT",
        "((((",
        "🤖🤖",
        "' OR 1=1 --",
        &"x".repeat(5000),
    ] {
        let r = chat.say(odd).await;
        assert!(!r.messages.is_empty(), "{odd:?}");
    }
}

#[tokio::test]
async fn a_bot_without_a_dataset_is_misconfigured() {
    let (ctx, _dir) = context(true).await;
    let engine = FaqEngine::new(ctx);
    let r = engine
        .respond(&turn(&bot("faq", json!({})), "hi", &Value::Null, T0))
        .await;
    assert!(matches!(r, Err(EngineError::Config(_))));
    let r = engine
        .respond(&turn(
            &bot("faq", json!({"datasetId": "x", "faq": {"minScore": 7}})),
            "hi",
            &Value::Null,
            T0,
        ))
        .await;
    assert!(matches!(r, Err(EngineError::Config(_))));
}

/// Adds question/answer records to the test dataset.
async fn add_records(db: &Db, records: &[(&str, &str)]) {
    for (id, text) in records {
        db.insert_resource(
            &DATASET_RECORD,
            id,
            &[
                ("dataset_id", Param::from("ds-1")),
                ("text", Param::from(*text)),
            ],
            T0,
        )
        .await
        .expect("record");
    }
}

const INSURANCE: &[(&str, &str)] = &[
    (
        "r7",
        "Q: What time do you open on Saturday?\nA: Saturdays we open at 10am.",
    ),
    (
        "r8",
        "Q: Do you accept Delta Dental insurance?\nA: Yes, we accept Delta Dental.",
    ),
    (
        "r9",
        "Q: Is my insurance billed directly?\nA: We bill your insurer directly.",
    ),
];

#[tokio::test]
async fn misspelled_questions_still_find_their_answer() {
    let (engine, bot, _ctx, _, scratch) =
        setup(json!({"ratings": {"enabled": false}}), json!({})).await;
    add_records(&scratch.db, INSURANCE).await;
    let mut chat = Chat::new(&engine, bot);
    assert_eq!(
        chat.say("wat tim do u open on saterday").await.messages,
        vec!["Saturdays we open at 10am."]
    );
    assert_eq!(
        chat.say("delta dentl").await.messages,
        vec!["Yes, we accept Delta Dental."]
    );
    assert_eq!(
        chat.say("how much dos a consultaton cost").await.messages,
        vec!["A consultation costs $50."]
    );
    // Close spellings do not make unrelated words match.
    assert_eq!(
        chat.say("do you sell bicycles").await.messages,
        vec!["Sorry, I couldn't find an answer to that. Please, reformulate your question."]
    );
}

#[tokio::test]
async fn a_one_word_question_offers_every_answer_about_it() {
    let (engine, bot, _ctx, _, scratch) =
        setup(json!({"ratings": {"enabled": false}}), json!({})).await;
    add_records(&scratch.db, INSURANCE).await;
    let mut chat = Chat::new(&engine, bot.clone());
    assert_eq!(
        chat.say("insurance").await.messages,
        vec!["I found several answers. Which one do you mean?\n1. Is my insurance billed directly?\n2. Do you accept Delta Dental insurance?\nReply 1 or 2."]
    );
    assert_eq!(
        chat.say("2").await.messages,
        vec!["Yes, we accept Delta Dental."]
    );
    // A misspelled single word too; one question about it is simply answered.
    let mut chat = Chat::new(&engine, bot);
    assert!(chat.say("insurence?").await.messages[0].starts_with("I found several answers."));
    assert_eq!(
        chat.say("parking").await.messages,
        vec!["Free parking behind the building."]
    );
}

#[tokio::test]
async fn dataset_synonyms_match_the_words_people_use() {
    let (engine, bot, _ctx, _, scratch) =
        setup(json!({"ratings": {"enabled": false}}), json!({})).await;
    let mut chat = Chat::new(&engine, bot.clone());
    let no_result = "Sorry, I couldn't find an answer to that. Please, reformulate your question.";
    assert_eq!(
        chat.say("is there a garage").await.messages,
        vec![no_result]
    );
    scratch
        .db
        .update_resource(
            &DATASET,
            "ds-1",
            &[(
                "meta",
                Param::from(
                    json!({"synonyms": {"park": ["garage", "car park"], "price": ["cost", "fee"]}})
                        .to_string(),
                ),
            )],
            T0,
        )
        .await
        .expect("meta");
    let mut chat = Chat::new(&engine, bot);
    assert_eq!(
        chat.say("is there a garage").await.messages,
        vec!["Free parking behind the building."]
    );
    assert_eq!(
        chat.say("where do I leave the car park").await.messages,
        vec!["Free parking behind the building."]
    );
    assert_eq!(
        chat.say("what is the consultation fee").await.messages,
        vec!["A consultation costs $50."]
    );
}
