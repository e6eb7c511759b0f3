use super::*;

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

/// Both NULs of this PLAIN message fall on the second byte of a group, so its base64 holds no
/// `A`, `B` or `C`: a `D` is all that marks them. The word scan must still read it.
#[test]
fn a_plain_blob_whose_nuls_show_only_as_a_d_is_found() {
    // base64 of "zzzz\0éric\0étoile".
    let blob = "enp6egDDqXJpYwDDqXRvaWxl";
    let result = redact(&format!("The log said {blob} and nothing else."));
    assert_eq!(result.text, "The log said [redacted] and nothing else.");
    assert_eq!(result.found, vec![SecretKind::SmtpAuthCredentials]);
}

fn dialogue_piece() -> impl proptest::strategy::Strategy<Value = String> {
    proptest::sample::select(vec![
        "C: AUTH LOGIN\n",
        "auth login\r\n",
        "> C: AuTh PLAIN\n",
        "AUTH PLAIN AGJvYgBodW50ZXIy\n",
        "S: 334 VXNlcm5hbWU6\n",
        "334 UGFzc3dvcmQ6\n",
        "C: Ym9i\n",
        "aHVudGVyMg==\n",
        "dXNlcg==\n",
        "535 5.7.8 no\n",
        "235 ok\n",
        "the author wrote\n",
        "authentication failed\n",
        "hello there\n",
        "\n",
        "\r\n",
        "> ",
        "auth",
        "C: ",
    ])
    .prop_map(str::to_owned)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
    /// Passing over the lines without `auth` while no exchange is open finds what reading
    /// every line finds.
    #[test]
    fn the_dialogue_scan_that_skips_lines_finds_what_reading_every_line_finds(
        pieces in proptest::collection::vec(dialogue_piece(), 0..30)
    ) {
        let text = pieces.concat();
        let (mut skipping, mut every_line) = (Vec::new(), Vec::new());
        super::super::smtp::dialogue(&text, &mut skipping, true);
        super::super::smtp::dialogue(&text, &mut every_line, false);
        let ranges = |found: &[super::super::Finding]| found.iter().map(|f| f.range.clone()).collect::<Vec<_>>();
        proptest::prop_assert_eq!(ranges(&skipping), ranges(&every_line));
    }
}
