//! Every activity shape the macro accepts compiles, with the input and output types it declares.

use serde::{Deserialize, Serialize};
use weft_runtime::{Activity, ActivityContext, ActivityError, activity};

#[derive(Serialize, Deserialize)]
pub struct Payment {
    pub cents: u64,
}

#[derive(Serialize, Deserialize)]
pub struct Charge {
    pub id: String,
}

#[derive(Serialize, Deserialize)]
pub struct Subject(pub String);

pub mod payments {
    use super::*;

    /// Charges a card.
    #[activity]
    pub async fn charge_card(payment: Payment) -> Result<Charge, ActivityError> {
        Ok(Charge {
            id: payment.cents.to_string(),
        })
    }
}

#[activity(name = "payments.refund", max_attempts = 3, timeout_ms = 5000, initial_backoff_ms = 100)]
async fn refund(ctx: ActivityContext, charge: Charge) -> Result<String, ActivityError> {
    Ok(format!("{} {}", charge.id, ctx.idempotency_key()))
}

#[activity(max_backoff_ms = 60_000, backoff_percent = 150)]
async fn by_reference(ctx: &weft_runtime::ActivityContext) -> Result<u32, ActivityError> {
    Ok(ctx.attempt())
}

#[activity]
async fn exchange_rates() -> Result<Vec<(String, f64)>, ActivityError> {
    Ok(Vec::new())
}

#[activity]
async fn send_email(
    to: String,
    Subject(subject): Subject,
    mut body: String,
) -> Result<(), ActivityError> {
    body.push_str(&to);
    body.push_str(&subject);
    Ok(())
}

#[derive(Debug)]
pub struct GatewayError;

impl From<GatewayError> for ActivityError {
    fn from(_: GatewayError) -> Self {
        ActivityError::failed("gateway")
    }
}

#[activity]
async fn call_gateway(request: String) -> std::result::Result<usize, GatewayError> {
    if request.is_empty() {
        return Err(GatewayError);
    }
    Ok(request.len())
}

#[activity]
async fn read_file(path: String) -> Result<String, std::io::Error> {
    std::fs::read_to_string(path)
}

/// A name that is also a keyword keeps its plain spelling as the activity name.
#[activity]
async fn r#move(to: String) -> Result<String, ActivityError> {
    Ok(to)
}

/// Local variables named like the macro's own do not clash with them.
#[activity]
async fn shadowing(input: u32) -> Result<u32, ActivityError> {
    let ctx = input;
    let arg0 = ctx + 1;
    Ok(arg0)
}

#[cfg(any())]
#[activity]
async fn compiled_out(input: DoesNotExist) -> Result<(), ActivityError> {
    Ok(())
}

fn assert_activity<A: Activity<Input = I, Output = O>, I, O>(_: A) -> &'static str {
    A::NAME
}

fn main() {
    // An activity may also be declared inside a function.
    #[activity]
    async fn local(flag: bool) -> Result<bool, ActivityError> {
        Ok(!flag)
    }
    assert_eq!(assert_activity::<_, bool, bool>(local), "local");

    // The marker is a value, so it can be passed as one; its name is the function's.
    let charge_card = payments::charge_card;
    assert_eq!(assert_activity::<_, Payment, Charge>(charge_card), "charge_card");
    assert_eq!(assert_activity::<_, Charge, String>(refund), "payments.refund");
    assert_eq!(assert_activity::<_, (), u32>(by_reference), "by_reference");
    assert_eq!(assert_activity::<_, (), Vec<(String, f64)>>(exchange_rates), "exchange_rates");
    assert_eq!(
        assert_activity::<_, (String, Subject, String), ()>(send_email),
        "send_email"
    );
    assert_eq!(assert_activity::<_, String, usize>(call_gateway), "call_gateway");
    assert_eq!(assert_activity::<_, String, String>(read_file), "read_file");
    assert_eq!(assert_activity::<_, String, String>(r#move), "move");
    assert_eq!(assert_activity::<_, u32, u32>(shadowing), "shadowing");
    assert_eq!(refund.options().retry.max_attempts, 3);
    assert_eq!(by_reference.options().retry.backoff_percent, 150);
    // The marker derives these, so it can be stored and printed freely.
    let copy = refund;
    let _ = (copy, refund, format!("{refund:?}"));
}
