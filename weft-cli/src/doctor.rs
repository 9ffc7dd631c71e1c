//! `weft doctor`: checks that the server answers, what the token may do, readiness, and that
//! the server's versions suit this CLI; or, with `--store`, a store file offline (integrity
//! and format version); says how to fix each failure.

use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{CliError, Client};
use crate::output::{Format, table};

struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
    fix: Option<String>,
}

/// The API version this CLI speaks.
const API_VERSION: &str = "v1";

async fn status_of(client: &Client, path: &str) -> Result<u16, CliError> {
    let response = client
        .request(Method::GET, path)
        .send()
        .await
        .map_err(|source| client.connect_error(source))?;
    Ok(response.status().as_u16())
}

/// How the connection to `base` is protected. It is only called after `/health` answered, so
/// over HTTPS the certificate has been verified.
fn tls_check(base: &str) -> Check {
    if base.starts_with("https://") {
        return Check {
            name: "tls",
            ok: true,
            detail: "HTTPS; the server's certificate was verified".into(),
            fix: None,
        };
    }
    let host = reqwest::Url::parse(base)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Check {
            name: "tls",
            ok: true,
            detail: "plain HTTP on loopback".into(),
            fix: None,
        }
    } else {
        Check {
            name: "tls",
            ok: false,
            detail: format!("plain HTTP to {host}: the token crosses the network in clear"),
            fix: Some(
                "serve HTTPS (the server's TLS certificate and key) or put a TLS-terminating proxy in front, and use an https:// address".into(),
            ),
        }
    }
}

