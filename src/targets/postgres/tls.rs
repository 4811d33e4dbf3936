//! The URL's libpq TLS options (`sslmode`, `sslrootcert`) and the rustls connector they select,
//! with the shared certificate verifiers for `prefer`/`require` and `verify-ca`.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::targets::tls::{self, Check, Verifier};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Takes the libpq TLS options tokio-postgres does not know out of a URL's query string.
pub(super) fn split_ssl_params(
    url: &str,
) -> Result<(String, Option<TlsMode>, Option<String>), String> {
    let lower = url.get(..13).unwrap_or(url).to_ascii_lowercase();
    if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
        return Ok((url.to_string(), None, None));
    }
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None, None));
    };
    let mut mode = None;
    let mut rootcert = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key);
        let value = percent_decode(value);
        match key.as_str() {
            "sslmode" => {
                mode = Some(match value.as_str() {
                    "disable" => TlsMode::Disable,
                    "allow" | "prefer" => TlsMode::Prefer,
                    "require" => TlsMode::Require,
                    "verify-ca" => TlsMode::VerifyCa,
                    "verify-full" => TlsMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "invalid sslmode `{other}` (expected disable, allow, prefer, require, verify-ca or verify-full)"
                        ));
                    }
                })
            }
            "sslrootcert" => rootcert = Some(value),
            "gssencmode" | "sslsni" | "sslcompression" => {}
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" | "sslcertmode" => {
                return Err(format!(
                    "`{key}` is not supported (client certificates and CRLs are not)"
                ));
            }
            _ => kept.push(pair),
        }
    }
    let clean = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((clean, mode, rootcert))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        let escaped = match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) => hex(h).zip(hex(l)),
            _ => None,
        };
        if let Some((h, l)) = escaped {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn tls_connector(
    mode: TlsMode,
    ca_files: &[&Path],
) -> Result<MakeRustlsConnect, String> {
    let builder = rustls::ClientConfig::builder_with_provider(tls::ring())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = match mode {
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Verifier::new(Check::SignaturesOnly))
            .with_no_client_auth(),
        TlsMode::VerifyCa => {
            // Only the given CA file(s) when there are any: the name is not checked, so trusting
            // every public CA as well would accept any certificate they ever issued.
            let roots = root_store(ca_files, ca_files.is_empty())?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Verifier::new(Check::ChainOnly(Arc::new(roots))))
                .with_no_client_auth()
        }
        TlsMode::VerifyFull => builder
            .with_root_certificates(root_store(ca_files, true)?)
            .with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(config))
}

fn root_store(ca_files: &[&Path], system: bool) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    if system {
        roots.add_parsable_certificates(tls::system_roots());
    }
    for path in ca_files {
        for cert in tls::read_ca_file(path)? {
            roots
                .add(cert)
                .map_err(|e| format!("CA file {}: {e}", path.display()))?;
        }
    }
    if roots.is_empty() {
        return Err(
            "no trusted CA certificates: the system store is empty and no CA file was given"
                .to_string(),
        );
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_ssl_params() {
        let (url, mode, root) =
            split_ssl_params("postgres://u:p@h:5/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&application_name=x")
                .unwrap();
        assert_eq!(url, "postgres://u:p@h:5/db?application_name=x");
        assert_eq!(mode, Some(TlsMode::VerifyFull));
        assert_eq!(root.as_deref(), Some("/tmp/ca.pem"));
        assert!(split_ssl_params("postgres://h/db?sslmode=bogus").is_err());
        assert!(split_ssl_params("postgres://h/db?sslcert=/x").is_err());
    }
}
