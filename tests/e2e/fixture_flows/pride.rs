//! `pride-astrology`: asks for a sign, consults three Functions (horoscope, compatibility,
//! celebrity match) and offers the match; an unknown sign gets the sign dates.
use super::{Calls, Person};
use crate::channel::Rig;
use crate::common::backends;
use crate::studio::{fixture, point, serve};
use axum::extract::Form;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use std::collections::HashMap;

const ASK: &str = "Hi there, tell us your sign and get a special Pride horoscope 🔮";
const MATCH_QUESTION: &str =
    "Would you like to see who your celebrity match is and what lesbian bar you should go to?";
const DATES: &str = "If you need help with your sign, see the dates below:\nAries - March 21-April 19\nTaurus - April 20-May 20\nGemini - May 21-June 21\nCancer - June 22-July 22\nLeo - July 23-August 22\nVirgo - August 23-Sept 22\nLibra - Sept 23-Oct 23\nScorpio - Oct 24-Nov 22\nSagittarius - Nov 23-Dec 21\nCapricorn - Dec 22-Jan 19\nAquarius - Jan 20-Feb 18\nPisces - Feb 19-March 20";
const BARS: &str = "Learn more about and support the last 21 Lesbian bars in the US by visiting https://www.lesbianbarproject.com 🏳️\u{200d}🌈";

fn hold(sign: &str) -> String {
    format!("Oh you're a {sign}? Please hold while we consult the stars ✨")
}

/// The horoscope message as the flow writes it: its double spaces and line breaks kept.
fn horoscope(sign: &str) -> String {
    format!("📅  Today's horoscope 📅  \nStars favour {sign}.\n💭 Today's mood 💭   Bold\n💗 Your compatibility 💗  Aries, Leo")
}

/// The three Functions; the horoscope one fails for Pisces.
async fn functions(calls: Calls) -> String {
    let form = |path: &'static str, calls: Calls| {
        move |Form(f): Form<HashMap<String, String>>| {
            let calls = calls.clone();
            async move {
                calls.push(path, json!(f));
                let sign = f.get("sign").cloned().unwrap_or_default();
                match path {
                    "/horoscope" if sign == "Pisces" => {
                        (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()
                    }
                    "/horoscope" => Json(
                        json!({"description": format!("Stars favour {sign}."), "mood": "Bold"}),
                    )
                    .into_response(),
                    "/compatibility" => Json(json!({"list": "Aries, Leo"})).into_response(),
                    _ => Json(json!({"name": "Tracy Chapman", "description": format!(
                        "From {}.", f.get("compatibility_list").cloned().unwrap_or_default())}))
                    .into_response(),
                }
            }
        }
    };
    serve(
        Router::new()
            .route("/horoscope", post(form("/horoscope", calls.clone())))
            .route(
                "/compatibility",
                post(form("/compatibility", calls.clone())),
            )
            .route("/celebrity", post(form("/celebrity", calls))),
    )
    .await
}

#[tokio::test]
async fn pride_astrology_runs_each_branch() {
    for backend in backends() {
        let calls = Calls::default();
        let base = functions(calls.clone()).await;
        let flow = point(
            fixture("pride-astrology"),
            &[
                ("get_horoscope", format!("{base}/horoscope")),
                ("get_compatibility", format!("{base}/compatibility")),
                ("get_celebrity_match", format!("{base}/celebrity")),
            ],
        );
        let rig = Rig::with(backend, json!({"model": "flow", "flow": flow}), json!({})).await;

        // A known sign, then yes to the match.
        let fan = Person::new(&rig, "+15551130001");
        assert_eq!(fan.says("hello").await, [ASK], "{backend:?}");
        assert_eq!(
            fan.says("Leo").await,
            [hold("Leo"), horoscope("Leo"), MATCH_QUESTION.to_owned()],
            "{backend:?}"
        );
        assert_eq!(
            fan.says("yes!").await,
            [
                "Oh la la your match is Tracy Chapman! From Aries, Leo.",
                BARS
            ],
            "{backend:?}"
        );
        assert_eq!(
            calls.to("/celebrity")[0]["compatibility_list"],
            "Aries, Leo"
        );

        // A known sign, then anything but yes: the flow ends quietly; the next text starts over.
        let shy = Person::new(&rig, "+15551130002");
        shy.says("hi").await;
        assert_eq!(
            shy.says("taurus").await,
            [
                hold("taurus"),
                horoscope("taurus"),
                MATCH_QUESTION.to_owned()
            ]
        );
        assert!(shy.says("no thanks").await.is_empty(), "{backend:?}");
        assert_eq!(shy.says("hi again").await, [ASK]);

        // An unknown sign gets the dates. The flow's split keeps testing the first answer
        // (`widgets.ask_sign.inbound.Body`), so on Twilio too a right sign now gets them again.
        let lost = Person::new(&rig, "+15551130003");
        lost.says("hi").await;
        assert_eq!(lost.says("Ophiuchus").await, [DATES], "{backend:?}");
        assert_eq!(lost.says("Leo").await, [DATES], "{backend:?}");

        // The horoscope Function fails: the flow's `fail` leads nowhere, so only the hold
        // message went out, and the next text starts over.
        let unlucky = Person::new(&rig, "+15551130004");
        unlucky.says("hi").await;
        assert_eq!(
            unlucky.says("Pisces").await,
            [hold("Pisces")],
            "{backend:?}"
        );
        assert_eq!(unlucky.says("hello?").await, [ASK]);
        rig.stop().await;
    }
}
