//! The encrypted-body format of MinIO's admin API (madmin-go's `EncryptData` / `DecryptData`),
//! in which MinIO takes secrets such as a new user's secret key.
//!
//! An encrypted body is `salt (32 bytes) | AEAD id (1 byte) | nonce (8 bytes) | sio stream`:
//! - the key is Argon2id (version 0x13, 1 pass, 64 MiB, 4 lanes, 32 bytes) of the password,
//!   which is the secret key of the credential that signs the request, and the salt;
//! - AEAD id 0x00 is AES-256-GCM and 0x01 ChaCha20-Poly1305 (madmin picks ChaCha20 on CPUs
//!   without AES instructions); 0x02 is MinIO's FIPS mode (PBKDF2), which clawkeep does not
//!   speak. clawkeep always writes 0x00, which every MinIO reads.
//! - the stream is secure-io/sio-go's format with its default 16 KiB fragments: the data is cut
//!   into fragments of [`SIO_BUF_SIZE`] bytes (the last one shorter, empty only for empty
//!   data), and fragment `i` (from 1) is sealed under nonce `nonce | u32le(i)` with associated
//!   data `flag | tag`, where `flag` is 0x80 on the last fragment and 0x00 before it, and `tag`
//!   is the AEAD tag of an empty message sealed under `nonce | u32le(0)` with the caller's
//!   associated data (empty for madmin). Cutting or reordering fragments breaks authentication.
//!
//! Written from madmin-go's `encrypt.go` and sio-go's `sio.go`/`writer.go`; checked against
//! ciphertexts made by madmin-go (its `encrypt_test.go`) and sio-go's `test_vectors.json`
//! (see `minio/tests/minio_admin_contract.rs`).

use aes_gcm::aead::generic_array::typenum::Unsigned;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, Nonce, Payload};
use aes_gcm::Aes256Gcm;
use chacha20poly1305::ChaCha20Poly1305;

/// AEAD id of Argon2id + AES-256-GCM (what clawkeep writes).
pub const ARGON2ID_AES_GCM: u8 = 0x00;
/// AEAD id of Argon2id + ChaCha20-Poly1305.
pub const ARGON2ID_CHACHA20_POLY1305: u8 = 0x01;
/// AEAD id of PBKDF2 + AES-256-GCM (MinIO in FIPS mode; not supported here).
pub const PBKDF2_AES_GCM: u8 = 0x02;
/// Fragment size of madmin's sio streams (sio-go's `BufSize`).
pub const SIO_BUF_SIZE: usize = 1 << 14;
/// Largest fragment size sio-go allows.
pub const SIO_MAX_BUF_SIZE: usize = (1 << 24) - 1;

const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 8;
const HEADER_LEN: usize = SALT_LEN + 1 + NONCE_LEN;
const TAG_LEN: usize = 16;
const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
const ARGON2_PASSES: u32 = 1;
const ARGON2_LANES: u32 = 4;

/// Why data could not be encrypted or decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    /// Shorter than the smallest encrypted body.
    #[error("{0} bytes is shorter than any madmin-encrypted body (41-byte header and a 16-byte tag at least); the data is not encrypted")]
    TooShort(usize),
    /// An AEAD id this implementation does not speak.
    #[error("AEAD id {0:#04x} is not supported (0x00 Argon2id+AES-256-GCM and 0x01 Argon2id+ChaCha20-Poly1305 are; 0x02 is MinIO's FIPS mode)")]
    Algorithm(u8),
    /// Authentication failed.
    #[error("the data is not authentic: it was encrypted with another secret key, or altered or cut short")]
    NotAuthentic,
    /// A nonce of the wrong length for the cipher.
    #[error("the sio nonce is {got} bytes, the cipher needs {want}")]
    NonceLength {
        /// What the cipher needs (its nonce size minus 4).
        want: usize,
        /// What was given.
        got: usize,
    },
    /// A fragment size sio does not allow.
    #[error("sio fragment size {0} is out of range 1..=16777215")]
    BufSize(usize),
    /// More fragments than a 32-bit counter can number.
    #[error("the data is too large for one sio stream")]
    TooLarge,
    /// The key derivation refused its parameters.
    #[error("Argon2id key derivation failed: {0}")]
    Kdf(String),
}

/// Whether `data` looks like madmin-encrypted data (madmin's `IsEncrypted`: a known AEAD id
/// after the 32-byte salt). It proves nothing; only decryption does.
pub fn is_encrypted(data: &[u8]) -> bool {
    data.len() > SALT_LEN
        && matches!(
            data[SALT_LEN],
            ARGON2ID_AES_GCM | ARGON2ID_CHACHA20_POLY1305 | PBKDF2_AES_GCM
        )
}

