//! Procedural macros for Weft. Use them through `weft_runtime`, which re-exports them.
//!
//! Each entry point is a thin wrapper over an expander written against `proc_macro2`, so the
//! expanders can be unit-tested and their output snapshot-tested.

mod activity;
mod diagnostics;
mod signal;
mod update;
mod workflow;

use proc_macro::TokenStream;

/// Compiles an `async fn` into a durable workflow: a persisted enum state machine.
///
/// The function is written as ordinary async Rust. Its only `.await`s are the durable
/// operations of its [`WorkflowContext`](../weft_runtime/struct.WorkflowContext.html):
/// `ctx.run(activity, input)`, `ctx.sleep(duration)` and `ctx.wait_for_signal::<S>()`. The macro
/// turns every such await into a resume point; the engine persists the state after every step
/// and, after a crash, continues from the last one. Nothing is replayed, so the body may read the
/// clock, use random numbers or iterate a `HashMap`: only what is live at an await is kept.
///
/// ```rust
/// use std::time::Duration;
/// use serde::{Deserialize, Serialize};
/// use weft_runtime::{ActivityError, Signal, WorkflowContext, WorkflowError, activity, workflow};
///
/// #[derive(Clone, Serialize, Deserialize)]
/// pub struct Order { pub id: String, pub cents: u64, pub lines: Vec<String> }
///
/// #[derive(Serialize, Deserialize, Signal)]
/// pub struct Approval { pub approved: bool }
///
/// #[activity]
/// async fn charge_card(cents: u64) -> Result<String, ActivityError> {
///     Ok(format!("charge-{cents}"))
/// }
///
/// #[activity]
/// async fn ship(line: String) -> Result<(), ActivityError> {
///     Ok(())
/// }
///
/// #[workflow]
/// pub async fn checkout(ctx: &mut WorkflowContext, order: Order) -> Result<String, WorkflowError> {
///     let charge = ctx.run(charge_card, order.cents).await?;
///     ctx.sleep(Duration::from_secs(3600)).await;
///     let approval = ctx.wait_for_signal::<Approval>().await;
///     if !approval.approved {
///         return Err(WorkflowError::failed("rejected"));
///     }
///     let lines: Vec<String> = order.lines;
///     for line in lines {
///         ctx.run(ship, line).await?;
///     }
///     Ok(charge)
/// }
///
/// use weft_runtime::Workflow;
/// assert_eq!(checkout::NAME, "checkout");
/// ```
///
/// # What it expands to
///
/// The function is replaced by a unit struct `checkout` (a value and a type) implementing
/// [`Workflow`](../weft_runtime/trait.Workflow.html), and a public state enum named after it.
/// Each variant is one resume point and carries exactly the variables still needed there:
///
/// ```text
/// pub struct checkout;
///
/// pub enum CheckoutState {
///     Start { order: Order },
///     AwaitChargeCard { order: Order },
///     AwaitSleep { order: Order, charge: <charge_card as Activity>::Output },
///     AwaitSignalApproval { order: Order, charge: <charge_card as Activity>::Output },
///     AwaitShip { charge: <charge_card as Activity>::Output, __weft_iter0: VecDeque<String> },
/// }
///
/// impl Workflow for checkout {
///     type Input = Order;
///     type Output = String;
///     type Error = WorkflowError;
///     type State = CheckoutState;
///     const NAME: &'static str = "checkout";
///     const FINGERPRINT: u64 = 0x…; // a hash of the enum's shape
///     fn step(ctx, state, resume) -> Result<Transition<Self>, StepError> { … } // pure
///     …
/// }
/// ```
///
/// `step` is a pure function: given a state and the value that resumes it (an activity result,
/// a fired timer, a signal), it runs the body up to the next durable await and returns
/// `Suspend { state, command }`, or the workflow's result. The snapshots in `weft-macros`
/// show the full expansion of many workflows. Arguments: `#[workflow(name = "...")]` pins the
/// stored name (it defaults to the function's name), `#[workflow(version = N)]` sets the version.
///
/// # Signature
///
/// `async fn name(ctx: &mut WorkflowContext, input: Input, ...) -> Result<Output, Error>`, not
/// generic. Inputs are taken by value and stored (several inputs are stored as a tuple). `Error`
/// may be [`WorkflowError`](../weft_runtime/enum.WorkflowError.html) or your own type that
/// implements `Serialize`, `Deserialize`, `Display` and `From<ActivityError>`, so that `?` on
/// `ctx.run(..).await` works.
///
/// # Control flow
///
/// Durable awaits may sit at any depth inside `if`/`else`, `match` (also on an awaited result),
/// `loop`, `while`, `while let`, `for`, nested blocks, with labelled `break`/`continue`, early
/// `return`, `?` and shadowing. A `let` may take the value of an `if` or `match` whose branches
/// await. An await inside a larger expression (`a + ctx.run(..).await?`) is evaluated first,
/// before the rest of that expression.
///
/// A `for` loop that awaits saves its position in the state, so it must iterate something whose
/// position can be stored: an integer range (`0..n`, `1..=k`, `0..items.len()`), an owned
/// `Vec`/`VecDeque` or array whose type the macro can name, or an activity's output that is one
/// (`for doc in ctx.run(list_documents, n).await? { .. }`): the item's type follows.
///
/// # What may be held across an await
///
/// Every variable still used after a durable await is stored in the state enum, so:
///
/// - its type must be nameable by the macro, which sees no types: it is known from a `let`
///   annotation, a parameter, an activity's result (`<charge_card as Activity>::Output`), a signal
///   type, the value of `ctx.all`/`ctx.race` (from the operations written in it), a literal with
///   a suffix, a cast, a struct literal or enum variant (`Order { .. }`, `Status::Pending`), a
///   constructor of a named type (`Saga::new()`, `Config::default()`,
///   `Buffer::with_capacity(n)`, `Vec::<u64>::new()`), `vec![..]` or an array of a known element,
///   an item taken from a known collection (`queue.pop_front()`, `items.pop()`,
///   `items.first().cloned()`, `items.into_iter().next()`, `.unwrap()` of those), the item of a
///   `for` over a known collection, `format!`, `.to_string()`, `.clone()` of a known variable,
///   or a move of one. Otherwise the error says where to write the type, in the form that fits
///   the binding's place: `let total: u64 = ...`, `while let Some::<Document>(doc) = ..`,
///   `let Some(doc): Option<Document> = .. else { .. }`;
/// - it must be owned data (`Serialize + DeserializeOwned`): references cannot be stored.
///
/// # Errors and how to fix them
///
/// All errors of one workflow are reported together, on your code:
///
/// | error | fix |
/// |---|---|
/// | `.await` on something that is not a durable operation | move the async work into an `#[activity]` and `ctx.run` it; inline an async helper that waits on `ctx`, or make it a child `#[workflow]` |
/// | `ctx.run(..)` must be awaited where it is written | write `ctx.run(..).await` in place |
/// | durable operation inside a closure, async block or macro | move it into its own statement in the body, e.g. `let v = ctx.run(..).await?;` |
/// | durable operation inside the right side of `&&`/`||` or an `if` used as a value | bind it first with its own `let` |
/// | cannot tell the type of `x`, which is held across a durable await | annotate it as the message shows for its place: `let x: Type = ...`, `while let Some::<Type>(x) = ..`, `let Some(x): Option<Type> = .. else { .. }` |
/// | `x` borrows data and is held across a durable await | own it: `.clone()`, `.to_owned()`, `.to_string()` |
/// | unsupported iterable in a `for` loop that suspends | iterate a range or an owned, annotated `Vec`/`VecDeque`/array |
/// | `break` with a value out of a loop that suspends | assign to a variable declared before the loop, then `break` |
/// | the first argument of `ctx.run` must name an activity | pass the `#[activity]` function's name |
/// | a branch of `ctx.all`/`ctx.race` is written without `.await` | remove the branch's `.await`: `ctx.all((ctx.run(a, x), ctx.sleep(d))).await` |
/// | durable operation inside a macro in a group | build the `Vec` without `vec![..]`: `Vec::from([..])` or `.collect::<Vec<_>>()` |
/// | `X` is not a group of durable operations | pass a tuple of 2 to 4 operations or a `Vec` of them |
/// | the first argument of `ctx.child` must name a workflow / `X` is not a workflow | pass the `#[workflow]` function's name |
/// | `X` is not an activity / not a signal | mark it `#[activity]` / derive `Signal` |
/// | a wrong signature (not async, no context, not `Result`, generic, borrowed input) | follow the signature above |
///
/// # Versioning
///
/// The state enum is the contract between the code that wrote a checkpoint and the code that
/// resumes it. `FINGERPRINT` hashes its shape (variants, fields and their types); a stored state
/// with another fingerprint is not decoded: the engine parks that workflow with a typed error.
/// Changing code between awaits keeps the fingerprint; adding, removing or retyping a live
/// variable or an await changes it, and the snapshot diff shows how.
#[proc_macro_attribute]
pub fn workflow(attr: TokenStream, item: TokenStream) -> TokenStream {
    workflow::expand(attr.into(), item.into()).into()
}

