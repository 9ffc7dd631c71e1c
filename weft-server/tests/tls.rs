//! HTTPS with rustls: the server answers over TLS with its certificate, refuses clients that
//! do not trust it and plain HTTP, keeps serving while a client stalls its handshake, and
//! refuses to start on unusable certificate files.
//!
//! The certificates under `tests/tls/` are a test CA (`ca.pem`) and a leaf for `localhost` and
//! `127.0.0.1` it signed (`server.pem`, `server.key`), valid for a century; `other-ca.pem` is a
//! CA that signed nothing here.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use weft_server::{Server, ServerError, TlsFiles};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

fn files() -> TlsFiles {
    TlsFiles {
        certificate: fixture("server.pem"),
        private_key: fixture("server.key"),
    }
}

/// A TLS client that trusts the CA in `ca`.
fn connector(ca: &str) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(fixture(ca)).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    #[allow(deprecated)] // the server's provider; see weft-server's tls module
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// GETs `path` over TLS with `token`; the status line and the body, or the handshake's error.
async fn get(
    addr: SocketAddr,
    tls: &TlsConnector,
    path: &str,
    token: &str,
) -> std::io::Result<(String, String)> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut stream = tls.connect(name, tcp).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    // A peer that closes without close_notify is fine here: the whole answer was read.
    let _ = stream.read_to_string(&mut response).await;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok((
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    ))
}

async fn serve_tls() -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listening = Server::builder(engine().await)
        .address("127.0.0.1:0".parse().unwrap())
        .tokens(tokens())
        .tls(files())
        .build()
        .unwrap()
        .bind()
        .await
        .unwrap();
    let addr = listening.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        listening
            .serve_until(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (addr, stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_over_tls_to_a_client_that_trusts_the_certificate() {
    let (addr, stop, task) = serve_tls().await;
    let trusted = connector("ca.pem");
    let (status, body) = get(addr, &trusted, "/health", OPERATOR).await.unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let (status, body) = get(addr, &trusted, "/v1/cluster/info", OPERATOR)
        .await
        .unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(body.contains("\"server_version\""), "{body}");
    // Auth is the same over TLS: a wrong token is refused.
    let (status, _) = get(addr, &trusted, "/v1/cluster/info", "not-a-token-at-all")
        .await
        .unwrap();
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");

    // A client that does not trust the issuer fails its handshake and learns nothing.
    let error = get(addr, &connector("other-ca.pem"), "/health", OPERATOR)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("certificate"), "{error}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer).await;
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");

    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stalls_its_handshake_does_not_hold_up_the_others() {
    let (addr, stop, task) = serve_tls().await;
    // Connected, silent: its handshake never starts.
    let mut stalled = Vec::new();
    for _ in 0..8 {
        stalled.push(TcpStream::connect(addr).await.unwrap());
    }
    let trusted = connector("ca.pem");
    let answered = tokio::time::timeout(
        Duration::from_secs(5),
        get(addr, &trusted, "/health", OPERATOR),
    )
    .await
    .expect("a stalled handshake held up another client");
    assert_eq!(answered.unwrap().0, "HTTP/1.1 200 OK");
    drop(stalled);
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn unusable_certificate_files_are_refused_at_build_with_the_file_named() {
    let missing = TlsFiles {
        certificate: fixture("no-such.pem"),
        private_key: fixture("server.key"),
    };
    let built = Server::builder(engine().await).tls(missing).build();
    let Err(ServerError::Tls { path, .. }) = built else {
        panic!("a missing certificate was accepted")
    };
    assert!(path.ends_with("no-such.pem"));

    // A key that is not the certificate's.
    let dir = tempfile::tempdir().unwrap();
    let other_key = dir.path().join("other.key");
    std::fs::write(
        &other_key,
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgVcB/UNPxalR9zDYA\njQIfjojUDiQuGnSJrFEEzZPT/92hRANCAASc7UJtgnF/abqWM60T3XNJEzBv5ez9\nTdwK1rnI5Rqo7ADg9tOjuAjJ8UBAzDeY0oZ7y+6rwUPu2pr0ZJmChlCE\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let mismatched = TlsFiles {
        certificate: fixture("server.pem"),
        private_key: other_key,
    };
    let built = Server::builder(engine().await).tls(mismatched).build();
    let Err(error @ ServerError::Tls { .. }) = built else {
        panic!("a key that does not fit was accepted")
    };
    assert!(error.to_string().contains("does not fit"), "{error}");

    // A certificate file without a certificate in it.
    let empty = TlsFiles {
        certificate: fixture("server.key"),
        private_key: fixture("server.key"),
    };
    let built = Server::builder(engine().await).tls(empty).build();
    assert!(matches!(built, Err(ServerError::Tls { .. })));
}
