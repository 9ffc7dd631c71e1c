//! The one place that turns values into stored bytes and back: bincode 2 in serde mode.
//!
//! Everything Weft persists (workflow states, activity inputs and outputs, signal payloads,
//! engine records) goes through [`encode`] and [`decode`], so the encoding can change in one place.
//! Records add their own leading format tag (see the engine's record module); payloads are bare.
//!
//! Decoding is bounded by the input: stored bytes can be corrupt, so no length prefix is
//! trusted. A decode allocates no more than the bytes it is given can hold (a string or byte
//! buffer is copied from the input only after its claimed length is checked against it; a
//! sequence or map may claim no more elements than the input has bytes, plus
//! [`ZERO_SIZED_ALLOWANCE`] for elements that read none), and values nest at most [`MAX_DEPTH`]
//! deep. Every bad byte is a [`CodecError`], never a panic or an abort. The engine refuses
//! payloads over its payload limit before they are stored, so no record it wrote comes near
//! these bounds.

mod bounded;

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use bounded::{MAX_DEPTH, ZERO_SIZED_ALLOWANCE};

/// Encoded bytes of a user value: an activity input or output, a signal, a workflow input or output.
pub type Payload = Vec<u8>;

/// A value could not be encoded to, or decoded from, stored bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The value's `Serialize` impl failed or is not supported by the encoding.
    #[error("cannot encode {type_name}: {reason}")]
    Encode {
        /// The Rust type that was being encoded.
        type_name: &'static str,
        /// What the encoder reported.
        reason: String,
    },
    /// The bytes do not hold a value of the expected type: corrupt, truncated, or written by other code.
    #[error("cannot decode {type_name}: {reason}")]
    Decode {
        /// The Rust type that was expected.
        type_name: &'static str,
        /// What the decoder reported.
        reason: String,
    },
    /// The bytes decoded, but bytes were left over, so they were written for a different type.
    #[error(
        "cannot decode {type_name}: {extra} trailing bytes; the record was written for another type"
    )]
    TrailingBytes {
        /// The Rust type that was expected.
        type_name: &'static str,
        /// How many bytes were left unread.
        extra: usize,
    },
    /// A length prefix claims more elements than the rest of the input can hold: the bytes are
    /// corrupt (or hold more elements of a zero-sized type than [`ZERO_SIZED_ALLOWANCE`]).
    #[error(
        "cannot decode {type_name}: a length prefix claims {claimed} elements, but the input holds at most {available}"
    )]
    LengthOverrun {
        /// The Rust type that was expected.
        type_name: &'static str,
        /// The claimed number of elements.
        claimed: usize,
        /// How many elements the rest of the input could hold.
        available: usize,
    },
    /// Values nest deeper than [`MAX_DEPTH`]: the bytes are corrupt, or the value is too deep to
    /// decode without risking the stack.
    #[error("cannot decode {type_name}: values nest deeper than {limit}")]
    TooDeep {
        /// The Rust type that was expected.
        type_name: &'static str,
        /// The nesting limit.
        limit: usize,
    },
    /// The value's `Serialize` or `Deserialize` impl panicked. Caught, so the panic stays with
    /// the value: a step that decodes it parks its workflow, a call that encodes it fails.
    #[error("the serde impl of {type_name} panicked: {message}")]
    Panicked {
        /// The Rust type whose impl panicked.
        type_name: &'static str,
        /// The panic's message.
        message: String,
    },
}

impl CodecError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            CodecError::Encode { .. } => "codec.encode",
            CodecError::Decode { .. } => "codec.decode",
            CodecError::TrailingBytes { .. } => "codec.trailing_bytes",
            CodecError::LengthOverrun { .. } => "codec.length_overrun",
            CodecError::TooDeep { .. } => "codec.too_deep",
            CodecError::Panicked { .. } => "codec.panicked",
        }
    }
}

fn config() -> bincode::config::Configuration {
    // Standard config: little endian, variable-length integers. Changing it changes every
    // stored byte, so it is fixed here and pinned by the golden-record tests.
    bincode::config::standard()
}

/// Encodes a value to bytes. A panic in the value's `Serialize` impl is caught and returned as
/// [`CodecError::Panicked`].
///
/// # Errors
///
/// [`CodecError::Encode`] when the value's `Serialize` impl fails or uses what the encoding
/// does not support, [`CodecError::Panicked`] when it panics.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut bytes = Vec::with_capacity(FIRST_CAPACITY);
    encode_into(&mut bytes, value)?;
    Ok(bytes)
}

/// What an encode reserves before it starts: most payloads and records fit, so the buffer is
/// not grown a byte-doubling at a time (which, with the copy into a tagged record, was 7 % of
/// the engine's instructions per step).
const FIRST_CAPACITY: usize = 128;

