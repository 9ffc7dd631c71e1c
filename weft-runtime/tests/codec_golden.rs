//! Golden records for the payload encoding of `weft_runtime::codec`.
//!
//! Every `tests/golden/codec_*.bin` file holds the bytes `codec::encode` produced for one value when
//! the file was committed. Each test checks that those bytes still decode to that value (stored
//! workflows must stay readable) and that encoding the value today gives the same bytes (so a
//! change to the bincode configuration or to serde's representation shows up here, not in a
//! user's store).
//!
//! # Blessing
//!
//! A missing or different file fails the test; normal runs never write to `tests/golden/`. When
//! a case is added, or the encoding changes on purpose, regenerate the files with
//!
//! ```text
//! WEFT_BLESS=1 cargo test -p weft-runtime --test codec_golden
//! ```
//!
//! and commit them. Changing an existing file means records already on disk no longer decode:
//! that needs a new format tag and a migration, not just a bless.

use std::fmt::Debug;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use weft_runtime::codec;

/// The environment variable that rewrites the golden files instead of checking them.
const BLESS_VAR: &str = "WEFT_BLESS";

/// The prefix of this suite's files in `tests/golden/`, which other record formats share.
const GOLDEN_PREFIX: &str = "codec_";

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
        .join(format!("{GOLDEN_PREFIX}{name}.bin"))
}

fn blessing() -> bool {
    std::env::var_os(BLESS_VAR).is_some_and(|v| v == "1")
}

/// Checks (or, when blessing, writes) the golden file `name` for `value`.
fn golden<T>(name: &str, value: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let path = golden_path(name);
    let encoded = codec::encode(value).unwrap_or_else(|e| panic!("{name}: encode failed: {e}"));

    if blessing() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &encoded)
            .unwrap_or_else(|e| panic!("{name}: cannot write {}: {e}", path.display()));
    }

    let stored = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{name}: cannot read golden file {}: {e}; for a new case, run with {BLESS_VAR}=1 and commit the file",
            path.display()
        )
    });
    let decoded: T = codec::decode(&stored).unwrap_or_else(|e| {
        panic!(
            "{name}: the committed bytes no longer decode ({e}); stored records of this shape would be unreadable"
        )
    });
    assert_eq!(
        &decoded, value,
        "{name}: the committed bytes decode to a different value"
    );
    assert_eq!(
        encoded,
        stored,
        "{name}: the value now encodes to different bytes than {}; if intended, existing records \
         need a new format tag, then bless with {BLESS_VAR}=1",
        path.display()
    );
}

