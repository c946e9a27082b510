//! Which transactions a snapshot saw, so the stream can apply exactly the ones it did not.
//!
//! A shape's first rows come from a query whose snapshot is recorded as `pg_current_snapshot()`
//! (`xmin:xmax:xip_list`, 64-bit "xid8" values that include the epoch). The replication stream
//! names transactions by 32-bit xids, which wrap around, so a stream xid is first widened to
//! 64 bits next to the snapshot's `xmax`: every transaction the stream can still deliver is
//! within 2^31 of it, which is the same horizon Postgres itself relies on.

use std::fmt;
use std::str::FromStr;

/// A recorded `pg_current_snapshot()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSnapshot {
    /// Lowest transaction id that was still running; everything below it had ended.
    pub xmin: u64,
    /// One past the highest transaction id that had ended; nothing at or above it is visible.
    pub xmax: u64,
    /// Transactions between `xmin` and `xmax` that were still running, in ascending order.
    pub xip: Vec<u64>,
}

impl PgSnapshot {
    /// Returns true when the snapshot already contains the effects of transaction `xid`
    /// (a 32-bit id from the replication stream), so its changes must not be applied again.
    pub fn saw(&self, xid: u32) -> bool {
        let xid = widen_xid(xid, self.xmax);
        if xid < self.xmin {
            return true;
        }
        if xid >= self.xmax {
            return false;
        }
        self.xip.binary_search(&xid).is_err()
    }
}

/// Widens a 32-bit xid to the 64-bit xid within 2^31 of `reference`.
pub fn widen_xid(xid: u32, reference: u64) -> u64 {
    let distance = i64::from(xid.wrapping_sub(reference as u32) as i32);
    (reference as i64).wrapping_add(distance) as u64
}

impl FromStr for PgSnapshot {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("invalid snapshot {text:?}: expected xmin:xmax:xip_list");
        let mut parts = text.split(':');
        let (Some(xmin), Some(xmax), Some(xip_text), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let xmin = xmin.parse().map_err(|_| invalid())?;
        let xmax = xmax.parse().map_err(|_| invalid())?;
        let mut xip = Vec::new();
        if !xip_text.is_empty() {
            for id in xip_text.split(',') {
                xip.push(id.parse().map_err(|_| invalid())?);
            }
        }
        xip.sort_unstable();
        Ok(PgSnapshot { xmin, xmax, xip })
    }
}

impl fmt::Display for PgSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.xmin, self.xmax)?;
        for (index, id) in self.xip.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{id}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_parse_and_display() {
        let snapshot: PgSnapshot = "10:20:12,15".parse().unwrap();
        assert_eq!(snapshot.xip, vec![12, 15]);
        assert_eq!(snapshot.to_string(), "10:20:12,15");
        let empty: PgSnapshot = "7:7:".parse().unwrap();
        assert!(empty.xip.is_empty());
        assert!("7:7".parse::<PgSnapshot>().is_err());
        assert!("a:7:".parse::<PgSnapshot>().is_err());
    }

    #[test]
    fn snapshot_visibility() {
        let snapshot: PgSnapshot = "10:20:12,15".parse().unwrap();
        assert!(snapshot.saw(5));
        assert!(snapshot.saw(11));
        assert!(!snapshot.saw(12));
        assert!(snapshot.saw(13));
        assert!(!snapshot.saw(15));
        assert!(!snapshot.saw(20));
        assert!(!snapshot.saw(25));
    }

    #[test]
    fn widen_across_wraparound() {
        // Epoch 3, xmax just past the 32-bit wrap: a stream xid near u32::MAX is from epoch 2.
        let reference = (3u64 << 32) + 5;
        assert_eq!(widen_xid(u32::MAX - 1, reference), (3u64 << 32) - 2);
        assert_eq!(widen_xid(9, reference), (3u64 << 32) + 9);
        // xmax just before the wrap: a small stream xid belongs to the next epoch.
        let reference = (3u64 << 32) + u64::from(u32::MAX) - 2;
        assert_eq!(widen_xid(4, reference), (4u64 << 32) + 4);
    }

    #[test]
    fn visibility_across_wraparound() {
        let base = 2u64 << 32;
        let snapshot = PgSnapshot { xmin: base - 10, xmax: base + 3, xip: vec![base - 4, base + 1] };
        assert!(snapshot.saw((base - 20) as u32));
        assert!(snapshot.saw((base - 5) as u32));
        assert!(!snapshot.saw((base - 4) as u32));
        assert!(!snapshot.saw((base + 1) as u32));
        assert!(snapshot.saw((base + 2) as u32));
        assert!(!snapshot.saw((base + 3) as u32));
    }
}
