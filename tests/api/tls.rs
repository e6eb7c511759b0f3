//! TLS on the way out: to PostgreSQL (libpq and OpenSSL compiled into the binary) and to the
//! SMTP relay (the system's roots, the built-in ones, and a private CA from SMTP_CA_FILE).

use crate::helpers::{TestApp, create_pg_database, drop_pg_database, postgres_server_url, settings_for};
use diesel::prelude::*;
use recoverydesk::db::{self, AnyConnection, DatabaseUrl};
use recoverydesk::mail::outbound::transport::{Outgoing, SendError, Transport, build_message};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

#[derive(QueryableByName)]
struct Ssl {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    ssl: bool,
}

fn uses_tls(conn: &mut PgConnection) -> bool {
    diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result::<Ssl>(conn)
        .expect("pg_stat_ssl answers")
        .ssl
}

/// The test server, when it is set and has TLS on (Debian's server does, with its snakeoil
/// certificate); otherwise None and a loud note.
fn tls_server() -> Option<String> {
    let server = postgres_server_url()?;
    let mut conn = PgConnection::establish(&server).expect("TEST_DATABASE_URL must reach PostgreSQL");
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        ssl: String,
    }
    let on = diesel::sql_query("SHOW ssl")
        .get_result::<Setting>(&mut conn)
        .map(|s| s.ssl);
    if on.as_deref() != Ok("on") {
        eprintln!("SKIPPED: the PostgreSQL at TEST_DATABASE_URL has ssl off, so this TLS test did not run");
        return None;
    }
    Some(server)
}

/// `server` with `params` in its query string, and `host` instead of its host when given.
fn with_params(server: &str, host: Option<&str>, params: &str) -> String {
    let (location, query) = server.split_once('?').unwrap_or((server, ""));
    let location = match host {
        Some(host) => location.replace("127.0.0.1", host),
        None => location.to_string(),
    };
    let joined: Vec<&str> = query
        .split('&')
        .chain(params.split('&'))
        .filter(|p| !p.is_empty())
        .collect();
    format!("{location}?{}", joined.join("&"))
}

#[test]
fn postgres_sslmode_require_connects_over_tls_through_the_desks_pool() {
    let Some(server) = tls_server() else { return };
    let (url, name) = create_pg_database(&with_params(&server, None, "sslmode=require"));
    let pool = db::open_pool(&DatabaseUrl::parse(&url).unwrap(), 2).expect("the pool opens over TLS");
    let mut conn = pool.get().unwrap();
    db::run_migrations(&mut conn).expect("migrations run over TLS");
    let AnyConnection::Postgresql(pg) = &mut *conn else {
        panic!("a PostgreSQL URL gives a PostgreSQL connection")
    };
    assert!(uses_tls(pg));
    drop(conn);
    drop(pool);
    drop_pg_database(&server, &name);
}

#[test]
fn postgres_verify_full_accepts_the_right_root_and_refuses_a_wrong_one() {
    let Some(server) = tls_server() else { return };
    if !std::path::Path::new(SNAKEOIL).exists() {
        eprintln!("SKIPPED: {SNAKEOIL} is missing, so verify-full was not tried");
        return;
    }
    // The snakeoil certificate names `localhost`: verify-full checks the name too.
    let right = with_params(
        &server,
        Some("localhost"),
        &format!("sslmode=verify-full&sslrootcert={SNAKEOIL}"),
    );
    let mut conn = PgConnection::establish(&right).expect("verify-full with the server's own root");
    assert!(uses_tls(&mut conn));

    let dir = tempfile::tempdir().unwrap();
    let wrong_root = dir.path().join("other-ca.pem");
    std::fs::write(&wrong_root, TestCa::new().pem()).unwrap();
    let wrong = with_params(
        &server,
        Some("localhost"),
        &format!("sslmode=verify-full&sslrootcert={}", wrong_root.display()),
    );
    let refused = PgConnection::establish(&wrong)
        .err()
        .expect("a root that did not sign the server's certificate");
    assert!(refused.to_string().contains("certificate verify failed"), "{refused}");

    // And the name matters: the right root, but an address the certificate does not name.
    let wrong_name = with_params(
        &server,
        Some("127.0.0.1"),
        &format!("sslmode=verify-full&sslrootcert={SNAKEOIL}"),
    );
    assert!(PgConnection::establish(&wrong_name).is_err());
}

