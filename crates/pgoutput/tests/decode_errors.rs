//! Errors for malformed, truncated and unsupported messages.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::{put_string, put_tuple, text};
use pgoutput::{decode, DecodeError};

#[test]
fn empty_input_is_unexpected_end() {
    assert_eq!(
        decode(&Bytes::new()),
        Err(DecodeError::UnexpectedEnd { needed: 1, at: 0 })
    );
}

#[test]
fn unknown_tags_are_unsupported() {
    // S, E, c and A are the protocol version 2 streaming messages.
    for tag in [b'S', b'E', b'c', b'A', b'K', b'N', b'b', 0, 0xff] {
        let bytes = Bytes::from(vec![tag, 0, 0, 0, 0]);
        assert_eq!(
            decode(&bytes),
            Err(DecodeError::UnsupportedTag(tag)),
            "tag {tag}"
        );
    }
}

#[test]
fn every_truncation_is_unexpected_end() {
    for sample in common::all_samples() {
        for len in 0..sample.bytes.len() {
            let prefix = sample.bytes.slice(..len);
            let result = decode(&prefix);
            let Err(DecodeError::UnexpectedEnd { needed, at }) = result else {
                panic!(
                    "{} cut to {len} bytes: expected UnexpectedEnd, got {result:?}",
                    sample.name
                );
            };
            assert!(
                at <= len,
                "{} cut to {len} bytes: read started at {at}",
                sample.name
            );
            assert!(
                at + needed > len,
                "{} cut to {len} bytes: read of {needed} bytes at {at} fits",
                sample.name
            );
        }
    }
}

#[test]
fn trailing_byte_after_every_sample() {
    for sample in common::all_samples() {
        let mut buf = BytesMut::from(&sample.bytes[..]);
        buf.put_u8(0);
        assert_eq!(
            decode(&buf.freeze()),
            Err(DecodeError::TrailingBytes {
                at: sample.bytes.len()
            }),
            "sample: {}",
            sample.name
        );
    }
}

#[test]
fn tuple_with_unknown_kind() {
    let mut buf = BytesMut::new();
    buf.put_u8(b'I');
    buf.put_u32(1);
    buf.put_u8(b'N');
    buf.put_u16(2);
    buf.put_u8(b'n');
    buf.put_u8(b'x');
    assert_eq!(
        decode(&buf.freeze()),
        Err(DecodeError::InvalidTupleKind { kind: b'x', at: 9 })
    );
}

#[test]
fn relation_with_unknown_replica_identity() {
    let mut buf = BytesMut::new();
    buf.put_u8(b'R');
    buf.put_u32(1);
    put_string(&mut buf, "public");
    put_string(&mut buf, "t");
    buf.put_u8(b'x');
    buf.put_u16(0);
    assert_eq!(
        decode(&buf.freeze()),
        Err(DecodeError::InvalidReplicaIdentity(b'x'))
    );
}

#[test]
fn insert_without_new_marker() {
    for marker in [b'K', b'O', b'x'] {
        let mut buf = BytesMut::new();
        buf.put_u8(b'I');
        buf.put_u32(1);
        buf.put_u8(marker);
        put_tuple(&mut buf, &[text("1")]);
        assert_eq!(
            decode(&buf.freeze()),
            Err(DecodeError::InvalidOldTupleKind(marker)),
            "marker {marker}"
        );
    }
}

#[test]
fn update_with_unknown_old_marker() {
    let mut buf = BytesMut::new();
    buf.put_u8(b'U');
    buf.put_u32(1);
    buf.put_u8(b'x');
    put_tuple(&mut buf, &[text("1")]);
    assert_eq!(
        decode(&buf.freeze()),
        Err(DecodeError::InvalidOldTupleKind(b'x'))
    );
}

#[test]
fn update_with_old_tuple_but_no_new_marker() {
    for second_marker in [b'K', b'O', b'x'] {
        let mut buf = BytesMut::new();
        buf.put_u8(b'U');
        buf.put_u32(1);
        buf.put_u8(b'K');
        put_tuple(&mut buf, &[text("1")]);
        buf.put_u8(second_marker);
        put_tuple(&mut buf, &[text("2")]);
        assert_eq!(
            decode(&buf.freeze()),
            Err(DecodeError::InvalidOldTupleKind(second_marker)),
            "second marker {second_marker}"
        );
    }
}

#[test]
fn delete_with_new_marker() {
    for marker in [b'N', b'x'] {
        let mut buf = BytesMut::new();
        buf.put_u8(b'D');
        buf.put_u32(1);
        buf.put_u8(marker);
        put_tuple(&mut buf, &[text("1")]);
        assert_eq!(
            decode(&buf.freeze()),
            Err(DecodeError::InvalidOldTupleKind(marker)),
            "marker {marker}"
        );
    }
}

