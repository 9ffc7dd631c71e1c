//! The trip saga under weft-testing: mocked bookings, compensations in reverse order, a crash
//! in the middle of compensating that resumes instead of starting over, and the crash harness.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use weft_examples::trip::{
    Agency, Booking, TripRequest, book_car, book_flight, book_hotel, cancel_booking, trip,
};
use weft_runtime::engine::WorkflowStatus;
use weft_runtime::{ActivityError, Resources};
use weft_testing::{CrashTest, FaultControl, Mock, Signals, TestEngine};

fn request() -> TripRequest {
    TripRequest {
        id: "trip-1".to_string(),
        traveller: "Ada".to_string(),
        city: "Lisbon".to_string(),
        nights: 3,
    }
}

fn booking(kind: &str) -> Booking {
    Booking {
        kind: kind.to_string(),
        code: format!("{kind}-1"),
        detail: format!("a {kind}"),
    }
}

/// Mocks for the three bookings, with the booking activities' own signatures; the car fails
/// when `car_fails`.
fn bookings(car_fails: bool) -> (Mock<book_flight>, Mock<book_hotel>, Mock<book_car>) {
    let car = if car_fails {
        Mock::failing(book_car, ActivityError::non_retryable("no car left"))
    } else {
        Mock::returning(book_car, booking("car"))
    };
    (
        Mock::returning(book_flight, booking("flight")),
        Mock::returning(book_hotel, booking("hotel")),
        car,
    )
}

async fn engine(
    flight: &Mock<book_flight>,
    hotel: &Mock<book_hotel>,
    car: &Mock<book_car>,
    cancel: &Mock<cancel_booking>,
) -> TestEngine {
    TestEngine::builder()
        .register::<trip>()
        .with_mock(flight)
        .with_mock(hotel)
        .with_mock(car)
        .with_mock(cancel)
        .build()
        .await
        .unwrap()
}

fn cancels() -> Mock<cancel_booking> {
    Mock::new(cancel_booking, |_: Booking| async move { Ok(()) })
}

