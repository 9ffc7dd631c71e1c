//! The `weft` binary and HTTPS: with the `tls` feature it reaches a server over TLS given the
//! server's CA (`--ca-cert`), and `doctor` reports the connection; without the feature it says
//! how to get one. Run the HTTPS half with `cargo test -p weft-cli --features tls --test tls`.

#[path = "../../weft-server/tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use support::*;
use weft_server::{Server, TlsFiles};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../weft-server/tests/tls")
        .join(name)
}

/// Runs `weft args` with `WEFT_ADDR=addr` and the operator token, off the async workers.
async fn weft(addr: String, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
    command
        .args(args)
        .env("WEFT_ADDR", addr)
        .env("WEFT_TOKEN", OPERATOR)
        .env_remove("WEFT_CA_CERT")
        .stdin(Stdio::null());
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// A TLS server on a free loopback port; its `https://localhost:PORT` address.
async fn serve_tls() -> (String, tokio::sync::oneshot::Sender<()>) {
    let listening = Server::builder(engine().await)
        .address("127.0.0.1:0".parse().unwrap())
        .tokens(tokens())
        .tls(TlsFiles {
            certificate: fixture("server.pem"),
            private_key: fixture("server.key"),
        })
        .build()
        .unwrap()
        .bind()
        .await
        .unwrap();
    let addr = format!("https://localhost:{}", listening.local_addr().port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(listening.serve_until(async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_and_list_reach_a_tls_server_that_the_given_ca_signed() {
    let (addr, _stop) = serve_tls().await;
    let ca = fixture("ca.pem");
    let ca = ca.to_str().unwrap();
    let out = weft(addr.clone(), &["--ca-cert", ca, "doctor"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("certificate was verified"), "{text}");
    let out = weft(addr.clone(), &["--ca-cert", ca, "list", "-o", "json"]).await;
    assert!(out.status.success(), "{out:?}");

    // A CA that did not sign the server's certificate: refused, with the fix named.
    let other = fixture("other-ca.pem");
    let out = weft(addr, &["--ca-cert", other.to_str().unwrap(), "doctor"]).await;
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("--ca-cert"),
        "{out:?}"
    );
}

#[cfg(not(feature = "tls"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_tls_feature_an_https_address_is_a_usage_error_that_says_how_to_build_one() {
    let (addr, _stop) = serve_tls().await;
    let out = weft(addr, &["list"]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--features tls"),
        "{out:?}"
    );
}
