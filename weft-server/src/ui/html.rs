//! The pieces every page shares: the layout with its navigation, the error page, times in
//! words, the JSON tree of a checkpoint, and URL encoding of filters.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::session::{CSRF_FIELD, UiSession};
use crate::auth::{Access, Principal};
use crate::error::ApiError;

/// A page with the navigation, the logged-in principal and a logout button.
pub(crate) fn page(title: &str, session: &UiSession, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Weft" }
                link rel="stylesheet" href="/ui/assets/style.css";
                script src="/ui/assets/htmx.min.js" defer {}
                script src="/ui/assets/htmx-ext-sse.js" defer {}
            }
            body {
                header {
                    nav aria-label="Dashboard" {
                        a href="/ui" { "Overview" }
                        a href="/ui/workflows" { "Workflows" }
                        a href="/ui/reviews" { "Reviews" }
                    }
                    form.logout method="post" action="/ui/logout" {
                        span #whoami { "Logged in as " strong { (session.principal.name) } " (" (session.principal.role.as_str()) ")" }
                        " "
                        (csrf_field(session))
                        button type="submit" { "Log out" }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page without navigation: the login form and errors before login.
pub(crate) fn page_bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Weft" }
                link rel="stylesheet" href="/ui/assets/style.css";
            }
            body { main { (body) } }
        }
    }
}

/// The hidden CSRF field every form carries.
pub(crate) fn csrf_field(session: &UiSession) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(session.csrf); }
}

/// An error shown as a page: a status, a title, and what to do.
#[derive(Debug, Clone)]
pub(crate) struct UiError {
    status: StatusCode,
    title: String,
    message: String,
    /// The session's CSRF token, when a session refused: the page then offers a logout (a
    /// worker's session can reach no other page).
    logout_csrf: Option<String>,
}

impl UiError {
    pub(crate) fn new(status: StatusCode, title: &str, message: impl Into<String>) -> Self {
        UiError {
            status,
            title: title.to_string(),
            message: message.into(),
            logout_csrf: None,
        }
    }

    /// Offers a logout form on the error page.
    pub(crate) fn with_logout(mut self, session: &UiSession) -> Self {
        self.logout_csrf = Some(session.csrf.clone());
        self
    }

    /// A form whose CSRF token is missing or wrong.
    pub(crate) fn csrf() -> Self {
        UiError::new(
            StatusCode::FORBIDDEN,
            "Form refused",
            "the form's CSRF token is missing or does not match this session; reload the page and try again",
        )
    }

    /// A role that may not do this, naming the roles that may.
    pub(crate) fn forbidden(principal: &Principal, access: Access) -> Self {
        UiError::new(
            StatusCode::FORBIDDEN,
            "Not allowed",
            format!(
                "this needs role {}; you are logged in as `{}` with role {}",
                access.roles().join(" or "),
                principal.name,
                principal.role.as_str()
            ),
        )
    }
}

impl From<ApiError> for UiError {
    fn from(error: ApiError) -> Self {
        let body = error.body();
        UiError::new(
            error.status(),
            "The server refused",
            format!("{} ({})", body.message, body.code),
        )
    }
}

impl From<weft_runtime::EngineError> for UiError {
    fn from(error: weft_runtime::EngineError) -> Self {
        ApiError::from(error).into()
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let markup = page_bare(
            &self.title,
            html! {
                h1 { (self.title) }
                p.error role="alert" { (self.message) }
                p { a href="/ui" { "Back to the dashboard" } " · " a href="/ui/login" { "Log in" } }
                @if let Some(csrf) = &self.logout_csrf {
                    form method="post" action="/ui/logout" {
                        input type="hidden" name=(CSRF_FIELD) value=(csrf);
                        button type="submit" { "Log out" }
                    }
                }
            },
        );
        (self.status, markup).into_response()
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC` (the engine words its pending
/// commands with the same format; its helper is private to the runtime).
pub(crate) fn time(ms: i64) -> String {
    let Ok(ms) = u64::try_from(ms) else {
        return "before 1970".to_string();
    };
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// How long ago `ms` was, from `now_ms`, in the largest unit that fits.
pub(crate) fn ago(ms: i64, now_ms: i64) -> String {
    let secs = (now_ms - ms).max(0) / 1000;
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

/// Now, in milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    crate::api::types::millis(std::time::SystemTime::now())
}

/// A JSON value as nested `<details>` elements: collapsible without JavaScript, each object
/// and array showing its size, each scalar its JSON text; the first `open` levels start open.
pub(crate) fn json_tree(name: &str, value: &serde_json::Value, open: usize) -> Markup {
    use serde_json::Value;
    let inner = open.saturating_sub(1);
    match value {
        // The state enum is externally tagged, `{"Variant": {fields}}`: name the variant once.
        Value::Object(map) if map.len() == 1 && map.contains_key(name) => {
            json_tree(name, &map[name], open)
        }
        Value::Object(map) => html! {
            details.json open[open > 0] {
                summary { span.key { (name) } " " span.meta { "{" (plural(map.len(), "field")) "}" } }
                ul { @for (k, v) in map { li { (json_tree(k, v, inner)) } } }
            }
        },
        Value::Array(items) => html! {
            details.json open[open > 0] {
                summary { span.key { (name) } " " span.meta { "[" (plural(items.len(), "item")) "]" } }
                ol start="0" { @for (i, v) in items.iter().enumerate() { li { (json_tree(&i.to_string(), v, inner)) } } }
            }
        },
        scalar => html! {
            span.key { (name) } ": " code.value { (scalar.to_string()) }
        },
    }
}

/// `1 field`, `2 fields`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Percent-encodes a query parameter's value or a path segment (everything but unreserved
/// characters). A `/` is encoded too: a child workflow's id (`parent/1`) is one segment of
/// `/ui/workflows/{id}`, and the router decodes `%2F` back into it.
pub(crate) fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A query string from (key, value) pairs, empty values left out.
pub(crate) fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A workflow's id as a link to its page.
pub(crate) fn workflow_link(id: &str) -> Markup {
    html! { a href={ "/ui/workflows/" (url_encode(id)) } { (id) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_encodings() {
        assert_eq!(time(1_796_467_327_000), "2026-12-05 10:42:07 UTC");
        assert_eq!(ago(0, 125_000), "2 min ago");
        assert_eq!(url_encode("a b&c=ü"), "a%20b%26c%3D%C3%BC");
        assert_eq!(url_encode("parent/1"), "parent%2F1");
        assert_eq!(
            query_string([("status", "waiting"), ("type", "")]),
            "status=waiting"
        );
    }

    #[test]
    fn json_trees_escape_and_nest() {
        let tree = json_tree(
            "AwaitSignal",
            &serde_json::json!({"to": "<b>", "items": [1, 2]}),
            1,
        )
        .into_string();
        assert!(tree.contains("&lt;b&gt;"), "{tree}");
        assert!(tree.contains("[2 items]"), "{tree}");
        assert!(tree.contains("<details class=\"json\" open>"), "{tree}");
        assert!(
            tree.contains("<details class=\"json\"><summary><span class=\"key\">items"),
            "only the first level opens: {tree}"
        );
    }
}
