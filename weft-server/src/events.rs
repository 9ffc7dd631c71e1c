//! Live events as Server-Sent Events: each committed step of a workflow (from
//! `Engine::subscribe`) and each signal this server accepted, with an event id that increases
//! monotonically (it starts at the server's start time in microseconds, so ids of a later run
//! are larger), kept in a bounded in-memory ring so a client that reconnects with
//! `Last-Event-ID` misses nothing still in the window.
//!
//! The ring holds only these small notices, never workflow history: the record stays the one
//! source of truth. A client whose `Last-Event-ID` fell out of the window (or came from another
//! run) is told so with a `gap` event, and a workflow's stream then sends the current
//! description.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::response::sse::Event;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};
use utoipa::ToSchema;
use weft_runtime::Engine;

use crate::api::types::Status;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A step was committed durably (`step`, `status`).
    Step,
    /// A signal sent through this server was stored (`signal`).
    Signal,
    /// Events were lost: the server fell behind the engine (`missed` says how many), or the
    /// client's `Last-Event-ID` is outside the window.
    Gap,
}

/// One event of the stream; the SSE `id` is `event_id` and the SSE `event` is `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServerEvent {
    /// Increases by one per event over the server's life.
    pub event_id: u64,
    /// What happened.
    pub kind: EventKind,
    /// When the server heard of it (ms since the epoch).
    pub at_ms: u64,
    /// The workflow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// The workflow's type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub workflow_type: Option<String>,
    /// Steps committed so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u64>,
    /// The status after the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// The signal's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// How many events were lost, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missed: Option<u64>,
    /// Why, for a gap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ServerEvent {
    fn new(kind: EventKind) -> Self {
        ServerEvent {
            event_id: 0,
            kind,
            at_ms: now_ms(),
            workflow_id: None,
            workflow_type: None,
            step: None,
            status: None,
            signal: None,
            missed: None,
            message: None,
        }
    }

    /// As an SSE event.
    pub(crate) fn to_sse(&self) -> Event {
        let kind = match self.kind {
            EventKind::Step => "step",
            EventKind::Signal => "signal",
            EventKind::Gap => "gap",
        };
        let event = Event::default()
            .event(kind)
            .data(serde_json::to_string(self).unwrap_or_default());
        if self.event_id == 0 {
            event
        } else {
            event.id(self.event_id.to_string())
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct Ring {
    next_id: u64,
    events: VecDeque<Arc<ServerEvent>>,
}

/// The event ring, the live feed, and the count of open streams.
pub(crate) struct Events {
    window: usize,
    ring: Mutex<Ring>,
    live: broadcast::Sender<Arc<ServerEvent>>,
    closed: watch::Sender<bool>,
    streams: Arc<Semaphore>,
}

/// Which events a stream carries.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventFilter {
    pub workflow_id: Option<String>,
    pub workflow_type: Option<String>,
    pub status: Option<Status>,
    pub id_prefix: Option<String>,
    /// End the stream after a final status of its workflow.
    pub end_when_finished: bool,
    /// Skip step events at or before this step: the description the stream began with shows
    /// them already (the engine's event for a step can reach the ring after that description
    /// was read).
    pub after_step: Option<u64>,
}

impl EventFilter {
    fn matches(&self, event: &ServerEvent) -> bool {
        if event.kind == EventKind::Gap {
            return true;
        }
        let id = event.workflow_id.as_deref().unwrap_or("");
        self.workflow_id.as_deref().is_none_or(|w| w == id)
            && self.id_prefix.as_deref().is_none_or(|p| id.starts_with(p))
            && self
                .workflow_type
                .as_deref()
                .is_none_or(|t| event.workflow_type.as_deref() == Some(t))
            && self.status.is_none_or(|s| event.status == Some(s))
            && !(event.kind == EventKind::Step
                && self
                    .after_step
                    .is_some_and(|after| event.step.is_some_and(|step| step <= after)))
    }
}

/// Where a reconnecting client stands.
pub(crate) enum Resume {
    /// A fresh stream.
    Fresh,
    /// Every event after its id is still in the ring.
    InWindow,
    /// Some events after its id are gone.
    OutOfWindow,
}

/// What a new stream starts from.
pub(crate) struct Subscription {
    pub resume: Resume,
    last: u64,
    replay: VecDeque<Arc<ServerEvent>>,
    live: broadcast::Receiver<Arc<ServerEvent>>,
    closed: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
}

impl Events {
    pub(crate) fn new(window: usize, max_streams: usize) -> Arc<Self> {
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        Arc::new(Events {
            window: window.max(1),
            ring: Mutex::new(Ring {
                next_id: start.max(1),
                events: VecDeque::new(),
            }),
            live: broadcast::channel(1024).0,
            closed: watch::channel(false).0,
            streams: Arc::new(Semaphore::new(max_streams)),
        })
    }

    /// Assigns the next id to `event`, keeps it in the ring and sends it to open streams.
    pub(crate) fn publish(&self, mut event: ServerEvent) {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        event.event_id = ring.next_id;
        ring.next_id += 1;
        let event = Arc::new(event);
        if ring.events.len() == self.window {
            ring.events.pop_front();
        }
        ring.events.push_back(Arc::clone(&event));
        // Sent under the lock, so a new stream's replay and live feed neither overlap wrongly
        // nor leave a hole.
        let _ = self.live.send(event);
    }

    /// Records a signal accepted through this server.
    pub(crate) fn signal_accepted(&self, workflow_id: &str, signal: &str) {
        let mut event = ServerEvent::new(EventKind::Signal);
        event.workflow_id = Some(workflow_id.to_string());
        event.signal = Some(signal.to_string());
        self.publish(event);
    }

    /// Feeds the engine's committed steps into the ring until the engine stops.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: an event is published whole or not at all.
    pub(crate) async fn pump(self: Arc<Self>, engine: Engine) {
        let mut steps = engine.subscribe();
        drop(engine);
        loop {
            match steps.recv().await {
                Ok(step) => {
                    let mut event = ServerEvent::new(EventKind::Step);
                    event.workflow_id = Some(step.id);
                    event.workflow_type = Some(step.workflow_type);
                    event.step = Some(step.step);
                    event.status = Some(step.status.into());
                    self.publish(event);
                }
                Err(RecvError::Lagged(missed)) => {
                    let mut event = ServerEvent::new(EventKind::Gap);
                    event.missed = Some(missed);
                    event.message = Some(
                        "the server fell behind the engine and lost these step events; read the workflows to catch up".into(),
                    );
                    self.publish(event);
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Ends every open stream (at shutdown) and refuses new ones.
    pub(crate) fn close(&self) {
        let _ = self.closed.send(true);
    }

    /// Opens a stream resuming after `last_event_id`; `None` when `max_event_streams` are open.
    pub(crate) fn subscribe(&self, last_event_id: Option<u64>) -> Option<Subscription> {
        let permit = Arc::clone(&self.streams).try_acquire_owned().ok()?;
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let oldest = ring.events.front().map_or(ring.next_id, |e| e.event_id);
        let (resume, replay) = match last_event_id {
            None => (Resume::Fresh, VecDeque::new()),
            Some(last) if last + 1 >= oldest && last < ring.next_id => (
                Resume::InWindow,
                ring.events
                    .iter()
                    .filter(|e| e.event_id > last)
                    .cloned()
                    .collect(),
            ),
            Some(_) => (Resume::OutOfWindow, ring.events.iter().cloned().collect()),
        };
        let last = match resume {
            Resume::InWindow => last_event_id.unwrap_or(0),
            Resume::Fresh | Resume::OutOfWindow => 0,
        };
        Some(Subscription {
            resume,
            last,
            replay,
            live: self.live.subscribe(),
            closed: self.closed.subscribe(),
            permit,
        })
    }
}

/// A stream's state between events.
struct Feed {
    first: VecDeque<Event>,
    replay: VecDeque<Arc<ServerEvent>>,
    live: broadcast::Receiver<Arc<ServerEvent>>,
    closed: watch::Receiver<bool>,
    last: u64,
    filter: EventFilter,
    done: bool,
    _permit: OwnedSemaphorePermit,
}

impl Feed {
    async fn next(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        if let Some(event) = self.first.pop_front() {
            return Some(event);
        }
        loop {
            let event = match self.replay.pop_front() {
                Some(event) => event,
                None => {
                    if *self.closed.borrow() {
                        return None;
                    }
                    tokio::select! {
                        received = self.live.recv() => match received {
                            Ok(event) => event,
                            Err(RecvError::Lagged(missed)) => {
                                // Reconnecting with the last id replays from the ring.
                                self.done = true;
                                let mut gap = ServerEvent::new(EventKind::Gap);
                                gap.missed = Some(missed);
                                gap.message = Some("this stream fell behind; reconnect with Last-Event-ID to catch up from the server's window".into());
                                return Some(gap.to_sse());
                            }
                            Err(RecvError::Closed) => return None,
                        },
                        _ = self.closed.changed() => return None,
                    }
                }
            };
            if event.event_id <= self.last {
                continue;
            }
            self.last = event.event_id;
            if !self.filter.matches(&event) {
                continue;
            }
            if self.filter.end_when_finished
                && event.kind == EventKind::Step
                && event.status.is_some_and(Status::is_terminal)
            {
                self.done = true;
            }
            return Some(event.to_sse());
        }
    }
}

/// The SSE stream of `subscription`: `first` (a gap notice or a description), then the
/// replayed events after the client's last id, then live ones, each passing `filter`.
pub(crate) fn stream(
    subscription: Subscription,
    first: Vec<Event>,
    filter: EventFilter,
) -> impl futures_util::Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let feed = Feed {
        first: first.into(),
        replay: subscription.replay,
        live: subscription.live,
        closed: subscription.closed,
        last: subscription.last,
        filter,
        done: false,
        _permit: subscription.permit,
    };
    futures_util::stream::unfold(feed, |mut feed| async move {
        feed.next().await.map(|event| (Ok(event), feed))
    })
}

/// A gap notice for a client whose `Last-Event-ID` is out of the window.
pub(crate) fn out_of_window(last_event_id: u64) -> Event {
    let mut gap = ServerEvent::new(EventKind::Gap);
    gap.message = Some(format!(
        "events after {last_event_id} are no longer in this server's window (or came from another run); what follows starts from the oldest kept event"
    ));
    gap.to_sse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_that_began_with_a_description_skips_the_steps_it_shows() {
        let filter = EventFilter {
            workflow_id: Some("p-1".into()),
            after_step: Some(1),
            ..EventFilter::default()
        };
        let step = |n| {
            let mut event = ServerEvent::new(EventKind::Step);
            event.workflow_id = Some("p-1".into());
            event.step = Some(n);
            event
        };
        assert!(!filter.matches(&step(0)));
        assert!(!filter.matches(&step(1)));
        assert!(filter.matches(&step(2)));
        let mut signal = ServerEvent::new(EventKind::Signal);
        signal.workflow_id = Some("p-1".into());
        assert!(filter.matches(&signal), "only steps are skipped");
        assert!(EventFilter::default().matches(&step(0)));
    }
}
