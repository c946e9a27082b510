//! Decoding of each message kind, field by field in wire order.

use bytes::Bytes;

use crate::reader::Reader;
use crate::{
    Begin, Commit, DecodeError, Delete, Insert, LogicalMessage, Message, OldTuple, Origin,
    Relation, RelationColumn, ReplicaIdentity, Truncate, Tuple, TypeMessage, Update, Value,
};

/// Decodes one pgoutput protocol version 1 message from the payload of an
/// XLogData message (the bytes after the XLogData header).
///
/// The whole buffer must be exactly one message, otherwise the result is
/// [`DecodeError::TrailingBytes`]. Column values and logical message content
/// are slices of `data`.
///
/// ```
/// use bytes::Bytes;
/// use pgoutput::{decode, Begin, Message};
///
/// let mut payload = vec![b'B'];
/// payload.extend_from_slice(&0x16B_3748u64.to_be_bytes()); // final LSN
/// payload.extend_from_slice(&774_921_600_000_000i64.to_be_bytes()); // commit time
/// payload.extend_from_slice(&731u32.to_be_bytes()); // xid
///
/// let message = decode(&Bytes::from(payload)).unwrap();
/// assert_eq!(
///     message,
///     Message::Begin(Begin {
///         final_lsn: 0x16B_3748,
///         commit_time_micros: 774_921_600_000_000,
///         xid: 731,
///     })
/// );
/// ```
pub fn decode(data: &Bytes) -> Result<Message, DecodeError> {
    let mut reader = Reader::new(data);
    let tag = reader.read_u8()?;
    let message = match tag {
        b'B' => Message::Begin(read_begin(&mut reader)?),
        b'C' => Message::Commit(read_commit(&mut reader)?),
        b'O' => Message::Origin(read_origin(&mut reader)?),
        b'R' => Message::Relation(read_relation(&mut reader)?),
        b'Y' => Message::Type(read_type(&mut reader)?),
        b'I' => Message::Insert(read_insert(&mut reader)?),
        b'U' => Message::Update(read_update(&mut reader)?),
        b'D' => Message::Delete(read_delete(&mut reader)?),
        b'T' => Message::Truncate(read_truncate(&mut reader)?),
        b'M' => Message::Message(read_logical_message(&mut reader)?),
        other => return Err(DecodeError::UnsupportedTag(other)),
    };
    reader.finish()?;
    Ok(message)
}

fn read_begin(reader: &mut Reader) -> Result<Begin, DecodeError> {
    Ok(Begin {
        final_lsn: reader.read_u64()?,
        commit_time_micros: reader.read_i64()?,
        xid: reader.read_u32()?,
    })
}

fn read_commit(reader: &mut Reader) -> Result<Commit, DecodeError> {
    Ok(Commit {
        flags: reader.read_u8()?,
        commit_lsn: reader.read_u64()?,
        end_lsn: reader.read_u64()?,
        commit_time_micros: reader.read_i64()?,
    })
}

fn read_origin(reader: &mut Reader) -> Result<Origin, DecodeError> {
    Ok(Origin {
        commit_lsn: reader.read_u64()?,
        name: reader.read_string()?,
    })
}

fn read_relation(reader: &mut Reader) -> Result<Relation, DecodeError> {
    let oid = reader.read_u32()?;
    let namespace = reader.read_string()?;
    let name = reader.read_string()?;
    let replica_identity = parse_replica_identity(reader.read_u8()?)?;

    let column_count = usize::from(reader.read_u16()?);
    // Each column takes at least one byte, so the unread length caps the capacity.
    let mut columns = Vec::with_capacity(column_count.min(reader.remaining()));
    for _ in 0..column_count {
        let flags = reader.read_u8()?;
        columns.push(RelationColumn {
            is_key: flags & 1 != 0,
            name: reader.read_string()?,
            type_oid: reader.read_u32()?,
            type_modifier: reader.read_i32()?,
        });
    }

    Ok(Relation {
        oid,
        namespace,
        name,
        replica_identity,
        columns,
    })
}