/// Appends the encoding of `value` to `bytes`, for callers that put a tag or a prefix first.
/// On an error `bytes` may hold part of the encoding; the caller discards it.
///
/// # Errors
///
/// As [`encode`].
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    bytes: &mut Vec<u8>,
    value: &T,
) -> Result<(), CodecError> {
    crate::contain::catch(|| bincode::serde::encode_into_writer(value, Appender(bytes), config()))
        .map_err(|message| panicked::<T>(message))?
        .map_err(|e| CodecError::Encode {
            type_name: std::any::type_name::<T>(),
            reason: e.to_string(),
        })
}

/// bincode's writer over a borrowed `Vec`, so an encode can append to bytes already there.
struct Appender<'a>(&'a mut Vec<u8>);

impl bincode::enc::write::Writer for Appender<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Decodes a value from bytes, refusing trailing bytes.
///
/// Bounded by `bytes` (see the module docs): whatever the bytes hold, this returns an error
/// rather than panicking, aborting on a huge allocation or overflowing the stack.
///
/// # Errors
///
/// [`CodecError::Decode`] when the bytes do not hold a `T`, [`CodecError::TrailingBytes`] when
/// bytes are left over, [`CodecError::LengthOverrun`] when a length prefix claims more than the
/// bytes hold, [`CodecError::TooDeep`] when values nest deeper than [`MAX_DEPTH`], and
/// [`CodecError::Panicked`] when `T`'s `Deserialize` impl panicked.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let type_name = std::any::type_name::<T>();
    let limits = bounded::Limits::for_input(bytes.len());
    let seed = bounded::Seed {
        limits: &limits,
        inner: PhantomData::<T>,
    };
    // The slice decoder borrows strings and bytes from the input, which the bounded adapter
    // relies on to check their lengths before copying.
    // A panic in the type's `Deserialize` impl is caught and returned as a typed error.
    let decoded =
        crate::contain::catch(|| bincode::serde::seed_decode_from_slice(seed, bytes, config()))
            .map_err(|message| panicked::<T>(message))?;
    let (value, read) = decoded.map_err(|e| match limits.violation() {
        Some(bounded::Violation::Length { claimed, available }) => CodecError::LengthOverrun {
            type_name,
            claimed,
            available,
        },
        Some(bounded::Violation::Depth) => CodecError::TooDeep {
            type_name,
            limit: MAX_DEPTH,
        },
        None => CodecError::Decode {
            type_name,
            reason: e.to_string(),
        },
    })?;
    if read != bytes.len() {
        return Err(CodecError::TrailingBytes {
            type_name,
            extra: bytes.len() - read,
        });
    }
    Ok(value)
}

