//! The error type of [`crate::decode`].

use std::fmt;

/// Reason a pgoutput message failed to decode.
///
/// Every offset (`at`) is a byte offset into the decoded buffer, where offset 0
/// is the message tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The message ends before a field is complete. A read of `needed` bytes
    /// started at offset `at`, and fewer bytes remain. For a string without its
    /// NUL terminator, `needed` is the remaining length plus one.
    UnexpectedEnd {
        /// Number of bytes the read required, starting at `at`.
        needed: usize,
        /// Offset where the read started.
        at: usize,
    },
    /// Message tag that is not a protocol version 1 message, such as the
    /// streaming tags `S`, `E`, `c` and `A` of protocol version 2.
    UnsupportedTag(u8),
    /// Tuple column kind other than `n`, `u`, `t` or `b`.
    InvalidTupleKind {
        /// The kind byte as read.
        kind: u8,
        /// Offset of the kind byte.
        at: usize,
    },
    /// Replica identity byte of a Relation message other than `d`, `n`, `f` or `i`.
    InvalidReplicaIdentity(u8),
    /// Tuple marker byte that is not valid at its position. Insert requires `N`,
    /// Delete requires `K` or `O`, and Update requires `K`, `O` or `N` followed by
    /// `N` after an old tuple.
    InvalidOldTupleKind(u8),
    /// String that is not valid UTF-8.
    InvalidUtf8 {
        /// Offset of the first byte of the string.
        at: usize,
    },
    /// Bytes left over after a complete message.
    TrailingBytes {
        /// Offset of the first byte after the message.
        at: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnexpectedEnd { needed, at } => write!(
                f,
                "unexpected end of pgoutput message: needed {needed} bytes at offset {at}"
            ),
            DecodeError::UnsupportedTag(tag) => write!(
                f,
                "unsupported pgoutput message tag {}; only protocol version 1 messages are supported",
                ByteLiteral(*tag)
            ),
            DecodeError::InvalidTupleKind { kind, at } => write!(
                f,
                "invalid tuple column kind {} at offset {at}; expected 'n', 'u', 't' or 'b'",
                ByteLiteral(*kind)
            ),
            DecodeError::InvalidReplicaIdentity(byte) => write!(
                f,
                "invalid replica identity {}; expected 'd', 'n', 'f' or 'i'",
                ByteLiteral(*byte)
            ),
            DecodeError::InvalidOldTupleKind(byte) => write!(
                f,
                "invalid tuple marker {}; expected 'K' or 'O' before an old tuple and 'N' before a new tuple",
                ByteLiteral(*byte)
            ),
            DecodeError::InvalidUtf8 { at } => {
                write!(f, "invalid UTF-8 in the string at offset {at}")
            }
            DecodeError::TrailingBytes { at } => write!(
                f,
                "trailing bytes after a complete pgoutput message, starting at offset {at}"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Formats a protocol byte as a quoted character and its hex value, for example
/// `'S' (0x53)`, with non-printable bytes escaped so the message stays on one line.
struct ByteLiteral(u8);

impl fmt::Display for ByteLiteral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' (0x{:02x})", self.0.escape_ascii(), self.0)
    }
}
