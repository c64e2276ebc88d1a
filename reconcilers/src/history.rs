//! ControllerRevisions as upstream's controller history names and hashes them, shared by the
//! StatefulSet and DaemonSet controllers: the revision hash (FNV-32 of the revision's data
//! and the collision count, safe-encoded) and the revision name (`<parent>-<hash>`).
//!
//! Pure functions; listing, creating and pruning revisions is each controller's business.

use crate::pods::safe_encode;

/// The longest name prefix of a revision, as upstream cuts it (in bytes).
const MAX_PREFIX_LENGTH: usize = 223;

/// Upstream's HashControllerRevision: FNV-32 (not 32a) over the revision's raw data, then the
/// decimal collision count when there is one, safe-encoded.
pub fn revision_hash(raw: &[u8], collision_count: Option<i32>) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    let mut write = |bytes: &[u8]| {
        for byte in bytes {
            hash = hash.wrapping_mul(0x0100_0193);
            hash ^= u32::from(*byte);
        }
    };
    write(raw);
    if let Some(count) = collision_count {
        write(count.to_string().as_bytes());
    }
    safe_encode(&hash.to_string())
}

/// Upstream's ControllerRevisionName: `<prefix>-<hash>`, the prefix cut to 223 bytes (object
/// names are ASCII; a prefix that is not is cut at the last character boundary before).
pub fn revision_name(prefix: &str, hash: &str) -> String {
    let mut cut = prefix.len().min(MAX_PREFIX_LENGTH);
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{hash}", &prefix[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv32_not_32a() {
        // FNV-32 of "a" is 0x050c5d7e; FNV-32a would be 0xe40c292c.
        assert_eq!(
            revision_hash(b"a", None),
            safe_encode(&0x050c_5d7e_u32.to_string())
        );
        assert_ne!(revision_hash(b"a", None), revision_hash(b"a", Some(1)));
    }

    #[test]
    fn names_stay_valid() {
        assert_eq!(revision_name("web", "abc"), "web-abc");
        let long = "x".repeat(300);
        assert_eq!(revision_name(&long, "abcdefghij").len(), 223 + 1 + 10);
    }
}
