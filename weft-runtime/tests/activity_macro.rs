//! Activities defined with `#[activity]` behave as their functions do: the input reaches the
//! body, the output comes back, errors are converted, and the name and options are the declared
//! ones, both through the typed `Activity` API and the type-erased `DynActivity` the engine uses.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::codec::{decode, encode};
use weft_runtime::{
    Activity, ActivityContext, ActivityError, ActivityOptions, DynActivity, RetryPolicy, activity,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Payment {
    cents: u64,
    card: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Charge {
    id: String,
    cents: u64,
}

/// Charges a card; a card named "declined" fails.
#[activity]
async fn charge_card(payment: Payment) -> Result<Charge, ActivityError> {
    if payment.card == "declined" {
        return Err(ActivityError::non_retryable("card declined"));
    }
    Ok(Charge {
        id: format!("ch_{}", payment.card),
        cents: payment.cents,
    })
}

#[activity(
    name = "payments.refund",
    max_attempts = 3,
    timeout_ms = 5000,
    initial_backoff_ms = 250
)]
async fn refund(ctx: ActivityContext, charge_id: String) -> Result<String, ActivityError> {
    Ok(format!(
        "{charge_id} refunded, key {}",
        ctx.idempotency_key()
    ))
}

#[activity]
async fn attempt_number(ctx: &ActivityContext) -> Result<u32, ActivityError> {
    Ok(ctx.attempt())
}

#[activity]
async fn step_of(ctx: &mut ActivityContext) -> Result<u64, ActivityError> {
    Ok(ctx.step())
}

#[activity]
async fn add(a: i64, b: i64, (c, d): (i64, i64)) -> Result<i64, ActivityError> {
    Ok(a + b + c + d)
}

/// An application error with its own conversion: a timeout is worth retrying, a bad request is
/// not.
#[derive(Debug)]
enum GatewayError {
    Timeout,
    BadRequest(String),
}

impl From<GatewayError> for ActivityError {
    fn from(error: GatewayError) -> Self {
        match error {
            GatewayError::Timeout => ActivityError::failed("gateway timed out"),
            GatewayError::BadRequest(why) => ActivityError::non_retryable(why),
        }
    }
}

#[activity]
async fn call_gateway(request: String) -> Result<usize, GatewayError> {
    match request.as_str() {
        "slow" => Err(GatewayError::Timeout),
        "" => Err(GatewayError::BadRequest("empty request".into())),
        other => Ok(other.len()),
    }
}

/// `std::io::Error` converts through the runtime's own `From` impl.
#[activity]
async fn read_config(path: String) -> Result<String, std::io::Error> {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("{path} not found"),
    ))
}

fn ctx() -> ActivityContext {
    ActivityContext::detached("wf-1", 7)
}

#[tokio::test]
async fn execute_passes_the_input_and_returns_the_output() {
    let payment = Payment {
        cents: 1250,
        card: "visa".into(),
    };
    let charge = charge_card.execute(ctx(), payment).await.unwrap();
    assert_eq!(
        charge,
        Charge {
            id: "ch_visa".into(),
            cents: 1250
        }
    );
}

#[tokio::test]
async fn execute_returns_the_body_error() {
    let payment = Payment {
        cents: 1,
        card: "declined".into(),
    };
    let error = charge_card.execute(ctx(), payment).await.unwrap_err();
    assert_eq!(error, ActivityError::non_retryable("card declined"));
}

#[tokio::test]
async fn the_context_reaches_the_body_by_value_and_by_reference() {
    let refunded = refund.execute(ctx(), "ch_1".into()).await.unwrap();
    assert_eq!(refunded, "ch_1 refunded, key wf-1/7");

    let (_tx, rx) = tokio::sync::watch::channel(false);
    let third = ActivityContext::new("wf-2", 1, 3, Default::default(), rx);
    assert_eq!(attempt_number.execute(third, ()).await, Ok(3));
    assert_eq!(step_of.execute(ctx(), ()).await, Ok(7));
}

#[tokio::test]
async fn several_parameters_form_a_tuple_input() {
    let sum = add.execute(ctx(), (1, 20, (300, 4000))).await.unwrap();
    assert_eq!(sum, 4321);
}

#[tokio::test]
async fn custom_errors_convert_with_their_from_impl() {
    assert_eq!(call_gateway.execute(ctx(), "ping".into()).await, Ok(4));
    let timeout = call_gateway
        .execute(ctx(), "slow".into())
        .await
        .unwrap_err();
    assert!(timeout.is_retryable(), "{timeout:?}");
    assert_eq!(timeout, ActivityError::failed("gateway timed out"));
    let bad = call_gateway
        .execute(ctx(), String::new())
        .await
        .unwrap_err();
    assert_eq!(bad, ActivityError::non_retryable("empty request"));

    let io = read_config
        .execute(ctx(), "app.toml".into())
        .await
        .unwrap_err();
    assert_eq!(io, ActivityError::failed("app.toml not found"));
}

#[test]
fn names_default_to_the_function_and_can_be_pinned() {
    assert_eq!(charge_card::NAME, "charge_card");
    assert_eq!(refund::NAME, "payments.refund");
    assert_eq!(DynActivity::name(&add), "add");
}

#[test]
fn options_default_unless_given() {
    assert_eq!(Activity::options(&charge_card), ActivityOptions::default());
    assert_eq!(
        Activity::options(&refund),
        ActivityOptions {
            retry: RetryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(250),
                ..RetryPolicy::default()
            },
            attempt_timeout: Some(Duration::from_millis(5000)),
        }
    );
}

#[tokio::test]
async fn dyn_call_decodes_the_input_and_encodes_the_output() {
    let activity: Arc<dyn DynActivity> = Arc::new(charge_card);
    let input = encode(&Payment {
        cents: 99,
        card: "amex".into(),
    })
    .unwrap();
    let output = activity.call(ctx(), input).await.unwrap();
    let charge: Charge = decode(&output).unwrap();
    assert_eq!(charge.id, "ch_amex");
    assert_eq!(charge.cents, 99);
}

#[tokio::test]
async fn dyn_call_maps_errors_and_rejects_a_malformed_input() {
    let activity: Arc<dyn DynActivity> = Arc::new(call_gateway);
    let error = Arc::clone(&activity)
        .call(ctx(), encode(&String::new()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "activity.non_retryable");

    let error = activity.call(ctx(), vec![0xff; 3]).await.unwrap_err();
    assert_eq!(error.code(), "activity.payload");
}
