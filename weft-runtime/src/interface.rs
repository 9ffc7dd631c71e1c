//! What a workflow type accepts and returns, for callers that know it by name: the signals and
//! updates it waits for (recorded by `#[workflow]` from its durable calls), how their JSON turns
//! into the payloads the engine stores, and, with the `schemars` feature, their JSON Schemas.
//!
//! In: the types of a workflow's input, output, error, signals and updates. Out: an
//! [`Interface`] of type-erased functions the engine's by-name calls use.
//!
//! # JSON Schemas and the `schemars` feature
//!
//! A schema can only come from a type that implements `schemars::JsonSchema`, but a workflow's
//! types need not, and must keep compiling whether the feature is on or off. So no trait bound
//! asks for `JsonSchema`. `#[workflow]` writes, for each concrete type `T` it records,
//! `(&SchemaProbe::<T>::new()).schema_fn()`: method resolution picks [`ViaJsonSchema`] (which is
//! implemented only with the feature, for `T: JsonSchema`) before [`WithoutJsonSchema`] (for
//! every `T`, one auto-reference further). The types are concrete where the macro writes this,
//! so the choice is made per type at compile time: with the feature on, a type deriving
//! `JsonSchema` gets its schema and any other type gets `None`; with it off, every type gets
//! `None` and schemars is not compiled at all. A hand-written `Workflow` passes the schemas it
//! has (see `schema_of`, with the feature) or `None`. `#[derive(Signal)]` and
//! `#[derive(Update)]` probe their types the same way, in `Signal::json_schema` and
//! `Update::request_schema`/`response_schema`.

use std::any::type_name;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{self, CodecError, Payload};
use crate::signal::Signal;
use crate::update::{Update, UpdateReply};

/// Produces a type's JSON Schema (JSON Schema 2020-12), as a JSON value.
pub type SchemaFn = fn() -> serde_json::Value;

/// Why a JSON value could not become a stored payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The JSON does not fit the type.
    #[error("does not fit `{type_name}` at `{path}`: {message}")]
    Invalid {
        /// The Rust type expected.
        type_name: &'static str,
        /// Where in the JSON the bad value is, as serde's path (`.` for the whole value,
        /// `items[2].price` for a field).
        path: String,
        /// What serde reported.
        message: String,
    },
    /// The type's `Deserialize` impl panicked (the panic was contained).
    #[error("the `Deserialize` impl of `{type_name}` panicked: {message}")]
    Panicked {
        /// The Rust type expected.
        type_name: &'static str,
        /// The panic's message.
        message: String,
    },
    /// The decoded value could not be encoded for storage.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// Decodes `json` into a `T`, keeping serde's path to the first bad field. A panic in `T`'s
/// `Deserialize` impl is contained and reported.
pub fn from_json<T: DeserializeOwned>(json: serde_json::Value) -> Result<T, JsonError> {
    crate::contain::catch(|| serde_path_to_error::deserialize(json))
        .map_err(|message| JsonError::Panicked {
            type_name: type_name::<T>(),
            message,
        })?
        .map_err(|e| JsonError::Invalid {
            type_name: type_name::<T>(),
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })
}

/// Decodes `json` into a `T` and encodes it as the engine stores it.
pub fn payload_from_json<T: Serialize + DeserializeOwned>(
    json: serde_json::Value,
) -> Result<Payload, JsonError> {
    Ok(codec::encode(&from_json::<T>(json)?)?)
}

/// Decodes a stored payload of a `T` and renders it as JSON. A panic in `T`'s `Serialize` impl
/// is contained and reported as an encoding error.
pub fn payload_to_json<T: Serialize + DeserializeOwned>(
    payload: &[u8],
) -> Result<serde_json::Value, CodecError> {
    let value: T = codec::decode(payload)?;
    let encode = |reason: String| CodecError::Encode {
        type_name: type_name::<T>(),
        reason,
    };
    crate::contain::catch(|| serde_json::to_value(&value))
        .map_err(|message| encode(format!("its `Serialize` impl panicked: {message}")))?
        .map_err(|e| encode(e.to_string()))
}

/// A signal type a workflow waits for.
#[derive(Clone)]
pub struct SignalCodec {
    /// The signal's `NAME`.
    pub name: &'static str,
    /// JSON in, the stored payload out.
    pub decode: fn(serde_json::Value) -> Result<Payload, JsonError>,
    /// The signal type's JSON Schema, when it has one.
    pub schema: Option<SchemaFn>,
}

