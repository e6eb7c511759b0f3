use super::*;
use serde_json::json;

fn event<'a>(id: i64, data: &'a Value, content: Option<&'a str>) -> ChainedEvent<'a> {
    ChainedEvent {
        id,
        ticket: "RD-7",
        event_type: if content.is_some() { "message_in" } else { "transition" },
        actor: "agent:ana@desk.test",
        at: "2026-12-07T08:00:00.000001Z",
        data,
        content_sha256: content,
    }
}

#[test]
fn canonical_json_sorts_keys_at_every_level_without_whitespace_and_keeps_utf8() {
    let value = json!({"b": 1, "a": {"z": [true, null, "é\"\n"], "m": "ü"}});
    assert_eq!(
        canonical_json(&value),
        "{\"a\":{\"m\":\"ü\",\"z\":[true,null,\"é\\\"\\n\"]},\"b\":1}"
    );
    assert_eq!(canonical_json(&json!("\u{1}")), "\"\\u0001\"");
}

#[test]
fn the_canonical_event_is_the_reference_object() {
    let data = json!({"to": "resolved", "from": "ownership_verified"});
    let e = event(12, &data, None);
    assert_eq!(
        e.canonical(),
        r#"{"actor":"agent:ana@desk.test","at":"2026-12-07T08:00:00.000001Z","data":{"from":"ownership_verified","to":"resolved"},"id":12,"ticket":"RD-7","type":"transition"}"#
    );
    // The hash is SHA-256 over the previous hash, a newline and that text.
    let expected = hex::encode(Sha256::digest(format!("{GENESIS}\n{}", e.canonical()).as_bytes()));
    assert_eq!(e.hash(GENESIS), expected);
    assert_eq!(e.hash(GENESIS).len(), 64);
    assert_ne!(e.hash(GENESIS), e.hash(&expected), "the previous hash is part of it");
}

#[test]
fn a_message_is_hashed_by_its_content_hash_not_its_text() {
    let sha = content_sha256("Hello", "my words");
    let data = json!({"channel": "web", "body": "my words", "subject": "Hello"});
    let erased = json!({"channel": "web", "body": "[erased]", "subject": ""});
    assert_eq!(
        event(3, &data, Some(&sha)).hash(GENESIS),
        event(3, &erased, Some(&sha)).hash(GENESIS)
    );
    assert!(
        event(3, &data, Some(&sha))
            .canonical()
            .contains(&format!("\"content_sha256\":\"{sha}\""))
    );
    assert!(!event(3, &data, Some(&sha)).canonical().contains("my words"));
}

fn export(events: &[(i64, Value)]) -> String {
    let mut prev = GENESIS.to_string();
    let mut out = String::new();
    for (id, data) in events {
        let e = event(*id, data, None);
        let hash = e.hash(&prev);
        out.push_str(&e.export_line(&prev, &hash));
        out.push('\n');
        prev = hash;
    }
    out
}

#[test]
fn an_intact_export_verifies_and_any_edited_byte_names_its_event() {
    let text = export(&[(1, json!({"a": 1})), (2, json!({"b": "x"})), (5, json!({"c": [1, 2]}))]);
    assert_eq!(verify_export(&text), Ok(3));
    // Every single-byte change anywhere in the second line breaks the chain at event 2
    // (or names the line when it no longer parses).
    let second_start = text.find('\n').unwrap() + 1;
    let second_end = second_start + text[second_start..].find('\n').unwrap();
    for i in second_start..second_end {
        let mut bytes = text.clone().into_bytes();
        bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
        let Ok(edited) = String::from_utf8(bytes) else { continue };
        let broken = verify_export(&edited).expect_err(&format!("byte {i} edited"));
        assert!(
            broken.event == Some(2) || broken.event.is_none() || broken.to_string().contains("line 2"),
            "byte {i}: {broken}"
        );
    }
}

#[test]
fn a_removed_or_reordered_line_breaks_the_chain() {
    let text = export(&[(1, json!({})), (2, json!({})), (3, json!({}))]);
    let lines: Vec<&str> = text.lines().collect();
    let without_second = format!("{}\n{}\n", lines[0], lines[2]);
    assert_eq!(verify_export(&without_second).unwrap_err().event, Some(3));
    let swapped = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[1]);
    assert_eq!(verify_export(&swapped).unwrap_err().event, Some(3));
    assert_eq!(verify_export("not json\n").unwrap_err().event, None);
    assert_eq!(verify_export(""), Ok(0));
}

#[test]
fn times_have_microseconds_and_z() {
    let at = chrono::NaiveDate::from_ymd_opt(2026, 12, 7)
        .unwrap()
        .and_hms_micro_opt(8, 1, 2, 3)
        .unwrap();
    assert_eq!(format_at(at), "2026-12-07T08:01:02.000003Z");
}
