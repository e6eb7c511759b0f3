//! Opening the mailbox: TCP, TLS (`imaps://`, or STARTTLS on `imap://`) trusting what the SMTP
//! relay may present (the built-in web roots, the system's store, `SMTP_CA_FILE`), then LOGIN.
//! Plain text only to a loopback host whose server offers no STARTTLS.

use super::{ImapSettings, Security};
use async_imap::{Client, Session};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A TCP or TLS stream, whichever the URL asked for.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}

pub type ImapSession = Session<Box<dyn Io>>;

/// Why the mailbox could not be opened: every one is temporary for the fetcher (75), but
/// they read differently in the log and `/healthz`.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot reach the IMAP server {0}")]
    Unreachable(String),
    #[error("TLS with the IMAP server failed: {0}")]
    Tls(String),
    #[error("the IMAP server refused the login of {user} (check the user and password): {reason}")]
    Login { user: String, reason: String },
    #[error("IMAP: {0}")]
    Protocol(String),
    /// The password file cannot be read (read when the mailbox is opened, not at start).
    #[error("{0}")]
    Password(String),
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Connects and logs in.
pub async fn open(settings: &ImapSettings) -> Result<ImapSession, ConnectError> {
    let address = format!("{}:{}", settings.host, settings.port);
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((settings.host.as_str(), settings.port)),
    )
    .await
    .map_err(|_| ConnectError::Unreachable(format!("{address}: no answer in {}s", CONNECT_TIMEOUT.as_secs())))?
    .map_err(|e| ConnectError::Unreachable(format!("{address}: {e}")))?;
    let stream: Box<dyn Io> = match settings.security {
        Security::Tls => Box::new(tls(settings, tcp).await?),
        Security::StartTls => {
            let mut client = Client::new(tcp);
            greeting(&mut client).await?;
            match client.run_command_and_check_ok("STARTTLS", None).await {
                Ok(()) => Box::new(tls(settings, client.into_inner()).await?),
                Err(e) if settings.is_loopback() => {
                    tracing::debug!(error = %e, "no STARTTLS on a loopback IMAP server: plain text");
                    return login(
                        settings,
                        Client::new(Box::new(client.into_inner()) as Box<dyn Io>),
                        false,
                    )
                    .await;
                }
                Err(e) => {
                    return Err(ConnectError::Tls(format!(
                        "{address} offers no STARTTLS ({e}); plain text is allowed only to a loopback address"
                    )));
                }
            }
        }
    };
    let client = Client::new(stream);
    login(settings, client, true).await
}

async fn greeting<T: Io>(client: &mut Client<T>) -> Result<(), ConnectError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, client.read_response()).await {
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => Err(ConnectError::Protocol(
            "the server closed the connection at once".into(),
        )),
        Ok(Err(e)) => Err(ConnectError::Protocol(format!("reading the greeting: {e}"))),
        Err(_) => Err(ConnectError::Protocol("no greeting from the server".into())),
    }
}

async fn login(
    settings: &ImapSettings,
    mut client: Client<Box<dyn Io>>,
    greet: bool,
) -> Result<ImapSession, ConnectError> {
    if greet {
        greeting(&mut client).await?;
    }
    let password = settings.password.read().map_err(ConnectError::Password)?;
    let attempt = tokio::time::timeout(CONNECT_TIMEOUT, client.login(&settings.user, &password))
        .await
        .map_err(|_| ConnectError::Protocol("no answer to LOGIN".into()))?;
    attempt.map_err(|(e, _)| ConnectError::Login {
        user: settings.user.clone(),
        reason: e.to_string(),
    })
}

async fn tls(
    settings: &ImapSettings,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ConnectError> {
    let config = client_config(settings.ca_file.as_deref()).map_err(ConnectError::Tls)?;
    let name = ServerName::try_from(settings.host.clone()).map_err(|e| ConnectError::Tls(e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| ConnectError::Tls("the handshake did not finish".into()))?
        .map_err(|e| ConnectError::Tls(e.to_string()))
}

/// The roots outbound SMTP trusts: the built-in web roots, the system's store and the CA file.
pub fn client_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in rustls_native_certs::load_native_certs().certs {
        // One odd certificate in the system's store must not cost the connection.
        let _ = roots.add(der);
    }
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("SMTP_CA_FILE {}: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("SMTP_CA_FILE {}: {e}", path.display()))?;
        for der in certs {
            roots
                .add(der)
                .map_err(|e| format!("SMTP_CA_FILE {}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
