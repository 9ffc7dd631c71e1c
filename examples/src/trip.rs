//! The saga example: book a flight, a hotel and a car; if a booking fails, undo the ones that
//! succeeded, last first.
//!
//! After each booking succeeds, the workflow registers its undo in a [`Saga`]. The saga is
//! ordinary workflow state, saved at every durable await. Undoing is a loop of durable
//! operations, `while let Some(step) = saga.pop() { ctx.compensate(step).await?; }`: each undo
//! is popped before it runs and committed with its result, so a crash in the middle of undoing
//! resumes with the undos still left; it neither starts over nor skips one.
//!
//! [`Agency`] is the resource every activity reads: a booking ledger in a file (bookings and
//! cancellations, one a line, keyed by the booking id, so a booking re-run after a crash is
//! found rather than made twice), the car-rental failure switch, and the `--crash-after` switch
//! of the `trip` program.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use weft_runtime::{
    ActivityContext, ActivityError, Saga, WorkflowContext, WorkflowError, activity, workflow,
};

use crate::crash_point::CrashPoint;

/// A trip to book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TripRequest {
    /// The trip's id, also used as the workflow id.
    pub id: String,
    /// Who travels.
    pub traveller: String,
    /// Where to.
    pub city: String,
    /// How many nights.
    pub nights: u32,
}

/// A confirmed booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    /// What was booked: `flight`, `hotel` or `car`.
    pub kind: String,
    /// The provider's confirmation code.
    pub code: String,
    /// For people: what it is.
    pub detail: String,
}

/// The booked trip: the workflow's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Itinerary {
    /// The trip's id.
    pub trip_id: String,
    /// The flight.
    pub flight: Booking,
    /// The hotel.
    pub hotel: Booking,
    /// The car.
    pub car: Booking,
}

/// The trip: book the flight, then the hotel, then the car. A booking that fails undoes the
/// earlier ones, durably, in reverse order, and the trip fails with what happened.
#[workflow]
pub async fn trip(
    ctx: &mut WorkflowContext,
    request: TripRequest,
) -> Result<Itinerary, WorkflowError> {
    let mut saga: Saga = Saga::new();

    let flight: Booking = match ctx.run(book_flight, request.clone()).await {
        Ok(booking) => booking,
        Err(e) => return Err(WorkflowError::failed(format!("flight booking failed: {e}"))),
    };
    saga.add(cancel_booking, flight.clone());

    let hotel: Booking = match ctx.run(book_hotel, request.clone()).await {
        Ok(booking) => booking,
        Err(e) => {
            let failure: String = format!("hotel booking failed ({e}); the flight was cancelled");
            while let Some(step) = saga.pop() {
                ctx.compensate(step).await?;
            }
            return Err(WorkflowError::failed(failure));
        }
    };
    saga.add(cancel_booking, hotel.clone());

    let car: Booking = match ctx.run(book_car, request.clone()).await {
        Ok(booking) => booking,
        Err(e) => {
            let failure: String =
                format!("car booking failed ({e}); the hotel and the flight were cancelled");
            // Undo the hotel, then the flight. Each undo is popped before it runs and committed
            // with its result: a crash here resumes with the undos still left.
            while let Some(step) = saga.pop() {
                ctx.compensate(step).await?;
            }
            return Err(WorkflowError::failed(failure));
        }
    };
    // Every step succeeded: nothing to undo any more.
    saga.clear();
    Ok(Itinerary {
        trip_id: request.id,
        flight,
        hotel,
        car,
    })
}

/// Books a seat on a flight.
#[activity(name = "agency.book_flight")]
pub async fn book_flight(
    ctx: ActivityContext,
    request: TripRequest,
) -> Result<Booking, ActivityError> {
    let agency = agency(&ctx)?;
    let detail = format!("flight to {} for {}", request.city, request.traveller);
    agency.book(&ctx, "flight", "FL", detail)
}

/// Books a hotel room.
#[activity(name = "agency.book_hotel")]
pub async fn book_hotel(
    ctx: ActivityContext,
    request: TripRequest,
) -> Result<Booking, ActivityError> {
    let agency = agency(&ctx)?;
    let detail = format!("{} nights in {}", request.nights, request.city);
    agency.book(&ctx, "hotel", "HT", detail)
}

/// Rents a car. Fails (without retrying: no car is left) when the agency is set to.
#[activity(name = "agency.book_car")]
pub async fn book_car(
    ctx: ActivityContext,
    request: TripRequest,
) -> Result<Booking, ActivityError> {
    let agency = agency(&ctx)?;
    if agency.fail_car {
        agency.say(format!(
            "book_car: no car left in {}; the rental desk refuses",
            request.city
        ));
        return Err(ActivityError::non_retryable(format!(
            "no car available in {}",
            request.city
        )));
    }
    let detail = format!(
        "compact car in {} for {} days",
        request.city,
        request.nights + 1
    );
    agency.book(&ctx, "car", "CR", detail)
}