/// Encrypt `data` for MinIO's admin API with `password` (the signing credential's secret key),
/// under a fresh random salt and nonce, as madmin's `EncryptData` does with AES-256-GCM.
pub fn encrypt_data(password: &str, data: &[u8]) -> Result<Vec<u8>, CryptError> {
    let salt: [u8; SALT_LEN] = rand::random();
    let nonce: [u8; NONCE_LEN] = rand::random();
    encrypt_data_with(password, &salt, &nonce, data)
}

/// [`encrypt_data`] with a given salt and nonce, for known-answer tests. Never use a salt and
/// nonce twice with the same password for different data.
pub fn encrypt_data_with(
    password: &str,
    salt: &[u8; SALT_LEN],
    nonce: &[u8; NONCE_LEN],
    data: &[u8],
) -> Result<Vec<u8>, CryptError> {
    let key = derive_key(password, salt)?;
    let aead = Aes256Gcm::new_from_slice(&key).map_err(|e| CryptError::Kdf(e.to_string()))?;
    let stream = sio_seal(&aead, SIO_BUF_SIZE, nonce, &[], data)?;
    let mut out = Vec::with_capacity(HEADER_LEN + stream.len());
    out.extend_from_slice(salt);
    out.push(ARGON2ID_AES_GCM);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&stream);
    Ok(out)
}

/// Decrypt a body made by madmin's `EncryptData` (or [`encrypt_data`]) with `password`.
pub fn decrypt_data(password: &str, data: &[u8]) -> Result<Vec<u8>, CryptError> {
    if data.len() < HEADER_LEN + TAG_LEN {
        return Err(CryptError::TooShort(data.len()));
    }
    let (salt, rest) = data.split_at(SALT_LEN);
    let (id, rest) = rest.split_at(1);
    let (nonce, stream) = rest.split_at(NONCE_LEN);
    match id[0] {
        ARGON2ID_AES_GCM => {
            let key = derive_key(password, salt)?;
            let aead =
                Aes256Gcm::new_from_slice(&key).map_err(|e| CryptError::Kdf(e.to_string()))?;
            sio_open(&aead, SIO_BUF_SIZE, nonce, &[], stream)
        }
        ARGON2ID_CHACHA20_POLY1305 => {
            let key = derive_key(password, salt)?;
            let aead = ChaCha20Poly1305::new_from_slice(&key)
                .map_err(|e| CryptError::Kdf(e.to_string()))?;
            sio_open(&aead, SIO_BUF_SIZE, nonce, &[], stream)
        }
        other => Err(CryptError::Algorithm(other)),
    }
}

/// madmin's key: Argon2id (v0x13, t=1, m=64 MiB, p=4) of `password` and `salt`, 32 bytes.
fn derive_key(password: &str, salt: &[u8]) -> Result<[u8; 32], CryptError> {
    let params = argon2::Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, ARGON2_LANES, Some(32))
        .map_err(|e| CryptError::Kdf(e.to_string()))?;
    let kdf = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = [0u8; 32];
    kdf.hash_password_into(password.as_bytes(), salt, &mut key)
        .map_err(|e| CryptError::Kdf(e.to_string()))?;
    Ok(key)
}

/// The per-stream state: the cipher's nonce (`nonce | counter`) and the fragments' associated
/// data (`flag | tag of the empty message`).
struct Sio<'a, A: Aead + AeadCore> {
    aead: &'a A,
    nonce: Vec<u8>,
    ad: [u8; 1 + TAG_LEN],
}

impl<'a, A: Aead + AeadCore> Sio<'a, A> {
    fn new(
        aead: &'a A,
        buf_size: usize,
        nonce: &[u8],
        associated: &[u8],
    ) -> Result<Self, CryptError> {
        let full = <A as AeadCore>::NonceSize::USIZE;
        if nonce.len() + 4 != full {
            return Err(CryptError::NonceLength {
                want: full.saturating_sub(4),
                got: nonce.len(),
            });
        }
        if buf_size == 0 || buf_size > SIO_MAX_BUF_SIZE {
            return Err(CryptError::BufSize(buf_size));
        }
        let mut s = Sio {
            aead,
            nonce: [nonce, &[0u8; 4]].concat(),
            ad: [0u8; 1 + TAG_LEN],
        };
        let tag = s.seal_with(0, &[], associated)?;
        if tag.len() != TAG_LEN {
            return Err(CryptError::Kdf(format!(
                "the cipher's tag is {} bytes, sio needs {TAG_LEN}",
                tag.len()
            )));
        }
        s.ad[1..].copy_from_slice(&tag);
        Ok(s)
    }