/// The two-sender race of the outbound tests, on connections that are TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_senders_share_a_postgres_database_over_tls() {
    if tls_server().is_none() {
        return;
    }
    let Some(app) = TestApp::spawn_postgres_tls().await else {
        return;
    };
    assert!(app.database_url.contains("sslmode=require"), "{}", app.database_url);
    {
        let mut conn = app.conn();
        let AnyConnection::Postgresql(pg) = &mut *conn else {
            panic!("PostgreSQL")
        };
        assert!(uses_tls(pg));
    }
    crate::outbound_mail::two_senders(app).await;
}

/// A CA made for one test, and a certificate for `localhost` it signed.
struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    fn new() -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "recoverydesk test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        TestCa {
            issuer: rcgen::CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// (certificate DER, PKCS#8 key DER) for `localhost`.
    fn leaf(&self) -> (Vec<u8>, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.der().to_vec(), key.serialize_der())
    }
}

/// An SMTP server on implicit TLS (`smtps://`) that accepts one message after another and
/// reports each DATA it received.
async fn start_tls_smtp(ca: &TestCa) -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio_rustls::rustls;
    let (cert, key) = ca.leaf();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert)],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to serve.
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let _ = smtp_session(tls, tx).await;
            });
        }
    });
    (port, rx)
}

async fn smtp_session(
    stream: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    tx: tokio::sync::mpsc::UnboundedSender<String>,
) -> std::io::Result<()> {
    let (read, mut write) = tokio::io::split(stream);
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 localhost ESMTP test\r\n").await?;
    while let Some(line) = lines.next_line().await? {
        let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" => write.write_all(b"250-localhost\r\n250 8BITMIME\r\n").await?,
            "DATA" => {
                write.write_all(b"354 go on\r\n").await?;
                let mut data = String::new();
                while let Some(l) = lines.next_line().await? {
                    if l == "." {
                        break;
                    }
                    data.push_str(&l);
                    data.push('\n');
                }
                let _ = tx.send(data);
                write.write_all(b"250 queued\r\n").await?;
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => write.write_all(b"250 ok\r\n").await?,
        }
        write.flush().await?;
    }
    Ok(())
}

fn message() -> lettre::Message {
    build_message(&Outgoing {
        from: "support@localhost",
        to: "pat@x.test",
        subject: "over TLS",
        body: "hello",
        message_id: "<tls-1@localhost>",
        in_reply_to: None,
        references: None,
        auto_submitted: None,
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_over_tls_trusts_a_private_ca_only_when_smtp_ca_file_names_it() {
    let ca = TestCa::new();
    let (port, mut received) = start_tls_smtp(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("relay-ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let database = format!("sqlite://{}", dir.path().join("desk.db").display());
    let url = format!("smtps://localhost:{port}");

    // Without the file: the relay's certificate chains to nothing the desk trusts.
    let plain = settings_for(&database, &[("--smtp-url", &url)]);
    let transport = Transport::from_settings(&plain).unwrap();
    match transport.send(&message(), "x").await {
        Err(SendError::Temporary(reason) | SendError::Permanent(reason)) => {
            assert!(reason.to_lowercase().contains("certificate"), "{reason}")
        }
        Ok(()) => panic!("an unknown CA must not be trusted"),
    }

    // With it: delivered, over TLS.
    let trusted = settings_for(
        &database,
        &[("--smtp-url", &url), ("--smtp-ca-file", ca_file.to_str().unwrap())],
    );
    let transport = Transport::from_settings(&trusted).unwrap();
    transport
        .send(&message(), "x")
        .await
        .expect("delivered to the relay with the private CA");
    let data = tokio::time::timeout(std::time::Duration::from_secs(10), received.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(data.contains("Subject: over TLS"), "{data}");

    // STARTTLS mode takes the same roots (the server here speaks implicit TLS only, so the
    // point is that the parameters build and the mode is kept: it must not fall back to plain).
    let starttls = settings_for(
        &database,
        &[
            ("--smtp-url", &format!("smtp://localhost:{port}?tls=required")),
            ("--smtp-ca-file", ca_file.to_str().unwrap()),
        ],
    );
    assert!(Transport::from_settings(&starttls).is_ok());
}

#[test]
fn smtp_ca_file_that_is_not_a_certificate_is_refused_by_name() {
    use clap::Parser;
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    for path in [junk.to_str().unwrap(), "/nonexistent/ca.pem"] {
        let cli = recoverydesk::cli::Cli::try_parse_from(["recoverydesk", "--smtp-ca-file", path]).unwrap();
        let refused = recoverydesk::config::Settings::from_options(&cli.options).unwrap_err();
        assert!(refused.contains("SMTP_CA_FILE"), "{refused}");
    }
}
