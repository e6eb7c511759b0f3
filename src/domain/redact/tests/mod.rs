//! The redactor's behaviour, one file per scanner; `hostile` holds the
//! adversarial inputs and the linear-work checks.
use super::cards::passes_luhn;
use super::*;
use proptest::prelude::*;
use serde::de::IntoDeserializer;
use serde::de::value::{Error as ValueError, StrDeserializer};

mod cards;
mod hostile;
mod phrases;
mod smtp;
mod tokens;

const ALL_KINDS: [SecretKind; 7] = [
    SecretKind::Password,
    SecretKind::ApiKey,
    SecretKind::SendgridApiKey,
    SecretKind::AwsAccessKeyId,
    SecretKind::PrivateKey,
    SecretKind::CardNumber,
    SecretKind::SmtpAuthCredentials,
];

const SENDGRID_KEY: &str = "SG.abcdefghij_klmnopqrstu.ABCDEFGHIJKLMNOPQRSTUVWXYZ-abcdefghijklmnop";

/// Asserts the exact output and that redacting it again is a no-op.
fn assert_redacts(input: &str, expected: &str, kinds: &[SecretKind]) {
    let result = redact(input);
    assert_eq!(result.text, expected, "input: {input:?}");
    assert_eq!(result.found, kinds, "input: {input:?}");
    let again = redact(&result.text);
    assert_eq!(again.text, result.text, "not idempotent for {input:?}");
    assert!(
        again.is_clean(),
        "second pass found {:?} in {:?}",
        again.found,
        result.text
    );
}

fn assert_untouched(input: &str) {
    let result = redact(input);
    assert_eq!(result.text, input);
    assert!(result.is_clean(), "found {:?} in {input:?}", result.found);
}

// --- SecretKind -------------------------------------------------------

#[test]
fn kind_names_match_their_serde_names() {
    for kind in ALL_KINDS {
        let deserializer: StrDeserializer<'_, ValueError> = kind.as_str().into_deserializer();
        assert_eq!(SecretKind::deserialize(deserializer), Ok(kind));
    }
}

#[test]
fn kinds_have_labels_and_advice() {
    assert_eq!(SecretKind::Password.label(), "a password");
    assert_eq!(SecretKind::ApiKey.label(), "an API key");
    assert_eq!(SecretKind::CardNumber.label(), "a payment card number");
    assert!(SecretKind::CardNumber.rotate_advice().contains("bank"));
    for kind in ALL_KINDS {
        assert!(!kind.label().is_empty());
        let advice = kind.rotate_advice();
        assert!(advice.ends_with('.') && advice.matches(". ").count() == 0, "{advice}");
    }
}

// --- Mixed ------------------------------------------------------------

#[test]
fn several_secrets_in_one_text_are_all_redacted() {
    let input = format!(
        "Hello,\nmy password is hunter2 and the api_key={SENDGRID_KEY}.\n\
         AWS: AKIAIOSFODNN7EXAMPLE\nCard: 4111 1111 1111 1111\n\
         -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY-----\n\
         > AUTH PLAIN AGJvYgBodW50ZXIy\nRegards"
    );
    let result = redact(&input);
    assert_eq!(
        result.text,
        "Hello,\nmy password is [redacted] and the api_key=[redacted]\n\
         AWS: [redacted]\nCard: [redacted]\n[redacted]\n> AUTH PLAIN [redacted]\nRegards"
    );
    assert_eq!(result.found, ALL_KINDS);
    assert_eq!(redact(&result.text).text, result.text);
}

#[test]
fn clean_text_is_returned_unchanged() {
    assert_untouched("");
    assert_untouched("Hello, I cannot log in since yesterday. Order 12345. Merci, Zoë 日本");
}

#[test]
fn multi_byte_characters_next_to_secrets_survive() {
    assert_redacts("pässword: x", "pässword: x", &[]);
    assert_redacts(
        "日本password:秘密ü next",
        "日本password:[redacted] next",
        &[SecretKind::Password],
    );
    assert_redacts("éAKIAIOSFODNN7EXAMPLEé", "é[redacted]é", &[SecretKind::AwsAccessKeyId]);
    assert_redacts("€4111111111111111€", "€[redacted]€", &[SecretKind::CardNumber]);
}

#[test]
fn a_megabyte_mail_is_redacted_whole() {
    let paragraph = "Hello, I forgot my password and the reset link from order 12345678 \
                     expired on 2026-11-20 at 10:00. Can you help? Merci, Zoë — 日本語. \n";
    let mut body = paragraph.repeat(1_000_000 / paragraph.len());
    body.push_str("password: hunter2\n4111 1111 1111 1111\n");
    let result = redact(&body);
    assert!(!result.text.contains("hunter2"));
    assert!(!result.text.contains("4111 1111 1111 1111"));
    // Its speed is measured by the work counters of `hostile.rs` and by the benchmark in
    // docs/benchmarks.md, never by a clock in a test.
}

