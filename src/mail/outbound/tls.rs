//! Which certificates the SMTP relay may present. lettre alone trusts either the built-in web
//! roots or the system's store; a desk relays through whatever the operator has: a public
//! provider (web roots), a company relay whose CA the machine trusts (system store), or one
//! with a private CA that only this service should trust (`SMTP_CA_FILE`). All three are
//! accepted together.

use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use std::path::Path;

/// Replaces the TLS parameters lettre derived from `SMTP_URL` with ones that trust the three
/// sources, keeping the URL's TLS mode (`smtps://` wraps, `?tls=required`/`opportunistic`
/// upgrade with STARTTLS, plain `smtp://` stays plain).
pub fn with_trusted_roots(
    builder: AsyncSmtpTransportBuilder,
    url: &str,
    ca_file: Option<&Path>,
) -> Result<AsyncSmtpTransportBuilder, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("SMTP_URL is not a usable SMTP URL: {e}"))?;
    let Some(host) = parsed.host_str() else {
        return Ok(builder);
    };
    let tls_mode = parsed
        .query_pairs()
        .find(|(key, _)| key == "tls")
        .map(|(_, value)| value.into_owned());
    let wrap: fn(TlsParameters) -> Tls = match (parsed.scheme(), tls_mode.as_deref()) {
        ("smtps", _) => Tls::Wrapper,
        ("smtp", Some("required")) => Tls::Required,
        ("smtp", Some("opportunistic")) => Tls::Opportunistic,
        _ => {
            if ca_file.is_some() {
                tracing::warn!("SMTP_CA_FILE is set but SMTP_URL does not use TLS: the file is not used");
            }
            return Ok(builder);
        }
    };
    Ok(builder.tls(wrap(parameters(host, ca_file)?)))
}

/// TLS parameters for `domain`: the built-in roots, the system's store and the CA file.
pub fn parameters(domain: &str, ca_file: Option<&Path>) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(domain.to_string()).certificate_store(CertificateStore::WebpkiRoots);
    for certificate in system_roots() {
        builder = builder.add_root_certificate(certificate);
    }
    if let Some(path) = ca_file {
        builder = builder.add_root_certificate(read_ca_file(path)?);
    }
    builder
        .build()
        .map_err(|e| format!("cannot set up TLS for the SMTP relay {domain}: {e}"))
}

/// The certificates of a PEM file (one CA or a bundle); an error names `SMTP_CA_FILE`.
pub fn read_ca_file(path: &Path) -> Result<Certificate, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("SMTP_CA_FILE {}: {e}", path.display()))?;
    if !bytes.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(format!(
            "SMTP_CA_FILE {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            path.display()
        ));
    }
    let certificate = Certificate::from_pem(&bytes).map_err(|e| {
        format!(
            "SMTP_CA_FILE {}: not a readable PEM certificate file ({e})",
            path.display()
        )
    })?;
    // Building parameters with it alone is the only way to learn that rustls accepts every
    // certificate in it as a trust anchor.
    TlsParameters::builder("localhost".into())
        .certificate_store(CertificateStore::None)
        .add_root_certificate(certificate.clone())
        .build()
        .map_err(|e| {
            format!(
                "SMTP_CA_FILE {}: a certificate in it cannot be a CA ({e})",
                path.display()
            )
        })?;
    Ok(certificate)
}

/// The operating system's trust store (`/etc/ssl/certs` on Debian, or `SSL_CERT_FILE` /
/// `SSL_CERT_DIR`), keeping only the certificates rustls takes as anchors: one odd entry in
/// the store must not cost every delivery.
fn system_roots() -> Vec<Certificate> {
    let found = rustls_native_certs::load_native_certs();
    if !found.errors.is_empty() {
        tracing::debug!(
            errors = found.errors.len(),
            "some system certificates could not be read"
        );
    }
    found
        .certs
        .into_iter()
        .filter(|der| {
            let mut probe = rustls::RootCertStore::empty();
            probe.add(der.clone()).is_ok()
        })
        .filter_map(|der| Certificate::from_der(der.to_vec()).ok())
        .collect()
}
