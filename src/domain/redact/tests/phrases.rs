use super::*;

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
