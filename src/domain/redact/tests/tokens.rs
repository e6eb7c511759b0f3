use super::*;

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
