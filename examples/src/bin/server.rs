//! Serves the checkout and approvals workflows over HTTP on a redb file, or on PostgreSQL when
//! `WEFT_DATABASE_URL` is set: the self-hosting surface of Weft (`/v1` API, `/health`,
//! `/ready`, role tokens, live events) in one binary.
//!
//! ```text
//! export WEFT_ADMIN_TOKEN=$(openssl rand -hex 32) WEFT_OPERATOR_TOKEN=$(openssl rand -hex 32)
//! cargo run -p weft-examples --bin server                 # http://127.0.0.1:8080, ./server.redb
//! WEFT_TOKEN=$WEFT_OPERATOR_TOKEN weft list               # from another shell
//! ```
//!
//! The dashboard is at <http://127.0.0.1:8080/ui>: log in with one of the tokens.
//!
//! Run with `--help` for every option.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;
use weft_examples::approvals::expense_report;
use weft_examples::checkout::{Shop, checkout};
use weft_examples::cli::{self, Flags};

use weft_postgres::{PostgresOptions, PostgresStorage};
use weft_runtime::storage::{RedbStorage, Storage};
use weft_runtime::{Engine, Resources};
use weft_server::{Server, TlsFiles, TokenSet};

const USAGE: &str = "\
Serves the checkout and approvals workflows over HTTP, on a redb file, or on PostgreSQL when
WEFT_DATABASE_URL is set.

usage: server [--db PATH] [--listen ADDR] [--tls-cert PEM --tls-key PEM] [--insecure-no-auth]
              [--fresh]

  --db PATH            the redb file holding the workflows (default: server.redb); the payment
                       provider's ledger goes next to it, with the extension .payments.log (on
                       PostgreSQL the file is not created, only the ledger is written there)
  --listen ADDR        the address to listen on (default: 127.0.0.1:8080); a non-loopback
                       address needs tokens, or --insecure-no-auth
  --tls-cert PEM       serve HTTPS with this certificate chain (leaf first; needs --tls-key)
  --tls-key PEM        the certificate's private key
  --insecure-no-auth   serve without tokens even on a non-loopback address (every caller is an
                       admin); never do this on a network you do not trust
  --fresh              delete the redb file and the ledger first (never a PostgreSQL schema)
  -h, --help           print this help

Tokens come from the environment, never the command line: WEFT_ADMIN_TOKEN,
WEFT_OPERATOR_TOKEN, WEFT_WORKER_TOKEN (at least 16 characters each), or WEFT_TOKENS_FILE, a
file of `NAME ROLE TOKEN` lines. Without any, the server listens on loopback only.
WEFT_DATABASE_URL (libpq's `host=… user=… dbname=…` or a postgresql:// URL; it may hold a
password, so it is never a flag) keeps the workflows in PostgreSQL instead, in the schema named
by WEFT_DATABASE_SCHEMA (default `weft`); one engine process per schema (see docs/cluster.md).
Stop it with Ctrl-C or SIGTERM: it drains requests in flight, then exits.
";

struct Args {
    db: PathBuf,
    listen: SocketAddr,
    insecure_no_auth: bool,
    fresh: bool,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        db: PathBuf::from("server.redb"),
        listen: weft_server::DEFAULT_ADDRESS,
        insecure_no_auth: false,
        fresh: false,
        tls_cert: None,
        tls_key: None,
    };
    let mut flags = Flags::from_env();
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--db" => args.db = PathBuf::from(flags.value()?),
            "--listen" => {
                let value = flags.value()?;
                args.listen = value.parse().map_err(|_| {
                    format!("--listen: `{value}` is not an address like 127.0.0.1:8080")
                })?;
            }
            "--tls-cert" => args.tls_cert = Some(PathBuf::from(flags.value()?)),
            "--tls-key" => args.tls_key = Some(PathBuf::from(flags.value()?)),
            "--insecure-no-auth" => args.insecure_no_auth = true,
            "--fresh" => args.fresh = true,
            other => return Err(cli::unknown(other)),
        }
    }
    if args.tls_cert.is_some() != args.tls_key.is_some() {
        return Err("--tls-cert and --tls-key go together".to_string());
    }
    Ok(Some(args))
}

async fn run(args: Args) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let ledger = args.db.with_extension("payments.log");
    if args.fresh {
        cli::delete_fresh(&[&args.db, &ledger])?;
    }
    let postgres = std::env::var("WEFT_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty());
    let storage: Arc<dyn Storage> = match &postgres {
        Some(url) => {
            let mut options = PostgresOptions::new(url.as_str());
            if let Ok(schema) = std::env::var("WEFT_DATABASE_SCHEMA") {
                options = options.schema(schema);
            }
            Arc::new(
                PostgresStorage::connect(options)
                    .await
                    .map_err(|e| format!("{} ({})", e, e.code()))?,
            )
        }
        None => Arc::new(RedbStorage::create(&args.db).map_err(|e| e.to_string())?),
    };
    let engine = Engine::builder(storage)
        .register::<checkout>()
        .register::<expense_report>()
        .resources(Resources::new().with(Shop::new(&ledger).quiet()))
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let tokens = TokenSet::from_env().map_err(|e| e.to_string())?;
    match postgres {
        Some(_) => tracing::info!(db = "postgresql", tokens = tokens.len(), "engine ready"),
        None => tracing::info!(db = %args.db.display(), tokens = tokens.len(), "engine ready"),
    }
    let mut server = Server::builder(engine)
        .address(args.listen)
        .tokens(tokens)
        .insecure_no_auth(args.insecure_no_auth);
    if let (Some(certificate), Some(private_key)) = (args.tls_cert, args.tls_key) {
        server = server.tls(TlsFiles {
            certificate,
            private_key,
        });
    }
    server
        .build()
        .map_err(|e| e.to_string())?
        .serve()
        .await
        .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::main("server", USAGE, parse_args, run).await
}
