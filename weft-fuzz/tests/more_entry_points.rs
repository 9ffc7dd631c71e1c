//! The entry points added after the record decoders: a by-name query's answer, a schedule's
//! trigger and a backup's manifest. Hand-picked hostile inputs are refused (or answered)
//! without a panic, and valid ones are accepted.

use weft_fuzz::run;
use weft_fuzz::targets::{self, Target};

fn target(name: &str) -> &'static Target {
    targets::by_name(name).unwrap()
}

/// Whether `target` accepts `bytes`; a panic fails the test with the input.
fn accepts(name: &str, bytes: &[u8]) -> bool {
    run::decode_caught(target(name), bytes).unwrap_or_else(|panic| {
        panic!(
            "{name} panicked on {:?}: {panic}",
            String::from_utf8_lossy(bytes)
        )
    })
}

#[test]
fn triggers_are_checked_before_any_fire_is_computed() {
    for good in [
        "*/5 * * * *\n\n0",
        "0 30 2 * * *\nEurope/Berlin\n1711846800000",
        "0 0 12 L * * 2031\nAustralia/Lord_Howe\n0",
        "0 9 * * 1#2\nAmerica/New_York\n18446744073709551615",
        "every 1 0\n\n18446744073709551615",
        "every 1099511627776 17592186044415\n\n0",
    ] {
        assert!(accepts("schedule.trigger", good.as_bytes()), "{good:?}");
    }
    for bad in [
        "* * * *\n\n0",
        "61 * * * *\n\n0",
        "0 * * * *\nMars/Olympus\n0",
        "0 0 0 1 1 * 2030 1\n\n0",
        "every 0 0\n\n0",
        "every 18446744073709551616 0\n\n0",
        "*/0 * * * *\n\n0",
        "0-59/4294967296 * * * *\n\n0",
        "9999999999999999999 * * * *\n\n0",
        "\u{0} * * * *\n\n0",
    ] {
        assert!(!accepts("schedule.trigger", bad.as_bytes()), "{bad:?}");
    }
    // Never fires (there is no 31 February), and is not refused for it: computing its fires
    // ends, with none.
    accepts("schedule.trigger", b"0 0 31 2 *\n\n0");
}

#[test]
fn manifests_of_other_shapes_and_newer_formats_are_refused() {
    let good = br#"{"format_version":2,"weft_version":"0.1.0","owner_epoch":3,"created_at_ms":1,"entries":10,"checksum":"ab"}"#;
    assert!(accepts("backup.manifest", good));
    for bad in [
        // A format far newer than this build's, whichever it is.
        &br#"{"format_version":999,"weft_version":"9.0.0","owner_epoch":3,"created_at_ms":1,"entries":10,"checksum":"ab"}"#[..],
        br#"{"format_version":-1}"#,
        br#"{"format_version":2,"weft_version":"0.1.0","owner_epoch":null,"created_at_ms":1,"entries":18446744073709551616,"checksum":"ab"}"#,
        br#"[1,2,3]"#,
        b"",
        &[b'['; 100_000],
    ] {
        assert!(
            !accepts("backup.manifest", bad),
            "{:?}",
            String::from_utf8_lossy(&bad[..bad.len().min(80)])
        );
    }
}

#[test]
fn a_query_answers_from_valid_state_and_refuses_other_bytes() {
    let mut rng = weft_fuzz::rng::Rng::for_input(3, 3);
    let valid = (target("json.query").generate)(&mut rng);
    assert!(accepts("json.query", &valid));
    assert!(!accepts("json.query", &[]));
    assert!(!accepts("json.query", &[0xff; 9]));
    // A variant tag, then a length prefix claiming a terabyte.
    assert!(!accepts("json.query", &[1, 0xfd, 0, 0, 0, 0, 0, 1, 0, 0]));
}
