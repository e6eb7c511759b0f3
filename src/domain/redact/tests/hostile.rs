//! The scanners on hostile input: what they find, and that their work grows
//! linearly with the input. Work is the count of bytes each scanner examines
//! (see [`lookahead`]), so these tests do not depend on the machine's speed;
//! one test also compares wall times, with a wide margin.

use proptest::prelude::*;

use super::super::lookahead::{self, take_work};
use super::super::{Finding, REDACTED, SecretKind, cards, phrases, redact, smtp, tokens};

type Scanner = fn(&str, &mut Vec<Finding>);

const SCANNERS: [(&str, Scanner); 7] = [
    ("tokens", tokens::find_known_token_formats),
    ("private keys", tokens::find_private_key_blocks),
    ("cards", cards::find_card_numbers),
    ("smtp arguments", smtp::find_smtp_auth_arguments),
    ("smtp dialogue", smtp::find_smtp_auth_dialogue),
    ("plain credentials", smtp::find_plain_credentials),
    ("phrases", phrases::find_credential_phrases),
];

/// No scanner may examine more than this many bytes per input byte, whatever
/// the input. A rescan from every match start makes it grow with the input.
const WORK_PER_BYTE: usize = 16;

/// The shapes that made the old scanners quadratic, and the next ones an
/// attacker would try: each is repeated to the size wanted.
const HOSTILE_UNITS: &[&str] = &[
    "pass:",
    "password is ",
    "password is password:",
    "?token=",
    "&password=",
    "password: \u{201c}",
    "password: \"\\\"",
    "token=\"",
    "Authorization: Digest x ",
    "Authorization: Basic ",
    "api_key=",
    "SG.",
    "SG.abcdefghij_klmnopqrstu.",
    "AKIA",
    "eyJaaaaaaaa.eyJ",
    "-----BEGIN PRIVATE KEY-----\n",
    "-----BEGIN RSA ",
    "1 ",
    "1-",
    "4111 ",
    "4",
    "4111111111111111 ",
    "AUTH PLAIN ",
    "C: AUTH PLAIN AGJvYgBodW50ZXIy\n",
    "C: AUTH LOGIN\n",
    "AUTH LOGIN\nS: 334 VXNlcm5hbWU6\n",
    "aGVsbG8gd29ybGQ=\n",
    "AGJvYgBodW50ZXIy ",
    "\\0a\\0b ",
    "\0a\0b\0",
    "\0",
    "\n",
    "\r\n",
    "\t",
    "a",
    "é日",
    REDACTED,
];

fn repeated(unit: &str, size: usize) -> String {
    unit.repeat(size.div_ceil(unit.len()))
}

fn work_of(scanner: Scanner, text: &str) -> usize {
    take_work();
    let mut findings = Vec::new();
    scanner(text, &mut findings);
    take_work()
}

/// Panics unless every scanner's work on `unit` repeated to 8× the size is
/// within a linear bound of its work at 1×, and within [`WORK_PER_BYTE`].
fn assert_linear_work(unit: &str, size: usize) {
    let small = repeated(unit, size);
    let large = repeated(unit, 8 * size);
    for (name, scanner) in SCANNERS {
        let work_small = work_of(scanner, &small);
        let work_large = work_of(scanner, &large);
        assert!(
            work_large <= 10 * work_small + 1_024,
            "{name} on {unit:?}: {work_small} bytes examined for {} bytes, {work_large} for {}",
            small.len(),
            large.len(),
        );
        assert!(
            work_large <= WORK_PER_BYTE * large.len() + 1_024,
            "{name} on {unit:?}: {work_large} bytes examined for {} bytes",
            large.len(),
        );
    }
}

#[test]
fn every_scanner_does_linear_work_on_every_hostile_shape() {
    for unit in HOSTILE_UNITS {
        assert_linear_work(unit, 4 << 10);
    }
}

