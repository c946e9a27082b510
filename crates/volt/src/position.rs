//! Positions: WAL positions (`Lsn`) and positions in a shape's log (`LogOffset`).
//!
//! A shape log is ordered by `LogOffset`: the commit LSN of the transaction that produced an
//! entry, then the entry's index inside that transaction. Offsets whose transaction part is 0
//! name the snapshot, which comes before every transaction.

use std::fmt;
use std::str::FromStr;

/// A position in Postgres's write-ahead log, printed as `X/Y` in hexadecimal like Postgres does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    pub const ZERO: Lsn = Lsn(0);
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl FromStr for Lsn {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (high, low) = text
            .split_once('/')
            .ok_or_else(|| format!("invalid LSN {text:?}: expected X/Y"))?;
        let high = u32::from_str_radix(high, 16).map_err(|_| format!("invalid LSN {text:?}"))?;
        let low = u32::from_str_radix(low, 16).map_err(|_| format!("invalid LSN {text:?}"))?;
        Ok(Lsn((u64::from(high) << 32) | u64::from(low)))
    }
}

/// Operation index that sorts after every real one; printed as `inf`.
const OP_INFINITY: u64 = u64::MAX;

/// A position in a shape log, printed `<tx>_<op>` as the Shape API expects.
///
/// `tx` is the commit LSN of the transaction, `op` counts the transaction's changes in steps of
/// two (so a primary-key change can be split into a delete at `op` and an insert at `op + 1`).
/// `tx == 0` is the snapshot: `0_<n>` ends snapshot chunk `n` and `0_inf` ends the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogOffset {
    pub tx: u64,
    pub op: u64,
}

impl LogOffset {
    /// End of the whole snapshot: after every snapshot chunk, before every transaction.
    pub const SNAPSHOT_END: LogOffset = LogOffset { tx: 0, op: OP_INFINITY };

    pub const fn new(tx: u64, op: u64) -> Self {
        LogOffset { tx, op }
    }

    /// Offset at the end of snapshot chunk `chunk`.
    pub const fn snapshot_chunk(chunk: u64) -> Self {
        LogOffset { tx: 0, op: chunk }
    }

    /// Returns `<tx + 1>_0`: after every entry of transaction `tx` (or of the snapshot, for
    /// `tx == 0`) and before every entry of a later transaction, because a transaction's
    /// commit record cannot start one byte after the previous transaction's.
    pub const fn after_transaction(self) -> LogOffset {
        LogOffset { tx: self.tx.saturating_add(1), op: 0 }
    }

    /// True for the virtual offsets that point into the snapshot rather than the log.
    pub fn is_snapshot(&self) -> bool {
        self.tx == 0
    }
}

impl fmt::Display for LogOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.op == OP_INFINITY {
            write!(f, "{}_inf", self.tx)
        } else {
            write!(f, "{}_{}", self.tx, self.op)
        }
    }
}

impl FromStr for LogOffset {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (tx, op) = text.split_once('_').ok_or(())?;
        let tx = parse_decimal(tx).ok_or(())?;
        let op = if op == "inf" { OP_INFINITY } else { parse_decimal(op).ok_or(())? };
        Ok(LogOffset { tx, op })
    }
}

/// Parses a plain unsigned decimal: digits only, no sign, no spaces.
fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The `offset` a client sends: before everything, the current end, or a log position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOffset {
    /// `-1`: start with the snapshot.
    BeforeAll,
    /// `now`: skip the snapshot and start at the shape's current end.
    Now,
    /// A position previously returned in `electric-offset`.
    At(LogOffset),
}

impl FromStr for RequestOffset {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "-1" => Ok(RequestOffset::BeforeAll),
            "now" => Ok(RequestOffset::Now),
            other => other.parse().map(RequestOffset::At),
        }
    }
}

impl fmt::Display for RequestOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestOffset::BeforeAll => f.write_str("-1"),
            RequestOffset::Now => f.write_str("now"),
            RequestOffset::At(offset) => offset.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_round_trip() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn.0, 0x16_B374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert!("16B374D848".parse::<Lsn>().is_err());
    }

    #[test]
    fn log_offset_round_trip() {
        for text in ["0_0", "0_inf", "27440064_2", "18446744073709551615_7"] {
            assert_eq!(text.parse::<LogOffset>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn log_offset_rejects_malformed() {
        for text in ["", "1", "_1", "1_", "0_-1", "-1_0", "a_0", "1_2_3", "+1_0", " 1_0", "1_ 0"] {
            assert!(text.parse::<LogOffset>().is_err(), "{text:?} must be rejected");
        }
    }

    #[test]
    fn log_offset_order() {
        let chunk0 = LogOffset::snapshot_chunk(0);
        let chunk9 = LogOffset::snapshot_chunk(9);
        let first_change = LogOffset::new(100, 0);
        assert!(chunk0 < chunk9);
        assert!(chunk9 < LogOffset::SNAPSHOT_END);
        assert!(LogOffset::SNAPSHOT_END < first_change);
        assert!(LogOffset::new(100, 0) < LogOffset::new(100, 1));
        assert!(LogOffset::new(100, 9) < LogOffset::new(101, 0));
    }

    #[test]
    fn after_transaction_sorts_between_transactions() {
        let last_of_transaction = LogOffset::new(100, 7);
        assert!(last_of_transaction < last_of_transaction.after_transaction());
        assert!(last_of_transaction.after_transaction() < LogOffset::new(108, 0));
        assert_eq!(LogOffset::SNAPSHOT_END.after_transaction(), LogOffset::new(1, 0));
    }

    #[test]
    fn request_offset_parse() {
        assert_eq!("-1".parse(), Ok(RequestOffset::BeforeAll));
        assert_eq!("now".parse(), Ok(RequestOffset::Now));
        assert_eq!("5_2".parse(), Ok(RequestOffset::At(LogOffset::new(5, 2))));
        assert!("-2".parse::<RequestOffset>().is_err());
    }
}
