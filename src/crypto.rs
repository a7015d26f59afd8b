//! Personal data at rest and on topics (SPEC §10): authenticated
//! encryption of single values with AES-256-GCM, or SM4-GCM (the same GCM
//! construction over the national block cipher), under a data key whose id
//! travels with every ciphertext, so keys can be rotated; and a keyed index
//! (HMAC-SHA256) for lookups by ID number, never the plaintext.
//!
//! A sealed value is text: `enc:1:<keyId>:<base64(nonce ‖ ciphertext ‖ tag)>`.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, AesGcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// SM4 in GCM mode.
type Sm4Gcm = AesGcm<sm4::Sm4, U12>;

const PREFIX: &str = "enc:1:";

/// Which cipher a key is for (`AKM_DATA_CIPHER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherKind {
    /// AES-256-GCM, 32-byte keys (the default).
    Aes256Gcm,
    /// SM4-GCM, 16-byte keys.
    Sm4Gcm,
}

impl CipherKind {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "AES-256-GCM" => Some(CipherKind::Aes256Gcm),
            "SM4-GCM" => Some(CipherKind::Sm4Gcm),
            _ => None,
        }
    }

    pub fn key_len(self) -> usize {
        match self {
            CipherKind::Aes256Gcm => 32,
            CipherKind::Sm4Gcm => 16,
        }
    }
}

/// Why a key or a ciphertext was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the data key is not base64")]
    NotBase64,
    #[error("the data key has {got} bytes; {cipher:?} needs {want}")]
    KeyLength {
        cipher: CipherKind,
        got: usize,
        want: usize,
    },
    #[error("not a sealed value")]
    NotSealed,
    #[error("sealed under key {0}, which is not configured")]
    UnknownKey(String),
    #[error("the value does not open under key {0} (wrong key or damaged data)")]
    Damaged(String),
}

/// A key's cipher, its key schedule done once (not per value).
#[derive(Clone)]
enum Ready {
    Aes256Gcm(Box<Aes256Gcm>),
    Sm4Gcm(Box<Sm4Gcm>),
}

/// One data key.
#[derive(Clone)]
pub struct DataKey {
    id: String,
    cipher: CipherKind,
    bytes: Vec<u8>,
    ready: Ready,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .field("cipher", &self.cipher)
            .finish_non_exhaustive()
    }
}

impl DataKey {
    /// A key from its base64 text (as in `AKM_DATA_KEY` or the key file).
    pub fn parse(cipher: CipherKind, b64: &str) -> Result<Self, CryptoError> {
        let bytes = B64.decode(b64.trim()).map_err(|_| CryptoError::NotBase64)?;
        if bytes.len() != cipher.key_len() {
            return Err(CryptoError::KeyLength {
                cipher,
                got: bytes.len(),
                want: cipher.key_len(),
            });
        }
        // The id names the key without revealing it: a hash of a derived value.
        let id = hex::encode(&Sha256::digest([b"akm-key-id:".as_slice(), &bytes].concat())[..4]);
        let wrong = |_| CryptoError::KeyLength {
            cipher,
            got: bytes.len(),
            want: cipher.key_len(),
        };
        let ready = match cipher {
            CipherKind::Aes256Gcm => {
                Ready::Aes256Gcm(Box::new(Aes256Gcm::new_from_slice(&bytes).map_err(wrong)?))
            }
            CipherKind::Sm4Gcm => {
                Ready::Sm4Gcm(Box::new(Sm4Gcm::new_from_slice(&bytes).map_err(wrong)?))
            }
        };
        Ok(DataKey {
            id,
            cipher,
            bytes,
            ready,
        })
    }

    /// A fresh random key, as base64 (the demo's key file, `akm keys new`).
    pub fn generate(cipher: CipherKind) -> String {
        let bytes: Vec<u8> = (0..cipher.key_len())
            .map(|_| rand::random::<u8>())
            .collect();
        B64.encode(bytes)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn seal_bytes(&self, nonce: &[u8; 12], plain: &[u8]) -> Vec<u8> {
        let n = Nonce::from_slice(nonce);
        let out = match &self.ready {
            Ready::Aes256Gcm(c) => c.encrypt(n, plain),
            Ready::Sm4Gcm(c) => c.encrypt(n, plain),
        };
        // GCM takes any plaintext below 64 GiB: encryption cannot fail here.
        out.unwrap_or_default()
    }

    fn open_bytes(&self, nonce: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let n = Nonce::from_slice(nonce);
        match &self.ready {
            Ready::Aes256Gcm(c) => c.decrypt(n, sealed).ok(),
            Ready::Sm4Gcm(c) => c.decrypt(n, sealed).ok(),
        }
    }
}

/// The current key (sealing, indexing) and older ones (opening only).
#[derive(Debug, Clone)]
pub struct Keyring {
    current: DataKey,
    older: Vec<DataKey>,
}

impl Keyring {
    pub fn new(current: DataKey, older: Vec<DataKey>) -> Self {
        Keyring { current, older }
    }

    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    /// This keyring with `old`'s keys added as older keys (rotation).
    pub fn opening(mut self, old: &Keyring) -> Self {
        for k in std::iter::once(&old.current).chain(&old.older) {
            if k.id != self.current.id && !self.older.iter().any(|o| o.id == k.id) {
                self.older.push(k.clone());
            }
        }
        self
    }

