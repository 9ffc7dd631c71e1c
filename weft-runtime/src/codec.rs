//! The one place that turns values into stored bytes and back: bincode 2 in serde mode.
//!
//! Everything Weft persists (workflow states, activity inputs and outputs, signal payloads,
//! engine records) goes through [`encode`] and [`decode`], so the encoding can change in one place.
//! Records add their own leading format tag (see the engine's record module); payloads are bare.

use serde::Serialize;
use serde::de::DeserializeOwned;

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
}

impl CodecError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            CodecError::Encode { .. } => "codec.encode",
            CodecError::Decode { .. } => "codec.decode",
            CodecError::TrailingBytes { .. } => "codec.trailing_bytes",
        }
    }
}

fn config() -> bincode::config::Configuration {
    // Standard config: little endian, variable-length integers. Changing it changes every
    // stored byte, so it is fixed here and pinned by the golden-record tests.
    bincode::config::standard()
}

/// Encodes a value to bytes.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| CodecError::Encode {
        type_name: std::any::type_name::<T>(),
        reason: e.to_string(),
    })
}

/// Decodes a value from bytes, refusing trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, read) =
        bincode::serde::decode_from_slice(bytes, config()).map_err(|e| CodecError::Decode {
            type_name: std::any::type_name::<T>(),
            reason: e.to_string(),
        })?;
    if read != bytes.len() {
        return Err(CodecError::TrailingBytes {
            type_name: std::any::type_name::<T>(),
            extra: bytes.len() - read,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
