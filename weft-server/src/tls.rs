//! TLS with rustls: a certificate chain and key from PEM files, and a listener whose handshakes
//! run off the accept loop.
//!
//! axum's accept loop takes one connection at a time, so a handshake done inside
//! [`Listener::accept`] would let one slow (or silent) client stall every other. Here a task
//! accepts TCP connections and spawns each handshake, bounded in number and in time; finished
//! handshakes queue for axum. The crypto is `ring`'s: aws-lc-rs builds from C and assembly,
//! which costs minutes on a small build machine. The price is that key exchange is classical
//! (X25519, P-256, P-384), without rustls' post-quantum hybrid; a proxy in front can offer it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::server::ServerError;

/// Handshakes in progress at once; more wait in the kernel's accept backlog.
const MAX_HANDSHAKES: usize = 256;
/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the server's certificate chain and private key are, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub certificate: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
}

impl TlsFiles {
    /// Reads both files and builds the rustls configuration (HTTP/1.1 over TLS 1.2 or 1.3).
    pub(crate) fn load(&self) -> Result<Arc<rustls::ServerConfig>, ServerError> {
        let bad = |path: &Path, reason: String| ServerError::Tls {
            path: path.to_path_buf(),
            reason,
        };
        let chain = CertificateDer::pem_file_iter(&self.certificate)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| bad(&self.certificate, e.to_string()))?;
        if chain.is_empty() {
            return Err(bad(
                &self.certificate,
                "no CERTIFICATE block in the file".to_string(),
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&self.private_key)
            .map_err(|e| bad(&self.private_key, e.to_string()))?;
        // rustls deprecates ring's provider for lacking post-quantum key exchange; classical
        // key exchange is the trade for not building aws-lc-rs from C (see the module docs).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&self.certificate, e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| {
                bad(
                    &self.private_key,
                    format!("the key does not fit the certificate: {e}"),
                )
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Accepts TLS connections for axum; see the module docs.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `tcp`. Must be called within a tokio runtime.
    pub(crate) fn new(
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<Self> {
        let local_addr = tcp.local_addr()?;
        let tls = TlsAcceptor::from(config);
        let (done, ready) = mpsc::channel(MAX_HANDSHAKES);
        let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    return;
                };
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // As axum's own loop does: a full file table or a reset connection
                        // is not the end of serving.
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::warn!(%error, "cannot set TCP_NODELAY on a connection");
                }
                let (tls, done) = (tls.clone(), done.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            // Held until axum has it, so handshakes never outrun the queue.
                            let _ = done.send((stream, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                    drop(permit);
                });
            }
        });
        Ok(Self {
            ready,
            local_addr,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // The accept task holds the socket: stopping it is what stops new connections.
        self.acceptor.abort();
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept task only ends when this listener is dropped, so this is not reached
            // while axum still polls; pend rather than invent a connection.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}
