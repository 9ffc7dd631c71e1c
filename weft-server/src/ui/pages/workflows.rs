//! `GET /ui/workflows`: the workflow list, filtered by what the URL's query says (so a view can
//! be shared), a page at a time through the engine's cursor; and `POST /ui/bulk/{action}`:
//! cancel, signal or purge the filtered set, after a dry-run count and a confirmation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::{Extension, Form};
use maud::{Markup, html};

use super::status_badge;
use crate::api::bulk::{self, Action, BulkRequest};
use crate::api::types::{
    Filter, SORTS, SummaryView, decode_cursor, encode_cursor, parse_sort, sort_name,
};
use crate::auth::Role;
use crate::server::Shared;
use crate::ui::html::{UiError, csrf_field, page, query_string, time, workflow_link};
use crate::ui::session::UiSession;
use weft_runtime::ListFilter;
use weft_runtime::engine::ListOrder;

/// Workflows on one page of the list.
pub const PAGE_SIZE: usize = 50;

/// The list's filter fields, as the URL carries them.
const FIELDS: &[&str] = &[
    "status",
    "type",
    "id_prefix",
    "attr",
    "created_after",
    "created_before",
    "updated_after",
    "updated_before",
];

/// `YYYY-MM-DDTHH:MM[:SS]` (what a `datetime-local` input sends), read as UTC, in ms.
fn parse_time(text: &str) -> Option<i64> {
    let (date, clock) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut c = clock.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm) = (c.next()??, c.next()??);
    let ss = c.next().flatten().unwrap_or(0);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400) + hh * 3600 + mm * 60 + ss) * 1000)
}

/// The dashboard's filter fields turned into the API's filter (`attr` is `NAME=VALUE`, a text
/// attribute; times are UTC).
pub(crate) fn filter_of(params: &BTreeMap<String, String>) -> Result<Filter, UiError> {
    let mut api: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in params {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        if is_typed_attribute(key) {
            api.insert(key.clone(), value.to_string());
            continue;
        }
        if !FIELDS.contains(&key.as_str()) {
            continue;
        }
        match key.as_str() {
            "attr" => {
                let Some((name, v)) = value.split_once('=') else {
                    return Err(UiError::new(
                        StatusCode::BAD_REQUEST,
                        "Bad filter",
                        "the attribute filter is `NAME=VALUE`, e.g. `customer=ada`",
                    ));
                };
                api.insert(format!("attr.{}", name.trim()), v.trim().to_string());
            }
            "created_after" | "created_before" | "updated_after" | "updated_before" => {
                let ms = parse_time(value).ok_or_else(|| {
                    UiError::new(
                        StatusCode::BAD_REQUEST,
                        "Bad filter",
                        format!(
                            "`{key}` must be a time like 2026-12-05T10:42 (UTC), got {value:?}"
                        ),
                    )
                })?;
                api.insert(format!("{key}_ms"), ms.to_string());
            }
            _ => {
                api.insert(key.clone(), value.to_string());
            }
        }
    }
    Ok(Filter::from_query(&mut api)?)
}

/// Search attributes of a type the form's `attr` field cannot say, as the API spells them in a
/// URL: `attr_int.NAME=42`, `attr_time_ms.NAME=1700000000000` (and `attr.NAME=text`), so a
/// shared link can carry them.
fn is_typed_attribute(key: &str) -> bool {
    ["attr.", "attr_int.", "attr_time_ms."]
        .iter()
        .any(|prefix| key.len() > prefix.len() && key.starts_with(prefix))
}

/// The filter part of a query, as a query string (for links and the bulk form).
fn filter_query(params: &BTreeMap<String, String>) -> String {
    query_string(
        FIELDS
            .iter()
            .filter_map(|k| params.get(*k).map(|v| (*k, v.as_str())))
            .chain(
                params
                    .iter()
                    .filter(|(k, _)| is_typed_attribute(k))
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            ),
    )
}

/// The words for a list order, for the table's caption and the sort menu.
fn order_words(order: ListOrder) -> &'static str {
    match order {
        ListOrder::Id => "by id",
        ListOrder::CreatedAsc => "oldest created first",
        ListOrder::CreatedDesc => "newest created first",
        ListOrder::UpdatedAsc => "least recently updated first",
        ListOrder::UpdatedDesc => "most recently updated first",
    }
}