fn panicked<T: ?Sized>(message: String) -> CodecError {
    CodecError::Panicked {
        type_name: std::any::type_name::<T>(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    /// Serializes fine, panics when read back, and panics when written while `explode`.
    #[derive(Debug)]
    struct Touchy {
        explode: bool,
    }

    impl Serialize for Touchy {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            assert!(!self.explode, "cannot write this");
            s.serialize_bool(self.explode)
        }
    }

    impl<'de> Deserialize<'de> for Touchy {
        fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
            panic!("cannot read this")
        }
    }

    #[test]
    fn panicking_serde_impls_are_typed_errors() {
        let bytes = encode(&Touchy { explode: false }).unwrap();
        let error = decode::<Touchy>(&bytes).unwrap_err();
        assert_eq!(error.code(), "codec.panicked");
        assert!(error.to_string().contains("cannot read this"), "{error}");
        let error = encode(&Touchy { explode: true }).unwrap_err();
        assert_eq!(error.code(), "codec.panicked");
        assert!(error.to_string().contains("cannot write this"), "{error}");
    }

    #[test]
    fn round_trips_and_refuses_trailing_bytes() {
        let bytes = encode(&(7u32, String::from("x"))).unwrap();
        let back: (u32, String) = decode(&bytes).unwrap();
        assert_eq!(back, (7, "x".to_string()));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            decode::<(u32, String)>(&longer),
            Err(CodecError::TrailingBytes { extra: 1, .. })
        ));
        assert!(matches!(
            decode::<(u32, String)>(&bytes[..1]),
            Err(CodecError::Decode { .. })
        ));
    }

    /// A bincode varint of `n` as a u64 (`0xfd` then 8 bytes little-endian).
    fn varint_u64(n: u64) -> Vec<u8> {
        let mut bytes = vec![0xfd];
        bytes.extend_from_slice(&n.to_le_bytes());
        bytes
    }

    #[test]
    fn a_string_longer_than_its_input_is_an_error_not_an_allocation() {
        // Unbounded, bincode allocated the claimed 1 TiB before reading and aborted.
        let err = decode::<String>(&varint_u64(1 << 40)).unwrap_err();
        assert_eq!(err.code(), "codec.decode", "{err}");
        // Above isize::MAX, it panicked with "capacity overflow".
        for n in [isize::MAX as u64 + 1, u64::MAX] {
            let err = decode::<String>(&varint_u64(n)).unwrap_err();
            assert_eq!(err.code(), "codec.decode", "{err}");
            let err = decode::<(u8, String)>(&[[7].as_slice(), &varint_u64(n)].concat());
            assert!(err.is_err());
        }
        // A claim one byte longer than what is there.
        assert!(decode::<String>(&[3, b'a', b'b']).is_err());
        assert_eq!(decode::<String>(&[2, b'a', b'b']).unwrap(), "ab");
    }

    #[test]
    fn a_sequence_may_not_claim_more_elements_than_its_input_holds() {
        let bytes = varint_u64(1 << 40);
        for err in [
            decode::<Vec<u8>>(&bytes).unwrap_err(),
            decode::<Vec<String>>(&bytes).unwrap_err(),
            decode::<Vec<Vec<u64>>>(&bytes).unwrap_err(),
            decode::<BTreeMap<String, u64>>(&bytes).unwrap_err(),
            decode::<std::collections::HashMap<u64, u64>>(&bytes).unwrap_err(),
        ] {
            assert!(
                matches!(err, CodecError::LengthOverrun { claimed, .. } if claimed == 1 << 40),
                "{err}"
            );
        }
        // Zero-sized elements read no bytes: a long claim would loop for ever.
        let err = decode::<Vec<()>>(&varint_u64(1 << 60)).unwrap_err();
        assert_eq!(err.code(), "codec.length_overrun", "{err}");
        // Within the allowance they still decode.
        let units = vec![(); 100];
        assert_eq!(decode::<Vec<()>>(&encode(&units).unwrap()).unwrap(), units);
        let too_many = vec![(); ZERO_SIZED_ALLOWANCE + 10];
        assert!(decode::<Vec<()>>(&encode(&too_many).unwrap()).is_err());
    }

    #[test]
    fn nested_sequences_share_one_budget() {
        // Each inner vector claims as many `()` as the allowance: together they exceed it.
        let inner = vec![(); ZERO_SIZED_ALLOWANCE / 2 + 10];
        let outer = vec![inner.clone(), inner];
        let bytes = encode(&outer).unwrap();
        assert!(decode::<Vec<()>>(&encode(&outer[0]).unwrap()).is_ok());
        let result = decode::<Vec<Vec<()>>>(&bytes);
        assert!(
            matches!(result, Err(CodecError::LengthOverrun { .. })),
            "two halves of the allowance decoded"
        );
        // Ordinary nested data is well within it.
        let data = vec![vec![String::from("a"); 50]; 50];
        assert_eq!(
            decode::<Vec<Vec<String>>>(&encode(&data).unwrap()).unwrap(),
            data
        );
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum List {
        Cons(u8, Box<List>),
        Nil,
    }

    fn list(depth: usize) -> List {
        (0..depth).fold(List::Nil, |tail, _| List::Cons(1, Box::new(tail)))
    }

    /// Runs `f` on a thread with tokio's worker stack size, where the engine decodes.
    fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn nesting_is_limited_before_the_stack_is() {
        // `Cons` is two levels: the enum and its tuple variant.
        let ok = list(MAX_DEPTH / 2 - 1);
        let bytes = encode(&ok).unwrap();
        assert_eq!(on_small_stack(move || decode::<List>(&bytes)).unwrap(), ok);
        // A list 100,000 deep: two bytes per level, far past any stack.
        let mut deep = [0u8, 1].repeat(100_000);
        deep.push(1);
        let err = on_small_stack(move || decode::<List>(&deep)).unwrap_err();
        assert_eq!(
            err,
            CodecError::TooDeep {
                type_name: std::any::type_name::<List>(),
                limit: MAX_DEPTH
            }
        );
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Everything {
        a: u128,
        b: i128,
        c: char,
        d: Option<String>,
        e: (f32, f64),
        f: BTreeMap<String, Vec<u8>>,
        g: Vec<Option<List>>,
        h: std::time::Duration,
    }

    #[test]
    fn every_shape_round_trips_through_the_bounded_decoder() {
        let value = Everything {
            a: u128::MAX,
            b: i128::MIN,
            c: 'é',
            d: Some("däta".into()),
            e: (1.5, -2.25),
            f: [("k".to_string(), vec![0, 255])].into(),
            g: vec![None, Some(list(3))],
            h: std::time::Duration::new(5, 7),
        };
        assert_eq!(
            decode::<Everything>(&encode(&value).unwrap()).unwrap(),
            value
        );
    }
}
