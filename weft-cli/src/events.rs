//! `weft events`: follows a Server-Sent Events stream and prints each event as it arrives.

use reqwest::Method;
use serde_json::Value;

use crate::client::{CliError, Client, segment};
use crate::output::{Format, cell};

/// One parsed event.
struct Sse {
    id: Option<String>,
    event: String,
    data: String,
}

/// Takes the complete events out of `buffer`, leaving a partial one.
fn drain(buffer: &mut String) -> Vec<Sse> {
    let mut out = Vec::new();
    while let Some(end) = buffer.find("\n\n") {
        let block: String = buffer.drain(..end + 2).collect();
        let mut sse = Sse {
            id: None,
            event: "message".into(),
            data: String::new(),
        };
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id:") {
                sse.id = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("event:") {
                sse.event = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                if !sse.data.is_empty() {
                    sse.data.push('\n');
                }
                sse.data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        if !sse.data.is_empty() {
            out.push(sse);
        }
    }
    out
}

fn line(format: Format, sse: &Sse) -> String {
    let data: Value = serde_json::from_str(&sse.data).unwrap_or(Value::String(sse.data.clone()));
    match format {
        Format::Json | Format::Jsonl => {
            serde_json::json!({ "id": sse.id, "event": sse.event, "data": data }).to_string()
        }
        Format::Table => match sse.event.as_str() {
            "description" => format!(
                "{:<18} {:<11} {} {} step {}{}",
                "-",
                "description",
                cell(&data["id"]),
                cell(&data["status"]),
                cell(&data["step"]),
                data["waiting_on"]
                    .as_str()
                    .map(|w| format!(", {w}"))
                    .unwrap_or_default()
            ),
            "step" => format!(
                "{:<18} {:<11} {} {} step {}",
                sse.id.as_deref().unwrap_or("-"),
                "step",
                cell(&data["workflow_id"]),
                cell(&data["status"]),
                cell(&data["step"])
            ),
            "signal" => format!(
                "{:<18} {:<11} {} {}",
                sse.id.as_deref().unwrap_or("-"),
                "signal",
                cell(&data["workflow_id"]),
                cell(&data["signal"])
            ),
            "gap" => format!(
                "{:<18} {:<11} {}",
                sse.id.as_deref().unwrap_or("-"),
                "gap",
                cell(&data["message"])
            ),
            other => format!(
                "{:<18} {:<11} {}",
                sse.id.as_deref().unwrap_or("-"),
                other,
                sse.data
            ),
        },
    }
}

/// Follows one workflow's events (until it finishes) or every workflow's (until interrupted or
/// the server stops), printing each.
///
/// # Errors
///
/// The server's error, or a failure to connect.
pub async fn follow(
    client: &Client,
    format: Format,
    id: Option<String>,
    workflow_type: Option<String>,
    status: Option<String>,
    last_event_id: Option<u64>,
) -> Result<(), CliError> {
    let path = match &id {
        Some(id) => format!("/v1/workflows/{}/events", segment(id)),
        None => "/v1/events".to_string(),
    };
    let mut query = Vec::new();
    if id.is_some() && (workflow_type.is_some() || status.is_some()) {
        return Err(CliError::Usage(
            "--type and --status filter every workflow's events; leave out the id".into(),
        ));
    }
    if let Some(t) = workflow_type {
        query.push(("type".to_string(), t));
    }
    if let Some(s) = status {
        query.push(("status".to_string(), s));
    }
    let mut request = client.request(Method::GET, &path).query(&query);
    if let Some(last) = last_event_id {
        request = request.header("Last-Event-ID", last.to_string());
    }
    let mut response = request
        .send()
        .await
        .map_err(|source| client.connect_error(source))?;
    if !response.status().is_success() {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        return Err(CliError::Api {
            status,
            code: cell(&body["code"]),
            message: cell(&body["message"]),
        });
    }
    let mut buffer = String::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|source| client.connect_error(source))?
    {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        for sse in drain(&mut buffer) {
            println!("{}", line(format, &sse));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_on_blank_lines_and_comments_are_skipped() {
        let mut buffer =
            ":keep-alive\n\nid: 7\nevent: step\ndata: {\"step\":1}\n\nid: 8\nev".to_string();
        let events = drain(&mut buffer);
        assert_eq!(events.len(), 1);
        assert_eq!(
            (
                events[0].id.as_deref(),
                events[0].event.as_str(),
                events[0].data.as_str()
            ),
            (Some("7"), "step", "{\"step\":1}")
        );
        assert_eq!(buffer, "id: 8\nev");
    }
}
