//! Unit tests of `strict`.

use super::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Req {
    Ping,
    Echo { text: String, n: u32 },
    Wrap(Inner),
    Opt { maybe: Option<u8> },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Inner {
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
    names: BTreeMap<String, i64>,
}

fn named<T: Serialize>(v: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(v).unwrap()
}

#[test]
fn the_named_form_round_trips() {
    let values = [
        Req::Ping,
        Req::Echo {
            text: "hé".into(),
            n: 70000,
        },
        Req::Wrap(Inner {
            data: vec![1, 2, 3],
            names: [("a".to_string(), -5)].into_iter().collect(),
        }),
        Req::Opt { maybe: None },
        Req::Opt { maybe: Some(3) },
    ];
    for v in values {
        assert_eq!(from_slice::<Req>(&named(&v)).unwrap(), v);
    }
}

#[test]
fn integer_variant_indices_are_refused() {
    // What rmp_serde accepts as the variant with index 0 and 1.
    for bytes in [
        &b"\x00"[..],
        b"\x06\xff",
        b"\x81\x01\x82\xa4text\xa1x\xa1n\x01",
    ] {
        let e = from_slice::<Req>(bytes).unwrap_err();
        assert_eq!(e.fault, Fault::Shape, "{bytes:?}: {e}");
    }
}

#[test]
fn structs_as_arrays_trailing_bytes_and_unknown_variants_are_refused() {
    let as_array = rmp_serde::to_vec(&Req::Echo {
        text: "x".into(),
        n: 1,
    })
    .unwrap();
    let mut trailing = named(&Req::Ping);
    trailing.push(0xc0);
    for bad in [
        as_array,
        trailing,
        b"\xa4Nope".to_vec(),
        b"\x81\xa4Ping\xc0".to_vec(),
    ] {
        let e = from_slice::<Req>(&bad).unwrap_err();
        assert_eq!(e.fault, Fault::Shape, "{bad:?}: {e}");
    }
}

#[test]
fn unknown_fields_are_skipped_for_newer_senders() {
    #[derive(Serialize)]
    struct Newer {
        text: String,
        n: u32,
        added: Vec<Vec<u8>>,
    }
    #[derive(Serialize)]
    enum R {
        Echo(Newer),
    }
    let bytes = named(&R::Echo(Newer {
        text: "t".into(),
        n: 2,
        added: vec![vec![1]],
    }));
    assert_eq!(
        from_slice::<Req>(&bytes).unwrap(),
        Req::Echo {
            text: "t".into(),
            n: 2
        }
    );
}

#[test]
fn lying_lengths_deep_nesting_and_bad_utf8_fail_cleanly() {
    // A map claiming 2^32-1 entries, an array claiming 2^32-1 items.
    for bytes in [
        &b"\xdf\xff\xff\xff\xff"[..],
        b"\x81\xa4Wrap\xdd\xff\xff\xff\xff",
    ] {
        assert!(from_slice::<Req>(bytes).is_err());
    }
    let deep = [vec![0x91u8; 10_000], vec![0xc0]].concat();
    let e = from_slice::<serde::de::IgnoredAny>(&deep).unwrap_err();
    assert!(e.message.contains("nested"), "{e}");
    assert!(from_slice::<String>(b"\xa2\xff\xfe").is_err());
}

#[test]
fn a_refused_value_is_told_apart_from_a_wrong_shape() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Holds {
        at: crate::Address,
    }
    let bytes = named(&BTreeMap::from([("at", "not an address")]));
    let e = from_slice::<Holds>(&bytes).unwrap_err();
    assert_eq!(e.fault, Fault::Value, "{e}");
    let bytes = named(&BTreeMap::from([("at", 5)]));
    assert_eq!(from_slice::<Holds>(&bytes).unwrap_err().fault, Fault::Shape);
}