    fn set_counter(&mut self, seq: u32) {
        let n = self.nonce.len();
        self.nonce[n - 4..].copy_from_slice(&seq.to_le_bytes());
    }

    fn seal_with(&mut self, seq: u32, msg: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptError> {
        self.set_counter(seq);
        self.aead
            .encrypt(Nonce::<A>::from_slice(&self.nonce), Payload { msg, aad })
            .map_err(|_| CryptError::TooLarge)
    }

    fn seal(&mut self, seq: u32, last: bool, msg: &[u8]) -> Result<Vec<u8>, CryptError> {
        self.ad[0] = if last { 0x80 } else { 0x00 };
        let ad = self.ad;
        self.seal_with(seq, msg, &ad)
    }

    fn open(&mut self, seq: u32, last: bool, fragment: &[u8]) -> Result<Vec<u8>, CryptError> {
        self.ad[0] = if last { 0x80 } else { 0x00 };
        self.set_counter(seq);
        self.aead
            .decrypt(
                Nonce::<A>::from_slice(&self.nonce),
                Payload {
                    msg: fragment,
                    aad: &self.ad,
                },
            )
            .map_err(|_| CryptError::NotAuthentic)
    }
}

/// Encrypt `plaintext` as one sio-go stream: `nonce` is the cipher's nonce size minus 4 bytes,
/// `buf_size` the fragment size (madmin uses [`SIO_BUF_SIZE`]).
pub fn sio_seal<A: Aead + AeadCore>(
    aead: &A,
    buf_size: usize,
    nonce: &[u8],
    associated: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptError> {
    let mut sio = Sio::new(aead, buf_size, nonce, associated)?;
    let fragments = plaintext.len().div_ceil(buf_size).max(1);
    if fragments >= u32::MAX as usize {
        return Err(CryptError::TooLarge);
    }
    let mut out = Vec::with_capacity(plaintext.len() + fragments * TAG_LEN);
    if plaintext.is_empty() {
        out.extend(sio.seal(1, true, &[])?);
        return Ok(out);
    }
    for (i, chunk) in plaintext.chunks(buf_size).enumerate() {
        let seq = u32::try_from(i + 1).map_err(|_| CryptError::TooLarge)?;
        out.extend(sio.seal(seq, i + 1 == fragments, chunk)?);
    }
    Ok(out)
}

/// Decrypt and verify one sio-go stream made by [`sio_seal`] (or sio-go) with the same
/// cipher, fragment size, nonce and associated data.
pub fn sio_open<A: Aead + AeadCore>(
    aead: &A,
    buf_size: usize,
    nonce: &[u8],
    associated: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, CryptError> {
    let mut sio = Sio::new(aead, buf_size, nonce, associated)?;
    let fragment = buf_size + TAG_LEN;
    let mut out = Vec::with_capacity(ciphertext.len());
    let mut rest = ciphertext;
    let mut seq: u32 = 1;
    // Every fragment but the last is full; the last is whatever remains (a full one included).
    while rest.len() > fragment {
        let (head, tail) = rest.split_at(fragment);
        out.extend(sio.open(seq, false, head)?);
        seq = seq.checked_add(1).ok_or(CryptError::TooLarge)?;
        rest = tail;
    }
    if rest.len() < TAG_LEN {
        return Err(CryptError::NotAuthentic);
    }
    out.extend(sio.open(seq, true, rest)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sio_framing_round_trips_at_fragment_edges() {
        let aead = Aes256Gcm::new_from_slice(&[7u8; 32]).unwrap();
        for len in [0usize, 1, 15, 16, 17, 32, 33, 100] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let sealed = sio_seal(&aead, 16, &[1u8; 8], b"ad", &data).unwrap();
            assert_eq!(
                sealed.len(),
                len + len.div_ceil(16).max(1) * 16,
                "len {len}"
            );
            assert_eq!(
                sio_open(&aead, 16, &[1u8; 8], b"ad", &sealed).unwrap(),
                data
            );
            assert_eq!(
                sio_open(&aead, 16, &[1u8; 8], b"other", &sealed),
                Err(CryptError::NotAuthentic)
            );
            if len > 16 {
                // Dropping the last fragment must not pass as a shorter stream.
                let cut = &sealed[..32];
                assert_eq!(
                    sio_open(&aead, 16, &[1u8; 8], b"ad", cut),
                    Err(CryptError::NotAuthentic)
                );
            }
        }
    }

    #[test]
    fn wrong_nonce_length_is_refused() {
        let aead = Aes256Gcm::new_from_slice(&[7u8; 32]).unwrap();
        assert_eq!(
            sio_seal(&aead, 16, &[0u8; 12], &[], b"x"),
            Err(CryptError::NonceLength { want: 8, got: 12 })
        );
    }
}
