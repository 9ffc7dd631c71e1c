//! The saga example: book a flight, a hotel and a car on a redb file; the car fails, so the
//! hotel and the flight are cancelled, durably.
//!
//! ```text
//! cargo run -p weft-examples --bin trip                             # car fails, both undone
//! cargo run -p weft-examples --bin trip -- --fresh --crash-after 3  # abort mid-undo...
//! cargo run -p weft-examples --bin trip                             # ...and resume the undo
//! cargo run -p weft-examples --bin trip -- --fresh --car ok         # everything booked
//! ```
//!
//! Run with `--help` for every option.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use weft_examples::cli::{self, Flags};
use weft_examples::trip::{Agency, TripRequest, trip};
use weft_runtime::engine::Pending;
use weft_runtime::storage::RedbStorage;
use weft_runtime::{Engine, Resources, StartOptions};

const USAGE: &str = "\
Books a trip (flight, hotel, car) with a durable saga on a redb file: when the car booking
fails, the hotel and then the flight are cancelled, each undo committed as it finishes.

usage: trip [--db PATH] [--trip ID] [--car ok|fail] [--crash-after N] [--fresh]

  --db PATH         the redb file holding the workflow (default: trip.redb); the providers'
                    booking ledger goes next to it, in PATH with the extension .bookings.log
  --trip ID         the trip's id, also its workflow id (default: trip-1); a trip already in
                    the file is not started again: it is resumed, or its outcome is shown
  --car ok|fail     whether the car rental succeeds (default: fail)
  --crash-after N   abort the process (std::process::abort, as abrupt as kill -9) right after
                    the N-th booking or cancellation, before its result is committed; rerun
                    without the flag to resume (with the car failing, 1 and 2 are the
                    flight and hotel bookings, 3 and 4 their cancellations)
  --fresh           delete the database and the ledger first, to start over
  -h, --help        print this help
";

struct Args {
    db: PathBuf,
    trip: String,
    fail_car: bool,
    crash_after: Option<u64>,
    fresh: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        db: PathBuf::from("trip.redb"),
        trip: "trip-1".to_string(),
        fail_car: true,
        crash_after: None,
        fresh: false,
    };
    let mut flags = Flags::from_env();
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--db" => args.db = PathBuf::from(flags.value()?),
            "--trip" => args.trip = flags.value()?,
            "--car" => {
                args.fail_car = match flags.value()?.as_str() {
                    "ok" => false,
                    "fail" => true,
                    other => return Err(format!("--car takes ok or fail, not `{other}`")),
                }
            }
            "--crash-after" => args.crash_after = Some(flags.positive()?),
            "--fresh" => args.fresh = true,
            other => return Err(cli::unknown(other)),
        }
    }
    Ok(Some(args))
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::main("trip", USAGE, parse_args, run).await
}

async fn run(args: Args) -> Result<(), String> {
    let ledger = args.db.with_extension("bookings.log");
    if args.fresh {
        cli::delete_fresh(&[&args.db, &ledger])?;
    }
    let storage = Arc::new(RedbStorage::create(&args.db).map_err(|e| e.to_string())?);

    // A first look at the file, with an engine that does not recover, so this report comes
    // before the resumed workflow starts printing.
    let peek = Engine::builder(Arc::clone(&storage))
        .register::<trip>()
        .recover(false)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let before = peek.describe(&args.trip).await.ok();
    peek.shutdown().await;
    match &before {
        None => {}
        Some(stored) if stored.status.is_terminal() => println!(
            "{} is already in {} ({:?}); showing its outcome (pass --fresh to start over).",
            args.trip,
            args.db.display(),
            stored.status
        ),
        Some(stored) => {
            let waiting = match &stored.pending {
                Some(Pending::Activity {
                    name,
                    attempt,
                    max_attempts,
                }) => format!(
                    "activity {name} (attempt {attempt} of {max_attempts}; it runs again as the next attempt)"
                ),
                other => format!("{other:?}"),
            };
            println!(
                "Resuming {} from its last committed step (step {}, at {}), waiting on {waiting}:",
                args.trip,
                stored.step,
                stored.state_name.unwrap_or("?")
            );
        }
    }

    let mut agency = Agency::new(&ledger).failing_car(args.fail_car);
    if let Some(n) = args.crash_after {
        println!(
            "--crash-after {n}: this process will abort right after its booking or cancellation \
             number {n}"
        );
        agency = agency.crash_after(n);
    }
    // Building the engine resumes the trip if a previous process left it in flight.
    let engine = Engine::builder(storage)
        .register::<trip>()
        .resources(Resources::new().with(agency))
        .build()
        .await
        .map_err(|e| e.to_string())?;

    let request = TripRequest {
        id: args.trip.clone(),
        traveller: "Ada Lovelace".to_string(),
        city: "Lisbon".to_string(),
        nights: 3,
    };
    if before.is_none() {
        println!(
            "Booking {}: flight, hotel and car for {} in {} (car rental set to {}):",
            request.id,
            request.traveller,
            request.city,
            if args.fail_car { "fail" } else { "succeed" }
        );
    }
    engine
        .start_with::<trip>(
            request.clone(),
            StartOptions {
                id: Some(request.id.clone()),
                idempotency_key: Some(request.id.clone()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let outcome = engine
        .result::<trip>(&request.id)
        .await
        .map_err(|e| format!("{}: {e}", request.id))?;

    println!();
    match &outcome {
        Ok(itinerary) => {
            println!("{}: booked", itinerary.trip_id);
            for booking in [&itinerary.flight, &itinerary.hotel, &itinerary.car] {
                println!(
                    "    {:<6} {}  {}",
                    booking.kind, booking.code, booking.detail
                );
            }
        }
        Err(e) => println!("{}: failed: {e}", request.id),
    }
    let agency = Agency::new(&ledger);
    let entries = agency.ledger().entries().map_err(|e| e.to_string())?;
    let active = agency.ledger().active().map_err(|e| e.to_string())?;
    println!(
        "The providers' ledger ({}): {} lines, {} bookings still active{}",
        ledger.display(),
        entries.len(),
        active.len(),
        if active.is_empty() {
            String::new()
        } else {
            format!(": {}", active.join(", "))
        }
    );
    engine.shutdown().await;
    Ok(())
}
