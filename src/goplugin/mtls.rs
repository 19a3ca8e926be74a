//! go-plugin's AutoMTLS, server side.
//!
//! A go-plugin client with `ClientConfig.AutoMTLS` generates a one-time
//! self-signed certificate and hands it to the plugin, PEM-encoded, in
//! `PLUGIN_CLIENT_CERT`. The plugin answers as a Go go-plugin server does:
//! - it generates its own one-time self-signed ECDSA certificate for
//!   `localhost`, marked as a CA, since the client trusts it as its own root;
//! - it serves gRPC over TLS (1.2 or 1.3, ALPN `h2`) on the same unix socket
//!   and requires a client certificate: only the one from
//!   `PLUGIN_CLIENT_CERT` is accepted;
//! - it sends its certificate back in field 6 of the handshake line, as the
//!   base64 (standard alphabet, no padding) of the DER.
//!
//! Go checks the client's certificate against a pool holding the one from the
//! environment. webpki would refuse that certificate as an end entity because
//! it is a CA, so [`PinnedClientCert`] compares the presented DER with the
//! expected one byte for byte and checks the handshake signatures with the
//! crypto provider's algorithms (P-521 included, which go-plugin uses).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use futures::Stream;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::{Connected, UdsConnectInfo};

/// The environment variable in which an AutoMTLS client passes its certificate.
pub const CLIENT_CERT_ENV: &str = "PLUGIN_CLIENT_CERT";

/// How long one connection may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS side of an AutoMTLS server: the acceptor and the certificate to
/// announce in the handshake line.
pub struct AutoMtls {
    acceptor: TlsAcceptor,
    server_cert: String,
}

impl std::fmt::Debug for AutoMtls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The acceptor holds the private key: never print it.
        f.debug_struct("AutoMtls")
            .field("server_cert", &self.server_cert)
            .finish_non_exhaustive()
    }
}

impl AutoMtls {
    /// `None` when the host did not ask for AutoMTLS: `PLUGIN_CLIENT_CERT`
    /// unset or empty, as go-plugin's server treats it. Otherwise the TLS
    /// setup, or an error message naming the variable.
    pub fn from_env() -> Option<Result<Self, String>> {
        use std::os::unix::ffi::OsStrExt;
        let pem = std::env::var_os(CLIENT_CERT_ENV).filter(|v| !v.is_empty())?;
        Some(Self::new(pem.as_bytes()))
    }

    /// Sets up AutoMTLS for a client whose certificate(s) are `client_cert_pem`.
    pub fn new(client_cert_pem: &[u8]) -> Result<Self, String> {
        let verifier = PinnedClientCert::from_pem(client_cert_pem, provider())?;
        let (cert, key) = generate_server_cert()
            .map_err(|e| format!("AutoMTLS: cannot generate the server certificate: {e}"))?;
        let server_cert = base64::engine::general_purpose::STANDARD_NO_PAD.encode(cert.as_ref());
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("AutoMTLS: {e}"))?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(vec![cert], key)
            .map_err(|e| format!("AutoMTLS: cannot use the server certificate: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(AutoMtls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            server_cert,
        })
    }

    /// The server certificate for field 6 of the handshake line: base64
    /// (standard alphabet, no padding) of its DER.
    pub fn server_cert_base64(&self) -> &str {
        &self.server_cert
    }

    /// The connections on `listener` that completed a TLS handshake with an
    /// accepted client certificate. Each handshake runs on its own task, so a
    /// slow or hostile peer holds up nobody else; failed ones are logged (with
    /// the TLS error only) and dropped.
    pub fn incoming(self, listener: UnixListener) -> impl Stream<Item = io::Result<TlsConn>> {
        let (tx, rx) = tokio::sync::mpsc::channel::<TlsConn>(16);
        let acceptor = self.acceptor;
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = tx.closed() => break,
                    a = listener.accept() => a,
                };
                let socket = match accepted {
                    Ok((socket, _)) => socket,
                    Err(e) => {
                        tracing::warn!("accept on the plugin socket failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send(TlsConn(tls)).await;
                        }
                        Ok(Err(e)) => tracing::warn!("TLS handshake with a client failed: {e}"),
                        Err(_) => tracing::warn!(
                            "TLS handshake with a client timed out after {}s",
                            HANDSHAKE_TIMEOUT.as_secs()
                        ),
                    }
                });
            }
        });
        futures::StreamExt::map(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            Ok::<TlsConn, io::Error>,
        )
    }
}

