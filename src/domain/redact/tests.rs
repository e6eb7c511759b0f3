use super::cards::passes_luhn;
use super::*;
use proptest::prelude::*;
use serde::de::IntoDeserializer;
use serde::de::value::{Error as ValueError, StrDeserializer};

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

// --- Passwords --------------------------------------------------------

#[test]
fn password_phrases_are_redacted() {
    use SecretKind::Password;
    assert_redacts("password: hunter2", "password: [redacted]", &[Password]);
    assert_redacts("Password=hunter2", "Password=[redacted]", &[Password]);
    assert_redacts("PASSWORD = hunter2 thanks", "PASSWORD = [redacted] thanks", &[Password]);
    assert_redacts("pwd: s3cr3t!", "pwd: [redacted]", &[Password]);
    assert_redacts("passwd hunter2", "passwd [redacted]", &[Password]);
    assert_redacts(
        "USER bob\nPASS hunter2\n+OK",
        "USER bob\nPASS [redacted]\n+OK",
        &[Password],
    );
    assert_redacts("pass: letmein", "pass: [redacted]", &[Password]);
    assert_redacts(
        "Hi, my password is hunter2 and it fails",
        "Hi, my password is [redacted] and it fails",
        &[Password],
    );
    assert_redacts(
        "the password is \"correct horse battery\".",
        "the password is \"[redacted]\".",
        &[Password],
    );
    assert_redacts("new password: Tr0ub4dor&3", "new password: [redacted]", &[Password]);
    assert_redacts("mot de passe : Soleil2026", "mot de passe : [redacted]", &[Password]);
    assert_redacts(
        "mon mot de passe est Soleil2026",
        "mon mot de passe est [redacted]",
        &[Password],
    );
    assert_redacts("DB_PASSWORD=hunter2", "DB_PASSWORD=[redacted]", &[Password]);
    assert_redacts("password:hunter2", "password:[redacted]", &[Password]);
    assert_redacts("the password was: hunter2", "the password was: [redacted]", &[Password]);
}

