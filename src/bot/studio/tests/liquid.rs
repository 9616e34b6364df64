//! Liquid as Studio renders it: the constructs of the fixture flows and of Twilio's Liquid
//! documentation (output, filters, tags, whitespace control, variables of every widget kind),
//! each with the text Twilio produces, in one table.
use super::super::template::{check, render};
use serde_json::{json, Value};

/// A context shaped like a real execution's (see the reference's step context).
fn context() -> Value {
    json!({
        "trigger": {
            "message": {"Body": " Yes ", "From": "whatsapp:+15550001111", "To": "+15559990000",
                        "MessageSid": "SM0123", "AccountSid": "AC0123", "NumMedia": "0",
                        "ChannelAttributes": {"channel_type": "web", "from": "Ana"}},
            "conversation": {"ConversationSid": "CH42", "From": "+15550001111"},
            "parent": {"parameters": {"language": "es"}},
        },
        "contact": {"channel": {"address": "+15550001111"}},
        "flow": {
            "flow_sid": "FW0123", "sid": "FN0123", "channel": {"address": "+15559990000"},
            "data": {"patient_first_name": "Ana", "event_type": "BOOKED",
                     "appointment_datetime": "2024-07-01T14:00:00+02:00", "count": 3},
            "variables": {"count": "2", "CUSTOMER_NAME": "Ana Lima", "empty": ""},
        },
        "widgets": {
            "get-datetime-parts": {"parsed": {"readable_datetime": "Monday, July 1 at 2:00 PM"}},
            "get_data": {"status_code": 200, "content_type": "application/json",
                         "body": "{\"ok\":true}",
                         "parsed": {"ok": true, "name": "Ana", "results": [
                             {"name": "Cleaning", "price": "80"}, {"name": "Filling", "price": 120}]}},
            "ask": {"inbound": {"Body": "2", "From": "+15550001111", "MessageSid": "SM0456"},
                    "outbound": {"Body": "Pick one", "Sid": "SM0789", "To": "+15550001111"}},
        },
    })
}