#[tokio::test]
async fn a_failed_car_undoes_the_hotel_then_the_flight() {
    let (flight, hotel, car) = bookings(true);
    let cancel = cancels();
    let engine = engine(&flight, &hotel, &car, &cancel).await;
    let handle = engine.start::<trip>(request()).await.unwrap();
    let error = engine
        .result::<trip>(handle.id())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(error.code(), "workflow.failed");
    assert!(error.to_string().contains("no car left"), "{error}");
    assert_eq!(cancel.calls(), [booking("hotel"), booking("flight")]);
    assert_eq!(
        (flight.call_count(), hotel.call_count(), car.call_count()),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn a_failed_hotel_undoes_only_the_flight_and_books_no_car() {
    let (flight, _, car) = bookings(false);
    let hotel = Mock::failing(book_hotel, ActivityError::non_retryable("fully booked"));
    let cancel = cancels();
    let engine = engine(&flight, &hotel, &car, &cancel).await;
    let handle = engine.start::<trip>(request()).await.unwrap();
    let error = engine
        .result::<trip>(handle.id())
        .await
        .unwrap()
        .unwrap_err();
    assert!(error.to_string().contains("fully booked"), "{error}");
    assert_eq!(cancel.calls(), [booking("flight")]);
    assert_eq!(car.call_count(), 0);
}

#[tokio::test]
async fn a_trip_that_books_everything_undoes_nothing() {
    let (flight, hotel, car) = bookings(false);
    let cancel = cancels();
    let engine = engine(&flight, &hotel, &car, &cancel).await;
    let handle = engine.start::<trip>(request()).await.unwrap();
    let itinerary = engine.result::<trip>(handle.id()).await.unwrap().unwrap();
    assert_eq!(
        [itinerary.flight, itinerary.hotel, itinerary.car],
        [booking("flight"), booking("hotel"), booking("car")]
    );
    assert_eq!(cancel.call_count(), 0);
}

#[tokio::test]
async fn a_crash_while_compensating_resumes_with_the_undos_left() {
    let (flight, hotel, car) = bookings(true);
    // The flight's cancellation (the second undo) takes the disk down as it finishes: its
    // result cannot be committed, as if the process died right then.
    let faults: Arc<OnceLock<FaultControl>> = Arc::new(OnceLock::new());
    let disk = Arc::clone(&faults);
    let first_time = Arc::new(AtomicBool::new(true));
    let cancel = Mock::new(cancel_booking, move |booking: Booking| {
        let crash = booking.kind == "flight" && first_time.swap(false, Ordering::SeqCst);
        if crash && let Some(faults) = disk.get() {
            faults.fail_all_writes();
        }
        async move { Ok(()) }
    });
    let mut engine = engine(&flight, &hotel, &car, &cancel).await;
    faults.set(engine.faults()).ok();
    let handle = engine.start::<trip>(request()).await.unwrap();
    let id = handle.id().to_string();
    assert_eq!(cancel.calls(), [booking("hotel"), booking("flight")]);
    assert_ne!(engine.status(&id).await.unwrap(), WorkflowStatus::Failed);

    // Restart on the same store with the disk working: the hotel's undo was committed, so only
    // the flight's runs again.
    faults.get().unwrap().heal();
    engine.restart().await.unwrap();
    let error = engine.result::<trip>(&id).await.unwrap().unwrap_err();
    assert!(error.to_string().contains("no car left"), "{error}");
    assert_eq!(
        cancel.calls(),
        [booking("hotel"), booking("flight"), booking("flight")],
        "the hotel was undone once; the flight's undo, not committed, ran again"
    );
    assert_eq!(
        (flight.call_count(), hotel.call_count(), car.call_count()),
        (1, 1, 1),
        "no booking ran again"
    );
}

#[tokio::test]
async fn the_saga_survives_a_crash_after_every_commit_with_real_bookings() {
    for car_fails in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("bookings.log");
        let resources = Resources::new().with(Agency::new(&ledger).failing_car(car_fails).quiet());
        let report = CrashTest::<trip>::new()
            .resources(resources)
            .workflow_id("trip-1")
            .signals(Signals::none())
            .run(request())
            .await
            .unwrap_or_else(|failure| panic!("car fails {car_fails}: {failure}"));
        assert!(report.crashed_runs >= 3, "{report}");
        let agency = Agency::new(&ledger);
        let active = agency.ledger().active().unwrap();
        if car_fails {
            assert!(report.output.get("Err").is_some(), "{}", report.output);
            // However the runs crashed, every booking made was cancelled in the end.
            assert!(active.is_empty(), "still booked: {active:?}");
            let cancelled = agency
                .ledger()
                .entries()
                .unwrap()
                .iter()
                .filter(|(action, _)| action == "cancel")
                .count();
            assert_eq!(cancelled, 2);
        } else {
            assert!(report.output.get("Ok").is_some(), "{}", report.output);
            assert_eq!(active.len(), 3, "{active:?}");
        }
    }
}

fn trip_program(db: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_trip"))
        .arg("--db")
        .arg(db)
        .args(extra)
        .output()
        .unwrap();
    eprintln!(
        "--- trip {extra:?}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn the_program_crashes_between_the_two_undos_and_the_rerun_finishes_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("trip.redb");
    // Side effects 1 and 2 are the bookings, 3 the hotel's cancellation: abort right after it.
    let crashed = trip_program(&db, &["--crash-after", "3"]);
    assert!(
        !crashed.status.success(),
        "--crash-after aborts the process"
    );
    let stdout = String::from_utf8_lossy(&crashed.stdout);
    assert!(stdout.contains("cancelled hotel"), "{stdout}");
    assert!(!stdout.contains("cancelled flight"), "{stdout}");

    let resumed = trip_program(&db, &[]);
    assert!(resumed.status.success());
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(stdout.contains("Resuming trip-1"), "{stdout}");
    // The hotel's undo ran before the crash; whether or not its result was committed, the
    // rerun finishes the flight's and books nothing.
    assert!(stdout.contains("cancelled flight"), "{stdout}");
    assert!(!stdout.contains("book_flight"), "{stdout}");
    assert!(
        stdout.contains("trip-1: failed: car booking failed"),
        "{stdout}"
    );
    assert!(stdout.contains("0 bookings still active"), "{stdout}");

    let booked = trip_program(&db, &["--fresh", "--car", "ok"]);
    assert!(booked.status.success());
    let stdout = String::from_utf8_lossy(&booked.stdout);
    assert!(stdout.contains("trip-1: booked"), "{stdout}");
    assert!(stdout.contains("3 bookings still active"), "{stdout}");
}
