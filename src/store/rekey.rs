//! Key rotation (`akm keys rotate`, node stopped): every sealed value is
//! opened and sealed again under the new key, and the keyed ID index is
//! recomputed. Records already on topics keep their key; the old key stays
//! in `AKM_DATA_KEY_OLD` until they are consumed.

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::Tree;

use super::{key2, Store, StoreError};
use crate::crypto::Keyring;
use crate::domain::resident::Resident;

const CHECK: &str = "crypto/check";

impl Store {
    /// How many sealed values the store holds (for a progress bar).
    pub fn sealed_count(&self) -> u64 {
        [
            &self.residents,
            &self.cards,
            &self.qrcodes,
            &self.apps,
            &self.trades,
        ]
        .iter()
        .map(|t| t.len() as u64)
        .sum()
    }

    /// Seal everything again under `new`'s current key (`new` must also hold
    /// the old key, to open what is not rotated yet); `tick` is called once
    /// per value. Safe to run again after an interruption.
    pub fn rekey(&self, new: &Keyring, mut tick: impl FnMut()) -> Result<(), StoreError> {
        let fresh = |sealed: &[u8]| {
            Keyring::key_of(&String::from_utf8_lossy(sealed)) == Some(new.current_id())
        };
        // Residents: new value, and a new index key.
        let mut moved = std::collections::HashMap::new();
        for item in self.residents.iter() {
            let (k, v) = item?;
            tick();
            if fresh(&v) {
                continue;
            }
            let r: Resident = open_json(new, &v)?;
            let to = new.index(r.idcard_no.expose());
            self.residents.insert(to.as_bytes(), seal_json(new, &r)?)?;
            if to.as_bytes() != k.as_ref() {
                self.residents.remove(&k)?;
            }
            moved.insert(k.to_vec(), to);
        }
        // Cards: keyed by the resident's index and the target type.
        for item in self.cards.iter() {
            let (k, v) = item?;
            tick();
            if fresh(&v) {
                continue;
            }
            let (idx, target) = match k.iter().position(|b| *b == 0) {
                Some(i) => (&k[..i], String::from_utf8_lossy(&k[i + 1..]).into_owned()),
                None => continue,
            };
            let to = moved
                .get(idx)
                .map(|n| key2(n, &target))
                .unwrap_or_else(|| k.to_vec());
            self.cards.insert(to.as_slice(), reseal(new, &v)?)?;
            if to.as_slice() != k.as_ref() {
                self.cards.remove(&k)?;
            }
        }
        reseal_raw(new, &self.qrcodes, &mut tick, fresh)?;
        reseal_raw(new, &self.apps, &mut tick, fresh)?;
        // trades: an 8-byte time, then the sealed digest
        for item in self.trades.iter() {
            let (k, v) = item?;
            tick();
            let (stamp, sealed) = v.split_at(8.min(v.len()));
            if !fresh(sealed) {
                let mut out = stamp.to_vec();
                out.extend(reseal(new, sealed)?);
                self.trades.insert(k, out)?;
            }
        }
        self.meta.insert(CHECK, new.seal("akm").as_bytes())?;
        Ok(())
    }
}

fn open_json<T: DeserializeOwned>(keys: &Keyring, v: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(
        &keys.open_bytes(&String::from_utf8_lossy(v))?,
    )?)
}

fn seal_json<T: Serialize>(keys: &Keyring, v: &T) -> Result<Vec<u8>, StoreError> {
    Ok(keys.seal_bytes(&serde_json::to_vec(v)?).into_bytes())
}

fn reseal(keys: &Keyring, v: &[u8]) -> Result<Vec<u8>, StoreError> {
    let plain = keys.open_bytes(&String::from_utf8_lossy(v))?;
    Ok(keys.seal_bytes(&plain).into_bytes())
}

/// Re-seal a tree of sealed bytes.
fn reseal_raw(
    keys: &Keyring,
    tree: &Tree,
    tick: &mut impl FnMut(),
    fresh: impl Fn(&[u8]) -> bool,
) -> Result<(), StoreError> {
    for item in tree.iter() {
        let (k, v) = item?;
        tick();
        if !fresh(&v) {
            tree.insert(k, reseal(keys, &v)?)?;
        }
    }
    Ok(())
}
