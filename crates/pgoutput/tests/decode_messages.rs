//! Decoding of valid messages of every kind.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::{put_string, put_tuple, text, Sample};
use pgoutput::{
    decode, Begin, Insert, LogicalMessage, Message, Relation, ReplicaIdentity, Truncate, Tuple,
    Value,
};

fn assert_decodes(sample: Sample) {
    assert_eq!(
        decode(&sample.bytes),
        Ok(sample.expected),
        "sample: {}",
        sample.name
    );
}

#[test]
fn begin_decodes_all_fields() {
    assert_decodes(common::begin_sample());
}

#[test]
fn begin_from_literal_bytes() {
    let bytes = Bytes::from_static(&[
        b'B', //
        0x00, 0x00, 0x00, 0x01, 0x0A, 0x00, 0x0F, 0x28, // final LSN
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, // commit time
        0x80, 0x00, 0x00, 0x01, // xid
    ]);
    let expected = Message::Begin(Begin {
        final_lsn: 0x0000_0001_0A00_0F28,
        commit_time_micros: 256,
        xid: 0x8000_0001,
    });
    assert_eq!(decode(&bytes), Ok(expected));
}

#[test]
fn commit_decodes_all_fields() {
    assert_decodes(common::commit_sample());
}

#[test]
fn origin_decodes_name() {
    assert_decodes(common::origin_sample());
}

#[test]
fn relation_decodes_columns() {
    assert_decodes(common::relation_sample());
}

#[test]
fn relation_decodes_every_replica_identity() {
    let cases = [
        (b'd', ReplicaIdentity::Default),
        (b'n', ReplicaIdentity::Nothing),
        (b'f', ReplicaIdentity::Full),
        (b'i', ReplicaIdentity::Index),
    ];
    for (byte, replica_identity) in cases {
        let mut buf = BytesMut::new();
        buf.put_u8(b'R');
        buf.put_u32(1);
        put_string(&mut buf, "");
        put_string(&mut buf, "t");
        buf.put_u8(byte);
        buf.put_u16(0);
        let expected = Message::Relation(Relation {
            oid: 1,
            namespace: String::new(),
            name: "t".to_owned(),
            replica_identity,
            columns: Vec::new(),
        });
        assert_eq!(
            decode(&buf.freeze()),
            Ok(expected),
            "replica identity byte {byte}"
        );
    }
}

#[test]
fn type_decodes_names() {
    assert_decodes(common::type_sample());
}

#[test]
fn insert_decodes_every_value_kind() {
    assert_decodes(common::insert_sample());
}

#[test]
fn insert_from_literal_bytes() {
    let bytes = Bytes::from_static(&[
        b'I', //
        0x00, 0x00, 0x40, 0x00, // relation OID 16384
        b'N', //
        0x00, 0x02, // column count
        b't', 0x00, 0x00, 0x00, 0x02, b'4', b'2', //
        b'n',
    ]);
    let expected = Message::Insert(Insert {
        relation_oid: 16_384,
        new: Tuple(vec![text("42"), Value::Null]),
    });
    assert_eq!(decode(&bytes), Ok(expected));
}

#[test]
fn insert_with_empty_tuple() {
    let mut buf = BytesMut::new();
    buf.put_u8(b'I');
    buf.put_u32(5);
    buf.put_u8(b'N');
    put_tuple(&mut buf, &[]);
    let expected = Message::Insert(Insert {
        relation_oid: 5,
        new: Tuple(Vec::new()),
    });
    assert_eq!(decode(&buf.freeze()), Ok(expected));
}

#[test]
fn update_without_old_tuple() {
    assert_decodes(common::update_without_old_sample());
}

#[test]
fn update_with_key_tuple() {
    assert_decodes(common::update_with_key_sample());
}

#[test]
fn update_with_full_old_tuple() {
    assert_decodes(common::update_with_full_old_sample());
}

#[test]
fn delete_with_key_tuple() {
    assert_decodes(common::delete_with_key_sample());
}

#[test]
fn delete_with_full_old_tuple() {
    assert_decodes(common::delete_with_full_old_sample());
}

#[test]
fn truncate_decodes_options_and_oids() {
    assert_decodes(common::truncate_sample());
}

#[test]
fn truncate_decodes_each_option_bit() {
    let cases = [(0u8, false, false), (1, true, false), (2, false, true)];
    for (options, cascade, restart_identity) in cases {
        let mut buf = BytesMut::new();
        buf.put_u8(b'T');
        buf.put_u32(1);
        buf.put_u8(options);
        buf.put_u32(9);
        let expected = Message::Truncate(Truncate {
            cascade,
            restart_identity,
            relation_oids: vec![9],
        });
        assert_eq!(decode(&buf.freeze()), Ok(expected), "options {options}");
    }
}

#[test]
fn truncate_with_no_relations() {
    let bytes = Bytes::from_static(&[b'T', 0, 0, 0, 0, 0]);
    let expected = Message::Truncate(Truncate {
        cascade: false,
        restart_identity: false,
        relation_oids: Vec::new(),
    });
    assert_eq!(decode(&bytes), Ok(expected));
}

#[test]
fn logical_message_transactional() {
    assert_decodes(common::logical_message_sample());
}

#[test]
fn logical_message_non_transactional_empty() {
    let mut buf = BytesMut::new();
    buf.put_u8(b'M');
    buf.put_u8(0);
    buf.put_u64(3);
    put_string(&mut buf, "p");
    buf.put_u32(0);
    let expected = Message::Message(LogicalMessage {
        transactional: false,
        lsn: 3,
        prefix: "p".to_owned(),
        content: Bytes::new(),
    });
    assert_eq!(decode(&buf.freeze()), Ok(expected));
}

#[test]
fn text_value_shares_input_buffer() {
    let sample = common::insert_sample();
    let input_range = sample.bytes.as_ptr_range();

    let Ok(Message::Insert(insert)) = decode(&sample.bytes) else {
        panic!("insert sample failed to decode");
    };
    let Value::Text(value) = &insert.new.0[0] else {
        panic!("first column is not a text value: {:?}", insert.new.0[0]);
    };

    assert!(input_range.contains(&value.as_ptr()));
}

#[test]
fn logical_message_content_shares_input_buffer() {
    let sample = common::logical_message_sample();
    let input_range = sample.bytes.as_ptr_range();

    let Ok(Message::Message(message)) = decode(&sample.bytes) else {
        panic!("logical message sample failed to decode");
    };

    assert!(input_range.contains(&message.content.as_ptr()));
}