/// Cancels a booking: the compensation of every booking step. Cancelling twice is harmless:
/// the ledger records a cancellation once.
#[activity(name = "agency.cancel_booking")]
pub async fn cancel_booking(ctx: ActivityContext, booking: Booking) -> Result<(), ActivityError> {
    let agency = agency(&ctx)?;
    let fresh = agency.ledger.record("cancel", &booking.code)?;
    if fresh {
        agency.say(format!(
            "cancel_booking: cancelled {} {} ({})",
            booking.kind, booking.code, booking.detail
        ));
    } else {
        agency.say(format!(
            "cancel_booking: {} {} was already cancelled",
            booking.kind, booking.code
        ));
    }
    agency.after_side_effect();
    Ok(())
}

/// What the activities share: the booking ledger, the car-rental failure switch, whether to
/// print, and the crash switch.
///
/// Give one to the engine with `Resources::new().with(agency)`.
#[derive(Debug)]
pub struct Agency {
    ledger: Ledger,
    fail_car: bool,
    quiet: bool,
    crash: CrashPoint,
}

impl Agency {
    /// An agency keeping its booking ledger at `ledger`; car rentals succeed.
    pub fn new(ledger: impl Into<PathBuf>) -> Self {
        Agency {
            ledger: Ledger::new(ledger),
            fail_car: false,
            quiet: false,
            crash: CrashPoint::default(),
        }
    }

    /// Makes every car rental fail.
    pub fn failing_car(mut self, fail: bool) -> Self {
        self.fail_car = fail;
        self
    }

    /// Stops the activities from printing (for tests).
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Aborts the process (`std::process::abort`, as abrupt as `kill -9`) right after the side
    /// effect of the `n`-th booking or cancellation in this process, before its result is
    /// committed.
    pub fn crash_after(mut self, n: u64) -> Self {
        self.crash = CrashPoint::after(n);
        self
    }

    /// The booking ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    fn book(
        &self,
        ctx: &ActivityContext,
        kind: &str,
        prefix: &str,
        detail: String,
    ) -> Result<Booking, ActivityError> {
        // The code derives from the call's idempotency key: a re-run finds the same booking.
        let code = format!(
            "{prefix}-{:06X}",
            fnv1a(&ctx.idempotency_key()) % 0x100_0000
        );
        let fresh = self.ledger.record("book", &code)?;
        if fresh {
            self.say(format!("book_{kind}: booked {detail} ({code})"));
        } else {
            self.say(format!(
                "book_{kind}: {code} was booked before the crash; the provider returned it"
            ));
        }
        self.after_side_effect();
        Ok(Booking {
            kind: kind.to_string(),
            code,
            detail,
        })
    }

    fn say(&self, message: String) {
        if !self.quiet {
            println!("  {message}");
        }
    }

    fn after_side_effect(&self) {
        self.crash.after_side_effect();
    }
}

fn agency(ctx: &ActivityContext) -> Result<std::sync::Arc<Agency>, ActivityError> {
    ctx.resource::<Agency>().ok_or_else(|| {
        ActivityError::non_retryable(
            "the engine has no `Agency` resource; build it with `.resources(Resources::new().with(Agency::new(..)))`",
        )
    })
}

/// The providers' side of the bookings: an append-only file of `book CODE` and `cancel CODE`
/// lines, synced after every write. Each action is recorded once per code.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    lock: Mutex<()>,
}

impl Ledger {
    /// A ledger at `path` (created on the first write).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Ledger {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

    /// Records `action` (`book` or `cancel`) for `code` unless it is recorded already; returns
    /// whether it is new.
    pub fn record(&self, action: &str, code: &str) -> Result<bool, ActivityError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if self
            .entries()?
            .iter()
            .any(|(a, c)| a == action && c == code)
        {
            return Ok(false);
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(format!("{action} {code}\n").as_bytes())?;
        file.sync_data()?;
        Ok(true)
    }

    /// Every line, in order, as `(action, code)`.
    pub fn entries(&self) -> Result<Vec<(String, String)>, ActivityError> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut entries = Vec::new();
        for line in BufReader::new(file).lines() {
            let line = line?;
            if let Some((action, code)) = line.split_once(' ') {
                entries.push((action.to_string(), code.to_string()));
            }
        }
        Ok(entries)
    }

    /// The codes booked and not cancelled, in booking order.
    pub fn active(&self) -> Result<Vec<String>, ActivityError> {
        let entries = self.entries()?;
        Ok(entries
            .iter()
            .filter(|(action, _)| action == "book")
            .map(|(_, code)| code.clone())
            .filter(|code| !entries.iter().any(|(a, c)| a == "cancel" && c == code))
            .collect())
    }
}

/// FNV-1a: a stable hash for deriving codes from idempotency keys, so a re-run derives the same.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