/// The crypto provider for AutoMTLS: aws-lc-rs, as the rest of the process uses.
fn provider() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

/// A fresh self-signed certificate for `localhost`, as go-plugin's server
/// makes one: ECDSA, a CA (the client makes it its only root), key usages
/// digital signature, key encipherment, key agreement and certificate
/// signing, extended key usages server and client auth, valid from 30 s ago
/// for 262980 hours. go-plugin uses P-521; P-256 serves the same purpose.
fn generate_server_cert() -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), rcgen::Error>
{
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + since_epoch.saturating_sub(Duration::from_secs(30));
    params.not_after = epoch + since_epoch + Duration::from_secs(262_980 * 3600);
    let cert = params.self_signed(&key)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((cert.der().clone(), key))
}

/// Accepts exactly the client certificate(s) the host passed in
/// `PLUGIN_CLIENT_CERT`, compared as DER, and checks the client's handshake
/// signature with that certificate's key.
#[derive(Debug)]
pub struct PinnedClientCert {
    allowed: Vec<CertificateDer<'static>>,
    subjects: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedClientCert {
    /// Reads every `CERTIFICATE` block of `pem`; there must be at least one,
    /// and each must parse as an X.509 certificate.
    pub fn from_pem(pem: &[u8], provider: CryptoProvider) -> Result<Self, String> {
        let bad = |why: String| format!("{CLIENT_CERT_ENV} is not a valid PEM certificate: {why}");
        let allowed = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if allowed.is_empty() {
            return Err(bad("it holds no CERTIFICATE block".into()));
        }
        // Parsing each as a trust anchor checks it is a certificate, and
        // gives the subject names to hint in the CertificateRequest, as Go's
        // ClientCAs pool does.
        let mut roots = rustls::RootCertStore::empty();
        for cert in &allowed {
            roots.add(cert.clone()).map_err(|e| bad(e.to_string()))?;
        }
        Ok(PinnedClientCert {
            allowed,
            subjects: roots.subjects(),
            algorithms: provider.signature_verification_algorithms,
        })
    }
}

impl ClientCertVerifier for PinnedClientCert {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.subjects
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if self
            .allowed
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
        {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS connection on the plugin's unix socket, as tonic's server takes it.
pub struct TlsConn(tokio_rustls::server::TlsStream<UnixStream>);

impl Connected for TlsConn {
    type ConnectInfo = UdsConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_cert_is_a_ca_for_localhost_and_is_announced_unpadded() {
        // rcgen is built without its pem feature: wrap the DER by hand.
        let client = rcgen::generate_simple_self_signed(vec!["client".to_string()]).unwrap();
        let der = client.cert.der().clone();
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::engine::general_purpose::STANDARD.encode(der.as_ref())
        );
        let m = AutoMtls::new(pem.as_bytes()).unwrap();
        assert!(!m.server_cert_base64().ends_with('='));
        let der = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(m.server_cert_base64())
            .unwrap();
        assert_eq!(der[0], 0x30, "a DER SEQUENCE");
        // "localhost" appears in the subject and the SAN.
        let n = der.windows(9).filter(|w| w == b"localhost").count();
        assert!(n >= 2, "{n}");
    }

    #[test]
    fn a_bad_client_cert_is_named() {
        for bad in [
            &b"not pem"[..],
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let e = AutoMtls::new(bad).unwrap_err();
            assert!(e.contains(CLIENT_CERT_ENV), "{e}");
        }
    }
}
