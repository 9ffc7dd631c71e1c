//! The HTTP client of weft-server's API, and the CLI's errors with their exit codes.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Exit codes, one per kind of failure, so scripts can tell them apart.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The server failed (500) or answered something unexpected.
    pub const SERVER: u8 = 1;
    /// The command line is wrong (clap uses 2 too).
    pub const USAGE: u8 = 2;
    /// What was asked for does not exist (404).
    pub const NOT_FOUND: u8 = 3;
    /// The request conflicts with what is stored (409): finished, not finished, id taken...
    pub const CONFLICT: u8 = 4;
    /// The server refused the input (400, 413).
    pub const INVALID: u8 = 5;
    /// No valid token, or a token without the role (401, 403).
    pub const AUTH: u8 = 6;
    /// The server cannot be reached or cannot serve now (503, 429); retrying may help.
    pub const UNAVAILABLE: u8 = 7;
    /// `weft doctor` found a problem, or `weft recovery` workflows it could not resume.
    pub const DOCTOR: u8 = 8;
}

/// A command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line is wrong.
    #[error("{0}")]
    Usage(String),
    /// The server answered with an error.
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The stable error code.
        code: String,
        /// The message.
        message: String,
    },
    /// The server could not be reached.
    #[error(
        "cannot reach the server at {addr}: {source}; is it running? (set --addr or WEFT_ADDR)"
    )]
    Connect {
        /// The address tried.
        addr: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered something that is not the API's JSON.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// `weft doctor` found problems.
    #[error("{0} check(s) failed")]
    Doctor(usize),
    /// `weft recovery` found workflows the server could not resume.
    #[error(
        "{0} workflow(s) could not be resumed: register their types (or versions) and restart, or retry them once fixed"
    )]
    Unresolved(u64),
    /// `weft compact` refused or failed; the file is as it was (or as redb recovers it).
    #[error("{0}")]
    Offline(#[from] weft_runtime::storage::OfflineError),
    /// `weft restore` refused or failed; nothing was left at the target.
    #[error("restore failed: {0}")]
    Restore(#[from] weft_runtime::storage::BackupError),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::Api { status, .. } => match *status {
                404 => exit::NOT_FOUND,
                409 => exit::CONFLICT,
                400 | 413 | 422 => exit::INVALID,
                401 | 403 => exit::AUTH,
                429 | 503 => exit::UNAVAILABLE,
                _ => exit::SERVER,
            },
            CliError::Connect { .. } => exit::UNAVAILABLE,
            CliError::Protocol(_) => exit::SERVER,
            CliError::Doctor(_) | CliError::Unresolved(_) => exit::DOCTOR,
            CliError::Offline(e) => {
                use weft_runtime::storage::OfflineError as O;
                match e {
                    O::InUse { .. } => exit::CONFLICT,
                    O::NotFound { .. } => exit::NOT_FOUND,
                    O::NotAStore { .. } | O::Corrupt { .. } => exit::INVALID,
                    O::Io { .. } => exit::SERVER,
                }
            }
            CliError::Restore(e) => {
                use weft_runtime::storage::BackupError as B;
                match e {
                    B::Exists { .. } | B::InUse { .. } => exit::CONFLICT,
                    B::NotABackup { .. } | B::NewerFormat { .. } | B::Corrupt { .. } => {
                        exit::INVALID
                    }
                    _ => exit::SERVER,
                }
            }
        }
    }
}

/// The HTTP client for `base`: with HTTPS when this CLI is built with the `tls` feature.
#[cfg(feature = "tls")]
fn http_client(base: &str, ca_cert: Option<&Path>) -> Result<reqwest::Client, CliError> {
    let builder = reqwest::Client::builder();
    match ca_cert {
        Some(path) => builder.use_preconfigured_tls(tls_trusting(path)?).build(),
        // The system's roots are read only for HTTPS: a machine without a CA bundle can
        // still talk plain HTTP to a server on loopback.
        None if base.starts_with("https://") => builder.build(),
        None => builder.use_preconfigured_tls(tls_trusting_nothing()).build(),
    }
    .map_err(|e| {
        CliError::Usage(format!(
            "cannot set up HTTPS: {e}; give the CA of the server's certificate with --ca-cert / WEFT_CA_CERT"
        ))
    })
}