#[test]
fn a_card_after_a_long_stretch_of_single_digits_is_found_in_linear_work() {
    // Digits and spaces throughout, but no four bytes with two digits until the card: the
    // scan reads the stretch back once, not once for each single digit in it.
    let text = |units: usize| format!("{}4111 1111 1111 1111", "1   ".repeat(units));
    let (small, large) = (text(4 << 10), text(32 << 10));
    let (work_small, work_large) = (
        work_of(cards::find_card_numbers, &small),
        work_of(cards::find_card_numbers, &large),
    );
    assert!(
        work_large <= 10 * work_small + 1_024,
        "{work_small} bytes examined for {}, {work_large} for {}",
        small.len(),
        large.len()
    );
    let mut findings = Vec::new();
    cards::find_card_numbers(&large, &mut findings);
    assert_eq!(findings.len(), 1);
}

#[test]
fn a_login_followed_by_thousands_of_lines_is_linear() {
    for size in [4 << 10, 32 << 10] {
        let mut text = String::from("C: AUTH LOGIN\n");
        text.push_str(&repeated("S: 334 VXNlcm5hbWU6\nC: Ym9iQGV4YW1wbGUubmV0\n", size));
        let work = work_of(smtp::find_smtp_auth_dialogue, &text);
        assert!(work <= WORK_PER_BYTE * text.len(), "{work} for {}", text.len());
    }
}

#[test]
fn the_attack_from_the_issue_is_redacted_in_one_placeholder() {
    // 40,000 × `pass:` (200 KB) took 24 s in the old scanner.
    let body = "pass:".repeat(40_000);
    let result = redact(&body);
    assert_eq!(result.text, "pass:[redacted]");
    assert_eq!(result.found, [SecretKind::Password]);
}

#[test]
fn hostile_shapes_are_redacted_as_before() {
    let size = 64 << 10;
    let cases: &[(&str, &str, &[SecretKind])] = &[
        ("?token=", "?token=[redacted]", &[SecretKind::ApiKey]),
        ("api_key=", "api_key=[redacted]", &[SecretKind::ApiKey]),
        ("-----BEGIN PRIVATE KEY-----\n", "[redacted]", &[SecretKind::PrivateKey]),
    ];
    for &(unit, expected, kinds) in cases {
        let result = redact(&repeated(unit, size));
        assert_eq!(result.text, expected, "{unit:?}");
        assert_eq!(result.found, kinds, "{unit:?}");
    }
    // Nothing in these is a secret: they come back whole.
    for unit in [
        "SG.",
        "AKIA",
        "1 ",
        "1-",
        "4",
        "AUTH PLAIN ",
        "\n",
        "\r\n",
        "é日",
        REDACTED,
    ] {
        let text = repeated(unit, size);
        let result = redact(&text);
        assert!(result.text == text && result.is_clean(), "{unit:?}: {:?}", result.found);
    }
    // Every value of "password is x" goes, the words stay.
    let result = redact(&"password is x ".repeat(5_000));
    assert_eq!(result.text, "password is [redacted] ".repeat(5_000));
    // Every card in a run of cards goes.
    let result = redact(&"4111111111111111 ".repeat(5_000));
    assert_eq!(result.text, "[redacted] ".repeat(5_000));
    // Every AUTH PLAIN line loses its blob.
    let result = redact(&"C: AUTH PLAIN AGJvYgBodW50ZXIy\n".repeat(5_000));
    assert_eq!(result.text, "C: AUTH PLAIN [redacted]\n".repeat(5_000));
}

