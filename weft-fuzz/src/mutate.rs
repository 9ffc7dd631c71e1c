//! Mutations of a valid encoding: what a corrupt store, a torn write or a hostile record could
//! hold. Each aims at a way decoding can go wrong: bit flips and wrong tags reach other enum
//! variants and formats; truncations reach end-of-input in every field; inserted and
//! overwritten varints claim huge lengths (up to `u64::MAX`, past `isize::MAX`); splices put one
//! record's bytes where another's fields are expected.

use crate::rng::Rng;

/// Lengths a corrupt length prefix could claim, in bincode's varint forms.
fn oversized_varint(rng: &mut Rng, input_len: usize) -> Vec<u8> {
    let claims: [u64; 9] = [
        input_len as u64 + 1,
        1 << 20,
        1 << 31,
        u32::MAX as u64,
        1 << 40,
        isize::MAX as u64,
        isize::MAX as u64 + 1,
        u64::MAX,
        rng.next_u64(),
    ];
    let claim = claims[rng.below(claims.len())];
    match claim {
        0..=250 => vec![claim as u8],
        251..=0xFFFF if rng.flip() => [[0xFB].as_slice(), &(claim as u16).to_le_bytes()].concat(),
        0..=0xFFFF_FFFF if rng.flip() => {
            [[0xFC].as_slice(), &(claim as u32).to_le_bytes()].concat()
        }
        _ => [[0xFD].as_slice(), &claim.to_le_bytes()].concat(),
    }
}

/// Applies one to four mutations to `bytes`; `donor` is another valid encoding to splice from.
pub fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, donor: &[u8]) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        mutate_once(rng, bytes, donor);
    }
}

fn mutate_once(rng: &mut Rng, bytes: &mut Vec<u8>, donor: &[u8]) {
    let len = bytes.len();
    let at = rng.below(len + 1);
    match rng.below(10) {
        // Flip one to eight bits.
        0 => {
            for _ in 0..1 + rng.below(8) {
                if let Some(b) = bytes.get_mut(rng.below(len)) {
                    *b ^= 1 << rng.below(8);
                }
            }
        }
        // Set a byte to a value that means something to bincode.
        1 => {
            const SPECIAL: [u8; 10] = [0, 1, 2, 3, 7, 0x7F, 0xFB, 0xFC, 0xFD, 0xFF];
            if let Some(b) = bytes.get_mut(rng.below(len)) {
                *b = SPECIAL[rng.below(SPECIAL.len())];
            }
        }
        // Truncate.
        2 => bytes.truncate(at),
        // Insert an oversized length.
        3 => {
            let varint = oversized_varint(rng, len);
            bytes.splice(at..at, varint);
        }
        // Overwrite with an oversized length.
        4 => {
            let varint = oversized_varint(rng, len);
            let end = (at + varint.len()).min(len);
            bytes.splice(at..end, varint);
        }
        // A wrong format tag, or a wrong enum variant index.
        5 => {
            let tag = if rng.flip() {
                rng.below(16) as u8
            } else {
                rng.next_u64() as u8
            };
            let i = if rng.flip() { 0 } else { rng.below(len) };
            if let Some(b) = bytes.get_mut(i) {
                *b = tag;
            }
        }
        // Splice a piece of another record in, inserted or overwriting.
        6 => {
            let from = rng.below(donor.len() + 1);
            let to = from + rng.below(donor.len() - from + 1);
            let piece = &donor[from..to];
            if rng.flip() {
                bytes.splice(at..at, piece.iter().copied());
            } else {
                let end = (at + piece.len()).min(len);
                bytes.splice(at..end, piece.iter().copied());
            }
        }
        // Delete a range.
        7 => {
            let end = (at + 1 + rng.below(8)).min(len);
            if at < end {
                bytes.drain(at..end);
            }
        }
        // Duplicate a range.
        8 => {
            let end = (at + 1 + rng.below(16)).min(len);
            if at < end {
                let piece = bytes[at..end].to_vec();
                bytes.splice(at..at, piece);
            }
        }
        // Random bytes.
        _ => {
            let n = 1 + rng.below(8);
            let junk: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            bytes.splice(at..at, junk);
        }
    }
}
