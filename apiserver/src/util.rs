//! Small sources of identity and time for objects: UIDs, generated name suffixes and
//! RFC 3339 timestamps as Kubernetes writes them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Random bytes from the system's secure source.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .is_err()
    {
        // No secure source: fall back to the clock, which is unique enough for names.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (nanos >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
    bytes
}

/// A random (version 4) UUID in its canonical text form.
pub fn new_uid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        hex[0..4].concat(),
        hex[4..6].concat(),
        hex[6..8].concat(),
        hex[8..10].concat(),
        hex[10..16].concat()
    )
}

/// The alphabet of generated names: no vowels (no words) and no confusable characters, as
/// upstream's `utilrand.String`.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `n` random characters for a `generateName` suffix.
pub fn random_suffix(n: usize) -> String {
    let bytes = random_bytes::<32>();
    bytes
        .iter()
        .take(n)
        .map(|b| NAME_ALPHABET[usize::from(*b) % NAME_ALPHABET.len()] as char)
        .collect()
}

/// A name from `generateName`: the prefix (cut to leave room) plus 5 random characters.
pub fn generate_name(prefix: &str) -> String {
    const MAX_NAME: usize = 63;
    const RANDOM: usize = 5;
    let mut prefix = prefix.to_owned();
    if prefix.len() > MAX_NAME - RANDOM {
        let mut cut = MAX_NAME - RANDOM;
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
    }
    format!("{prefix}{}", random_suffix(RANDOM))
}

/// Now, as an RFC 3339 timestamp with second precision (`metav1.Time`).
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// `time` as an RFC 3339 timestamp with second precision.
pub fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let timestamp =
        jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(0)).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    timestamp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now plus `seconds`, as an RFC 3339 timestamp.
pub fn rfc3339_after(seconds: i64) -> String {
    let now = SystemTime::now();
    let then = if seconds >= 0 {
        now + Duration::from_secs(seconds.unsigned_abs())
    } else {
        now - Duration::from_secs(seconds.unsigned_abs())
    };
    rfc3339(then)
}

/// Now, as an RFC 3339 timestamp with microsecond precision (`metav1.MicroTime`).
#[allow(dead_code)]
pub fn now_rfc3339_micros() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_v4_and_unique() {
        let a = new_uid();
        let b = new_uid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn generated_names() {
        let name = generate_name("web-");
        assert!(name.starts_with("web-") && name.len() == 9, "{name}");
        assert!(name[4..].bytes().all(|b| NAME_ALPHABET.contains(&b)));
        assert_eq!(generate_name(&"x".repeat(80)).len(), 63);
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
        let micros = now_rfc3339_micros();
        assert_eq!(micros.len(), "2023-11-14T22:13:20.123456Z".len(), "{micros}");
    }
}