/// Turns an `async fn` into a typed activity that workflows run with `ctx.run`.
///
/// An activity is a workflow's side effect: a payment, an e-mail, an HTTP call. The engine runs
/// it under a retry policy and records its result in the workflow's state exactly once; the
/// side effect itself runs at least once, so an activity should deduplicate with
/// [`ActivityContext::idempotency_key`](../weft_runtime/struct.ActivityContext.html#method.idempotency_key).
///
/// ```rust
/// use serde::{Deserialize, Serialize};
/// use weft_runtime::{Activity, ActivityContext, ActivityError, activity};
///
/// #[derive(Serialize, Deserialize)]
/// pub struct Payment {
///     pub card: String,
///     pub cents: u64,
/// }
///
/// #[derive(Serialize, Deserialize)]
/// pub struct Charge {
///     pub id: String,
/// }
///
/// /// Charges the card once per workflow step, however often it is retried.
/// #[activity(max_attempts = 3, timeout_ms = 10_000)]
/// pub async fn charge_card(ctx: ActivityContext, payment: Payment) -> Result<Charge, ActivityError> {
///     if payment.cents == 0 {
///         return Err(ActivityError::non_retryable("nothing to charge"));
///     }
///     Ok(Charge { id: format!("{}/{}", ctx.idempotency_key(), payment.card) })
/// }
///
/// // `charge_card` is now a unit struct implementing `Activity`:
/// assert_eq!(charge_card::NAME, "charge_card");
/// assert_eq!(charge_card.options().retry.max_attempts, 3);
/// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # runtime.block_on(async {
/// // A unit test can run it without an engine:
/// let ctx = ActivityContext::detached("order-17", 3);
/// let payment = Payment { card: "visa".into(), cents: 1250 };
/// let charge = charge_card.execute(ctx, payment).await?;
/// assert_eq!(charge.id, "order-17/3/visa");
/// # Ok::<(), ActivityError>(())
/// # }).unwrap();
/// ```
///
/// A workflow runs it by passing the struct and the input; the types are checked like any
/// Rust call, and a misspelt name is rustc's own "cannot find value" error:
///
/// ```ignore
/// let charge = ctx.run(charge_card, payment).await?;
/// ```
///
/// # The function
///
/// - It must be an `async fn` without generic parameters or `self`.
/// - Its **input** is its parameters: one parameter is the input as it is, none is `()`, and
///   several form a tuple, so `async fn send(to: String, body: String)` is run with
///   `ctx.run(send, (to, body))`. Parameters may be patterns (`Point { x, y }: Point`). Inputs
///   are decoded from the workflow state, so they must be owned and implement `Serialize` and
///   `Deserialize`: take `String`, not `&str`.
/// - An optional **first** parameter whose type is named `ActivityContext`, by value or by
///   reference (`ctx: &ActivityContext`), receives the attempt's context: the attempt number,
///   the idempotency key, cancellation and shared resources. It is not part of the input.
/// - It must return `Result<T, E>` with both types spelt out. `T` is the activity's output and
///   must implement `Serialize` and `Deserialize`. `E` is any type that converts into
///   `ActivityError` with `Into` (`ActivityError` itself, `std::io::Error`, `String`, or your
///   own error with a `From` impl): `ActivityError::Failed` is retried,
///   `ActivityError::NonRetryable` is not. A `Result<T>` alias such as `std::io::Result<T>`
///   is rejected, because the macro cannot see which error type it stands for.
/// - Its visibility and doc comments carry over to the struct, and `#[cfg]` to the whole
///   expansion; other attributes (`#[tracing::instrument]`, `#[allow]`) stay on the function.
///
/// # Arguments
///
/// | argument | meaning | default |
/// | --- | --- | --- |
/// | `name = "payments.charge"` | the stable name stored in pending commands | the function's name |
/// | `max_attempts = 3` | attempts in total, the first included (`1`: no retry) | 5 |
/// | `timeout_ms = 5000` | how long one attempt may run | no timeout |
/// | `initial_backoff_ms = 100` | the delay before the second attempt | 100 |
/// | `max_backoff_ms = 60000` | the cap on any delay | 60000 |
/// | `backoff_percent = 200` | each delay is the previous one times this, in percent (at least 100) | 200 |
///
/// Pin the name before the first deployment if the function may be renamed: a workflow parked
/// on an activity is stored with the activity's name, and resumes only if an activity of that
/// name is still registered. The retry options become the activity's `Activity::options`,
/// which every `ctx.run` of it carries to the engine.
///
/// # What it expands to
///
/// Roughly the following; the real expansion reaches the runtime through a private path,
/// names the types as written, and converts the error with `Into::into`.
///
/// ```rust
/// # use weft_runtime::{Activity, ActivityContext, ActivityError, ActivityOptions, RetryPolicy};
/// # #[derive(serde::Serialize, serde::Deserialize)] pub struct Payment { cents: u64 }
/// # #[derive(serde::Serialize, serde::Deserialize)] pub struct Charge { id: String }
/// /// Charges the card once per workflow step, however often it is retried.
/// #[allow(non_camel_case_types)]
/// #[derive(Clone, Copy, Debug, Default)]
/// pub struct charge_card;
///
/// impl Activity for charge_card {
///     type Input = Payment;
///     type Output = Charge;
///     const NAME: &'static str = "charge_card";
///
///     fn options(&self) -> ActivityOptions {
///         ActivityOptions {
///             retry: RetryPolicy { max_attempts: 3, ..Default::default() },
///             attempt_timeout: Some(std::time::Duration::from_millis(10_000)),
///         }
///     }
///
///     async fn execute(&self, ctx: ActivityContext, input: Payment) -> Result<Charge, ActivityError> {
///         async fn body(ctx: ActivityContext, payment: Payment) -> Result<Charge, ActivityError> {
///             // ... the function's body, unchanged ...
/// #           Ok(Charge { id: ctx.idempotency_key() })
///         }
///         body(ctx, input).await.map_err(Into::into)
///     }
/// }
/// ```
///
/// The struct lives in both the type and the value namespace, so `charge_card` is at once the
/// activity's type and its only value.
///
/// # Errors
///
/// All mistakes in one function are reported together, each on the token at fault, and the
/// struct is still emitted so uses of the activity do not add errors of their own. The macro
/// rejects: a function that is not `async`; a missing return type, or one that is not
/// `Result<T, E>`; generic parameters or a `where` clause; a `self` parameter; borrowed or
/// `impl Trait` inputs; an `ActivityContext` that is not the first parameter; and unknown,
/// repeated or ill-typed arguments. An error type that does not convert into `ActivityError`,
/// an input or output that does not implement the serde traits, and a body whose future is
/// not `Send` are reported by rustc on the type or the `async` keyword at fault.
#[proc_macro_attribute]
pub fn activity(attr: TokenStream, item: TokenStream) -> TokenStream {
    activity::expand(attr.into(), item.into()).into()
}

