//! A PSK table keyed by [`KeyId`]: the comparison rules of D2 / K4 (FQDN case-insensitive, the
//! relative part case-insensitive where the kind says so), unlike the byte-exact
//! [`PskTable`](crate::PskTable).

use alloc::vec::Vec;

use super::{IdKind, KeyId};
use crate::config::{PskLookup, PskResolver};
use crate::secret::Psk;

/// Identities of several kinds (e.g. a MEF's KpmIDs and its MAFs' identities) with their keys.
/// An identity matches an entry if it parses as that entry's kind and compares equal under the
/// [`KeyId`] rules; identities that do not parse as any kind in the table are unknown.
#[derive(Debug, Default)]
pub struct KeyIdTable {
    entries: Vec<(KeyId, Psk)>,
}

impl KeyIdTable {
    /// An empty table.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `id`; `false` (and nothing changed) if an equal identifier is already there.
    pub fn insert(&mut self, id: KeyId, key: Psk) -> bool {
        if self.entries.iter().any(|(k, _)| *k == id) {
            return false;
        }
        self.entries.push((id, key));
        true
    }

    /// The number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The key of `identity`, if an entry matches.
    #[must_use]
    pub fn get(&self, identity: &[u8]) -> Option<&Psk> {
        let mut parsed: Vec<(IdKind, Option<KeyId>)> = Vec::new();
        for (id, key) in &self.entries {
            let kind = id.kind();
            let candidate = match parsed.iter().find(|(k, _)| *k == kind) {
                Some((_, c)) => c.clone(),
                None => {
                    let c = KeyId::parse_bytes(kind, identity).ok();
                    parsed.push((kind, c.clone()));
                    c
                }
            };
            if candidate.as_ref() == Some(id) {
                return Some(key);
            }
        }
        None
    }
}

impl PskResolver for KeyIdTable {
    fn resolve(&self, identity: &[u8], _server_name: Option<&str>) -> PskLookup {
        self.get(identity)
            .map_or(PskLookup::Unknown, |k| PskLookup::Found(k.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn psk(b: u8) -> Psk {
        Psk::new(&[b; 32]).unwrap()
    }

    #[test]
    fn matches_by_the_key_id_rules() {
        let mut t = KeyIdTable::new();
        let kpm = KeyId::parse(IdKind::Kpm, "mn-e.kpm1@mef.example.com").unwrap();
        let km = KeyId::parse(IdKind::Km, "km-ab12@maf.example.com").unwrap();
        assert!(t.insert(kpm.clone(), psk(1)));
        assert!(t.insert(km, psk(2)));
        assert!(!t.insert(kpm, psk(3)), "an equal identifier is refused");
        assert_eq!(t.len(), 2);
        let found = |id: &str| t.get(id.as_bytes()).cloned();
        // FQDN case-insensitive for every kind.
        assert_eq!(found("mn-e.kpm1@MEF.Example.COM"), Some(psk(1)));
        // KpmID relative part exact; KmID relative part case-insensitive (K4).
        assert_eq!(found("MN-E.kpm1@mef.example.com"), None);
        assert_eq!(found("KM-AB12@maf.example.com"), Some(psk(2)));
        for bad in ["", "@", "mn-e.kpm1", "mn-e.kpm1@mef.example.com.", "x@y@z"] {
            assert_eq!(found(bad), None, "{bad}");
        }
        assert!(matches!(
            t.resolve(b"nobody@mef.example.com", None),
            PskLookup::Unknown
        ));
    }
}
