use super::*;
use serde_json::json;

fn en() -> Labels {
    Labels::default()
}

fn options() -> Options {
    Options::new(vec![
        "Opening hours".into(),
        "Parking".into(),
        "Prices".into(),
    ])
}

#[test]
fn numbered_options_render_with_reply_hint() {
    let text = options().render("Which one?", &en());
    assert_eq!(
        text,
        "Which one?\n1. Opening hours\n2. Parking\n3. Prices\nReply 1, 2 or 3."
    );
    let es = Labels::new("es", None);
    assert!(options().render("", &es).ends_with("Responde 1, 2 o 3."));
}

#[test]
fn an_option_is_picked_by_digit_label_or_unique_prefix() {
    let o = options();
    assert_eq!(o.pick("2"), Some(1));
    assert_eq!(o.pick(" #3. "), Some(2));
    assert_eq!(o.pick("parking"), Some(1));
    assert_eq!(o.pick("PARKING!"), Some(1));
    assert_eq!(o.pick("open"), Some(0));
    assert_eq!(o.pick("pri"), Some(2));
}

#[test]
fn ambiguous_out_of_range_or_unrelated_replies_pick_nothing() {
    let o = options();
    assert_eq!(o.pick("p"), None, "Parking and Prices both start with p");
    assert_eq!(o.pick("4"), None);
    assert_eq!(o.pick("0"), None);
    assert_eq!(o.pick("99999999999999999999"), None);
    assert_eq!(o.pick("what about dogs"), None);
    assert_eq!(o.pick(""), None);
    assert_eq!(o.pick("   "), None);
}

#[test]
fn accents_and_case_do_not_matter() {
    let o = Options::new(vec!["Sí".into(), "Información".into()]);
    assert_eq!(o.pick("si"), Some(0));
    assert_eq!(o.pick("INFORMACION"), Some(1));
    assert_eq!(o.pick("info"), Some(1));
}

#[test]
fn polar_accepts_numbers_labels_and_synonyms() {
    let l = en();
    for yes in ["1", "yes", "Yes!", "y", "yeah", "Sure", "ok", "of course"] {
        assert_eq!(polar(yes, &l), Some(true), "{yes}");
    }
    for no in ["2", "no", "NO.", "n", "nope", "no thanks", "not really"] {
        assert_eq!(polar(no, &l), Some(false), "{no}");
    }
}

#[test]
fn unclear_polar_answers_are_unclear_not_no() {
    let l = en();
    for unclear in ["maybe", "3", "", "what?", "yes and no", "banana"] {
        assert_eq!(polar(unclear, &l), None, "{unclear}");
    }
}

#[test]
fn polar_synonyms_follow_the_language() {
    let es = Labels::new("es", None);
    assert_eq!(polar("sí", &es), Some(true));
    assert_eq!(polar("vale", &es), Some(true));
    assert_eq!(polar("para nada", &es), Some(false));
    let pt = Labels::new("pt", None);
    assert_eq!(polar("não", &pt), Some(false));
    assert_eq!(polar("sim", &pt), Some(true));
    assert_eq!(
        polar_question("¿Seguro?", &es),
        "¿Seguro?\n1. Sí\n2. No\nResponde 1 o 2."
    );
}

fn form() -> FormSpec {
    serde_json::from_value(json!({
        "fields": [
            {"name": "name", "question": "What is your name?"},
            {"name": "email", "question": "Your email?", "type": "email"},
            {"name": "age", "question": "How old are you?", "type": "number", "min": 0, "max": 130},
            {"name": "plan", "question": "Which plan?", "type": "choice", "options": ["Basic", "Premium"]}
        ],
        "errorRetries": 2,
        "done": "Thanks $name, we will write to $email."
    }))
    .expect("form")
}

#[test]
fn a_form_asks_each_field_and_completes() {
    let f = form();
    f.validate().expect("valid");
    let l = en();
    let (mut st, first) = f.start(&l);
    assert_eq!(first, "What is your name?");
    assert_eq!(
        f.answer(&mut st, "Ana", &l),
        FormStep::Ask("Your email?".into())
    );
    assert_eq!(
        f.answer(&mut st, "ana@example.com", &l),
        FormStep::Ask("How old are you?".into())
    );
    let FormStep::Ask(plan) = f.answer(&mut st, "41", &l) else {
        panic!("plan question")
    };
    assert!(plan.starts_with("Which plan?\n1. Basic\n2. Premium"));
    let FormStep::Done { values, text } = f.answer(&mut st, "prem", &l) else {
        panic!("done")
    };
    assert_eq!(text, "Thanks Ana, we will write to ana@example.com.");
    assert_eq!(values["plan"], json!("Premium"));
    assert_eq!(values["age"], json!(41.0));
}