/// Runs the checks and prints them.
///
/// # Errors
///
/// [`CliError::Doctor`] with the number of failed checks.
pub async fn run(client: &Client, format: Format) -> Result<(), CliError> {
    let mut checks = Vec::new();
    let health = status_of(client, "/health").await;
    checks.push(match &health {
        Ok(200) => Check {
            name: "address",
            ok: true,
            detail: format!("{} answers /health", client.base()),
            fix: None,
        },
        Ok(status) => Check {
            name: "address",
            ok: false,
            detail: format!("{} answered /health with HTTP {status}", client.base()),
            fix: Some("check that --addr / WEFT_ADDR points at a Weft server".into()),
        },
        Err(e) => Check {
            name: "address",
            ok: false,
            detail: e.to_string(),
            fix: Some(if client.base().starts_with("https://") {
                "start the server, or set --addr / WEFT_ADDR to where it listens; if the server's certificate is not trusted, give its CA with --ca-cert / WEFT_CA_CERT".into()
            } else {
                "start the server, or set --addr / WEFT_ADDR to where it listens".into()
            }),
        },
    });
    if health.is_ok() {
        checks.push(tls_check(client.base()));
        let info = client.get("/v1/cluster/info", &[]).await;
        checks.push(role_check(client, &info).await?);
        let ready = client.send(client.request(Method::GET, "/ready")).await;
        checks.push(match ready {
            Ok(_) => Check {
                name: "ready",
                ok: true,
                detail: "every readiness check passes".into(),
                fix: None,
            },
            Err(CliError::Api { message, .. }) => {
                let report: Value = client
                    .request(Method::GET, "/ready")
                    .send()
                    .await
                    .map_err(|source| client.connect_error(source))?
                    .json()
                    .await
                    .unwrap_or(Value::Null);
                let failing: Vec<&Value> = report["checks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|c| c["ok"] == json!(false))
                    .collect();
                Check {
                    name: "ready",
                    ok: false,
                    detail: if failing.is_empty() {
                        message
                    } else {
                        failing
                            .iter()
                            .map(|c| {
                                format!(
                                    "{}: {}",
                                    c["name"].as_str().unwrap_or("?"),
                                    c["detail"].as_str().unwrap_or("")
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("; ")
                    },
                    fix: failing
                        .iter()
                        .filter_map(|c| c["action"].as_str())
                        .next()
                        .map(str::to_string),
                }
            }
            Err(e) => Check {
                name: "ready",
                ok: false,
                detail: e.to_string(),
                fix: Some("see the server's log".into()),
            },
        });
        if let Ok(info) = &info {
            let api = info["api_version"].as_str().unwrap_or("");
            let server = info["server_version"].as_str().unwrap_or("?");
            checks.push(if api == API_VERSION {
                Check {
                    name: "versions",
                    ok: true,
                    detail: format!(
                        "server {server}, CLI {}, both API {API_VERSION}",
                        env!("CARGO_PKG_VERSION")
                    ),
                    fix: None,
                }
            } else {
                Check {
                    name: "versions",
                    ok: false,
                    detail: format!("the server speaks API {api}, this CLI {API_VERSION}"),
                    fix: Some("install the CLI of the server's release".into()),
                }
            });
        }
    }
    report(format, checks)
}

/// Checks the store file at `path` offline and read-only: that no process has it open, that it
/// is a Weft store, redb's integrity check (on a copy in the temp directory), and that its
/// format is one this build understands.
///
/// # Errors
///
/// [`CliError::Doctor`] with the number of failed checks.
pub async fn store(path: &std::path::Path, format: Format) -> Result<(), CliError> {
    use weft_runtime::storage::{OfflineError, inspect};
    let owned = path.to_path_buf();
    let found = tokio::task::spawn_blocking(move || inspect(&owned, std::env::temp_dir()))
        .await
        .map_err(|e| CliError::Protocol(e.to_string()))?;
    let shown = path.display();
    let mut checks = Vec::new();
    let failed = |name, detail: String, fix: &str| Check {
        name,
        ok: false,
        detail,
        fix: Some(fix.to_string()),
    };
    match found {
        Err(e @ OfflineError::NotFound { .. }) => checks.push(failed(
            "store file",
            e.to_string(),
            "give the path of the server's store (its redb file)",
        )),
        Err(e @ OfflineError::InUse { .. }) => checks.push(failed(
            "not in use",
            format!("{shown} is open in a running process"),
            &format!("stop the server that owns it and run this again, or check a backup of it (`weft backup`, then `weft doctor --store BACKUP`): {e}"),
        )),
        Err(e @ OfflineError::NotAStore { .. }) => checks.push(failed(
            "weft store",
            e.to_string(),
            "point --store at the store's redb file, not at another file",
        )),
        Err(e @ OfflineError::Corrupt { .. }) => checks.push(failed(
            "integrity",
            e.to_string(),
            "restore the latest backup: `weft restore BACKUP PATH --replace`, with the server stopped",
        )),
        Err(e @ OfflineError::Io { .. }) => checks.push(failed(
            "store file",
            e.to_string(),
            "check the file's permissions and that the temp directory has room for a copy of it (TMPDIR)",
        )),
        Ok(found) => {
            checks.push(Check {
                name: "not in use",
                ok: true,
                detail: format!("no process has {shown} open"),
                fix: None,
            });
            checks.push(Check {
                name: "weft store",
                ok: true,
                detail: format!(
                    "{} entries in {} bytes, owner epoch {}, {}",
                    found.entries,
                    found.bytes,
                    found
                        .owner_epoch
                        .map_or_else(|| "none".to_string(), |e| e.to_string()),
                    if found.closed_cleanly {
                        "closed cleanly"
                    } else {
                        "not closed cleanly (a crash; redb recovers it at the next start)"
                    }
                ),
                fix: None,
            });
            checks.push(if found.integrity_ok {
                Check {
                    name: "integrity",
                    ok: true,
                    detail: "redb's integrity check passes".into(),
                    fix: None,
                }
            } else {
                failed(
                    "integrity",
                    "redb's integrity check failed and had to repair a copy: the file is damaged"
                        .into(),
                    "restore the latest backup: `weft restore BACKUP PATH --replace`, with the server stopped",
                )
            });
            checks.push(match found.format_version {
                Some(version) if !found.format_supported() => failed(
                    "format",
                    format!(
                        "this store was written by format {version}; this binary understands up to {}",
                        found.supported_format
                    ),
                    "run a newer weft (the release that wrote it, or later)",
                ),
                Some(version) => Check {
                    name: "format",
                    ok: true,
                    detail: format!(
                        "store format {version}; this binary understands up to {}",
                        found.supported_format
                    ),
                    fix: None,
                },
                None => Check {
                    name: "format",
                    ok: true,
                    detail: format!(
                        "no format marker: written before it existed (format 1); the next engine start writes it; this binary understands up to {}",
                        found.supported_format
                    ),
                    fix: None,
                },
            });
        }
    }
    report(format, checks)
}

/// Prints `checks`; fails with the number that failed.
fn report(format: Format, checks: Vec<Check>) -> Result<(), CliError> {
    let failed = checks.iter().filter(|c| !c.ok).count();
    let report = json!({
        "ok": failed == 0,
        "checks": checks.iter().map(|c| json!({
            "name": c.name, "ok": c.ok, "detail": c.detail, "fix": c.fix,
        })).collect::<Vec<_>>(),
    });
    crate::output::print(format, &report, Some("checks"), |_| {
        let rows: Vec<Vec<String>> = checks
            .iter()
            .map(|c| {
                vec![
                    c.name.to_string(),
                    if c.ok { "ok" } else { "FAIL" }.to_string(),
                    match &c.fix {
                        Some(fix) => format!("{} (fix: {fix})", c.detail),
                        None => c.detail.clone(),
                    },
                ]
            })
            .collect();
        table(&["CHECK", "RESULT", "DETAIL"], &rows)
    });
    if failed == 0 {
        Ok(())
    } else {
        Err(CliError::Doctor(failed))
    }
}

/// What the token may do: any role reads cluster info; operators list workflows; admins read
/// the audit log.
async fn role_check(client: &Client, info: &Result<Value, CliError>) -> Result<Check, CliError> {
    let no_token = Some(
        "set WEFT_TOKEN to a token the server was given (WEFT_*_TOKEN or its tokens file)"
            .to_string(),
    );
    match info {
        Err(CliError::Api {
            status: 401,
            message,
            ..
        }) => Ok(Check {
            name: "token",
            ok: false,
            detail: message.clone(),
            fix: no_token,
        }),
        Err(e) => Ok(Check {
            name: "token",
            ok: false,
            detail: e.to_string(),
            fix: None,
        }),
        Ok(_) => {
            let operator = status_of(client, "/v1/workflows?page_size=1").await? == 200;
            let admin = status_of(client, "/v1/audit").await? == 200;
            let role = match (operator, admin) {
                (_, true) => "admin",
                (true, false) => "operator",
                _ => "worker",
            };
            Ok(Check {
                name: "token",
                ok: true,
                detail: format!("the token is accepted with role {role}"),
                fix: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tls_check;

    #[test]
    fn plain_http_passes_on_loopback_only() {
        for ok in [
            "https://weft.example.com",
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            assert!(tls_check(ok).ok, "{ok}");
        }
        let remote = tls_check("http://10.0.0.7:8080");
        assert!(!remote.ok);
        assert!(remote.fix.unwrap().contains("https://"));
    }
}