/// The HTTP client for `base`: plain HTTP only, as this CLI is built without the `tls`
/// feature.
#[cfg(not(feature = "tls"))]
fn http_client(base: &str, ca_cert: Option<&Path>) -> Result<reqwest::Client, CliError> {
    if base.starts_with("https://") || ca_cert.is_some() {
        return Err(CliError::Usage(
            "this weft is built without TLS; rebuild it with `--features tls` to reach an https:// address".into(),
        ));
    }
    reqwest::Client::builder()
        .build()
        .map_err(|e| CliError::Usage(format!("cannot set up the HTTP client: {e}")))
}

/// The crypto provider every TLS connection of this process uses: `ring`'s, as the server's
/// (aws-lc-rs builds from C for minutes). Installed once, before the first client is built.
#[cfg(feature = "tls")]
pub fn install_tls_provider() {
    // rustls deprecates ring's provider for lacking post-quantum key exchange; see weft-server.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    // Already installed (a second call) is fine.
    let _ = provider.install_default();
}

#[cfg(feature = "tls")]
/// A TLS client configuration that trusts exactly the certificates in the PEM file at `path`.
fn tls_trusting(path: &Path) -> Result<rustls::ClientConfig, CliError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let unusable = |why: String| {
        CliError::Usage(format!(
            "--ca-cert {}: {why}; give the PEM file of the CA that signed the server's certificate",
            path.display()
        ))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| unusable(e.to_string()))? {
        let cert = cert.map_err(|e| unusable(e.to_string()))?;
        roots.add(cert).map_err(|e| unusable(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(unusable("no certificate in the file".to_string()));
    }
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| unusable(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A TLS configuration that trusts no certificate, for a client that only speaks plain HTTP.
#[cfg(feature = "tls")]
fn tls_trusting_nothing() -> rustls::ClientConfig {
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|config| {
            config
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        })
        .expect("ring supports rustls' default protocol versions")
}

/// A client of one server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client of the server at `addr` (`http://host:port` or `https://host:port`;
    /// `host:port` means plain HTTP), sending `token` as a bearer token when given. Over
    /// HTTPS the server's certificate is checked against `ca_cert` (a PEM file) when given,
    /// otherwise against the system's trusted roots.
    ///
    /// # Errors
    ///
    /// [`CliError::Usage`] when `ca_cert` cannot be read or holds no certificate.
    pub fn new(
        addr: &str,
        token: Option<String>,
        ca_cert: Option<&Path>,
    ) -> Result<Client, CliError> {
        let base = if addr.contains("://") {
            addr.trim_end_matches('/').to_string()
        } else {
            format!("http://{}", addr.trim_end_matches('/'))
        };
        let http = http_client(&base, ca_cert)?;
        Ok(Client {
            http,
            base,
            token: token.filter(|t| !t.is_empty()),
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Starts a request to `path`.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{}", self.base, path));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `request` and reads its JSON body: the value on success, the API's error shape as
    /// [`CliError::Api`] otherwise. Returns the status too.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Value), CliError> {
        let response = request
            .send()
            .await
            .map_err(|source| self.connect_error(source))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| CliError::Protocol(e.to_string()))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .map_err(|_| CliError::Protocol(format!("HTTP {status}: {text}")))?
        };
        if status.is_success() {
            Ok((status, value))
        } else {
            Err(CliError::Api {
                status: status.as_u16(),
                code: value["code"].as_str().unwrap_or("unknown").to_string(),
                message: value["message"]
                    .as_str()
                    .map_or_else(|| text.clone(), str::to_string),
            })
        }
    }

    /// GET `path` with `query`, as JSON.
    pub async fn get(&self, path: &str, query: &[(String, String)]) -> Result<Value, CliError> {
        Ok(self
            .send(self.request(Method::GET, path).query(query))
            .await?
            .1)
    }

    /// Every item of a list route: follows `next_cursor` from page to page (every list route
    /// pages the same way) and answers `{"items": [..]}`.
    pub async fn get_all(&self, path: &str, query: &[(String, String)]) -> Result<Value, CliError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = query.to_vec();
            if let Some(c) = cursor.take() {
                query.push(("cursor".to_string(), c));
            }
            let page = self.get(path, &query).await?;
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return Ok(serde_json::json!({ "items": items })),
            }
        }
    }

    /// `method` `path` with a JSON `body`, as JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Ok(self.send(request).await?.1)
    }

    /// The error for a request that did not get an answer.
    pub fn connect_error(&self, source: reqwest::Error) -> CliError {
        CliError::Connect {
            addr: self.base.clone(),
            source,
        }
    }
}

/// Percent-encodes one path segment (a workflow id may hold any character).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
