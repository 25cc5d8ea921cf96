//! How the registry client decides whether to trust a registry's TLS certificate, and
//! how it says why it did not.
//!
//! Trust is webpki's (the system roots plus the CA directory's certificates), with one
//! addition sites rely on: a certificate that is itself in the CA directory is trusted
//! for its own names, even when it is a self-signed leaf that OpenSSL marked `CA:TRUE`
//! (what `openssl req -x509` makes), which webpki refuses as a CA used as an end entity.
//! Go's TLS stack and OpenSSL both accept such a certificate as a trust anchor. It must
//! be byte-identical to a configured certificate, name the host asked for, be within
//! its validity period and not exclude TLS servers by its extended key usage; the
//! handshake's signatures are verified with its key as for any certificate.
//!
//! A refusal names its cause (unknown issuer, wrong name with the names the certificate
//! is valid for, expired with the date, self-signed but not in the CA directory) and
//! what was trusted (the CA directory and how many certificates came from it).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::ca::CaCertificates;
use crate::report::utc;

/// A refused certificate, described for the admin. Carried through rustls and reqwest as
/// the `Other` certificate error, and found again by [`refusal`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(String);

/// The TLS client configuration for registries: system roots plus `ca`, through
/// [`Verifier`]; HTTP/2 and HTTP/1.1 offered as reqwest would.
pub fn client_config(ca: &CaCertificates) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "reading the system CA certificates");
    }
    roots.add_parsable_certificates(native.certs);
    roots.add_parsable_certificates(ca.certificates.iter().cloned());
    let verifier = Verifier::new(roots, ca, provider.clone())?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// webpki's verifier, plus trust in the CA directory's own certificates as leaves, plus
/// refusal messages that name the cause.
#[derive(Debug)]
pub struct Verifier {
    /// `None` when no root at all is configured (webpki refuses to build then): every
    /// certificate is from an unknown issuer.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    /// The CA directory's certificates, trusted as leaves for their own names.
    anchors: Vec<CertificateDer<'static>>,
    /// What is trusted, for messages.
    trusted: String,
    provider: Arc<CryptoProvider>,
}

impl Verifier {
    /// A verifier over `roots` (which must already hold `ca`'s certificates).
    pub fn new(
        roots: RootCertStore,
        ca: &CaCertificates,
        provider: Arc<CryptoProvider>,
    ) -> Result<Verifier, rustls::Error> {
        let webpki = if roots.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| rustls::Error::General(e.to_string()))?,
            )
        };
        Ok(Verifier {
            webpki,
            anchors: ca.certificates.clone(),
            trusted: ca.describe(),
            provider,
        })
    }

    fn refuse(&self, reason: String) -> rustls::Error {
        let message = format!("{reason}; trusted: {}", self.trusted);
        CertificateError::Other(OtherError(Arc::new(Refusal(message)))).into()
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let error = match &self.webpki {
            Some(webpki) => match webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Ok(verified) => return Ok(verified),
                Err(error) => error,
            },
            None => CertificateError::UnknownIssuer.into(),
        };
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(end_entity.as_ref()) else {
            return Err(error);
        };
        let name = server_name.to_str();
        let pinned = self
            .anchors
            .iter()
            .any(|anchor| anchor.as_ref() == end_entity.as_ref());
        if pinned {
            // Trusted because it is in the CA directory; what webpki would still check
            // of a leaf is checked here.
            let parsed = ParsedCertificate::try_from(end_entity)?;
            if rustls::client::verify_server_name(&parsed, server_name).is_err() {
                return Err(self.refuse(wrong_name(&cert, &name)));
            }
            if let Some(reason) = outside_validity(&cert, now) {
                return Err(self.refuse(reason));
            }
            if let Ok(Some(eku)) = cert.extended_key_usage() {
                if !(eku.value.server_auth || eku.value.any) {
                    return Err(self.refuse(format!(
                        "the certificate for {name} is in the CA directory but its extended key usage excludes TLS servers"
                    )));
                }
            }
            return Ok(ServerCertVerified::assertion());
        }
        Err(self.refuse(describe(&error, &cert, &name, now)))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The cause of webpki's refusal, in the admin's terms.
fn describe(
    error: &rustls::Error,
    cert: &X509Certificate<'_>,
    name: &str,
    now: UnixTime,
) -> String {
    let self_signed = cert.subject().as_raw() == cert.issuer().as_raw();
    match error {
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => wrong_name(cert, name),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => outside_validity(cert, now).unwrap_or_else(|| error.to_string()),
        // A self-signed certificate fails as an unknown issuer, or (when OpenSSL marked
        // it CA:TRUE) as a CA used as an end entity, before its issuer is looked for.
        rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::Other(_),
        ) if self_signed => format!(
            "the certificate for {name} is self-signed ({}) and is not in the CA directory: put that certificate (the registry's own) in the CA directory to trust it",
            cert.subject()
        ),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "the certificate for {name} is issued by an unknown issuer ({}): put that CA's certificate in the CA directory",
            cert.issuer()
        ),
        rustls::Error::InvalidCertificate(CertificateError::Other(_)) if cert.is_ca() => format!(
            "the certificate for {name} is a CA certificate (CA:TRUE) issued by {}, which cannot serve TLS unless it is itself in the CA directory: {error}",
            cert.issuer()
        ),
        other => format!("the certificate for {name} is refused: {other}"),
    }
}

fn wrong_name(cert: &X509Certificate<'_>, name: &str) -> String {
    let names = names(cert);
    if names.is_empty() {
        format!("the certificate is not valid for {name}: it names no host (no subjectAltName)")
    } else {
        format!(
            "the certificate is not valid for {name}: it is valid for {}",
            names.join(", ")
        )
    }
}

/// The DNS names and IP addresses of the subjectAltName, in order.
fn names(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(*bytes).ok()?).to_string()),
                16 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(*bytes).ok()?).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Why the certificate's validity period does not cover `now`, if it does not.
fn outside_validity(cert: &X509Certificate<'_>, now: UnixTime) -> Option<String> {
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let validity = cert.validity();
    let (not_before, not_after) = (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    );
    if now > not_after {
        Some(format!(
            "the certificate expired on {} (now {})",
            utc(not_after),
            utc(now)
        ))
    } else if now < not_before {
        Some(format!(
            "the certificate is not valid before {} (now {})",
            utc(not_before),
            utc(now)
        ))
    } else {
        None
    }
}

/// The admin-facing reason of a refused certificate somewhere in `error`'s chain (hyper
/// wraps rustls's error in `io::Error`s, whose `source` skips their payload, so those
/// are opened too); `None` when the error is not a refused certificate.
pub fn refusal(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    for _ in 0..32 {
        let mut e = current?;
        // hyper nests them: io::Error(Other, io::Error(InvalidData, rustls::Error)).
        while let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            e = inner;
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return match tls {
                rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
                    Some(match other.0.downcast_ref::<Refusal>() {
                        Some(refusal) => refusal.to_string(),
                        None => tls.to_string(),
                    })
                }
                rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::UnsupportedNameType => Some(tls.to_string()),
                _ => None,
            };
        }
        current = e.source();
    }
    None
}