#[test]
fn studio_liquid_renders_as_twilio_does() {
    let rows: &[(&str, &str)] = &[
        // Output and variables (fixtures).
        ("Hello {{ 'tobi' }}", "Hello tobi"),
        ("Hi {{flow.data.patient_first_name}}!", "Hi Ana!"),
        ("{{flow.flow_sid}} {{flow.sid}}", "FW0123 FN0123"),
        ("{{contact.channel.address}}/{{flow.channel.address}}", "+15550001111/+15559990000"),
        ("{{widgets.get-datetime-parts.parsed.readable_datetime}}", "Monday, July 1 at 2:00 PM"),
        ("{{trigger.message.ChannelAttributes.channel_type}}", "web"),
        ("{{trigger.conversation.ConversationSid}}", "CH42"),
        ("{{trigger.parent.parameters.language}}", "es"),
        ("{{trigger.message.MessageSid}} {{trigger.message.AccountSid}}", "SM0123 AC0123"),
        ("{{widgets.ask.inbound.MessageSid}} {{widgets.ask.outbound.Sid}}", "SM0456 SM0789"),
        ("{{widgets.get_data.status_code}} {{widgets.get_data.parsed.ok}}", "200 true"),
        ("{{widgets.get_data.parsed.results[1].name}}", "Filling"),
        ("{{widgets.get_data.parsed.results.first.name}}", "Cleaning"),
        ("{{widgets.get_data.parsed.results.size}}", "2"),
        ("[{{widgets.never_ran.parsed.x}}][{{trigger.call.From}}]", "[][]"),
        // Filters (fixtures and Twilio's docs).
        ("{{trigger.message.From | remove: 'whatsapp:'}}", "+15550001111"),
        ("{{trigger.message.Body | strip | upcase}}", "YES"),
        ("{{ \"hello world\" | capitalize }}", "Hello world"),
        ("{{flow.variables.CUSTOMER_NAME | downcase | replace: ' ', '_'}}", "ana_lima"),
        ("{{flow.variables.CUSTOMER_NAME | truncate: 6}}", "Ana..."),
        ("{{ 'a,b,c' | split: ',' | last }}", "c"),
        ("{{widgets.get_data.parsed.results | map: 'name' | join: ', '}}", "Cleaning, Filling"),
        ("{{flow.variables.missing | default: 'none'}}", "none"),
        ("{{flow.variables.empty | default: 'none'}}", "none"),
        ("{{ 'Hello' | append: ' there' | prepend: '> ' }}", "> Hello there"),
        // Arithmetic: Ruby Liquid reads nil and text as numbers.
        ("{{flow.variables.count | plus: 1}}", "3"),
        ("{{flow.variables.n | plus: 1}}", "1"),
        ("{{flow.variables.n | minus: 1}}", "-1"),
        ("{{flow.variables.n | times: 5}}", "0"),
        ("{{ 'abc' | plus: 1 }}", "1"),
        ("{{ '12 apples' | plus: 1 }}", "13"),
        ("{{ '1.5' | plus: 1 }}", "2.5"),
        ("{{flow.data.count | times: 2}}", "6"),
        ("{{ 10 | divided_by: 3 }}", "3"),
        ("{{ 10 | divided_by: 4.0 }}", "2.5"),
        ("{{ 7 | modulo: 3 }}", "1"),
        ("{{ 4 | at_least: 5 }} {{ 4 | at_most: 3 }}", "5 3"),
        ("{{widgets.get_data.parsed.results[0].price | plus: widgets.get_data.parsed.results[1].price}}", "200"),
        // Counter idiom (webchat fixture) with and without a value.
        (
            "{%- if flow.variables.count -%}\n  {{flow.variables.count | plus: 1}}\n{%- else -%}\n  0\n{%- endif -%}",
            "3",
        ),
        (
            "{%- if flow.variables.nope -%}\n  {{flow.variables.nope | plus: 1}}\n{%- else -%}\n  0\n{%- endif -%}",
            "0",
        ),
        ("{% assign n = flow.variables.unset | plus: 1 %}{{n}}", "1"),
        // Dates: ISO-8601 as HTTP widgets return them keeps its own offset.
        ("{{ \"2024-07-01T14:00:00+02:00\" | date: \"%b %d, %Y\" }}", "Jul 01, 2024"),
        ("{{flow.data.appointment_datetime | date: '%H:%M'}}", "14:00"),
        ("{{ '2024-07-01T14:00:00Z' | date: '%A %d %B' }}", "Monday 01 July"),
        ("{{ '2024-07-01T14:00:00.250Z' | date: '%Y-%m-%d %H:%M' }}", "2024-07-01 14:00"),
        ("{{ '2024-07-01' | date: '%m/%d/%Y' }}", "07/01/2024"),
        ("{{ '2024-07-01 09:30:00' | date: '%I:%M %p' }}", "09:30 AM"),
        ("{{ 'not a date' | date: '%Y' }}", "not a date"),
        // URLs: a space is "+", as Ruby's CGI.escape writes it.
        ("{{ 'Ana Lima & co' | url_encode }}", "Ana+Lima+%26+co"),
        ("{{ 'a+b%21' | url_decode }}", "a b!"),
        // Tags from Twilio's docs.
        ("{% if widgets.ask.inbound.Body == '2' %}two{% else %}other{% endif %}", "two"),
        ("{% if trigger.message.Body contains 'Yes' %}y{% endif %}", "y"),
        ("{% unless flow.variables.missing %}unset{% endunless %}", "unset"),
        ("{% case flow.data.event_type %}{% when 'BOOKED' %}booked{% else %}other{% endcase %}", "booked"),
        (
            "{% for r in widgets.get_data.parsed.results %}{{forloop.index}}. {{r.name}}{% unless forloop.last %}\n{% endunless %}{% endfor %}",
            "1. Cleaning\n2. Filling",
        ),
        ("{% capture greeting %}Hi {{flow.data.patient_first_name}}{% endcapture %}{{greeting}}!", "Hi Ana!"),
        ("{% comment %}note{% endcomment %}ok", "ok"),
        // Objects print as JSON, as Studio passes `{{flow.data}}` on.
        ("{{widgets.get_data.parsed.results[0]}}", r#"{"name":"Cleaning","price":"80"}"#),
        // Whitespace (newlines too) after a dot in a path, as the console leaves it.
        ("{% if widgets. \nget_data.parsed.ok %}ok{% endif %}", "ok"),
        ("{{ widgets.\n    get_data.parsed.name }}", "Ana"),
        ("{{ widgets.get_data \n .parsed.name }}", "Ana"),
        ("{{ 'a. b' }} stays. As written.", "a. b stays. As written."),
    ];
    let ctx = context();
    let mut failures = Vec::new();
    for (template, expected) in rows {
        match render(template, &ctx) {
            Ok(out) if out == *expected => {}
            other => failures.push(format!(
                "{template:?}: expected {expected:?}, got {other:?}"
            )),
        }
        if let Err(e) = check(template) {
            failures.push(format!("{template:?} does not pass import: {e}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn now_and_today_are_dates() {
    let year = (1970 + crate::domain::now_ms() / 31_556_952_000).to_string();
    let out = render("{{ 'now' | date: '%Y' }}", &json!({})).expect("renders");
    let next = (year.parse::<i64>().unwrap_or(0) + 1).to_string();
    assert!(out == year || out == next, "{out} vs {year}");
    assert_eq!(
        render("{{ 'today' | date: '%Y' }}", &json!({})).expect("renders"),
        out
    );
}

#[test]
fn what_twilio_refuses_stays_an_error() {
    assert!(render("{{ 1 | divided_by: 0 }}", &json!({})).is_err());
    assert!(render("{{ 1 | plus }}", &json!({})).is_err());
    assert!(render("{{ x | no_such_filter }}", &json!({})).is_err());
    assert!(check("{% if widgets. %}x{% endif %}").is_err());
}
