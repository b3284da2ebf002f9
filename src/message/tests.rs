//! Unit tests of `message`.

use super::*;

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Greeting {
    message: String,
}

#[test]
fn type_names_drop_paths_and_references() {
    assert_eq!(type_name_of::<Greeting>(), "Greeting");
    assert_eq!(type_name_of::<&str>(), "String");
    assert_eq!(type_name_of::<String>(), "String");
    assert_eq!(type_name_of::<Vec<String>>(), "Vec<String>");
    assert_eq!(type_name_of::<ExitRequest>(), "greenroom.ExitRequest");
    assert_eq!(
        type_name_of::<std::collections::HashMap<u8, Greeting>>(),
        "HashMap<u8, Greeting>"
    );
}

#[test]
fn the_ask_id_travels_in_the_frame_and_frame_len_counts_it() {
    for ask in [
        None,
        Some(0),
        Some(127),
        Some(128),
        Some(65_535),
        Some(1 << 32),
        Some(u64::MAX),
    ] {
        let mut msg = Message::new(&Greeting {
            message: "hi".into(),
        })
        .unwrap();
        msg.ask = ask;
        let mut frame = Vec::new();
        msg.encode_frame_into(&mut frame);
        assert_eq!(frame.len() - 4, msg.frame_len(), "{ask:?}");
        let back = Message::decode_frame_body(&frame[4..]).unwrap();
        assert_eq!((back.ask, &back), (ask, &msg));
    }
    // Anything but an unsigned integer is refused.
    let mut frame = Vec::new();
    let _ = rmp::encode::write_map_len(&mut frame, 3);
    let _ = rmp::encode::write_str(&mut frame, "type");
    let _ = rmp::encode::write_str(&mut frame, "T");
    let _ = rmp::encode::write_str(&mut frame, "body");
    let _ = rmp::encode::write_bin(&mut frame, &[]);
    let _ = rmp::encode::write_str(&mut frame, "ask");
    let _ = rmp::encode::write_sint(&mut frame, -1);
    assert!(Message::decode_frame_body(&frame).is_err());
}

#[test]
fn a_message_is_not_wrapped_in_another() {
    let inner = Message::new(&Greeting {
        message: "hi".into(),
    })
    .unwrap();
    assert_eq!(Message::new(&inner).unwrap(), inner);
    assert_eq!(Message::new(&&inner).unwrap(), inner);
    // Inside another type, a message is a field like any other.
    let poison = Message::new(&Poison {
        original: inner.clone(),
        details: String::new(),
        possibly_handled: false,
    })
    .unwrap();
    assert_eq!(poison.type_name(), "greenroom.Poison");
    assert_eq!(poison.get::<Poison>().unwrap().original, inner);
}

#[test]
fn str_and_string_are_the_same_message() {
    let a = Message::new("hi").unwrap();
    let b = Message::new(&"hi".to_string()).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.type_name(), "String");
    assert!(a.is::<String>());
    assert_eq!(a.get::<String>().as_deref(), Some("hi"));
}

#[test]
fn the_hand_written_frame_matches_serde_both_ways() {
    let m = Message::new(&vec![1u32, 2, 3]).unwrap();
    let mut fast = Vec::new();
    m.encode_frame_into(&mut fast);
    assert_eq!(fast.len() - 4, m.frame_len());
    for (t, n) in [
        ("x".repeat(40), 300),
        ("y".repeat(300), 70_000),
        (String::new(), 0),
    ] {
        let big = Message::from_parts(t, vec![1; n]);
        let mut out = Vec::new();
        big.encode_frame_into(&mut out);
        assert_eq!(out.len() - 4, big.frame_len());
    }
    assert_eq!(fast, crate::wire::encode(&m).unwrap());
    assert_eq!(Message::decode_frame_body(&fast[4..]).unwrap(), m);
    // Fields in another order, or an extra field, still decode.
    #[derive(Serialize)]
    struct Other<'a> {
        extra: u8,
        #[serde(with = "serde_bytes")]
        body: &'a [u8],
        #[serde(rename = "type")]
        type_name: &'a str,
    }
    let other = rmp_serde::to_vec_named(&Other {
        extra: 1,
        body: m.body(),
        type_name: m.type_name(),
    })
    .unwrap();
    assert_eq!(Message::decode_frame_body(&other).unwrap(), m);
    assert!(Message::decode_frame_body(b"\xc1").is_err());
}

#[test]
fn message_frames_of_any_other_shape_are_refused() {
    let m = Message::new("hi").unwrap();
    let mut good = Vec::new();
    m.encode_frame_into(&mut good);
    let good = &good[4..];
    let mut trailing = good.to_vec();
    trailing.push(0);
    let as_array = rmp_serde::to_vec(&m).unwrap();
    let body_as_str = rmp_serde::to_vec_named(&std::collections::BTreeMap::from([
        ("type", "String"),
        ("body", "hi"),
    ]))
    .unwrap();
    let twice = [&[0x83u8][..], &good[1..], b"\xa4type\xa1x"].concat();
    for bad in [
        trailing,
        as_array,
        body_as_str,
        twice,
        b"\x81\xa4type\xa1x".to_vec(),
    ] {
        assert!(Message::decode_frame_body(&bad).is_err(), "{bad:?}");
    }
}

#[test]
fn every_system_message_is_recognised_as_one() {
    let payload = Message::new("x").unwrap();
    let a: Address = "1@/d".parse().unwrap();
    let system = [
        Message::new(&ExitRequest::default()).unwrap(),
        Message::new(&ChildExited {
            child: a.clone(),
            reason: ExitReason::Requested,
        })
        .unwrap(),
        Message::new(&Poison {
            original: payload.clone(),
            details: String::new(),
            possibly_handled: false,
        })
        .unwrap(),
        Message::new(&Wakeup {
            payload: payload.clone(),
        })
        .unwrap(),
        Message::new(&DeadEnvelope {
            target: a.clone(),
            sender: a,
            message: payload.clone(),
        })
        .unwrap(),
        Message::new(&StatusRequest {}).unwrap(),
    ];
    for m in &system {
        assert!(m.is_system(), "{} is not recognised", m.type_name());
    }
    assert!(!payload.is_system());
}

#[test]
fn structs_decode_by_field_name() {
    let m = Message::new(&Greeting {
        message: "x".into(),
    })
    .unwrap();
    assert!(m.is::<Greeting>());
    assert!(m.decode::<String>().is_err());
    assert_eq!(m.get::<Greeting>().unwrap().message, "x");
}

#[test]
fn an_encoding_failure_keeps_the_serialiser_error_as_its_source() {
    struct Refuses;
    impl Serialize for Refuses {
        fn serialize<S: serde::Serializer>(&self, _: S) -> std::result::Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("refused on purpose"))
        }
    }
    let e = Message::new(&Refuses).unwrap_err();
    assert!(matches!(e, Error::Encode(_)), "{e}");
    let source = std::error::Error::source(&e).expect("a source");
    assert!(
        source.to_string().contains("refused on purpose"),
        "{source}"
    );
}