/// Ignored by default: on a machine shared with other builds (2 cores, load
/// 13) wall times in a debug build swing by 4× between runs, more than the
/// margin that still tells linear from quadratic at sizes a debug test can
/// afford. Run it alone: `cargo test --release --lib scanning_time -- --ignored`.
#[test]
#[ignore = "wall time; run alone on a quiet machine"]
fn scanning_time_grows_linearly_on_hostile_shapes() {
    // Wall time, as a second opinion on the work counters, for the shapes
    // that were quadratic. The small input is redacted 8 times in a row, so
    // both measures last about as long and a loaded machine slows both
    // alike; the best of three of each is kept. Linear code takes about as
    // long for both, quadratic code 8 times longer for the large input;
    // allowing 3 times (24× for 8× the input) leaves room for noise.
    let best_of_three = |text: &str, times: usize| {
        (0..3)
            .map(|_| {
                let started = std::time::Instant::now();
                for _ in 0..times {
                    std::hint::black_box(redact(std::hint::black_box(text)));
                }
                started.elapsed()
            })
            .min()
            .unwrap_or_default()
    };
    for unit in ["pass:", "?token=", "password: \u{201c}", "Authorization: Digest x "] {
        let small = repeated(unit, 8 << 10);
        let large = repeated(unit, 64 << 10);
        let (small_time, large_time) = (best_of_three(&small, 8), best_of_three(&large, 1));
        assert!(
            large_time < small_time * 3,
            "{unit:?}: {small_time:?} for 8 × 8 KiB, {large_time:?} for 64 KiB"
        );
    }
}

// --- Secrets across the edges of the one-pass design -------------------------

#[test]
fn remembered_value_ends_do_not_leak_the_next_value() {
    // Each value is found although the previous search ran past it.
    let cases: &[(&str, &str)] = &[
        ("pass:a pass:b", "pass:[redacted] pass:[redacted]"),
        ("pass:“one” pass:“two words”", "pass:“[redacted]” pass:“[redacted]”"),
        (
            r#"{"password":"a\"b","token":"c d"}"#,
            r#"{"password":"[redacted]","token":"[redacted]"}"#,
        ),
        ("x?token=a&pass=b#c", "x?token=[redacted]&pass=[redacted]#c"),
        (
            "Authorization: Digest a=1\nAuthorization: Digest b=2 \nok",
            "Authorization: Digest [redacted]\nAuthorization: Digest [redacted] \nok",
        ),
        ("pass:pass:x y pass:z", "pass:[redacted] y pass:[redacted]"),
    ];
    for (input, expected) in cases {
        assert_eq!(redact(input).text, *expected, "{input:?}");
    }
}

#[test]
fn crlf_tabs_and_unicode_around_secrets() {
    assert_eq!(
        redact("password:\thunter2\r\nnext line").text,
        "password:\t[redacted]\r\nnext line"
    );
    // A no-break or ideographic space ends a value as any whitespace does.
    assert_eq!(redact("pass: ab\u{a0}cd").text, "pass: [redacted]\u{a0}cd");
    assert_eq!(redact("pass: 秘密\u{3000}です").text, "pass: [redacted]\u{3000}です");
    assert_eq!(
        redact("C: AUTH LOGIN\r\nS: 334 VXNlcm5hbWU6\r\nC: Ym9i\r\n").text,
        "C: AUTH LOGIN\r\nS: 334 VXNlcm5hbWU6\r\nC: [redacted]\r\n"
    );
    assert_eq!(redact("carte\t4111-1111-1111-1111\t✓").text, "carte\t[redacted]\t✓");
}

#[test]
fn overlapping_secrets_become_one_placeholder() {
    let result = redact("api_key=AKIAIOSFODNN7EXAMPLEpassword:x");
    assert_eq!(result.text, "api_key=[redacted]");
    assert!(!result.text.contains("AKIA"));
}

// --- AUTH PLAIN ------------------------------------------------------------