/// The list's URL for `filter_qs` sorted by `order` (id order leaves `sort` out).
fn list_url(filter_qs: &str, order: ListOrder) -> String {
    let sort = match order {
        ListOrder::Id => String::new(),
        other => format!("sort={}", sort_name(other)),
    };
    let sep = if filter_qs.is_empty() || sort.is_empty() {
        ""
    } else {
        "&"
    };
    format!("/ui/workflows?{filter_qs}{sep}{sort}")
}

/// The `aria-sort` of a column sorted by `asc` or `desc`, when the list is.
fn aria_sort(order: ListOrder, asc: ListOrder, desc: ListOrder) -> Option<&'static str> {
    if order == asc {
        Some("ascending")
    } else if order == desc {
        Some("descending")
    } else {
        None
    }
}

fn field<'a>(params: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    params.get(key).map_or("", String::as_str)
}

/// The list page.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Markup, UiError> {
    let filter = filter_of(&params)?;
    let order = parse_sort(
        params
            .get("sort")
            .map(String::as_str)
            .filter(|s| !s.is_empty()),
    )?;
    let cursor = params
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(|c| decode_cursor(c))
        .transpose()?;
    let engine_filter = ListFilter {
        order,
        ..filter.to_engine()
    };
    let page_of = shared
        .engine
        .list(&engine_filter, PAGE_SIZE, cursor.as_deref())
        .await?;
    let items: Vec<SummaryView> = page_of.items.into_iter().map(SummaryView::from).collect();
    let filter_qs = filter_query(&params);
    let this_view = list_url(&filter_qs, order);
    let next = page_of.next_page_token.as_deref().map(|t| {
        let sep = if this_view.ends_with('?') { "" } else { "&" };
        format!("{this_view}{sep}cursor={}", encode_cursor(t))
    });
    // A column header sorts by its time, newest first, and again oldest first.
    let sort_by = |newest: ListOrder, oldest: ListOrder| {
        let next = if order == newest { oldest } else { newest };
        list_url(&filter_qs, next)
    };
    let arrow = |asc: ListOrder, desc: ListOrder| {
        if order == asc {
            " ▲"
        } else if order == desc {
            " ▼"
        } else {
            ""
        }
    };
    let statuses = [
        "running",
        "waiting",
        "completed",
        "failed",
        "cancelled",
        "parked",
        "timed_out",
    ];
    let mut types: Vec<String> = shared
        .engine
        .workflow_types()
        .into_iter()
        .map(|t| t.name)
        .collect();
    types.dedup();
    let body = html! {
        h1 { "Workflows" }
        form.filters method="get" action="/ui/workflows" role="search" aria-label="Filter workflows" {
            div { label for="f-status" { "Status" }
                select #f-status name="status" {
                    option value="" { "any" }
                    @for s in statuses { option value=(s) selected[field(&params, "status") == s] { (s) } }
                } }
            div { label for="f-type" { "Type" }
                select #f-type name="type" {
                    option value="" { "any" }
                    @for t in &types { option value=(t) selected[field(&params, "type") == t] { (t) } }
                } }
            div { label for="f-id" { "Id starts with" } input #f-id type="text" name="id_prefix" value=(field(&params, "id_prefix")); }
            div { label for="f-attr" { "Attribute (NAME=VALUE)" } input #f-attr type="text" name="attr" value=(field(&params, "attr")); }
            div { label for="f-ca" { "Created after (UTC)" } input #f-ca type="datetime-local" name="created_after" value=(field(&params, "created_after")); }
            div { label for="f-cb" { "Created before (UTC)" } input #f-cb type="datetime-local" name="created_before" value=(field(&params, "created_before")); }
            div { label for="f-ua" { "Updated after (UTC)" } input #f-ua type="datetime-local" name="updated_after" value=(field(&params, "updated_after")); }
            div { label for="f-ub" { "Updated before (UTC)" } input #f-ub type="datetime-local" name="updated_before" value=(field(&params, "updated_before")); }
            div { label for="f-sort" { "Sort" }
                select #f-sort name="sort" {
                    @for (name, o) in SORTS { option value=(name) selected[*o == order] { (order_words(*o)) } }
                } }
            div { button type="submit" { "Filter" } " " a href="/ui/workflows" { "Clear" } }
        }
        p.hint { "The attribute field matches text; integer and time attributes go in the URL as "
            code { "attr_int.NAME=42" } " and " code { "attr_time_ms.NAME=1700000000000" } "." }
        @if items.is_empty() {
            p #no-workflows { "No workflow matches." }
        } @else {
            table #workflows {
                caption.hint { "Sorted " (order_words(order)) ", " (PAGE_SIZE) " a page." }
                thead { tr {
                    th scope="col" { "Workflow" } th scope="col" { "Type" } th scope="col" { "Status" }
                    th scope="col" { "Step" }
                    th scope="col" aria-sort=[aria_sort(order, ListOrder::CreatedAsc, ListOrder::CreatedDesc)] {
                        a #sort-created href=(sort_by(ListOrder::CreatedDesc, ListOrder::CreatedAsc)) { "Created" (arrow(ListOrder::CreatedAsc, ListOrder::CreatedDesc)) } }
                    th scope="col" aria-sort=[aria_sort(order, ListOrder::UpdatedAsc, ListOrder::UpdatedDesc)] {
                        a #sort-updated href=(sort_by(ListOrder::UpdatedDesc, ListOrder::UpdatedAsc)) { "Updated" (arrow(ListOrder::UpdatedAsc, ListOrder::UpdatedDesc)) } }
                    th scope="col" { "Attributes" }
                } }
                tbody {
                    @for w in &items {
                        tr {
                            td { (workflow_link(&w.id)) }
                            td { (w.workflow_type) " v" (w.version) }
                            td { (status_badge(w.status)) }
                            td { (w.step) }
                            td { (time(w.created_at_ms)) }
                            td { (time(w.updated_at_ms)) }
                            td { @for (k, v) in &w.attributes { code { (k) "=" (serde_json::to_string(v).unwrap_or_default()) } " " } }
                        }
                    }
                }
            }
        }
        nav aria-label="Pages" {
            @if cursor.is_some() { a href=(this_view) { "First page" } " " }
            @if let Some(next) = &next { a #next-page href=(next) { "Next page" } }
        }
        h2 { "Act on every workflow this filter matches" }
        @if session.principal.role == Role::Admin {
            form.action method="post" action="/ui/bulk/cancel" {
                (csrf_field(&session))
                input type="hidden" name="filter" value=(filter_qs);
                button type="submit" { "Cancel all matching…" }
            }
            form.action method="post" action="/ui/bulk/purge" {
                (csrf_field(&session))
                input type="hidden" name="filter" value=(filter_qs);
                button type="submit" { "Purge all matching (finished ones)…" }
            }
            form.action method="post" action="/ui/bulk/signal" {
                (csrf_field(&session))
                input type="hidden" name="filter" value=(filter_qs);
                fieldset {
                    legend { "Signal all matching" }
                    label for="bulk-signal" { "Signal name" }
                    input #bulk-signal type="text" name="signal" required;
                    label for="bulk-payload" { "Payload (JSON)" }
                    textarea #bulk-payload name="payload" { "null" }
                    button type="submit" { "Signal all matching…" }
                }
            }
            p.hint { "Each asks for a confirmation first, with the number of workflows it would touch." }
        } @else {
            p.hint { "Bulk cancel, signal and purge need role admin; you have role " (session.principal.role.as_str()) "." }
        }
    };
    Ok(page("Workflows", &session, body))
}

/// `POST /ui/bulk/{action}`: without `confirm`, a dry run that counts what matches and asks
/// for a confirmation; with it, the action itself, up to the server's `max_bulk`.
pub(crate) async fn bulk(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    Path(action): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Markup, UiError> {
    let filter_qs = form.get("filter").cloned().unwrap_or_default();
    let uri: Uri = format!("/?{filter_qs}")
        .parse()
        .map_err(|_| UiError::new(StatusCode::BAD_REQUEST, "Bad filter", "unreadable filter"))?;
    let Query(params) = Query::<BTreeMap<String, String>>::try_from_uri(&uri)
        .map_err(|e| UiError::new(StatusCode::BAD_REQUEST, "Bad filter", e.body_text()))?;
    let filter = filter_of(&params)?;
    let signal = form.get("signal").cloned().unwrap_or_default();
    let payload_text = form.get("payload").cloned().unwrap_or_default();
    let what = match action.as_str() {
        "cancel" => Action::Cancel,
        "purge" => Action::Purge,
        "signal" => {
            if signal.trim().is_empty() {
                return Err(UiError::new(
                    StatusCode::BAD_REQUEST,
                    "No signal",
                    "name the signal to send",
                ));
            }
            let payload = parse_json(&payload_text)?;
            Action::Signal {
                name: signal.trim().to_string(),
                payload,
            }
        }
        other => {
            return Err(UiError::new(
                StatusCode::NOT_FOUND,
                "No such action",
                format!("unknown bulk action `{other}`; use cancel, signal or purge"),
            ));
        }
    };
    let confirm = form.get("confirm").is_some_and(|c| c == "yes");
    let request = BulkRequest {
        filter,
        dry_run: !confirm,
        limit: None,
    };
    let principal = session.principal.clone();
    let result = {
        let shared = Arc::clone(&shared);
        crate::api::detached::detached(async move {
            bulk::run(&shared, &principal, what, request).await
        })
        .await??
    };
    let verb = match action.as_str() {
        "cancel" => "cancel",
        "purge" => "purge",
        _ => "signal",
    };
    let body = if confirm {
        html! {
            h1 { "Bulk " (verb) ": done" }
            p.notice #bulk-result role="status" {
                "Acted on " (result.matched) " workflows: " (result.succeeded) " succeeded, " (result.failed) " failed."
                @if result.truncated { " More match than one request acts on (" (shared.limits.max_bulk) "): send it again to go on." }
            }
            @if !result.failures.is_empty() {
                table { thead { tr { th scope="col" { "Workflow" } th scope="col" { "Why it failed" } } }
                    tbody { @for f in &result.failures { tr { td { (workflow_link(&f.id)) } td { (f.message) " (" code { (f.code) } ")" } } } } }
            }
            p { a href={ "/ui/workflows?" (filter_qs) } { "Back to the list" } }
        }
    } else {
        html! {
            h1 { "Bulk " (verb) ": confirm" }
            p #bulk-count role="status" {
                strong { (result.matched) } " workflows match this filter"
                @if result.truncated { "; one request acts on at most " (shared.limits.max_bulk) } "."
            }
            @if verb == "signal" { p { "Signal " code { (signal) } " with payload " code { (payload_text) } } }
            form method="post" action={ "/ui/bulk/" (verb) } {
                (csrf_field(&session))
                input type="hidden" name="filter" value=(filter_qs);
                input type="hidden" name="signal" value=(signal);
                input type="hidden" name="payload" value=(payload_text);
                input type="hidden" name="confirm" value="yes";
                button type="submit" { "Yes, " (verb) " them" }
                " "
                a href={ "/ui/workflows?" (filter_qs) } { "No, back to the list" }
            }
        }
    };
    Ok(page(&format!("Bulk {verb}"), &session, body))
}

/// A JSON payload typed into a form; empty means `null`.
pub(crate) fn parse_json(text: &str) -> Result<serde_json::Value, UiError> {
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_str(text).map_err(|e| {
        UiError::new(
            StatusCode::BAD_REQUEST,
            "Not JSON",
            format!("the payload is not valid JSON: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_from_the_form_are_utc() {
        assert_eq!(parse_time("1970-01-01T00:01"), Some(60_000));
        assert_eq!(parse_time("2026-12-05T10:42:07"), Some(1_796_467_327_000));
        assert_eq!(parse_time("2026-13-05T10:42"), None);
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn a_filter_from_the_url_reaches_the_api_filter() {
        let params: BTreeMap<String, String> = [
            ("status", "waiting"),
            ("attr", "customer=ada"),
            ("created_after", "1970-01-01T00:01"),
            ("cursor", "ignored-here"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let filter = filter_of(&params).unwrap();
        assert_eq!(filter.created_after_ms, Some(60_000));
        assert_eq!(filter.attributes.len(), 1);
        assert_eq!(
            filter_query(&params),
            "status=waiting&attr=customer%3Dada&created_after=1970-01-01T00%3A01"
        );
        let typed: BTreeMap<String, String> = [("attr_int.total", "42"), ("cursor", "x")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            filter_of(&typed).unwrap().attributes["total"],
            crate::api::types::Attribute::Int(42)
        );
        assert_eq!(filter_query(&typed), "attr_int.total=42");
        let bad_int: BTreeMap<String, String> =
            [("attr_int.total".to_string(), "many".to_string())].into();
        assert!(filter_of(&bad_int).is_err());
        let bad: BTreeMap<String, String> = [("attr".to_string(), "nope".to_string())].into();
        assert!(filter_of(&bad).is_err());
    }
}