// ---------------------------------------------------------------------------------------------
// Representative payload types: shaped like what workflows and activities exchange.

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    items: Vec<LineItem>,
    coupon: Option<String>,
    express: bool,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct LineItem {
    sku: String,
    quantity: u32,
    unit_price_cents: i64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Status {
    Pending,
    Charged(u64),
    Shipped {
        carrier: String,
        tracking: Option<String>,
    },
    Failed {
        code: i32,
        retryable: bool,
    },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct OrderId(u64);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Marker;

fn sample_order() -> Order {
    Order {
        id: 9_007_199_254_740_993,
        customer: "Zoë Ångström".to_string(),
        items: vec![
            LineItem {
                sku: "BOOK-001".to_string(),
                quantity: 2,
                unit_price_cents: 1_999,
            },
            LineItem {
                sku: "REFUND".to_string(),
                quantity: 1,
                unit_price_cents: -500,
            },
        ],
        coupon: Some("WELCOME10".to_string()),
        express: true,
    }
}

// ---------------------------------------------------------------------------------------------
// Cases

#[test]
fn integers() {
    golden("u8_max", &u8::MAX);
    golden("u16_boundary", &251u16);
    golden("u32_small", &7u32);
    golden("u32_large", &300_000u32);
    golden("u64_max", &u64::MAX);
    golden("i32_negative", &-1i32);
    golden("i64_min", &i64::MIN);
    golden("u128_large", &(u128::from(u64::MAX) + 1));
    golden("usize_and_isize", &(12_345usize, -12_345isize));
}

#[test]
fn scalars() {
    golden("bool_pair", &(true, false));
    golden("f64_value", &-1234.5f64);
    golden("char_non_ascii", &'ß');
    golden("unit", &());
}

#[test]
fn strings() {
    golden("string_empty", &String::new());
    golden("string_ascii", &"hello, weft".to_string());
    golden("string_unicode", &"naïve café ✓ 🦀".to_string());
}

#[test]
fn options() {
    golden("option_none", &None::<u32>);
    golden("option_some", &Some(42u32));
    golden("option_nested", &Some(None::<String>));
}

#[test]
fn vecs() {
    golden("vec_empty", &Vec::<u32>::new());
    golden("vec_u32", &vec![0u32, 1, 250, 251, 65_535, 65_536]);
    golden(
        "vec_string",
        &vec!["a".to_string(), String::new(), "ccc".to_string()],
    );
    golden("vec_bytes", &vec![0u8, 1, 127, 128, 255]);
}

#[test]
fn structs() {
    golden("struct_order", &sample_order());
    golden(
        "struct_order_minimal",
        &Order {
            id: 0,
            customer: String::new(),
            items: Vec::new(),
            coupon: None,
            express: false,
        },
    );
    golden("struct_newtype", &OrderId(77));
    golden("struct_unit", &Marker);
}

#[test]
fn enums() {
    golden("enum_unit_variant", &Status::Pending);
    golden("enum_tuple_variant", &Status::Charged(1_999));
    golden(
        "enum_struct_variant",
        &Status::Shipped {
            carrier: "DHL".to_string(),
            tracking: Some("JD0146000033".to_string()),
        },
    );
    golden(
        "enum_struct_variant_last",
        &Status::Failed {
            code: -42,
            retryable: true,
        },
    );
    golden(
        "enum_in_containers",
        &(
            vec![Status::Pending, Status::Charged(5)],
            Some(Status::Shipped {
                carrier: String::new(),
                tracking: None,
            }),
        ),
    );
}

/// The golden files pin the bytes, but a wrong bless could pin wrong ones. These few encodings
/// are written out by hand from the format (bincode 2 standard config: little endian, varint
/// integers with 251..=254 as width markers, zigzag for signed), so the config itself is
/// checked independently of any file.
#[test]
fn hand_checked_encodings() {
    assert_eq!(codec::encode(&7u32).unwrap(), [7]);
    assert_eq!(codec::encode(&251u16).unwrap(), [251, 251, 0]);
    assert_eq!(
        codec::encode(&300_000u32).unwrap(),
        [252, 0xe0, 0x93, 0x04, 0x00]
    );
    assert_eq!(codec::encode(&-1i32).unwrap(), [1]);
    assert_eq!(codec::encode(&None::<u32>).unwrap(), [0]);
    assert_eq!(codec::encode(&Some(42u32)).unwrap(), [1, 42]);
    assert_eq!(codec::encode(&"hi".to_string()).unwrap(), [2, b'h', b'i']);
    assert_eq!(codec::encode(&Status::Charged(5)).unwrap(), [1, 5]);
}

/// Blessing writes only the files of known cases: nothing in the folder is left unchecked.
#[test]
fn every_golden_file_has_a_case() {
    let source = include_str!("codec_golden.rs");
    let dir = golden_path("x").parent().unwrap().to_path_buf();
    let mut orphans = Vec::new();
    // No folder yet (the first bless is still writing it) means no orphans; the cases
    // themselves fail on their missing files.
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => panic!("cannot list {}: {e}", dir.display()),
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let Some(name) = path
            .file_name()
            .and_then(|s| s.to_str())
            .and_then(|s| s.strip_prefix(GOLDEN_PREFIX))
            .and_then(|s| s.strip_suffix(".bin"))
        else {
            continue;
        };
        if !source.contains(&format!("\"{name}\"")) {
            orphans.push(path.display().to_string());
        }
    }
    assert!(
        orphans.is_empty(),
        "golden files without a case (delete them or add the case): {orphans:?}"
    );
}
