//! Decoded pgoutput messages.
//!
//! LSNs are `u64` WAL positions. Timestamps are microseconds since the
//! PostgreSQL epoch, 2000-01-01 00:00:00 UTC.

use bytes::Bytes;

/// One decoded pgoutput message, by tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Tag `B`.
    Begin(Begin),
    /// Tag `C`.
    Commit(Commit),
    /// Tag `O`.
    Origin(Origin),
    /// Tag `R`.
    Relation(Relation),
    /// Tag `Y`.
    Type(TypeMessage),
    /// Tag `I`.
    Insert(Insert),
    /// Tag `U`.
    Update(Update),
    /// Tag `D`.
    Delete(Delete),
    /// Tag `T`.
    Truncate(Truncate),
    /// Tag `M`, a message written by `pg_logical_emit_message`.
    Message(LogicalMessage),
}

/// Start of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begin {
    /// LSN of the transaction's commit record.
    pub final_lsn: u64,
    /// Commit time in microseconds since 2000-01-01 00:00:00 UTC.
    pub commit_time_micros: i64,
    /// Transaction ID.
    pub xid: u32,
}

/// End of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Flags byte as sent. PostgreSQL documents it as unused and sends 0.
    pub flags: u8,
    /// LSN of the commit record.
    pub commit_lsn: u64,
    /// End LSN of the transaction.
    pub end_lsn: u64,
    /// Commit time in microseconds since 2000-01-01 00:00:00 UTC.
    pub commit_time_micros: i64,
}

/// Replication origin of the current transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// LSN of the commit on the origin server.
    pub commit_lsn: u64,
    /// Origin name.
    pub name: String,
}

/// Schema of a table. pgoutput sends it before the first change to the table
/// and again after the table's definition changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// Table OID, which later change messages use as `relation_oid`.
    pub oid: u32,
    /// Schema name, empty for `pg_catalog`.
    pub namespace: String,
    /// Table name.
    pub name: String,
    /// Table's `REPLICA IDENTITY` setting.
    pub replica_identity: ReplicaIdentity,
    /// Published columns, in the order that tuples list their values.
    pub columns: Vec<RelationColumn>,
}

/// `REPLICA IDENTITY` setting of a table, which decides the old tuple in Update
/// and Delete messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaIdentity {
    /// `d`: the primary key columns, or none if the table has no primary key.
    Default,
    /// `n`: no old values.
    Nothing,
    /// `f`: all columns.
    Full,
    /// `i`: the columns of a chosen unique index.
    Index,
}

/// One column of a [`Relation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    /// Whether the column is part of the replica identity key (flag bit 1).
    pub is_key: bool,
    /// Column name.
    pub name: String,
    /// OID of the column's data type.
    pub type_oid: u32,
    /// Type modifier (`atttypmod`), -1 when the type has none.
    pub type_modifier: i32,
}

/// Name of a data type that a Relation message refers to. pgoutput sends it
/// only for types that are not built in, because their OIDs may differ between servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMessage {
    /// Type OID.
    pub oid: u32,
    /// Schema name, empty for `pg_catalog`.
    pub namespace: String,
    /// Type name.
    pub name: String,
}

/// Inserted row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insert {
    /// OID of the table, as sent in its [`Relation`] message.
    pub relation_oid: u32,
    /// Values of the new row.
    pub new: Tuple,
}

/// Updated row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// OID of the table, as sent in its [`Relation`] message.
    pub relation_oid: u32,
    /// Old values. Under `REPLICA IDENTITY DEFAULT` or `INDEX` this is a key,
    /// sent only when the update changed a key column. Under `FULL` it is the
    /// whole old row.
    pub old: Option<OldTuple>,
    /// Values of the new row. A column may be [`Value::UnchangedToast`], even
    /// under `REPLICA IDENTITY FULL` (seen on PostgreSQL 15).
    pub new: Tuple,
}

/// Deleted row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    /// OID of the table, as sent in its [`Relation`] message.
    pub relation_oid: u32,
    /// Key or whole row of the deleted row, depending on the replica identity.
    pub old: OldTuple,
}

/// Old values in an Update or Delete message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldTuple {
    /// Marker `K`: the replica identity key columns of the old row.
    Key(Tuple),
    /// Marker `O`: every column of the old row, sent under `REPLICA IDENTITY FULL`.
    Full(Tuple),
}

/// Truncated tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncate {
    /// `TRUNCATE ... CASCADE` (option bit 1).
    pub cascade: bool,
    /// `TRUNCATE ... RESTART IDENTITY` (option bit 2).
    pub restart_identity: bool,
    /// OIDs of the truncated tables.
    pub relation_oids: Vec<u32>,
}

/// Message written by `pg_logical_emit_message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalMessage {
    /// Whether the message was emitted as part of a transaction (flag bit 1).
    pub transactional: bool,
    /// LSN of the message.
    pub lsn: u64,
    /// Prefix chosen by the emitter.
    pub prefix: String,
    /// Message content, a slice of the decoded buffer.
    pub content: Bytes,
}

/// Column values of one row, in the column order of its [`Relation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuple(pub Vec<Value>);

/// One column value of a [`Tuple`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Kind `n`: SQL NULL.
    Null,
    /// Kind `u`: a TOASTed value that the change left unchanged and that was not sent.
    UnchangedToast,
    /// Kind `t`: the value in the type's text output format, a slice of the decoded buffer.
    Text(Bytes),
    /// Kind `b`: the value in the type's binary send format, a slice of the decoded buffer.
    Binary(Bytes),
}
