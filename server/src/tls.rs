//! TLS and mTLS: the server's rustls configuration and the subjects of the
//! client certificates a caller presented.

use tonic::{
    Request,
    transport::{Certificate, Identity, ServerTlsConfig},
};

use crate::config::TlsConfig;

/// Reads the certificate, key and client CA files into a tonic TLS config.
pub fn server_config(tls: &TlsConfig) -> Result<ServerTlsConfig, String> {
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).map_err(|e| format!("tls.{what}: cannot read {}: {e}", path.display()))
    };
    let identity = Identity::from_pem(read(&tls.cert, "cert")?, read(&tls.key, "key")?);
    let mut config = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &tls.client_ca {
        config = config
            .client_ca_root(Certificate::from_pem(read(ca, "client_ca")?))
            .client_auth_optional(!tls.client_auth_required);
    }
    Ok(config)
}

/// The subjects (RFC 4514 strings such as `CN=billing`) of the client
/// certificates the caller presented over mTLS; empty otherwise.
pub fn peer_subjects<T>(request: &Request<T>) -> Vec<String> {
    let Some(certs) = request.peer_certs() else {
        return Vec::new();
    };
    certs
        .iter()
        .take(1) // the leaf: the rest of the chain are CAs
        .filter_map(|der| x509_parser::parse_x509_certificate(der.as_ref()).ok())
        .map(|(_, cert)| cert.subject().to_string())
        .collect()
}
