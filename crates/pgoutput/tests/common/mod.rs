//! Test-only encoder for pgoutput messages, sample messages with their expected
//! decoding, and a deterministic random byte generator.

#![allow(dead_code)]

use bytes::{BufMut, Bytes, BytesMut};
use pgoutput::{
    Begin, Commit, Delete, Insert, LogicalMessage, Message, OldTuple, Origin, Relation,
    RelationColumn, ReplicaIdentity, Truncate, Tuple, TypeMessage, Update, Value,
};

/// Appends a NUL-terminated string.
pub fn put_string(buf: &mut BytesMut, text: &str) {
    buf.put_slice(text.as_bytes());
    buf.put_u8(0);
}

/// Appends TupleData: an Int16 column count, then each column's kind byte and,
/// for text and binary values, an Int32 length and the bytes.
pub fn put_tuple(buf: &mut BytesMut, values: &[Value]) {
    buf.put_u16(u16::try_from(values.len()).expect("test tuple has at most 65535 columns"));
    for value in values {
        match value {
            Value::Null => buf.put_u8(b'n'),
            Value::UnchangedToast => buf.put_u8(b'u'),
            Value::Text(data) => {
                buf.put_u8(b't');
                put_length_prefixed(buf, data);
            }
            Value::Binary(data) => {
                buf.put_u8(b'b');
                put_length_prefixed(buf, data);
            }
        }
    }
}

/// Appends an Int32 length followed by the bytes.
pub fn put_length_prefixed(buf: &mut BytesMut, data: &[u8]) {
    buf.put_u32(u32::try_from(data.len()).expect("test value is shorter than 4 GiB"));
    buf.put_slice(data);
}

pub fn text(value: &str) -> Value {
    Value::Text(Bytes::copy_from_slice(value.as_bytes()))
}

/// Valid encoded message and the value that `decode` must return for it.
pub struct Sample {
    pub name: &'static str,
    pub bytes: Bytes,
    pub expected: Message,
}

pub fn begin_sample() -> Sample {
    let mut buf = BytesMut::new();
    buf.put_u8(b'B');
    buf.put_u64(0x0000_0001_0A00_0F28);
    buf.put_i64(774_921_600_123_456);
    buf.put_u32(7_351);
    Sample {
        name: "begin",
        bytes: buf.freeze(),
        expected: Message::Begin(Begin {
            final_lsn: 0x0000_0001_0A00_0F28,
            commit_time_micros: 774_921_600_123_456,
            xid: 7_351,
        }),
    }
}

pub fn commit_sample() -> Sample {
    let mut buf = BytesMut::new();
    buf.put_u8(b'C');
    buf.put_u8(0);
    buf.put_u64(0x0000_0001_0A00_0F28);
    buf.put_u64(0x0000_0001_0A00_0F58);
    buf.put_i64(-5);
    Sample {
        name: "commit",
        bytes: buf.freeze(),
        expected: Message::Commit(Commit {
            flags: 0,
            commit_lsn: 0x0000_0001_0A00_0F28,
            end_lsn: 0x0000_0001_0A00_0F58,
            commit_time_micros: -5,
        }),
    }
}

pub fn origin_sample() -> Sample {
    let mut buf = BytesMut::new();
    buf.put_u8(b'O');
    buf.put_u64(u64::MAX);
    put_string(&mut buf, "pg_16394");
    Sample {
        name: "origin",
        bytes: buf.freeze(),
        expected: Message::Origin(Origin {
            commit_lsn: u64::MAX,
            name: "pg_16394".to_owned(),
        }),
    }
}

/// Relation with a key column, a column with a type modifier and a non-ASCII name.
pub fn relation_sample() -> Sample {
    let mut buf = BytesMut::new();
    buf.put_u8(b'R');
    buf.put_u32(16_384);
    put_string(&mut buf, "public");
    put_string(&mut buf, "todos");
    buf.put_u8(b'd');
    buf.put_u16(3);

    buf.put_u8(1);
    put_string(&mut buf, "id");
    buf.put_u32(20);
    buf.put_i32(-1);

    buf.put_u8(0);
    put_string(&mut buf, "title");
    buf.put_u32(1_043);
    buf.put_i32(104);

    buf.put_u8(0);
    put_string(&mut buf, "größe");
    buf.put_u32(700);
    buf.put_i32(-1);

    Sample {
        name: "relation",
        bytes: buf.freeze(),
        expected: Message::Relation(Relation {
            oid: 16_384,
            namespace: "public".to_owned(),
            name: "todos".to_owned(),
            replica_identity: ReplicaIdentity::Default,
            columns: vec![
                RelationColumn {
                    is_key: true,
                    name: "id".to_owned(),
                    type_oid: 20,
                    type_modifier: -1,
                },
                RelationColumn {
                    is_key: false,
                    name: "title".to_owned(),
                    type_oid: 1_043,
                    type_modifier: 104,
                },
                RelationColumn {
                    is_key: false,
                    name: "größe".to_owned(),
                    type_oid: 700,
                    type_modifier: -1,
                },
            ],
        }),
    }
}

pub fn type_sample() -> Sample {
    let mut buf = BytesMut::new();
    buf.put_u8(b'Y');
    buf.put_u32(16_390);
    put_string(&mut buf, "public");
    put_string(&mut buf, "mood");
    Sample {
        name: "type",
        bytes: buf.freeze(),
        expected: Message::Type(TypeMessage {
            oid: 16_390,
            namespace: "public".to_owned(),
            name: "mood".to_owned(),
        }),
    }
}

