//! Queries and versioning: support tickets wait for a reply; the desk reads their state with
//! typed queries (no write, no wake-up); then version 2 is deployed with a checked migration,
//! the waiting tickets move to it, and one the migration refuses is parked, not lost.
//!
//! ```text
//! cargo run -p weft-examples --bin support_desk
//! ```
//!
//! Both "deployments" run in this one process on one memory store; on a redb file the second
//! would be the next release of the program. See `docs/versioning.md`.

#![allow(non_camel_case_types)]

use serde::{Deserialize, Serialize};
use weft_runtime::engine::WorkflowStatus;
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{
    Engine, MigrationError, Query, Signal, WorkflowContext, WorkflowError, workflow,
};

/// An agent's answer to a ticket.
#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Reply {
    text: String,
}

/// Version 1: a ticket waits for one reply.
#[workflow(name = "ticket", version = 1)]
async fn ticket_v1(ctx: &mut WorkflowContext, subject: String) -> Result<String, WorkflowError> {
    let reply = ctx.wait_for_signal::<Reply>().await;
    Ok(format!("{subject}: {}", reply.text))
}

/// Version 2 keeps a priority across the wait, so its state enum has another shape.
#[workflow(name = "ticket", version = 2)]
async fn ticket_v2(ctx: &mut WorkflowContext, subject: String) -> Result<String, WorkflowError> {
    let priority: u8 = if subject.contains("outage") { 1 } else { 3 };
    let reply = ctx.wait_for_signal::<Reply>().await;
    Ok(format!("[P{priority}] {subject}: {}", reply.text))
}

/// What the desk sees of a version 1 ticket.
struct Status;

impl Query for Status {
    type Workflow = ticket_v1;
    type Output = String;
    const NAME: &'static str = "status";
    fn answer(state: &TicketV1State) -> String {
        match state {
            TicketV1State::Start { subject } => format!("new: {subject}"),
            TicketV1State::AwaitSignalReply { subject } => format!("awaiting a reply: {subject}"),
        }
    }
}

/// The same question of a version 2 ticket; registered under the same name, so
/// `query_by_name("status")` answers for either version.
struct StatusV2;

impl Query for StatusV2 {
    type Workflow = ticket_v2;
    type Output = String;
    const NAME: &'static str = "status";
    fn answer(state: &TicketV2State) -> String {
        match state {
            TicketV2State::Start { subject } => format!("new: {subject}"),
            TicketV2State::AwaitSignalReply { subject, priority } => {
                format!("awaiting a reply (P{priority}): {subject}")
            }
        }
    }
}

/// The checked migration: one arm per version 1 variant, each to the version 2 variant that
/// waits for the same signal. Legal tickets need a person to set their priority.
fn upgrade(old: TicketV1State) -> Result<TicketV2State, MigrationError> {
    Ok(match old {
        TicketV1State::Start { subject } => TicketV2State::Start { subject },
        TicketV1State::AwaitSignalReply { subject } => {
            if subject.starts_with("legal") {
                return Err(MigrationError::new(
                    "legal tickets get their priority from a person",
                ));
            }
            let priority = if subject.contains("outage") { 1 } else { 2 };
            TicketV2State::AwaitSignalReply { subject, priority }
        }
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = MemoryStorage::new();

    println!("-- release 1");
    let release_1 = Engine::builder(store.clone())
        .register::<ticket_v1>()
        .build()
        .await?;
    let mut ids = Vec::new();
    for subject in ["outage in eu-west", "invoice copy", "legal hold request"] {
        ids.push(
            release_1
                .start::<ticket_v1>(subject.into())
                .await?
                .id()
                .to_string(),
        );
    }
    while release_1.active_workflows() > 0 {
        tokio::task::yield_now().await;
    }
    let commits = release_1.stats().transitions;
    for id in &ids {
        println!("{id}: {}", release_1.query::<Status>(id).await?);
    }
    assert_eq!(
        release_1.stats().transitions,
        commits,
        "queries never write"
    );
    release_1.shutdown().await;

    println!("-- release 2, migrating waiting tickets from version 1");
    let release_2 = Engine::builder(store.clone())
        .register::<ticket_v2>()
        .migrate::<ticket_v1, ticket_v2>(upgrade)
        .query::<StatusV2>()
        .build()
        .await?;
    for id in &ids {
        let d = release_2.describe(id).await?;
        match (d.status, d.park_reason) {
            (WorkflowStatus::Parked, Some(reason)) => {
                println!(
                    "{id}: v{} parked ({}): {}",
                    d.version, reason.code, reason.message
                )
            }
            _ => println!(
                "{id}: v{} {}",
                d.version,
                release_2.query_by_name(id, "status").await?
            ),
        }
    }
    let fresh = release_2
        .start::<ticket_v2>("outage in us-east".into())
        .await?;
    println!(
        "{}: v{} (new starts use the latest)",
        fresh.id(),
        fresh.describe().await?.version
    );

    for id in ids.iter().chain([fresh.id().to_string()].iter()) {
        release_2
            .signal(
                id,
                Reply {
                    text: "on it".into(),
                },
            )
            .await?;
    }
    for id in ids.iter().take(2).chain([fresh.id().to_string()].iter()) {
        println!("{id}: done: {}", release_2.result::<ticket_v2>(id).await??);
    }
    println!(
        "{}: still parked, its reply queued; a release with a fixed migration resumes it",
        ids[2]
    );
    Ok(())
}