#[test]
fn an_auth_plain_blob_goes_whole_padded_or_not() {
    // base64 of "user\0user\0pass", without its padding, in running prose:
    // the whole blob goes, identity and username included.
    assert_eq!(
        redact("the log shows AUTH PLAIN dXNlcgB1c2VyAHBhc3M then 535").text,
        "the log shows AUTH PLAIN [redacted] then 535"
    );
    // base64 of "\0crm-mailer\0Tr4mpoline", unpadded.
    assert_eq!(
        redact("AUTH PLAIN AGNybS1tYWlsZXIAVHI0bXBvbGluZQ, sorry").text,
        "AUTH PLAIN [redacted], sorry"
    );
    // Words after AUTH PLAIN are not a blob.
    for prose in [
        "Does AUTH PLAIN work",
        "AUTH PLAIN authentication fails",
        "my AUTH PLAIN hunter2xyz fails",
    ] {
        assert!(redact(prose).is_clean(), "{prose:?}");
    }
}

#[test]
fn a_plain_blob_goes_whole_wherever_it_stands() {
    // The blob on a line of its own (its AUTH PLAIN on another, or gone),
    // and the command that made it, with the NULs typed out.
    assert_eq!(
        redact("I encoded it:\n$ printf '\\0bob\\0hunter2' | base64\nAGJvYgBodW50ZXIy\n").text,
        "I encoded it:\n$ printf '[redacted]' | base64\n[redacted]\n"
    );
    assert_eq!(
        redact("echo -ne \"\\x00crm-mailer\\x00Tr4mpoline\" | base64").text,
        "echo -ne \"[redacted]\" | base64"
    );
    // Decoded, with real NULs, authorisation identity included.
    let result = redact("decoded: admin\0crm-mailer\0Tr4mpoline (from the log)");
    assert_eq!(result.text, "decoded: [redacted] (from the log)");
    assert_eq!(result.found, [SecretKind::SmtpAuthCredentials]);
    // Paths and ordinary base64 stay.
    for input in [
        r"C:\001\002\report.txt",
        "aGVsbG8gd29ybGQ=",
        "Ym9iAGh1bnRlcjI=",
        "a\0b",
        "yesterday, authentication, documentation",
    ] {
        let result = redact(input);
        assert!(
            result.text == input && result.is_clean(),
            "{input:?}: {:?}",
            result.text
        );
    }
}

#[test]
fn plain_credentials_are_recognised_by_their_shape_only() {
    assert!(smtp::decodes_to_plain_credentials("AGJvYgBodW50ZXIy"));
    assert!(smtp::decodes_to_plain_credentials("dXNlcgB1c2VyAHBhc3M"));
    // "bob\0hunter2": one NUL, not a PLAIN message.
    assert!(!smtp::decodes_to_plain_credentials("Ym9iAGh1bnRlcjI="));
    assert!(!smtp::decodes_to_plain_credentials("authentication"));
    assert!(!smtp::decodes_to_plain_credentials("not base64!"));
}

