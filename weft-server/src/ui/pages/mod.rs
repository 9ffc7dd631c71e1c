//! The dashboard's pages, one module each: the overview, the workflow list with its bulk
//! actions, one workflow with its actions, and the review inbox.

use maud::{Markup, html};

use crate::api::types::Status;

pub(crate) mod overview;
pub(crate) mod reviews;
pub(crate) mod schema_form;
pub(crate) mod workflow;
pub(crate) mod workflows;

/// A status as a badge (its text says the status, the colour only repeats it).
pub(crate) fn status_badge(status: Status) -> Markup {
    html! { span class={ "status status-" (status.as_str()) } { (status.as_str()) } }
}

/// The API's spelling of a status the engine's counters name by `Debug` (`TimedOut`).
pub(crate) fn status_from_counter(name: &str) -> Option<Status> {
    let mut snake = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    Status::parse(&snake)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_names_map_onto_statuses() {
        assert_eq!(status_from_counter("TimedOut"), Some(Status::TimedOut));
        assert_eq!(status_from_counter("Waiting"), Some(Status::Waiting));
        assert_eq!(status_from_counter("Sleeping"), None);
    }
}