/// An update type a workflow waits for.
#[derive(Clone)]
pub struct UpdateCodec {
    /// The update's `NAME`.
    pub name: &'static str,
    /// The queue updates of this type are stored in (`U::QUEUE`).
    pub queue: &'static str,
    /// JSON request and update id in, the stored payload (request and reply token) out.
    pub decode: fn(serde_json::Value, &str) -> Result<Payload, JsonError>,
    /// A stored response rendered as JSON.
    pub response_json: fn(&[u8]) -> Result<serde_json::Value, CodecError>,
    /// The request type's JSON Schema, when it has one.
    pub request_schema: Option<SchemaFn>,
    /// The response type's JSON Schema, when it has one.
    pub response_schema: Option<SchemaFn>,
}

/// The JSON Schemas of a workflow's input, output and error, where its types have them.
#[derive(Clone, Copy, Default)]
pub struct IoSchemas {
    /// The input's schema.
    pub input: Option<SchemaFn>,
    /// The output's schema.
    pub output: Option<SchemaFn>,
    /// The error's schema.
    pub error: Option<SchemaFn>,
}

/// What a workflow type accepts and returns, for calls by name: filled by
/// [`Workflow::interface`](crate::Workflow::interface), which `#[workflow]` writes.
#[derive(Clone, Default)]
pub struct Interface {
    signals: Vec<SignalCodec>,
    updates: Vec<UpdateCodec>,
    schemas: IoSchemas,
}

fn decode_update<U: Update>(
    json: serde_json::Value,
    update_id: &str,
) -> Result<Payload, JsonError> {
    let request: U = from_json(json)?;
    Ok(codec::encode(&(request, UpdateReply::<U>::new(update_id)))?)
}

impl Interface {
    /// An empty interface: the workflow accepts no signal or update by name.
    pub fn new() -> Self {
        Interface::default()
    }

    /// Records that the workflow waits for signal `S` (once per name; a repeat is ignored).
    pub fn signal<S: Signal>(&mut self) {
        if self.signals.iter().any(|s| s.name == S::NAME) {
            return;
        }
        self.signals.push(SignalCodec {
            name: S::NAME,
            decode: payload_from_json::<S>,
            schema: S::json_schema(),
        });
    }

    /// Records that the workflow waits for update `U` (once per name; a repeat is ignored).
    pub fn update<U: Update>(&mut self) {
        if self.updates.iter().any(|u| u.name == U::NAME) {
            return;
        }
        self.updates.push(UpdateCodec {
            name: U::NAME,
            queue: U::QUEUE,
            decode: decode_update::<U>,
            response_json: payload_to_json::<U::Response>,
            request_schema: U::request_schema(),
            response_schema: U::response_schema(),
        });
    }

    /// Records the JSON Schemas of the workflow's input, output and error.
    pub fn schemas(
        &mut self,
        input: Option<SchemaFn>,
        output: Option<SchemaFn>,
        error: Option<SchemaFn>,
    ) {
        self.schemas = IoSchemas {
            input,
            output,
            error,
        };
    }

    /// The signal types recorded, in the order the workflow's code names them.
    pub fn signals(&self) -> &[SignalCodec] {
        &self.signals
    }

    /// The update types recorded, in the order the workflow's code names them.
    pub fn updates(&self) -> &[UpdateCodec] {
        &self.updates
    }

    /// The input, output and error schemas recorded.
    pub fn io_schemas(&self) -> IoSchemas {
        self.schemas
    }

    /// The recorded signal named `name`.
    pub fn signal_named(&self, name: &str) -> Option<&SignalCodec> {
        self.signals.iter().find(|s| s.name == name)
    }

    /// The recorded update named `name`.
    pub fn update_named(&self, name: &str) -> Option<&UpdateCodec> {
        self.updates.iter().find(|u| u.name == name)
    }
}