// --- Properties -------------------------------------------------------

fn card_number() -> impl Strategy<Value = String> {
    (proptest::collection::vec(0u8..10, 14), any::<bool>()).prop_map(|(mut digits, grouped)| {
        digits.insert(0, 4);
        let partial: Vec<u8> = digits.iter().map(|digit| b'0' + digit).collect();
        let check = (0..10u8)
            .find(|&check| {
                let mut candidate = partial.clone();
                candidate.push(b'0' + check);
                passes_luhn(candidate.into_iter())
            })
            .unwrap_or(0);
        digits.push(check);
        let text: String = digits.iter().map(|digit| char::from(b'0' + digit)).collect();
        if grouped {
            text.as_bytes()
                .chunks(4)
                .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            text
        }
    })
}

/// A secret and the sentence that carries it.
fn injected_secret() -> impl Strategy<Value = (String, String)> {
    let word = "[A-Za-z0-9!#%&*+^~]{10,24}";
    prop_oneof![
        word.prop_map(|secret| (format!("password: {secret}"), secret)),
        word.prop_map(|secret| (format!("my password is {secret}"), secret)),
        word.prop_map(|secret| (format!("\"api_key\": \"{secret}\""), secret)),
        word.prop_map(|secret| (format!("token={secret}"), secret)),
        ("[A-Za-z0-9_-]{22}", "[A-Za-z0-9_-]{43}").prop_map(|(a, b)| {
            let key = format!("SG.{a}.{b}");
            (key.clone(), key)
        }),
        "AKIA[A-Z0-9]{16}".prop_map(|key| (key.clone(), key)),
        card_number().prop_map(|card| (card.clone(), card)),
        "[A-Za-z0-9+/]{20,40}".prop_map(|blob| {
            let secret = format!("{blob}==");
            (format!("C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: {secret}"), secret)
        }),
        "[A-Za-z0-9+/]{24,40}".prop_map(|body| {
            (
                format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"),
                body,
            )
        }),
    ]
}

fn mail_like_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,120}",
        proptest::collection::vec(
            prop_oneof![
                Just("password".to_owned()),
                Just("password:".to_owned()),
                Just("is".to_owned()),
                Just("AUTH LOGIN\n".to_owned()),
                Just("> ".to_owned()),
                Just("\n".to_owned()),
                Just("=".to_owned()),
                Just("\"".to_owned()),
                Just(REDACTED.to_owned()),
                Just("-----BEGIN PRIVATE KEY-----".to_owned()),
                Just("4111 ".to_owned()),
                Just("1111".to_owned()),
                Just("aGVsbG8=".to_owned()),
                Just("334 x\n".to_owned()),
                Just("é".to_owned()),
                Just("Authorization: ".to_owned()),
                Just("Basic ".to_owned()),
                Just("Digest ".to_owned()),
                Just("PASS ".to_owned()),
                Just("?token=".to_owned()),
                Just("&".to_owned()),
                Just("null,".to_owned()),
                Just("'".to_owned()),
                Just("“".to_owned()),
                Just("AKIAIOSFODNN7EXAMPLE".to_owned()),
                Just(SENDGRID_KEY.to_owned()),
                Just("C: ".to_owned()),
                Just("-> ".to_owned()),
                Just("AUTH PLAIN ".to_owned()),
                Just("-".to_owned()),
                Just(":".to_owned()),
                Just(" is ".to_owned()),
                Just("-----END PRIVATE KEY-----".to_owned()),
                Just("4111111111111111".to_owned()),
                Just("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.x".to_owned()),
                "[a-z0-9 ]{1,8}",
            ],
            0..32,
        )
        .prop_map(|parts| parts.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn redact_is_idempotent(input in mail_like_text()) {
        let once = redact(&input);
        let twice = redact(&once.text);
        prop_assert_eq!(&twice.text, &once.text);
        prop_assert!(twice.is_clean(), "found {:?} in {:?}", twice.found, once.text);
    }

    #[test]
    fn found_is_sorted_and_distinct(input in mail_like_text()) {
        let found = redact(&input).found;
        prop_assert!(found.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn injected_secrets_disappear(
        before in mail_like_text(),
        (sentence, secret) in injected_secret(),
        after in mail_like_text(),
    ) {
        let input = format!("{before}\n{sentence}\n{after}");
        let result = redact(&input);
        prop_assert!(!result.text.contains(&secret), "{:?} left in {:?}", secret, result.text);
        prop_assert!(!result.is_clean());
    }
}
