//! Forms built from a payload's JSON Schema, where the engine knows it: a flat object of
//! strings, numbers and booleans becomes one labelled input per field, and the posted fields
//! become the JSON payload again, typed by the same schema. Any other shape (nested objects,
//! enums, arrays) is left to the JSON editor beside it.

use std::collections::HashMap;

use axum::http::StatusCode;
use maud::{Markup, html};
use serde_json::{Map, Value};

use crate::ui::html::UiError;

/// The prefix of a schema form's field names, so they cannot collide with the form's own.
pub(crate) const FIELD_PREFIX: &str = "field.";

/// What one field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Integer,
    Number,
    Boolean,
}

/// One input of a schema form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    pub name: String,
    pub kind: Kind,
    /// Required and not nullable: an empty input is refused rather than sent as `null`.
    pub required: bool,
    pub description: Option<String>,
}

fn kind_of(schema: &Value) -> Option<(Kind, bool)> {
    let (types, nullable): (Vec<&str>, bool) = match &schema["type"] {
        Value::String(t) => (vec![t.as_str()], false),
        Value::Array(ts) => {
            let names: Vec<&str> = ts.iter().filter_map(Value::as_str).collect();
            let nullable = names.contains(&"null");
            (
                names.into_iter().filter(|t| *t != "null").collect(),
                nullable,
            )
        }
        _ => return None,
    };
    let kind = match types[..] {
        ["string"] if schema.get("enum").is_none() => Kind::Text,
        ["integer"] => Kind::Integer,
        ["number"] => Kind::Number,
        ["boolean"] => Kind::Boolean,
        _ => return None,
    };
    Some((kind, nullable))
}

/// The fields of a flat object schema, or `None` when the schema is of another shape.
pub(crate) fn fields(schema: &Value) -> Option<Vec<Field>> {
    if schema["type"] != "object" {
        return None;
    }
    let properties = schema["properties"].as_object()?;
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    properties
        .iter()
        .map(|(name, property)| {
            let (kind, nullable) = kind_of(property)?;
            Some(Field {
                name: name.clone(),
                kind,
                required: required.contains(&name.as_str()) && !nullable,
                description: property["description"].as_str().map(str::to_string),
            })
        })
        .collect()
}

/// The inputs of a schema form, with `id`s under `prefix`.
pub(crate) fn inputs(prefix: &str, fields: &[Field]) -> Markup {
    html! {
        @for f in fields {
            @let id = format!("{prefix}-{}", f.name);
            @let name = format!("{FIELD_PREFIX}{}", f.name);
            p {
                @match f.kind {
                    Kind::Boolean => {
                        input id=(id) type="checkbox" name=(name) value="true";
                        " "
                        label for=(id) { (f.name) }
                    }
                    kind => {
                        label for=(id) { (f.name) @if !f.required { " (optional)" } }
                        @let input_type = if kind == Kind::Text { "text" } else { "number" };
                        @let step = if kind == Kind::Number { "any" } else { "1" };
                        input id=(id) type=(input_type) step=[(kind != Kind::Text).then_some(step)] name=(name) required[f.required];
                    }
                }
                @if let Some(d) = &f.description { " " span.hint { (d) } }
            }
        }
    }
}

/// The JSON payload the posted fields of a schema form stand for.
pub(crate) fn payload(fields: &[Field], form: &HashMap<String, String>) -> Result<Value, UiError> {
    let bad = |message: String| UiError::new(StatusCode::BAD_REQUEST, "Bad field", message);
    let mut object = Map::new();
    for f in fields {
        let raw = form
            .get(&format!("{FIELD_PREFIX}{}", f.name))
            .map(|v| v.trim())
            .unwrap_or("");
        let value = match f.kind {
            // An unchecked box is not posted at all.
            Kind::Boolean => Value::Bool(raw == "true"),
            _ if raw.is_empty() => {
                if f.required {
                    return Err(bad(format!("`{}` is required", f.name)));
                }
                Value::Null
            }
            Kind::Text => Value::String(raw.to_string()),
            Kind::Integer => raw
                .parse::<i64>()
                .map(Value::from)
                .or_else(|_| raw.parse::<u64>().map(Value::from))
                .map_err(|_| bad(format!("`{}` must be an integer, got {raw:?}", f.name)))?,
            Kind::Number => raw
                .parse::<f64>()
                .ok()
                .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number))
                .ok_or_else(|| bad(format!("`{}` must be a number, got {raw:?}", f.name)))?,
        };
        object.insert(f.name.clone(), value);
    }
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "carrier": { "type": "string", "description": "who carries it" },
                "count": { "type": "integer", "format": "uint32", "minimum": 0 },
                "weight": { "type": ["number", "null"] },
                "fragile": { "type": "boolean" }
            },
            "required": ["carrier", "count", "fragile"]
        })
    }

    #[test]
    fn a_flat_schema_makes_a_form_and_its_fields_make_the_payload() {
        let fields = fields(&schema()).unwrap();
        assert_eq!(fields.len(), 4);
        let html = inputs("s", &fields).into_string();
        assert!(
            html.contains(r#"<label for="s-carrier">carrier</label>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"type="number" step="1" name="field.count" required"#),
            "{html}"
        );
        assert!(html.contains("weight (optional)"), "{html}");
        let form: HashMap<String, String> = [
            ("field.carrier", "rail"),
            ("field.count", "3"),
            ("field.weight", ""),
            ("field.fragile", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            payload(&fields, &form).unwrap(),
            json!({ "carrier": "rail", "count": 3, "weight": null, "fragile": true })
        );
        let mut bad = form.clone();
        bad.insert("field.count".into(), "three".into());
        assert!(payload(&fields, &bad).is_err());
        bad.insert("field.count".into(), String::new());
        assert!(
            payload(&fields, &bad).is_err(),
            "a required field left empty"
        );
    }

    #[test]
    fn other_shapes_are_left_to_the_json_editor() {
        assert!(fields(&json!({ "type": "string" })).is_none());
        assert!(
            fields(&json!({ "type": "object", "properties": { "to": { "type": "object" } } }))
                .is_none()
        );
        assert!(
            fields(&json!({ "type": "object", "properties": { "e": { "type": "string", "enum": ["a"] } } }))
                .is_none()
        );
    }
}