impl std::fmt::Debug for Interface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interface")
            .field(
                "signals",
                &self.signals.iter().map(|s| s.name).collect::<Vec<_>>(),
            )
            .field(
                "updates",
                &self.updates.iter().map(|u| u.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The JSON Schema (2020-12) of `T`, with the definitions it refers to under `$defs`.
#[cfg(feature = "schemars")]
pub fn schema_of<T: schemars::JsonSchema>() -> serde_json::Value {
    schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

/// Asks at compile time whether `T` has a JSON Schema; see the module docs.
#[doc(hidden)]
pub struct SchemaProbe<T: ?Sized>(PhantomData<fn() -> Box<T>>);

impl<T: ?Sized> SchemaProbe<T> {
    /// A probe for `T`.
    pub const fn new() -> Self {
        SchemaProbe(PhantomData)
    }
}

impl<T: ?Sized> Default for SchemaProbe<T> {
    fn default() -> Self {
        SchemaProbe::new()
    }
}

/// The schema of a type that has one: chosen first by method resolution.
#[doc(hidden)]
pub trait ViaJsonSchema {
    /// `Some` schema.
    fn schema_fn(&self) -> Option<SchemaFn>;
}

#[cfg(feature = "schemars")]
impl<T: schemars::JsonSchema> ViaJsonSchema for SchemaProbe<T> {
    fn schema_fn(&self) -> Option<SchemaFn> {
        Some(schema_of::<T>)
    }
}

/// No schema: what every other type gets, one auto-reference further.
#[doc(hidden)]
pub trait WithoutJsonSchema {
    /// `None`.
    fn schema_fn(&self) -> Option<SchemaFn>;
}

impl<T: ?Sized> WithoutJsonSchema for &SchemaProbe<T> {
    fn schema_fn(&self) -> Option<SchemaFn> {
        None
    }
}

/// Records a type the workflow waits for, as a signal or an update, without a trait bound
/// that could fail: a type that is not a signal (or not an update) is already an error at its
/// `ctx.wait_for_signal::<T>()` (or `wait_for_update`), and the fallback keeps the recording
/// from reporting it a second time.
#[doc(hidden)]
pub struct MessageProbe<T: ?Sized>(PhantomData<fn() -> Box<T>>);

impl<T: ?Sized> MessageProbe<T> {
    /// A probe for `T`.
    pub const fn new() -> Self {
        MessageProbe(PhantomData)
    }
}

impl<T: ?Sized> Default for MessageProbe<T> {
    fn default() -> Self {
        MessageProbe::new()
    }
}

/// Records a signal type: chosen first by method resolution.
#[doc(hidden)]
pub trait ViaSignal {
    /// Records the signal.
    fn add_signal(&self, interface: &mut Interface);
}

impl<T: Signal> ViaSignal for MessageProbe<T> {
    fn add_signal(&self, interface: &mut Interface) {
        interface.signal::<T>();
    }
}

/// Records an update type: chosen first by method resolution.
#[doc(hidden)]
pub trait ViaUpdate {
    /// Records the update.
    fn add_update(&self, interface: &mut Interface);
}

impl<T: Update> ViaUpdate for MessageProbe<T> {
    fn add_update(&self, interface: &mut Interface) {
        interface.update::<T>();
    }
}

/// Records nothing, for a type that is not a message (the program does not compile anyway).
#[doc(hidden)]
pub trait NotAMessage {
    /// Nothing.
    fn add_signal(&self, _interface: &mut Interface) {}
    /// Nothing.
    fn add_update(&self, _interface: &mut Interface) {}
}

impl<T: ?Sized> NotAMessage for &MessageProbe<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Order {
        items: Vec<Item>,
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Item {
        sku: String,
        quantity: u32,
    }

    #[test]
    fn json_that_does_not_fit_names_the_path_to_the_bad_field() {
        let bad = serde_json::json!({"items": [{"sku": "a", "quantity": 1}, {"sku": "b", "quantity": "two"}]});
        match payload_from_json::<Order>(bad) {
            Err(JsonError::Invalid { path, message, .. }) => {
                assert_eq!(path, "items[1].quantity");
                assert!(message.contains("invalid type"), "{message}");
            }
            other => panic!("expected a path error, got {other:?}"),
        }
        let good = serde_json::json!({"items": [{"sku": "a", "quantity": 1}]});
        let payload = payload_from_json::<Order>(good.clone()).unwrap();
        assert_eq!(payload_to_json::<Order>(&payload).unwrap(), good);
    }

    #[test]
    fn a_type_without_json_schema_probes_to_none() {
        #[allow(unused_imports)]
        use super::{ViaJsonSchema as _, WithoutJsonSchema as _};
        assert!((&SchemaProbe::<Order>::new()).schema_fn().is_none());
    }
}