#[test]
fn an_invalid_answer_is_asked_again_then_leaving_is_offered() {
    let f = form();
    let l = en();
    let (mut st, _) = f.start(&l);
    f.answer(&mut st, "Ana", &l);
    assert_eq!(
        f.answer(&mut st, "not an email", &l),
        FormStep::Ask("That doesn't look right.\nYour email?".into())
    );
    // errorRetries = 2: the second failure in a row offers to leave.
    let FormStep::Ask(offer) = f.answer(&mut st, "still not", &l) else {
        panic!("offer")
    };
    assert!(
        offer.starts_with("Do you want to leave the form?\n1. Yes\n2. No"),
        "{offer}"
    );
    // "No" goes back to the same field with a fresh error budget.
    assert_eq!(
        f.answer(&mut st, "no", &l),
        FormStep::Ask("Your email?".into())
    );
    assert!(matches!(f.answer(&mut st, "bad", &l), FormStep::Ask(_)));
    assert!(
        matches!(f.answer(&mut st, "bad again", &l), FormStep::Ask(t) if t.starts_with("Do you want to leave"))
    );
    assert_eq!(
        f.answer(&mut st, "yes", &l),
        FormStep::Abandoned("OK, I have cancelled the form.".into())
    );
}

#[test]
fn an_unclear_answer_to_the_leave_offer_is_asked_again() {
    let f = form();
    let l = en();
    let (mut st, _) = f.start(&l);
    f.answer(&mut st, "Ana", &l);
    f.answer(&mut st, "x", &l);
    f.answer(&mut st, "y", &l);
    let FormStep::Ask(again) = f.answer(&mut st, "hmm", &l) else {
        panic!("ask again")
    };
    assert!(again
        .starts_with("Sorry, I didn't understand your answer.\nDo you want to leave the form?"));
    // Never a loop: enough unclear answers leave the form.
    let mut last = FormStep::Ask(String::new());
    for _ in 0..4 {
        last = f.answer(&mut st, "hmm", &l);
    }
    assert!(matches!(last, FormStep::Abandoned(_)));
}

#[test]
fn the_abandon_keyword_leaves_at_any_point() {
    let f = form();
    let l = en();
    let (mut st, _) = f.start(&l);
    assert!(matches!(
        f.answer(&mut st, "Cancel", &l),
        FormStep::Abandoned(_)
    ));
    let es = Labels::new("es", None);
    let (mut st, _) = f.start(&es);
    assert!(
        matches!(f.answer(&mut st, "salir", &es), FormStep::Abandoned(t) if t.contains("cancelado"))
    );
}

#[test]
fn without_the_offer_invalid_answers_keep_asking() {
    let mut f = form();
    f.allow_user_to_abandon_form = false;
    let l = en();
    let (mut st, _) = f.start(&l);
    f.answer(&mut st, "Ana", &l);
    for _ in 0..5 {
        assert_eq!(
            f.answer(&mut st, "nope", &l),
            FormStep::Ask("That doesn't look right.\nYour email?".into())
        );
    }
}

#[test]
fn field_validators() {
    let l = en();
    let field = |v: serde_json::Value| -> FieldSpec { serde_json::from_value(v).expect("field") };
    let phone = field(json!({"name": "p", "question": "?", "type": "phone"}));
    assert_eq!(
        check(&phone, "+1 (415) 555-0100", &l),
        Some(json!("+14155550100"))
    );
    assert_eq!(check(&phone, "call me", &l), None);
    let date = field(json!({"name": "d", "question": "?", "type": "date"}));
    assert_eq!(check(&date, "1990-02-28", &l), Some(json!("1990-02-28")));
    assert_eq!(check(&date, "29/02/2024", &l), Some(json!("2024-02-29")));
    assert_eq!(check(&date, "29/02/2023", &l), None);
    assert_eq!(check(&date, "tomorrow", &l), None);
    let code = field(json!({"name": "c", "question": "?", "pattern": "[A-Z]{3}\\d{3}"}));
    assert_eq!(check(&code, "ABC123", &l), Some(json!("ABC123")));
    assert_eq!(check(&code, "ABC1234", &l), None);
    let short = field(json!({"name": "s", "question": "?", "minLength": 2, "maxLength": 4}));
    assert_eq!(check(&short, "a", &l), None);
    assert_eq!(check(&short, "abcde", &l), None);
    assert_eq!(check(&short, "abc", &l), Some(json!("abc")));
    let agree = field(json!({"name": "a", "question": "?", "type": "polar"}));
    assert_eq!(check(&agree, "yep", &l), Some(json!(true)));
    assert_eq!(check(&agree, "perhaps", &l), None);
    let n = field(json!({"name": "n", "question": "?", "type": "number"}));
    assert_eq!(check(&n, "3,5", &l), Some(json!(3.5)));
    assert_eq!(check(&n, "NaN", &l), None);
    assert_eq!(check(&n, "inf", &l), None);
}

#[test]
fn invalid_form_specs_are_named() {
    let bad: FormSpec = serde_json::from_value(
        json!({"fields": [{"name": "x", "question": "?", "type": "choice"}]}),
    )
    .expect("parse");
    assert!(bad.validate().unwrap_err().contains("\"x\""));
    let bad: FormSpec =
        serde_json::from_value(json!({"fields": [{"name": "x", "question": "?", "pattern": "("}]}))
            .expect("parse");
    assert!(bad.validate().unwrap_err().contains("pattern"));
    let empty: FormSpec = serde_json::from_value(json!({"fields": []})).expect("parse");
    assert!(empty.validate().is_err());
}