/// Insert whose tuple has every value kind, including an empty text value.
pub fn insert_sample() -> Sample {
    let values = vec![
        text("42"),
        Value::Binary(Bytes::from_static(&[0, 1, 0xff])),
        Value::Null,
        Value::UnchangedToast,
        text(""),
    ];
    let mut buf = BytesMut::new();
    buf.put_u8(b'I');
    buf.put_u32(16_384);
    buf.put_u8(b'N');
    put_tuple(&mut buf, &values);
    Sample {
        name: "insert",
        bytes: buf.freeze(),
        expected: Message::Insert(Insert {
            relation_oid: 16_384,
            new: Tuple(values),
        }),
    }
}

pub fn update_without_old_sample() -> Sample {
    let values = vec![text("1"), text("buy milk")];
    let mut buf = BytesMut::new();
    buf.put_u8(b'U');
    buf.put_u32(16_384);
    buf.put_u8(b'N');
    put_tuple(&mut buf, &values);
    Sample {
        name: "update without old tuple",
        bytes: buf.freeze(),
        expected: Message::Update(Update {
            relation_oid: 16_384,
            old: None,
            new: Tuple(values),
        }),
    }
}

/// Update that changed the key under `REPLICA IDENTITY DEFAULT`.
pub fn update_with_key_sample() -> Sample {
    let key = vec![text("1"), Value::Null];
    let values = vec![text("2"), text("buy milk")];
    let mut buf = BytesMut::new();
    buf.put_u8(b'U');
    buf.put_u32(16_384);
    buf.put_u8(b'K');
    put_tuple(&mut buf, &key);
    buf.put_u8(b'N');
    put_tuple(&mut buf, &values);
    Sample {
        name: "update with key",
        bytes: buf.freeze(),
        expected: Message::Update(Update {
            relation_oid: 16_384,
            old: Some(OldTuple::Key(Tuple(key))),
            new: Tuple(values),
        }),
    }
}

/// Update under `REPLICA IDENTITY FULL` whose new tuple has an unchanged TOAST value.
pub fn update_with_full_old_sample() -> Sample {
    let old = vec![text("1"), text("long text")];
    let values = vec![text("1"), Value::UnchangedToast];
    let mut buf = BytesMut::new();
    buf.put_u8(b'U');
    buf.put_u32(16_384);
    buf.put_u8(b'O');
    put_tuple(&mut buf, &old);
    buf.put_u8(b'N');
    put_tuple(&mut buf, &values);
    Sample {
        name: "update with full old tuple",
        bytes: buf.freeze(),
        expected: Message::Update(Update {
            relation_oid: 16_384,
            old: Some(OldTuple::Full(Tuple(old))),
            new: Tuple(values),
        }),
    }
}

pub fn delete_with_key_sample() -> Sample {
    let key = vec![text("7"), Value::Null];
    let mut buf = BytesMut::new();
    buf.put_u8(b'D');
    buf.put_u32(16_384);
    buf.put_u8(b'K');
    put_tuple(&mut buf, &key);
    Sample {
        name: "delete with key",
        bytes: buf.freeze(),
        expected: Message::Delete(Delete {
            relation_oid: 16_384,
            old: OldTuple::Key(Tuple(key)),
        }),
    }
}

pub fn delete_with_full_old_sample() -> Sample {
    let old = vec![text("7"), text("walk dog")];
    let mut buf = BytesMut::new();
    buf.put_u8(b'D');
    buf.put_u32(16_384);
    buf.put_u8(b'O');
    put_tuple(&mut buf, &old);
    Sample {
        name: "delete with full old tuple",
        bytes: buf.freeze(),
        expected: Message::Delete(Delete {
            relation_oid: 16_384,
            old: OldTuple::Full(Tuple(old)),
        }),
    }
}

pub fn truncate_sample() -> Sample {
    let mut buf = BytesMut::new();
    buf.put_u8(b'T');
    buf.put_u32(2);
    buf.put_u8(1 | 2);
    buf.put_u32(16_384);
    buf.put_u32(16_400);
    Sample {
        name: "truncate",
        bytes: buf.freeze(),
        expected: Message::Truncate(Truncate {
            cascade: true,
            restart_identity: true,
            relation_oids: vec![16_384, 16_400],
        }),
    }
}

/// Transactional logical message whose content contains a NUL byte.
pub fn logical_message_sample() -> Sample {
    let content: &[u8] = b"{\"op\":1}\0tail";
    let mut buf = BytesMut::new();
    buf.put_u8(b'M');
    buf.put_u8(1);
    buf.put_u64(0x0000_0002_0000_0010);
    put_string(&mut buf, "volt");
    put_length_prefixed(&mut buf, content);
    Sample {
        name: "logical message",
        bytes: buf.freeze(),
        expected: Message::Message(LogicalMessage {
            transactional: true,
            lsn: 0x0000_0002_0000_0010,
            prefix: "volt".to_owned(),
            content: Bytes::from_static(content),
        }),
    }
}

/// Returns one sample of every message kind and tuple marker combination.
pub fn all_samples() -> Vec<Sample> {
    vec![
        begin_sample(),
        commit_sample(),
        origin_sample(),
        relation_sample(),
        type_sample(),
        insert_sample(),
        update_without_old_sample(),
        update_with_key_sample(),
        update_with_full_old_sample(),
        delete_with_key_sample(),
        delete_with_full_old_sample(),
        truncate_sample(),
        logical_message_sample(),
    ]
}

/// Xorshift64 pseudo-random generator (Marsaglia, 2003), so random tests repeat
/// the same inputs on every run.
pub struct Xorshift(u64);

impl Xorshift {
    /// Creates a generator. A zero seed would only ever produce zeros, so it is replaced.
    pub fn new(seed: u64) -> Self {
        Xorshift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Returns a value in `0..bound`. `bound` must be non-zero.
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }

    pub fn next_byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
}
