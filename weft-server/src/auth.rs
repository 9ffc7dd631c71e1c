//! Named bearer tokens with roles, checked in constant time, failing closed.
//!
//! Tokens come from the environment or a file, never from the command line (a process's
//! arguments are visible to every user of the machine). Only SHA-256 hashes of them are kept in
//! memory, and a presented token is compared with every stored hash in constant time.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The shortest token accepted, in bytes: a short token can be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reserved for activity workers: reads the cluster's identity, nothing about workflows.
    Worker,
    /// Starts, signals, reads, cancels and reviews workflows.
    Operator,
    /// Everything an operator may do, plus purge and bulk operations.
    Admin,
}

impl Role {
    /// The role's name as tokens files and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Parses `worker`, `operator` or `admin`.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "worker" => Some(Role::Worker),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Which roles a route admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token (`/health`, `/ready`).
    Public,
    /// Any valid token.
    AnyRole,
    /// Operators and admins.
    Operator,
    /// Admins only.
    Admin,
}

impl Access {
    /// Whether `role` may use a route with this access.
    pub fn admits(self, role: Role) -> bool {
        match self {
            Access::Public | Access::AnyRole => true,
            Access::Operator => matches!(role, Role::Operator | Role::Admin),
            Access::Admin => role == Role::Admin,
        }
    }

    /// The roles admitted, as the OpenAPI document lists them.
    pub fn roles(self) -> &'static [&'static str] {
        match self {
            Access::Public => &[],
            Access::AnyRole => &["worker", "operator", "admin"],
            Access::Operator => &["operator", "admin"],
            Access::Admin => &["admin"],
        }
    }
}

/// Who made a request: the token's name and role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Principal {
    /// The token's name, recorded in the audit log and with review decisions.
    pub name: String,
    /// The token's role.
    pub role: Role,
}

/// A token could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The tokens file could not be read.
    #[error("cannot read the tokens file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line of a tokens file is not `NAME ROLE TOKEN`.
    #[error(
        "line {line} of the tokens file is not `NAME ROLE TOKEN` (role: worker, operator or admin)"
    )]
    Malformed {
        /// The 1-based line number.
        line: usize,
    },
    /// The role is not `worker`, `operator` or `admin`.
    #[error("token `{name}` has an unknown role `{role}`; use worker, operator or admin")]
    UnknownRole {
        /// The token's name.
        name: String,
        /// The role given.
        role: String,
    },
    /// The token is too short to resist guessing.
    #[error(
        "token `{name}` is shorter than {MIN_TOKEN_LEN} bytes; generate a long random one (e.g. `openssl rand -hex 32`)"
    )]
    TooShort {
        /// The token's name.
        name: String,
    },
    /// Two tokens share a name or a value.
    #[error("token `{name}` is configured twice (by name or by value); each token must be unique")]
    Duplicate {
        /// The token's name.
        name: String,
    },
}

struct Entry {
    hash: [u8; 32],
    principal: Principal,
}

/// The tokens a server accepts. Holds only hashes.
#[derive(Default)]
pub struct TokenSet {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.principal))
            .finish()
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenSet {
    /// No tokens.
    pub fn new() -> Self {
        TokenSet::default()
    }

    /// Adds a token named `name` with `role`.
    ///
    /// # Errors
    ///
    /// [`TokenError::TooShort`] and [`TokenError::Duplicate`].
    pub fn add(&mut self, name: &str, role: Role, token: &str) -> Result<(), TokenError> {
        if token.len() < MIN_TOKEN_LEN {
            return Err(TokenError::TooShort { name: name.into() });
        }
        let hash = hash(token);
        if self
            .entries
            .iter()
            .any(|e| e.principal.name == name || bool::from(e.hash.ct_eq(&hash)))
        {
            return Err(TokenError::Duplicate { name: name.into() });
        }
        self.entries.push(Entry {
            hash,
            principal: Principal {
                name: name.to_string(),
                role,
            },
        });
        Ok(())
    }

    /// Parses a tokens file: one `NAME ROLE TOKEN` per line, separated by spaces; blank lines
    /// and lines starting with `#` are skipped.
    ///
    /// # Errors
    ///
    /// Any [`TokenError`] but `Read`.
    pub fn parse(text: &str) -> Result<TokenSet, TokenError> {
        let mut set = TokenSet::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, role, token] = fields[..] else {
                return Err(TokenError::Malformed { line: index + 1 });
            };
            let role = Role::parse(role).ok_or_else(|| TokenError::UnknownRole {
                name: name.into(),
                role: role.into(),
            })?;
            set.add(name, role, token)?;
        }
        Ok(set)
    }

    /// Reads a tokens file (see [`TokenSet::parse`]). On Unix, warns when other users may read it.
    ///
    /// # Errors
    ///
    /// Any [`TokenError`].
    pub fn from_file(path: &Path) -> Result<TokenSet, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.display().to_string(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(
                    path = %path.display(),
                    "the tokens file may be read by other users; `chmod 600` it"
                );
            }
        }
        TokenSet::parse(&text)
    }

    /// Tokens from the environment: the file named by `WEFT_TOKENS_FILE`, if set, plus
    /// `WEFT_ADMIN_TOKEN`, `WEFT_OPERATOR_TOKEN` and `WEFT_WORKER_TOKEN` (each named after its
    /// role). Empty when none is set.
    ///
    /// # Errors
    ///
    /// Any [`TokenError`].
    pub fn from_env() -> Result<TokenSet, TokenError> {
        let mut set = match std::env::var_os("WEFT_TOKENS_FILE") {
            Some(path) => TokenSet::from_file(Path::new(&path))?,
            None => TokenSet::new(),
        };
        for role in [Role::Admin, Role::Operator, Role::Worker] {
            let var = format!("WEFT_{}_TOKEN", role.as_str().to_uppercase());
            if let Ok(token) = std::env::var(&var)
                && !token.is_empty()
            {
                set.add(role.as_str(), role, &token)?;
            }
        }
        Ok(set)
    }

    /// Whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many tokens are configured.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The principal a presented token names, if any. Compares the token's hash with every
    /// stored hash, all of them, in constant time.
    pub fn authenticate(&self, token: &str) -> Option<&Principal> {
        let presented = hash(token);
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.hash.ct_eq(&presented)) {
                found = Some(&entry.principal);
            }
        }
        found
    }
}