#[test]
fn quoted_passwords_keep_their_quotes() {
    use SecretKind::Password;
    assert_redacts(
        r#"{"user": "bob", "password": "hunter 2"}"#,
        r#"{"user": "bob", "password": "[redacted]"}"#,
        &[Password],
    );
    assert_redacts(r#"{"password":"pa\"ss"}"#, r#"{"password":"[redacted]"}"#, &[Password]);
    assert_redacts("password: 'abc def'", "password: '[redacted]'", &[Password]);
    assert_redacts("password: “Été 2026”", "password: “[redacted]”", &[Password]);
    assert_redacts("password: \"unterminated", "password: \"[redacted]", &[Password]);
}

#[test]
fn ordinary_sentences_about_passwords_stay() {
    for input in [
        "I forgot my password",
        "I forgot my password.",
        "Please send me a password reset link",
        "How do I reset your password form?",
        "My password is not working",
        "the password is wrong, can you help?",
        "My password is expired.",
        "password:",
        "password: ",
        "password:\nhunter2",
        "passwords must be 12 characters",
        "passwordless login",
        "bypass: the queue",
        "compass=north",
        "The secret is out",
        "The pass is valid until Friday",
        "I typed password and nothing happened",
        "Did the exam pass or fail?",
        "I pass my details below",
    ] {
        assert_untouched(input);
    }
}

#[test]
fn password_phrases_in_quoted_replies_are_redacted() {
    assert_redacts(
        "Thanks!\n> password: x\n> user: bob",
        "Thanks!\n> password: [redacted]\n> user: bob",
        &[SecretKind::Password],
    );
    assert_redacts(
        ">> Password = hunter2",
        ">> Password = [redacted]",
        &[SecretKind::Password],
    );
}

// --- API keys and tokens ----------------------------------------------

#[test]
fn api_key_phrases_are_redacted() {
    use SecretKind::ApiKey;
    assert_redacts("api_key=abc123", "api_key=[redacted]", &[ApiKey]);
    assert_redacts("api_key: abc123", "api_key: [redacted]", &[ApiKey]);
    assert_redacts("apikey abc123", "apikey [redacted]", &[ApiKey]);
    assert_redacts("My API key: abc123 thanks", "My API key: [redacted] thanks", &[ApiKey]);
    assert_redacts(r#"{"api_key": "abc123"}"#, r#"{"api_key": "[redacted]"}"#, &[ApiKey]);
    assert_redacts("api_secret=s3cr3t", "api_secret=[redacted]", &[ApiKey]);
    assert_redacts("secret=s3cr3t", "secret=[redacted]", &[ApiKey]);
    assert_redacts("token=abc.def", "token=[redacted]", &[ApiKey]);
    assert_redacts("access_token: ya29.a0Af", "access_token: [redacted]", &[ApiKey]);
    assert_redacts("X-API-Key: abc123", "X-API-Key: [redacted]", &[ApiKey]);
    assert_redacts("the api key is abc123", "the api key is [redacted]", &[ApiKey]);
    assert_redacts(
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG",
        "aws_secret_access_key = [redacted]",
        &[ApiKey],
    );
}

#[test]
fn query_parameters_after_a_secret_stay() {
    assert_redacts(
        "https://example.com/reset?token=abc123&user=bob#top",
        "https://example.com/reset?token=[redacted]&user=bob#top",
        &[SecretKind::ApiKey],
    );
    assert_redacts(
        "https://example.com/login?user=bob&password=hunter2",
        "https://example.com/login?user=bob&password=[redacted]",
        &[SecretKind::Password],
    );
    assert_untouched("https://example.com/reset?token=&user=bob");
}

#[test]
fn json_literals_are_not_secrets() {
    assert_untouched(r#"{"password":null,"token":""}"#);
    assert_untouched(r#"{"password": false}"#);
}

#[test]
fn authorization_headers_keep_the_scheme() {
    assert_redacts(
        "Authorization: Bearer abc.def.ghi",
        "Authorization: Bearer [redacted]",
        &[SecretKind::ApiKey],
    );
    assert_redacts(
        "curl -H 'Authorization: Basic dXNlcjpwYXNz' https://x",
        "curl -H 'Authorization: Basic [redacted]' https://x",
        &[SecretKind::Password],
    );
    assert_redacts(
        "Authorization: abc123",
        "Authorization: [redacted]",
        &[SecretKind::ApiKey],
    );
}

#[test]
fn bare_key_words_without_api_stay() {
    for input in [
        "key=value",
        "the key is under the mat",
        "monkey: banana",
        "My API key stopped working",
        "Where do I find my api key?",
        "the token is expired",
        "tokenizer: bert",
        "apikey for my account",
    ] {
        assert_untouched(input);
    }
}

#[test]
fn well_known_token_formats_are_redacted_anywhere() {
    assert_redacts(
        "use ghp_abcdefghijklmnopqrstuvwxyz0123456789 please",
        "use [redacted] please",
        &[SecretKind::ApiKey],
    );
    assert_redacts(
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
        "jwt [redacted] end",
        &[SecretKind::ApiKey],
    );
    assert_redacts("sk_live_abcdefghijklmnop1234", "[redacted]", &[SecretKind::ApiKey]);
}

// --- SendGrid ---------------------------------------------------------

#[test]
fn sendgrid_keys_are_redacted_anywhere() {
    assert_redacts(
        &format!("my key {SENDGRID_KEY}, thanks"),
        "my key [redacted], thanks",
        &[SecretKind::SendgridApiKey],
    );
    assert_redacts(
        &format!("(x{SENDGRID_KEY})"),
        "(x[redacted])",
        &[SecretKind::SendgridApiKey],
    );
    assert_redacts(
        &format!("api_key={SENDGRID_KEY}"),
        "api_key=[redacted]",
        &[SecretKind::SendgridApiKey],
    );
}

#[test]
fn sendgrid_lookalikes_stay() {
    assert_untouched("SG.short.key");
    assert_untouched("Version SG.1.2 released");
    // One character short in the first part.
    assert_untouched("SG.abcdefghij_klmnopqrst.ABCDEFGHIJKLMNOPQRSTUVWXYZ-abcdefghijklmnop");
}

// --- AWS --------------------------------------------------------------

#[test]
fn aws_access_key_ids_are_redacted() {
    assert_redacts(
        "key id AKIAIOSFODNN7EXAMPLE, region eu-west-1",
        "key id [redacted], region eu-west-1",
        &[SecretKind::AwsAccessKeyId],
    );
    assert_redacts(
        "\"ASIAY34FZKBOKMUTVV7A\"",
        "\"[redacted]\"",
        &[SecretKind::AwsAccessKeyId],
    );
}

#[test]
fn aws_lookalikes_stay() {
    assert_untouched("AKIA123");
    assert_untouched("XAKIAIOSFODNN7EXAMPLE");
    assert_untouched("AKIAIOSFODNN7EXAMPLEXYZ");
    assert_untouched("akiaiosfodnn7example");
}

// --- Private keys -----------------------------------------------------

#[test]
fn private_key_blocks_are_redacted_whole() {
    for label in ["", "RSA ", "EC ", "OPENSSH ", "DSA ", "ENCRYPTED "] {
        let input = format!(
            "Here it is:\n-----BEGIN {label}PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END {label}PRIVATE KEY-----\nBest, Bob"
        );
        assert_redacts(&input, "Here it is:\n[redacted]\nBest, Bob", &[SecretKind::PrivateKey]);
    }
}

#[test]
fn unterminated_private_key_runs_to_the_end() {
    assert_redacts(
        "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nsorry, cut off",
        "key:\n[redacted]",
        &[SecretKind::PrivateKey],
    );
}

#[test]
fn quoted_private_key_is_redacted() {
    assert_redacts(
        "> -----BEGIN OPENSSH PRIVATE KEY-----\n> b3BlbnNzaC1rZXktdjEAAAAA\n> -----END OPENSSH PRIVATE KEY-----\nok?",
        "> [redacted]\nok?",
        &[SecretKind::PrivateKey],
    );
}

#[test]
fn public_keys_and_certificates_stay() {
    assert_untouched("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----");
    assert_untouched("-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+g\n-----END CERTIFICATE-----");
}

// --- Cards ------------------------------------------------------------

#[test]
fn luhn_valid_card_numbers_are_redacted() {
    use SecretKind::CardNumber;
    assert_redacts(
        "card 4111 1111 1111 1111 exp 12/27",
        "card [redacted] exp 12/27",
        &[CardNumber],
    );
    assert_redacts("card 4111-1111-1111-1111.", "card [redacted].", &[CardNumber]);
    assert_redacts("4111111111111111", "[redacted]", &[CardNumber]);
    assert_redacts("amex 3782 822463 10005", "amex [redacted]", &[CardNumber]);
    assert_redacts("カード4111111111111111です", "カード[redacted]です", &[CardNumber]);
    assert_redacts("ref 12 4111 1111 1111 1111", "ref 12 [redacted]", &[CardNumber]);
}

#[test]
fn digit_runs_that_are_not_cards_stay() {
    for input in [
        "order 4111 1111 1111 1112",
        "order 4111111111111112",
        "sent at 20261120100003",
        "call +44 20 7946 0958 or 555-123-4567",
        "tracking 1Z999AA10123456784",
        "run 4111111111111111111111",
        "id A4111111111111111",
        "pi is 3.4111111111111111",
        "2026-11-20 10:00:03",
    ] {
        assert_untouched(input);
    }
}

#[test]
fn the_timestamp_in_the_brief_fails_luhn() {
    assert!(!passes_luhn("20261120100003".bytes()));
    assert!(passes_luhn("4111111111111111".bytes()));
    assert!(passes_luhn("79927398713".bytes()));
}

// --- SMTP -------------------------------------------------------------

#[test]
fn auth_login_transcript_is_redacted() {
    let transcript = "\
S: 220 smtp.example.com ESMTP
C: EHLO client.example.net
S: 250-smtp.example.com
S: 250 AUTH LOGIN PLAIN
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: Ym9iQGV4YW1wbGUubmV0
S: 334 UGFzc3dvcmQ6
C: aHVudGVyMg==
S: 235 2.7.0 Authentication successful
C: MAIL FROM:<bob@example.net>
";
    let expected = "\
S: 220 smtp.example.com ESMTP
C: EHLO client.example.net
S: 250-smtp.example.com
S: 250 AUTH LOGIN PLAIN
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: [redacted]
S: 334 UGFzc3dvcmQ6
C: [redacted]
S: 235 2.7.0 Authentication successful
C: MAIL FROM:<bob@example.net>
";
    assert_redacts(transcript, expected, &[SecretKind::SmtpAuthCredentials]);
}

#[test]
fn auth_login_transcript_quoted_without_markers_is_redacted() {
    let transcript = "\
Here is the log:
> AUTH LOGIN
> 334 VXNlcm5hbWU6
> Ym9iQGV4YW1wbGUubmV0
> 334 UGFzc3dvcmQ6
> aHVudGVyMg==
> 535 5.7.8 Authentication failed
Thanks";
    let expected = "\
Here is the log:
> AUTH LOGIN
> 334 VXNlcm5hbWU6
> [redacted]
> 334 UGFzc3dvcmQ6
> [redacted]
> 535 5.7.8 Authentication failed
Thanks";
    assert_redacts(transcript, expected, &[SecretKind::SmtpAuthCredentials]);
}

#[test]
fn swaks_style_transcript_is_redacted() {
    let transcript = "\
 -> AUTH LOGIN\r
<-  334 VXNlcm5hbWU6\r
 -> Ym9i\r
<-  334 UGFzc3dvcmQ6\r
 -> aHVudGVyMg\r
<-  235 2.7.0 ok\r
";
    let expected = "\
 -> AUTH LOGIN\r
<-  334 VXNlcm5hbWU6\r
 -> [redacted]\r
<-  334 UGFzc3dvcmQ6\r
 -> [redacted]\r
<-  235 2.7.0 ok\r
";
    assert_redacts(transcript, expected, &[SecretKind::SmtpAuthCredentials]);
}

#[test]
fn auth_login_with_initial_username_redacts_it_and_the_password() {
    assert_redacts(
        "C: AUTH LOGIN Ym9iQGV4YW1wbGUubmV0\nS: 334 UGFzc3dvcmQ6\nC: aHVudGVyMg==\nC: QUIT",
        "C: AUTH LOGIN [redacted]\nS: 334 UGFzc3dvcmQ6\nC: [redacted]\nC: QUIT",
        &[SecretKind::SmtpAuthCredentials],
    );
}

#[test]
fn auth_plain_argument_is_redacted() {
    assert_redacts(
        "C: AUTH PLAIN AGJvYgBodW50ZXIy\nS: 235 ok\nC: QUIT",
        "C: AUTH PLAIN [redacted]\nS: 235 ok\nC: QUIT",
        &[SecretKind::SmtpAuthCredentials],
    );
    assert_redacts(
        "The log says AUTH PLAIN AGJvYgBodW50ZXIy and then 535.",
        "The log says AUTH PLAIN [redacted] and then 535.",
        &[SecretKind::SmtpAuthCredentials],
    );
    assert_redacts(
        "AUTH PLAIN\n334 \nAGJvYgBodW50ZXIy\n235 ok",
        "AUTH PLAIN\n334 \n[redacted]\n235 ok",
        &[SecretKind::SmtpAuthCredentials],
    );
}

#[test]
fn prose_about_smtp_auth_stays() {
    for input in [
        "My client sends AUTH LOGIN and then fails.\nThanks\nBob",
        "Does the server support AUTH PLAIN with TLS?",
        "Set auth login required in settings",
        "C: AUTH LOGIN\nS: 535 5.7.8 nope\nC: QUIT",
        "AUTH LOGIN\nThanks for your help\nBob",
    ] {
        assert_untouched(input);
    }
}

#[test]
fn answer_after_an_earlier_redaction_is_still_found() {
    // The private key hides the first answer line; the password line
    // behind it must still go.
    let input =
        "C: AUTH LOGIN\n-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\nC: aHVudGVyMg==\nS: 235 ok";
    let result = redact(input);
    assert!(!result.text.contains("aHVudGVyMg=="), "{}", result.text);
    assert_eq!(redact(&result.text).text, result.text);
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
fn a_megabyte_mail_is_redacted_quickly() {
    let paragraph = "Hello, I forgot my password and the reset link from order 12345678 \
                     expired on 2026-11-20 at 10:00. Can you help? Merci, Zoë — 日本語. \n";
    let mut body = paragraph.repeat(1_000_000 / paragraph.len());
    body.push_str("password: hunter2\n4111 1111 1111 1111\n");
    let started = std::time::Instant::now();
    let result = redact(&body);
    let elapsed = started.elapsed();
    assert!(!result.text.contains("hunter2"));
    // Generous so that unoptimised test builds pass too; release builds
    // take a few milliseconds.
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
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