#[test]
fn relation_name_invalid_utf8() {
    let mut buf = BytesMut::new();
    buf.put_u8(b'R');
    buf.put_u32(1);
    put_string(&mut buf, "public");
    buf.put_slice(&[b'a', 0xc3, 0x28, 0]);
    buf.put_u8(b'd');
    buf.put_u16(0);
    assert_eq!(
        decode(&buf.freeze()),
        Err(DecodeError::InvalidUtf8 { at: 12 })
    );
}

#[test]
fn origin_name_without_nul() {
    let mut buf = BytesMut::new();
    buf.put_u8(b'O');
    buf.put_u64(1);
    buf.put_slice(b"abc");
    assert_eq!(
        decode(&buf.freeze()),
        Err(DecodeError::UnexpectedEnd { needed: 4, at: 9 })
    );
}

#[test]
fn text_value_length_past_end() {
    let mut buf = BytesMut::new();
    buf.put_u8(b'I');
    buf.put_u32(1);
    buf.put_u8(b'N');
    buf.put_u16(1);
    buf.put_u8(b't');
    buf.put_u32(u32::MAX);
    buf.put_slice(b"ab");
    assert_eq!(
        decode(&buf.freeze()),
        Err(DecodeError::UnexpectedEnd {
            needed: u32::MAX as usize,
            at: 13
        })
    );
}

#[test]
fn text_value_negative_length() {
    let mut buf = BytesMut::new();
    buf.put_u8(b'I');
    buf.put_u32(1);
    buf.put_u8(b'N');
    buf.put_u16(1);
    buf.put_u8(b't');
    buf.put_i32(-1);
    let result = decode(&buf.freeze());
    assert!(
        matches!(result, Err(DecodeError::UnexpectedEnd { at: 13, .. })),
        "got {result:?}"
    );
}

#[test]
fn logical_message_content_length_past_end() {
    let mut buf = BytesMut::new();
    buf.put_u8(b'M');
    buf.put_u8(1);
    buf.put_u64(1);
    put_string(&mut buf, "p");
    buf.put_u32(10);
    buf.put_slice(b"short");
    assert_eq!(
        decode(&buf.freeze()),
        Err(DecodeError::UnexpectedEnd { needed: 10, at: 16 })
    );
}

#[test]
fn truncate_huge_count_without_oids() {
    let bytes = Bytes::from_static(&[b'T', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1]);
    assert_eq!(
        decode(&bytes),
        Err(DecodeError::UnexpectedEnd { needed: 4, at: 10 })
    );
}

#[test]
fn relation_huge_column_count_without_columns() {
    let mut buf = BytesMut::new();
    buf.put_u8(b'R');
    buf.put_u32(1);
    put_string(&mut buf, "s");
    put_string(&mut buf, "t");
    buf.put_u8(b'd');
    buf.put_u16(u16::MAX);
    assert_eq!(
        decode(&buf.freeze()),
        Err(DecodeError::UnexpectedEnd { needed: 1, at: 12 })
    );
}

#[test]
fn tuple_huge_column_count_without_columns() {
    let bytes = Bytes::from_static(&[b'I', 0, 0, 0, 1, b'N', 0xff, 0xff]);
    assert_eq!(
        decode(&bytes),
        Err(DecodeError::UnexpectedEnd { needed: 1, at: 8 })
    );
}

#[test]
fn display_is_one_line() {
    let errors = [
        DecodeError::UnexpectedEnd { needed: 4, at: 9 },
        DecodeError::UnsupportedTag(b'S'),
        DecodeError::UnsupportedTag(b'\n'),
        DecodeError::InvalidTupleKind { kind: 0, at: 3 },
        DecodeError::InvalidReplicaIdentity(b'x'),
        DecodeError::InvalidOldTupleKind(b'\r'),
        DecodeError::InvalidUtf8 { at: 12 },
        DecodeError::TrailingBytes { at: 22 },
    ];
    for error in errors {
        let message = error.to_string();
        assert!(!message.is_empty(), "{error:?}");
        assert!(
            !message.contains(['\n', '\r']),
            "{error:?} prints {message:?}"
        );
    }
}

#[test]
fn display_names_tag_and_offset() {
    assert_eq!(
        DecodeError::UnsupportedTag(b'S').to_string(),
        "unsupported pgoutput message tag 'S' (0x53); only protocol version 1 messages are supported"
    );
    assert_eq!(
        DecodeError::UnexpectedEnd { needed: 4, at: 9 }.to_string(),
        "unexpected end of pgoutput message: needed 4 bytes at offset 9"
    );
}

#[test]
fn decode_error_is_std_error() {
    let error: Box<dyn std::error::Error + Send + Sync> =
        Box::new(DecodeError::TrailingBytes { at: 1 });
    assert!(error.source().is_none());
}