/// The principal of a server started with `insecure_no_auth` and no tokens.
pub(crate) fn anonymous() -> Principal {
    Principal {
        name: "anonymous".into(),
        role: Role::Admin,
    }
}

/// Authenticates every request it wraps: a missing or unknown bearer token is answered `401`
/// before routing, so nothing about what exists leaks. Leaves the [`Principal`] in the request
/// (for handlers) and in the response (for the request log).
pub(crate) async fn authenticate(
    axum::extract::State(shared): axum::extract::State<std::sync::Arc<crate::server::Shared>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let principal = if shared.tokens.is_empty() && shared.insecure_no_auth {
        anonymous()
    } else {
        let presented = request
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim);
        match presented {
            None => {
                return crate::error::ApiError::new(
                    axum::http::StatusCode::UNAUTHORIZED,
                    "auth.missing_token",
                    "this route needs a bearer token: send `Authorization: Bearer <token>`",
                )
                .into_response();
            }
            Some(token) => match shared.tokens.authenticate(token) {
                Some(principal) => principal.clone(),
                None => {
                    return crate::error::ApiError::new(
                        axum::http::StatusCode::UNAUTHORIZED,
                        "auth.invalid_token",
                        "the bearer token is not one this server accepts",
                    )
                    .into_response();
                }
            },
        }
    };
    request.extensions_mut().insert(principal.clone());
    let mut response = next.run(request).await;
    response.extensions_mut().insert(principal);
    response
}

/// Admits a request only when its principal's role has `access`: runs after routing and
/// before any extractor or handler, so a token without the role learns nothing about what
/// exists.
pub(crate) async fn require(
    axum::extract::State(access): axum::extract::State<Access>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match request.extensions().get::<Principal>() {
        Some(principal) if access.admits(principal.role) => next.run(request).await,
        Some(principal) => crate::error::ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "auth.forbidden",
            format!(
                "token `{}` has role {}; this route needs one of: {}",
                principal.name,
                principal.role.as_str(),
                access.roles().join(", ")
            ),
        )
        .into_response(),
        None => crate::error::ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "auth.missing_token",
            "this route needs a bearer token",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tokens_file_names_principals_and_only_exact_tokens_match() {
        let set = TokenSet::parse(
            "# name role token\n\nci operator 0123456789abcdef-ci\nroot admin 0123456789abcdef-root\n",
        )
        .unwrap();
        assert_eq!(set.len(), 2);
        let ci = set.authenticate("0123456789abcdef-ci").unwrap();
        assert_eq!((ci.name.as_str(), ci.role), ("ci", Role::Operator));
        assert!(set.authenticate("0123456789abcdef-c").is_none());
        assert!(set.authenticate("").is_none());
    }

    #[test]
    fn bad_tokens_files_are_refused_with_the_reason() {
        assert!(matches!(
            TokenSet::parse("ci operator"),
            Err(TokenError::Malformed { line: 1 })
        ));
        assert!(matches!(
            TokenSet::parse("ci boss 0123456789abcdef0"),
            Err(TokenError::UnknownRole { .. })
        ));
        assert!(matches!(
            TokenSet::parse("ci operator short"),
            Err(TokenError::TooShort { .. })
        ));
        assert!(matches!(
            TokenSet::parse("a operator 0123456789abcdef0\nb admin 0123456789abcdef0"),
            Err(TokenError::Duplicate { .. })
        ));
    }

    #[test]
    fn roles_admit_what_the_access_levels_say() {
        assert!(Access::AnyRole.admits(Role::Worker));
        assert!(!Access::Operator.admits(Role::Worker));
        assert!(Access::Operator.admits(Role::Admin));
        assert!(!Access::Admin.admits(Role::Operator));
    }
}
