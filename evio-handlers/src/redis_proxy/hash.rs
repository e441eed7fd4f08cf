//! Which backend holds a key: a ketama continuum over FNV-1a 64.
//!
//! The scheme, so that another tool can compute the same placement:
//!
//! - The key hashed is the whole key, or, if the key holds a hash tag (a `{`, then a
//!   later `}` with at least one byte between them), only the bytes between the first
//!   `{` and the first `}` after it (Redis Cluster's rule), so that `{user1}:name` and
//!   `{user1}:mail` always share a backend.
//! - The hash is FNV-1a 64 (offset basis `0xcbf29ce484222325`, prime
//!   `0x100000001b3`), as twemproxy's `hash: fnv1a_64` computes it, kept to 64 bits.
//! - Each backend, named `host:port`, owns [`POINTS_PER_BACKEND`] points on a ring of
//!   `u64`: point `i` is FNV-1a 64 of the text `{name}-{i}`, mixed with MurmurHash3's
//!   64-bit finaliser (FNV-1a of strings that differ only in their last characters
//!   clusters on the ring; the finaliser spreads them).
//! - A key's place on the ring is FNV-1a 64 of its hashed part, mixed the same way
//!   (keys such as `key:1`, `key:2` differ in their last bytes too); it belongs to
//!   the backend of the first point at or after it, wrapping around (ketama's rule). Adding or removing a backend moves only the keys of the
//!   arcs it gains or loses.
//!
//! This is twemproxy's `distribution: ketama` in spirit, not in bytes: twemproxy
//! places its points with MD5, so the two proxies do not put a key on the same backend.

/// Points each backend owns on the ring (ketama's 160, as twemproxy for weight 1).
pub const POINTS_PER_BACKEND: usize = 160;

/// FNV-1a 64 of `bytes`.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// MurmurHash3's 64-bit finaliser: every input bit moves about half the output bits.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The part of `key` that is hashed: its hash tag if it has one, else all of it.
pub fn hashed_part(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{')
        && let Some(len) = key[open + 1..].iter().position(|&b| b == b'}')
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

/// The ring: every backend's points, sorted.
#[derive(Clone, Debug)]
pub struct Continuum {
    points: Vec<(u64, u16)>,
}

impl Continuum {
    /// The ring of the backends named `names` (`host:port`), in this order: a key's
    /// backend is an index into `names`.
    ///
    /// # Panics
    ///
    /// If there is no backend, or more than `u16::MAX`.
    pub fn new<S: AsRef<str>>(names: &[S]) -> Self {
        assert!(!names.is_empty(), "a proxy needs at least one backend");
        assert!(names.len() <= usize::from(u16::MAX), "too many backends");
        let mut points = Vec::with_capacity(names.len() * POINTS_PER_BACKEND);
        for (backend, name) in names.iter().enumerate() {
            for i in 0..POINTS_PER_BACKEND {
                let label = format!("{}-{i}", name.as_ref());
                points.push((fmix64(fnv1a_64(label.as_bytes())), backend as u16));
            }
        }
        // Ties (vanishingly rare) go to the backend listed first, whatever the order
        // the points were made in.
        points.sort_unstable();
        Continuum { points }
    }

    /// The backend (an index into the names given to [`Continuum::new`]) of `key`.
    pub fn backend(&self, key: &[u8]) -> usize {
        let hash = fmix64(fnv1a_64(hashed_part(key)));
        let at = self.points.partition_point(|&(point, _)| point < hash);
        let (_, backend) = self.points[at % self.points.len()];
        usize::from(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_64_matches_its_reference_values() {
        // From the FNV reference test suite.
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn hash_tags_pick_the_part_hashed() {
        assert_eq!(hashed_part(b"{user1}:name"), b"user1");
        assert_eq!(hashed_part(b"a{b}c{d}"), b"b");
        assert_eq!(hashed_part(b"{}x"), b"{}x", "an empty tag is no tag");
        assert_eq!(hashed_part(b"x{y"), b"x{y");
        assert_eq!(hashed_part(b"plain"), b"plain");
    }

    #[test]
    fn keys_spread_over_the_backends_and_stay_put() {
        let ring = Continuum::new(&["127.0.0.1:6379", "127.0.0.1:6380"]);
        let mut counts = [0usize; 2];
        for i in 0..10_000 {
            counts[ring.backend(format!("key:{i}").as_bytes())] += 1;
        }
        assert!(
            counts.iter().all(|&n| (3_500..=6_500).contains(&n)),
            "{counts:?}"
        );
        // Few similar keys spread too (FNV-1a alone puts these on one backend).
        let mut few = [0usize; 2];
        for i in 0..40 {
            few[ring.backend(format!("key:{i}").as_bytes())] += 1;
        }
        assert!(few.iter().all(|&n| n >= 8), "{few:?}");
        // Deterministic: the same ring places the same key the same way.
        let again = Continuum::new(&["127.0.0.1:6379", "127.0.0.1:6380"]);
        for i in 0..100 {
            let key = format!("k{i}");
            assert_eq!(ring.backend(key.as_bytes()), again.backend(key.as_bytes()));
        }
        assert_eq!(
            ring.backend(b"{t}a"),
            ring.backend(b"{t}b"),
            "one tag, one backend"
        );
    }

    #[test]
    fn adding_a_backend_moves_only_its_share() {
        let two = Continuum::new(&["a:1", "b:2"]);
        let three = Continuum::new(&["a:1", "b:2", "c:3"]);
        let moved = (0..10_000)
            .filter(|i| {
                let key = format!("key:{i}");
                let (before, after) = (two.backend(key.as_bytes()), three.backend(key.as_bytes()));
                before != after && after != 2
            })
            .count();
        assert_eq!(moved, 0, "keys move only to the new backend");
    }
}