    /// Seal `plain` under the current key.
    pub fn seal(&self, plain: &str) -> String {
        self.seal_bytes(plain.as_bytes())
    }

    /// Seal bytes under the current key.
    pub fn seal_bytes(&self, plain: &[u8]) -> String {
        let nonce: [u8; 12] = rand::random();
        let mut body = nonce.to_vec();
        body.extend(self.current.seal_bytes(&nonce, plain));
        format!("{PREFIX}{}:{}", self.current.id, B64.encode(body))
    }

    /// Open a sealed value under whichever configured key sealed it.
    pub fn open_bytes(&self, sealed: &str) -> Result<Vec<u8>, CryptoError> {
        let rest = sealed.strip_prefix(PREFIX).ok_or(CryptoError::NotSealed)?;
        let (kid, b64) = rest.split_once(':').ok_or(CryptoError::NotSealed)?;
        let key = std::iter::once(&self.current)
            .chain(&self.older)
            .find(|k| k.id == kid)
            .ok_or_else(|| CryptoError::UnknownKey(kid.to_string()))?;
        let body = B64.decode(b64).map_err(|_| CryptoError::NotSealed)?;
        if body.len() < 12 + 16 {
            return Err(CryptoError::NotSealed);
        }
        key.open_bytes(&body[..12], &body[12..])
            .ok_or_else(|| CryptoError::Damaged(kid.to_string()))
    }

    /// Open a sealed text value.
    pub fn open(&self, sealed: &str) -> Result<String, CryptoError> {
        String::from_utf8(self.open_bytes(sealed)?)
            .map_err(|_| CryptoError::Damaged(self.current.id.clone()))
    }

    /// The key id a sealed value names.
    pub fn key_of(sealed: &str) -> Option<&str> {
        sealed.strip_prefix(PREFIX)?.split_once(':').map(|(k, _)| k)
    }

    /// The keyed index of a value (lookups by ID number): HMAC-SHA256 under
    /// a key derived from the current data key, hex.
    pub fn index(&self, value: &str) -> String {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.current.bytes) else {
            return String::new();
        };
        mac.update(b"akm-index\0");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(kind: CipherKind) -> Keyring {
        Keyring::new(
            DataKey::parse(kind, &DataKey::generate(kind)).unwrap(),
            vec![],
        )
    }

    #[test]
    fn both_ciphers_seal_and_open_and_hide_the_plaintext() {
        for kind in [CipherKind::Aes256Gcm, CipherKind::Sm4Gcm] {
            let r = ring(kind);
            let s = r.seal("340102199003073238");
            assert!(!s.contains("3401021990"), "{s}");
            assert_ne!(s, r.seal("340102199003073238"), "nonces differ");
            assert_eq!(r.open(&s).unwrap(), "340102199003073238");
            assert_eq!(Keyring::key_of(&s), Some(r.current_id()));
        }
    }

    #[test]
    fn wrong_keys_unknown_keys_and_tampering_are_refused() {
        let a = ring(CipherKind::Aes256Gcm);
        let b = ring(CipherKind::Aes256Gcm);
        let s = a.seal("张三");
        assert!(matches!(b.open(&s), Err(CryptoError::UnknownKey(_))));
        // the same id with other bytes: a wrong key
        let forged = Keyring::new(
            DataKey {
                id: a.current_id().to_string(),
                ..b.current.clone()
            },
            vec![],
        );
        assert!(matches!(forged.open(&s), Err(CryptoError::Damaged(_))));
        let mut t = s.clone();
        t.pop();
        t.push(if s.ends_with('A') { 'B' } else { 'A' });
        assert!(a.open(&t).is_err());
        assert_eq!(a.open("plain"), Err(CryptoError::NotSealed));
        // an older key still opens what it sealed
        let rotated = Keyring::new(b.current.clone(), vec![a.current.clone()]);
        assert_eq!(rotated.open(&s).unwrap(), "张三");
    }

    #[test]
    fn keys_are_checked_and_the_index_is_keyed() {
        assert_eq!(
            DataKey::parse(CipherKind::Aes256Gcm, "!!").unwrap_err(),
            CryptoError::NotBase64
        );
        let sm4 = DataKey::generate(CipherKind::Sm4Gcm);
        assert!(matches!(
            DataKey::parse(CipherKind::Aes256Gcm, &sm4),
            Err(CryptoError::KeyLength { .. })
        ));
        let (a, b) = (ring(CipherKind::Aes256Gcm), ring(CipherKind::Aes256Gcm));
        assert_eq!(a.index("x"), a.index("x"));
        assert_ne!(a.index("x"), b.index("x"));
        assert!(!a.index("340102199003073238").contains("3401021990"));
    }
}