/// Gives a message type a stable name, so workflows can wait for it with `ctx.wait_for_signal`.
///
/// A signal is a message sent to a running workflow. The engine stores it under the type's
/// signal name and hands it to the workflow waiting for that name, which decodes it into the
/// type. The type must also implement `Serialize` and `Deserialize`.
///
/// ```rust
/// use serde::{Deserialize, Serialize};
/// use weft_runtime::Signal;
///
/// #[derive(Serialize, Deserialize, Signal)]
/// pub struct Approved {
///     pub by: String,
/// }
///
/// /// Pinned, so the type can be renamed without stranding workflows that wait for it.
/// #[derive(Serialize, Deserialize, Signal)]
/// #[signal(name = "order.decision")]
/// pub enum Decision {
///     Approve,
///     Reject { reason: String },
/// }
///
/// assert_eq!(<Approved as Signal>::NAME, "Approved");
/// assert_eq!(<Decision as Signal>::NAME, "order.decision");
/// ```
///
/// A workflow waits for one with `ctx.wait_for_signal::<Approved>().await`, and a client sends
/// one to a workflow instance through the engine.
///
/// # What it expands to
///
/// ```rust
/// # #[derive(serde::Serialize, serde::Deserialize)] pub struct Approved;
/// impl weft_runtime::Signal for Approved {
///     const NAME: &'static str = "Approved";
/// }
/// ```
///
/// # Errors
///
/// The name must be a non-empty string literal given once, in `#[signal(name = "...")]`;
/// every malformed `#[signal]` attribute is reported. Generic types are rejected: all their
/// instantiations would share one name, so a workflow waiting for `Envelope<u32>` could be
/// handed an `Envelope<String>` and fail to decode it. Define one concrete type per signal.
/// Types with lifetime parameters are rejected too, because signals are decoded into owned
/// values.
#[proc_macro_derive(Signal, attributes(signal))]
pub fn derive_signal(item: TokenStream) -> TokenStream {
    signal::expand(item.into()).into()
}

