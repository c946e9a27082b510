//! Decoder for the messages of PostgreSQL's `pgoutput` logical decoding plugin,
//! protocol version 1.
//!
//! [`decode`] takes the payload of one XLogData message (the bytes after the
//! XLogData header) and returns a [`Message`]. It decodes the tags `B` (Begin),
//! `C` (Commit), `O` (Origin), `R` (Relation), `Y` (Type), `I` (Insert),
//! `U` (Update), `D` (Delete), `T` (Truncate) and `M` (logical decoding message).
//! Any other tag, including the protocol version 2 streaming tags `S`, `E`, `c`
//! and `A`, is [`DecodeError::UnsupportedTag`].
//!
//! The wire format is described in the PostgreSQL documentation, chapter
//! "Logical Replication Message Formats". Integers are big-endian, and strings
//! are NUL-terminated and must be valid UTF-8.
//!
//! The decoder never panics on malformed input, and it sizes every allocation by
//! the input length rather than by a count read from the input. Column values
//! ([`Value::Text`], [`Value::Binary`]) and [`LogicalMessage::content`] are
//! slices of the input [`bytes::Bytes`], so they share its buffer without copying.

#![warn(missing_docs)]

mod decoder;
mod error;
mod message;
mod reader;

pub use decoder::decode;
pub use error::DecodeError;
pub use message::{
    Begin, Commit, Delete, Insert, LogicalMessage, Message, OldTuple, Origin, Relation,
    RelationColumn, ReplicaIdentity, Truncate, Tuple, TypeMessage, Update, Value,
};