proptest! {
    /// The word scan counts NULs as it reads each word and decodes only words with two: it
    /// finds exactly the words that are PLAIN messages, among words that are not.
    #[test]
    fn the_word_scan_finds_exactly_the_plain_messages(
        words in proptest::collection::vec(
            (
                prop_oneof![
                    // A PLAIN message (non-ASCII too: a NUL before `é` has its own base64 shape).
                    ("[a-zé]{0,3}", "[a-z0-9@.é日]{1,8}", "[a-zA-Z0-9!é日 ]{1,8}")
                        .prop_map(|(z, u, p)| format!("{z}\0{u}\0{p}").into_bytes()),
                    proptest::collection::vec(prop_oneof![Just(0u8), Just(b'a'), any::<u8>()], 1..24),
                ],
                any::<bool>(),
            ),
            0..12,
        ),
        separators in proptest::collection::vec(prop_oneof![Just(" "), Just("\n"), Just(", "), Just("\u{e9}")], 12),
    ) {
        use base64::Engine;
        let mut text = String::new();
        let mut expected = Vec::new();
        for (i, (bytes, padded)) in words.iter().enumerate() {
            let engine = if *padded {
                base64::engine::general_purpose::STANDARD
            } else {
                base64::engine::general_purpose::STANDARD_NO_PAD
            };
            let encoded = engine.encode(bytes);
            // The shape of a PLAIN message, read off the bytes themselves (not off the scanner's
            // own decoder, which counts NULs the same way as the word scan).
            let fields: Vec<&[u8]> = bytes.split(|&b| b == 0).collect();
            let printable = |f: &[u8]| std::str::from_utf8(f).is_ok_and(|t| !t.is_empty() && !t.chars().any(char::is_control));
            let plain = matches!(fields.as_slice(), [a, b, c] if (a.is_empty() || printable(a)) && printable(b) && printable(c));
            if encoded.trim_end_matches('=').len() >= 6 && plain {
                expected.push(text.len()..text.len() + encoded.len());
            }
            text.push_str(&encoded);
            text.push_str(separators[i]);
        }
        let mut findings = Vec::new();
        smtp::find_plain_blobs(&text, &mut findings);
        let found: Vec<_> = findings.into_iter().map(|f| f.range).collect();
        prop_assert_eq!(found, expected);
    }

    /// The NULs counted from the characters (to let most words go undecoded) are the NULs the
    /// decoder finds, padded or not, whole groups or cut short.
    #[test]
    fn the_nuls_counted_without_decoding_are_the_decoded_ones(
        bytes in proptest::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 0..40),
        padded in any::<bool>(),
    ) {
        use base64::Engine;
        let engine = if padded {
            base64::engine::general_purpose::STANDARD
        } else {
            base64::engine::general_purpose::STANDARD_NO_PAD
        };
        let encoded = engine.encode(&bytes);
        let nuls = bytes.iter().filter(|&&b| b == 0).count();
        prop_assert_eq!(smtp::nul_bytes(&encoded), Some(nuls));
        prop_assert_eq!(
            smtp::decodes_to_plain_credentials(&encoded),
            {
                let fields: Vec<&[u8]> = bytes.split(|&b| b == 0).collect();
                let printable = |f: &[u8]| std::str::from_utf8(f).is_ok_and(|t| !t.is_empty() && !t.chars().any(char::is_control));
                matches!(fields.as_slice(), [a, b, c] if (a.is_empty() || printable(a)) && printable(b) && printable(c))
            }
        );
    }
}

// --- Properties --------------------------------------------------------------

/// Units built from the pieces that steer the scanners, plus random text.
fn hostile_unit() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        proptest::sample::select(HOSTILE_UNITS).prop_map(str::to_owned),
        proptest::sample::select(
            &[
                "password",
                ":",
                "=",
                " is ",
                "\"",
                "“",
                "\\",
                "&",
                "#",
                "?",
                "\n",
                " ",
                "\t",
                "AUTH ",
                "PLAIN ",
                "LOGIN",
                "C: ",
                "334 ",
                "-----END PRIVATE KEY-----",
                "4111",
                "-",
                "AGJvYgBodW50ZXIy",
                "Bearer ",
                "\0",
                "\\0",
                "'",
            ][..]
        )
        .prop_map(str::to_owned),
        "\\PC{1,12}",
    ];
    proptest::collection::vec(piece, 1..6).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn each_scanner_does_linear_work_on_random_repeated_input(unit in hostile_unit()) {
        assert_linear_work(&unit, 2 << 10);
    }

    #[test]
    fn redact_is_idempotent_on_hostile_input(unit in hostile_unit(), copies in 1usize..5) {
        let once = redact(&unit.repeat(copies));
        let twice = redact(&once.text);
        prop_assert_eq!(&twice.text, &once.text);
        prop_assert!(twice.is_clean(), "found {:?} in {:?}", twice.found, once.text);
    }

    #[test]
    fn each_scanner_does_linear_work_on_random_text(text in "\\PC{256,1024}") {
        // A longer random unit than above, so that structure inside one
        // copy (not only between copies) is exercised.
        assert_linear_work(&text, text.len());
    }
}

#[test]
fn work_counter_counts() {
    take_work();
    lookahead::count(3);
    assert_eq!(take_work(), 3);
    assert_eq!(take_work(), 0);
}