/// Makes a type an update: a request a running workflow answers, waited for with
/// `ctx.wait_for_update::<U>()` and sent with `Engine::update`.
///
/// `#[update(response = T)]` names the response type (required); `name = "..."` pins the
/// stable name, which defaults to the type's name. The type must also implement `Serialize` and
/// `Deserialize`.
///
/// ```rust
/// use serde::{Deserialize, Serialize};
/// use weft_runtime::Update;
///
/// #[derive(Serialize, Deserialize, Update)]
/// #[update(response = u32, name = "cart.add")]
/// pub struct AddItem {
///     pub sku: String,
/// }
///
/// assert_eq!(<AddItem as Update>::NAME, "cart.add");
/// assert_eq!(<AddItem as Update>::QUEUE, "weft.update/cart.add");
/// ```
///
/// # Errors
///
/// A missing `response`, an unknown or repeated argument, an empty name and generic or
/// borrowing types are reported on the token at fault.
#[proc_macro_derive(Update, attributes(update))]
pub fn derive_update(item: TokenStream) -> TokenStream {
    update::expand(item.into()).into()
}

/// Expands a macro on a string of source, for snapshot tests: returns formatted code.
#[cfg(test)]
pub(crate) fn pretty(tokens: proc_macro2::TokenStream) -> String {
    match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(_) => tokens.to_string(),
    }
}