fn parse_replica_identity(byte: u8) -> Result<ReplicaIdentity, DecodeError> {
    match byte {
        b'd' => Ok(ReplicaIdentity::Default),
        b'n' => Ok(ReplicaIdentity::Nothing),
        b'f' => Ok(ReplicaIdentity::Full),
        b'i' => Ok(ReplicaIdentity::Index),
        other => Err(DecodeError::InvalidReplicaIdentity(other)),
    }
}

fn read_type(reader: &mut Reader) -> Result<TypeMessage, DecodeError> {
    Ok(TypeMessage {
        oid: reader.read_u32()?,
        namespace: reader.read_string()?,
        name: reader.read_string()?,
    })
}

fn read_insert(reader: &mut Reader) -> Result<Insert, DecodeError> {
    let relation_oid = reader.read_u32()?;
    let marker = reader.read_u8()?;
    if marker != b'N' {
        return Err(DecodeError::InvalidOldTupleKind(marker));
    }
    Ok(Insert {
        relation_oid,
        new: read_tuple(reader)?,
    })
}

/// Reads an Update message, where an optional old tuple (`K` or `O`) comes
/// before the required new tuple (`N`).
fn read_update(reader: &mut Reader) -> Result<Update, DecodeError> {
    let relation_oid = reader.read_u32()?;
    let marker = reader.read_u8()?;
    let old = match marker {
        b'K' => Some(OldTuple::Key(read_tuple(reader)?)),
        b'O' => Some(OldTuple::Full(read_tuple(reader)?)),
        b'N' => None,
        other => return Err(DecodeError::InvalidOldTupleKind(other)),
    };
    if old.is_some() {
        let new_marker = reader.read_u8()?;
        if new_marker != b'N' {
            return Err(DecodeError::InvalidOldTupleKind(new_marker));
        }
    }
    Ok(Update {
        relation_oid,
        old,
        new: read_tuple(reader)?,
    })
}

fn read_delete(reader: &mut Reader) -> Result<Delete, DecodeError> {
    let relation_oid = reader.read_u32()?;
    let marker = reader.read_u8()?;
    let old = match marker {
        b'K' => OldTuple::Key(read_tuple(reader)?),
        b'O' => OldTuple::Full(read_tuple(reader)?),
        other => return Err(DecodeError::InvalidOldTupleKind(other)),
    };
    Ok(Delete { relation_oid, old })
}

/// Reads TupleData: an Int16 column count, then per column a kind byte and,
/// for `t` and `b`, an Int32 length and that many bytes.
fn read_tuple(reader: &mut Reader) -> Result<Tuple, DecodeError> {
    let column_count = usize::from(reader.read_u16()?);
    // Each column takes at least its kind byte, so the unread length caps the capacity.
    let mut values = Vec::with_capacity(column_count.min(reader.remaining()));
    for _ in 0..column_count {
        let at = reader.position();
        let kind = reader.read_u8()?;
        let value = match kind {
            b'n' => Value::Null,
            b'u' => Value::UnchangedToast,
            b't' => Value::Text(reader.read_length_prefixed_bytes()?),
            b'b' => Value::Binary(reader.read_length_prefixed_bytes()?),
            other => return Err(DecodeError::InvalidTupleKind { kind: other, at }),
        };
        values.push(value);
    }
    Ok(Tuple(values))
}

fn read_truncate(reader: &mut Reader) -> Result<Truncate, DecodeError> {
    let relation_count = reader.read_u32()?;
    let options = reader.read_u8()?;

    let relation_count = usize::try_from(relation_count).unwrap_or(usize::MAX);
    // Each OID takes four bytes, so the unread length caps the capacity.
    let mut relation_oids = Vec::with_capacity(relation_count.min(reader.remaining() / 4));
    for _ in 0..relation_count {
        relation_oids.push(reader.read_u32()?);
    }

    Ok(Truncate {
        cascade: options & 1 != 0,
        restart_identity: options & 2 != 0,
        relation_oids,
    })
}

fn read_logical_message(reader: &mut Reader) -> Result<LogicalMessage, DecodeError> {
    let flags = reader.read_u8()?;
    Ok(LogicalMessage {
        transactional: flags & 1 != 0,
        lsn: reader.read_u64()?,
        prefix: reader.read_string()?,
        content: reader.read_length_prefixed_bytes()?,
    })
}
