use super::*;

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

/// The runs with at least `min_digits` digits as the regex the hand-written scan replaced
/// finds them: the reference.
fn regex_runs(text: &str, min_digits: usize) -> Vec<std::ops::Range<usize>> {
    static RUN: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"[0-9]+(?:[ -][0-9]+)*").unwrap());
    RUN.find_iter(text)
        .filter(|m| m.as_str().bytes().filter(u8::is_ascii_digit).count() >= min_digits)
        .map(|m| m.range())
        .collect()
}

fn scanned_runs(text: &str, min_digits: usize) -> Vec<std::ops::Range<usize>> {
    super::super::cards::digit_runs(text, min_digits).collect()
}

/// Every run shape at every offset from a multiple of four, between letters: where the
/// four-byte groups fall decides what the scan skips.
#[test]
fn digit_runs_at_every_alignment_are_the_regexs_matches() {
    let shapes = [
        "12345",
        "123456",
        "1234567",
        "1-2-3-4-5-6-7",
        "1 2 3 4 5 6 7 8 9 0 1 2 3",
        "4111 1111 1111 1111",
        "41111111111111 1",
        "1  2  3  4  5  6  7  8",
        "12 -34 -5678901",
    ];
    for shape in shapes {
        for before in 0..8 {
            for after in ["", "x", " x", "-", "  12"] {
                let text = format!("{}{shape}{after}yz", "a".repeat(before));
                for min_digits in 0..20 {
                    assert_eq!(
                        scanned_runs(&text, min_digits),
                        regex_runs(&text, min_digits),
                        "{text:?}, at least {min_digits} digits"
                    );
                }
            }
        }
    }
}

proptest::proptest! {
    /// The hand-written scan for digit runs finds what the regex it replaced found, run by run,
    /// and keeps exactly the runs with enough digits.
    #[test]
    fn digit_runs_are_the_regexs_matches(
        text in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::char::range('0', '9'),
                proptest::strategy::Just(' '),
                proptest::strategy::Just('-'),
                proptest::strategy::Just('x'),
                proptest::strategy::Just('é'),
                proptest::strategy::Just('٣'),
            ],
            0..120,
        )
        .prop_map(|chars| chars.into_iter().collect::<String>()),
        min_digits in 0usize..16,
    ) {
        proptest::prop_assert_eq!(scanned_runs(&text, min_digits), regex_runs(&text, min_digits));
    }

    /// The same, on texts made of digit groups, so that long runs, runs cut by a double
    /// separator and runs at every offset from a multiple of four are common.
    #[test]
    fn digit_runs_in_grouped_digits_are_the_regexs_matches(
        pieces in proptest::collection::vec(
            proptest::prop_oneof![
                "[0-9]{1,9}",
                proptest::strategy::Just(" ".to_string()),
                proptest::strategy::Just("-".to_string()),
                proptest::strategy::Just("  ".to_string()),
                proptest::strategy::Just(" -".to_string()),
                "[a-z]{1,3}",
                proptest::strategy::Just("é".to_string()),
            ],
            0..40,
        ),
        min_digits in 0usize..20,
    ) {
        let text = pieces.concat();
        proptest::prop_assert_eq!(scanned_runs(&text, min_digits), regex_runs(&text, min_digits));
    }
}
