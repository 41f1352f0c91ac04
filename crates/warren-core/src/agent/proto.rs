//! The ssh-agent wire protocol (draft-miller-ssh-agent), sans-IO: frames
//! are cut from a buffer with [`decode_frame`] (`Ok(None)`: need more
//! bytes), and requests and answers are plain values that encode and decode
//! without sockets, for the agent and for its client alike.
//!
//! Keys travel in OpenSSH's private-key wire form; certificates as the
//! certificate blob followed by the private half (for rsa `d iqmp p q`, for
//! ecdsa the scalar, for ed25519 `pk sk`), exactly as ssh-add sends them.

use bytes::{Buf as _, BytesMut};
use russh::keys::ssh_encoding::{Decode, Encode, Reader as _};
use russh::keys::ssh_key::private::{
    EcdsaKeypair, EcdsaPrivateKey, Ed25519Keypair, KeypairData, RsaKeypair, RsaPrivateKey,
};
use russh::keys::ssh_key::public::{EcdsaPublicKey, KeyData};
use russh::keys::{Certificate, PrivateKey};

use crate::secret::Secret;

/// Largest frame accepted (OpenSSH's limit).
pub const MAX_FRAME: usize = 256 * 1024;

pub const FAILURE: u8 = 5;
pub const SUCCESS: u8 = 6;
pub const REQUEST_IDENTITIES: u8 = 11;
pub const IDENTITIES_ANSWER: u8 = 12;
pub const SIGN_REQUEST: u8 = 13;
pub const SIGN_RESPONSE: u8 = 14;
pub const ADD_IDENTITY: u8 = 17;
pub const REMOVE_IDENTITY: u8 = 18;
pub const REMOVE_ALL_IDENTITIES: u8 = 19;
pub const LOCK: u8 = 22;
pub const UNLOCK: u8 = 23;
pub const ADD_ID_CONSTRAINED: u8 = 25;
pub const EXTENSION: u8 = 27;

const CONSTRAIN_LIFETIME: u8 = 1;
const CONSTRAIN_CONFIRM: u8 = 2;
const CONSTRAIN_EXTENSION: u8 = 255;

/// Sign request flags for RSA keys.
pub const RSA_SHA2_256: u32 = 2;
pub const RSA_SHA2_512: u32 = 4;

const CERT_SUFFIX: &str = "-cert-v01@openssh.com";

#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("agent message of {0} bytes is larger than the 256 KiB limit")]
    TooLarge(usize),
    #[error("malformed agent message: {0}")]
    Malformed(String),
    #[error("empty agent message")]
    Empty,
}

fn malformed(e: impl std::fmt::Display) -> ProtoError {
    ProtoError::Malformed(e.to_string())
}

/// Cuts one frame (without its length) from `buf`; `Ok(None)` until a
/// whole frame is there.
pub fn decode_frame(buf: &mut BytesMut) -> Result<Option<BytesMut>, ProtoError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_FRAME {
        return Err(ProtoError::TooLarge(len));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len)))
}

/// Prefixes `body` with its length.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A key an agent holds: a plain key, or a certificate and its key.
#[derive(Clone)]
pub enum Identity {
    Key(PrivateKey),
    Certificate {
        certificate: Box<Certificate>,
        key: PrivateKey,
    },
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity([redacted])")
    }
}

impl Identity {
    /// The public blob clients name this identity by.
    pub fn public_blob(&self) -> Vec<u8> {
        match self {
            Identity::Key(k) => k.public_key().key_data().encode_vec().unwrap_or_default(),
            Identity::Certificate { certificate, .. } => certificate.to_bytes().unwrap_or_default(),
        }
    }

    /// The private key that signs.
    pub fn private_key(&self) -> &PrivateKey {
        match self {
            Identity::Key(k) | Identity::Certificate { key: k, .. } => k,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), ProtoError> {
        match self {
            Identity::Key(k) => k.key_data().encode(out).map_err(malformed),
            Identity::Certificate { certificate, key } => {
                let name = format!("{}{CERT_SUFFIX}", cert_base_name(certificate));
                name.encode(out).map_err(malformed)?;
                certificate
                    .to_bytes()
                    .map_err(malformed)?
                    .encode(out)
                    .map_err(malformed)?;
                match key.key_data() {
                    KeypairData::Ed25519(k) => k.encode(out),
                    KeypairData::Rsa(k) => k.private().encode(out),
                    KeypairData::Ecdsa(EcdsaKeypair::NistP256 { private, .. }) => {
                        private.encode(out)
                    }
                    KeypairData::Ecdsa(EcdsaKeypair::NistP384 { private, .. }) => {
                        private.encode(out)
                    }
                    KeypairData::Ecdsa(EcdsaKeypair::NistP521 { private, .. }) => {
                        private.encode(out)
                    }
                    _ => return Err(malformed("unsupported certificate key type")),
                }
                .map_err(malformed)
            }
        }
    }

    fn decode(r: &mut &[u8]) -> Result<Identity, ProtoError> {
        let mut peek = *r;
        let name = String::decode(&mut peek).map_err(malformed)?;
        if !name.ends_with(CERT_SUFFIX) {
            let data = if name.starts_with("ecdsa-sha2-") {
                ecdsa_keypair(r)?
            } else {
                KeypairData::decode(r).map_err(malformed)?
            };
            return PrivateKey::new(data, "")
                .map(Identity::Key)
                .map_err(malformed);
        }
        *r = peek;
        let blob = Vec::<u8>::decode(r).map_err(malformed)?;
        let certificate = Certificate::from_bytes(&blob).map_err(malformed)?;
        let data = match certificate.public_key() {
            KeyData::Ed25519(_) => KeypairData::from(Ed25519Keypair::decode(r).map_err(malformed)?),
            KeyData::Rsa(public) => {
                let private = RsaPrivateKey::decode(r).map_err(malformed)?;
                KeypairData::from(RsaKeypair::new(public.clone(), private).map_err(malformed)?)
            }
            KeyData::Ecdsa(EcdsaPublicKey::NistP256(public)) => {
                KeypairData::from(EcdsaKeypair::NistP256 {
                    public: *public,
                    private: ecdsa_scalar::<32>(r)?,
                })
            }
            KeyData::Ecdsa(EcdsaPublicKey::NistP384(public)) => {
                KeypairData::from(EcdsaKeypair::NistP384 {
                    public: *public,
                    private: ecdsa_scalar::<48>(r)?,
                })
            }
            KeyData::Ecdsa(EcdsaPublicKey::NistP521(public)) => {
                KeypairData::from(EcdsaKeypair::NistP521 {
                    public: *public,
                    private: ecdsa_scalar::<66>(r)?,
                })
            }
            _ => return Err(malformed(format!("unsupported certificate type {name}"))),
        };
        let key = PrivateKey::new(data, "").map_err(malformed)?;
        if key.public_key().key_data() != certificate.public_key() {
            return Err(malformed("certificate and private key do not match"));
        }
        Ok(Identity::Certificate {
            certificate: Box::new(certificate),
            key,
        })
    }
}

/// An ECDSA key as ssh-add sends it: name, curve, public point, scalar.
fn ecdsa_keypair(r: &mut &[u8]) -> Result<KeypairData, ProtoError> {
    let name = String::decode(r).map_err(malformed)?;
    let _curve = String::decode(r).map_err(malformed)?;
    let point = Vec::<u8>::decode(r).map_err(malformed)?;
    let public = EcdsaPublicKey::from_sec1_bytes(&point).map_err(malformed)?;
    if public.algorithm().as_str() != name {
        return Err(malformed(format!("{name} with a point of another curve")));
    }
    Ok(KeypairData::from(match public {
        EcdsaPublicKey::NistP256(public) => EcdsaKeypair::NistP256 {
            public,
            private: ecdsa_scalar::<32>(r)?,
        },
        EcdsaPublicKey::NistP384(public) => EcdsaKeypair::NistP384 {
            public,
            private: ecdsa_scalar::<48>(r)?,
        },
        EcdsaPublicKey::NistP521(public) => EcdsaKeypair::NistP521 {
            public,
            private: ecdsa_scalar::<66>(r)?,
        },
    }))
}

/// An ECDSA scalar as ssh-add sends it, an mpint, left-padded to the
/// curve size `N`: the mpint drops leading zeros, so about one P-256 key
/// in 256 arrives shorter than 32 bytes, which ssh-key's own decoder
/// refuses.
fn ecdsa_scalar<const N: usize>(r: &mut &[u8]) -> Result<EcdsaPrivateKey<N>, ProtoError> {
    let mpint = zeroize::Zeroizing::new(Vec::<u8>::decode(r).map_err(malformed)?);
    let start = mpint.iter().position(|&b| b != 0).unwrap_or(mpint.len());
    let digits = &mpint[start..];
    if digits.len() > N {
        return Err(malformed(format!("an ECDSA scalar longer than {N} bytes")));
    }
    let mut full = zeroize::Zeroizing::new([0u8; N]);
    full[N - digits.len()..].copy_from_slice(digits);
    Ok(EcdsaPrivateKey::from(*full))
}

/// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`: the name a
/// certificate type is built from.
fn cert_base_name(c: &Certificate) -> String {
    match c.public_key() {
        KeyData::Rsa(_) => "ssh-rsa".to_owned(),
        other => other.algorithm().as_str().to_owned(),
    }
}

/// Constraints on an added key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Constraints {
    /// Seconds until the key is forgotten.
    pub lifetime: Option<u32>,
    /// Every signature needs the user's confirmation.
    pub confirm: bool,
    /// An extension constraint this agent does not know (the add is refused).
    pub unknown_extension: Option<String>,
}

impl Constraints {
    pub fn is_empty(&self) -> bool {
        self.lifetime.is_none() && !self.confirm && self.unknown_extension.is_none()
    }
}

/// What a client asks.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one request at a time; boxing the key buys nothing"
)]
pub enum Request {
    RequestIdentities,
    Sign {
        key_blob: Vec<u8>,
        data: Vec<u8>,
        flags: u32,
    },
    Add {
        identity: Identity,
        comment: String,
        constraints: Constraints,
    },
    Remove {
        key_blob: Vec<u8>,
    },
    RemoveAll,
    Lock(Secret),
    Unlock(Secret),
    Extension(String),
    /// A message type this agent does not implement (smartcards, ...).
    Unsupported(u8),
}

impl Request {
    pub fn decode(body: &[u8]) -> Result<Request, ProtoError> {
        let (&kind, mut r) = body.split_first().ok_or(ProtoError::Empty)?;
        let r = &mut r;
        let bytes = |r: &mut &[u8]| Vec::<u8>::decode(r).map_err(malformed);
        let secret = |r: &mut &[u8]| -> Result<Secret, ProtoError> {
            let b = zeroize::Zeroizing::new(bytes(r)?);
            Ok(Secret::new(String::from_utf8_lossy(&b).into_owned()))
        };
        Ok(match kind {
            REQUEST_IDENTITIES => Request::RequestIdentities,
            SIGN_REQUEST => Request::Sign {
                key_blob: bytes(r)?,
                data: bytes(r)?,
                flags: u32::decode(r).unwrap_or(0),
            },
            ADD_IDENTITY | ADD_ID_CONSTRAINED => {
                let identity = Identity::decode(r)?;
                let comment = String::from_utf8_lossy(&bytes(r)?).into_owned();
                let constraints = if kind == ADD_ID_CONSTRAINED {
                    decode_constraints(r)?
                } else {
                    Constraints::default()
                };
                Request::Add {
                    identity,
                    comment,
                    constraints,
                }
            }
            REMOVE_IDENTITY => Request::Remove {
                key_blob: bytes(r)?,
            },
            REMOVE_ALL_IDENTITIES => Request::RemoveAll,
            LOCK => Request::Lock(secret(r)?),
            UNLOCK => Request::Unlock(secret(r)?),
            EXTENSION => Request::Extension(String::decode(r).map_err(malformed)?),
            other => Request::Unsupported(other),
        })
    }

    /// The framed message.
    pub fn encode(&self) -> Result<Vec<u8>, ProtoError> {
        let mut b = Vec::new();
        let m = malformed;
        match self {
            Request::RequestIdentities => b.push(REQUEST_IDENTITIES),
            Request::Sign {
                key_blob,
                data,
                flags,
            } => {
                b.push(SIGN_REQUEST);
                key_blob.encode(&mut b).map_err(m)?;
                data.encode(&mut b).map_err(m)?;
                flags.encode(&mut b).map_err(m)?;
            }
            Request::Add {
                identity,
                comment,
                constraints,
            } => {
                b.push(if constraints.is_empty() {
                    ADD_IDENTITY
                } else {
                    ADD_ID_CONSTRAINED
                });
                identity.encode(&mut b)?;
                comment.encode(&mut b).map_err(m)?;
                if let Some(secs) = constraints.lifetime {
                    b.push(CONSTRAIN_LIFETIME);
                    secs.encode(&mut b).map_err(m)?;
                }
                if constraints.confirm {
                    b.push(CONSTRAIN_CONFIRM);
                }
            }
            Request::Remove { key_blob } => {
                b.push(REMOVE_IDENTITY);
                key_blob.encode(&mut b).map_err(m)?;
            }
            Request::RemoveAll => b.push(REMOVE_ALL_IDENTITIES),
            Request::Lock(s) | Request::Unlock(s) => {
                b.push(if matches!(self, Request::Lock(_)) {
                    LOCK
                } else {
                    UNLOCK
                });
                s.expose().as_bytes().encode(&mut b).map_err(m)?;
            }
            Request::Extension(name) => {
                b.push(EXTENSION);
                name.encode(&mut b).map_err(m)?;
            }
            Request::Unsupported(kind) => b.push(*kind),
        }
        let framed = frame(&b);
        zeroize::Zeroize::zeroize(&mut b);
        Ok(framed)
    }
}

fn decode_constraints(r: &mut &[u8]) -> Result<Constraints, ProtoError> {
    let mut c = Constraints::default();
    while !r.is_finished() {
        match u8::decode(r).map_err(malformed)? {
            CONSTRAIN_LIFETIME => c.lifetime = Some(u32::decode(r).map_err(malformed)?),
            CONSTRAIN_CONFIRM => c.confirm = true,
            CONSTRAIN_EXTENSION => {
                c.unknown_extension = Some(String::decode(r).map_err(malformed)?);
                // Its contents are extension-specific; nothing after them
                // can be read without knowing it, and the add is refused.
                return Ok(c);
            }
            other => return Err(malformed(format!("unknown constraint {other}"))),
        }
    }
    Ok(c)
}

/// What the agent answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Success,
    Failure,
    /// (public blob, comment) per identity.
    Identities(Vec<(Vec<u8>, String)>),
    /// The signature blob.
    Signature(Vec<u8>),
}

impl Response {
    /// The framed message.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        // Encoding into a Vec cannot fail; a failure would only shorten
        // the message, which the peer then rejects.
        match self {
            Response::Success => b.push(SUCCESS),
            Response::Failure => b.push(FAILURE),
            Response::Identities(ids) => {
                b.push(IDENTITIES_ANSWER);
                let _ = (ids.len() as u32).encode(&mut b);
                for (blob, comment) in ids {
                    let _ = blob.encode(&mut b);
                    let _ = comment.encode(&mut b);
                }
            }
            Response::Signature(sig) => {
                b.push(SIGN_RESPONSE);
                let _ = sig.encode(&mut b);
            }
        }
        frame(&b)
    }

    pub fn decode(body: &[u8]) -> Result<Response, ProtoError> {
        let (&kind, mut r) = body.split_first().ok_or(ProtoError::Empty)?;
        let r = &mut r;
        Ok(match kind {
            SUCCESS => Response::Success,
            FAILURE | 28 | 30 => Response::Failure,
            IDENTITIES_ANSWER => {
                let n = u32::decode(r).map_err(malformed)?;
                let mut ids = Vec::new();
                for _ in 0..n {
                    let blob = Vec::<u8>::decode(r).map_err(malformed)?;
                    let comment = Vec::<u8>::decode(r).map_err(malformed)?;
                    ids.push((blob, String::from_utf8_lossy(&comment).into_owned()));
                }
                Response::Identities(ids)
            }
            SIGN_RESPONSE => Response::Signature(Vec::<u8>::decode(r).map_err(malformed)?),
            other => return Err(malformed(format!("unexpected answer type {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyType, generate};

    fn round_trip(req: &Request) -> Request {
        let mut buf = BytesMut::from(&req.encode().expect("encode")[..]);
        let body = decode_frame(&mut buf).expect("frame").expect("whole");
        assert!(buf.is_empty());
        Request::decode(&body).expect("decode")
    }

    #[test]
    fn frames_need_all_their_bytes() {
        let mut buf = BytesMut::from(&[0u8, 0, 0, 2, 11][..]);
        assert!(decode_frame(&mut buf).expect("ok").is_none());
        buf.extend_from_slice(&[0]);
        assert_eq!(
            &decode_frame(&mut buf).expect("ok").expect("frame")[..],
            &[11, 0]
        );
        let mut huge = BytesMut::from(&[0u8, 0x10, 0, 0][..]);
        assert!(matches!(
            decode_frame(&mut huge),
            Err(ProtoError::TooLarge(_))
        ));
    }

    #[test]
    fn adds_round_trip_for_every_key_type_with_constraints() {
        for (kind, bits) in [
            (KeyType::Ed25519, None),
            (KeyType::Ecdsa, Some(256)),
            (KeyType::Ecdsa, Some(521)),
            (KeyType::Rsa, Some(1024)),
        ] {
            let key = generate(kind, bits, "c").expect("key");
            let req = Request::Add {
                identity: Identity::Key(key.clone()),
                comment: "my comment".into(),
                constraints: Constraints {
                    lifetime: Some(30),
                    confirm: true,
                    unknown_extension: None,
                },
            };
            match round_trip(&req) {
                Request::Add {
                    identity,
                    comment,
                    constraints,
                } => {
                    assert_eq!(identity.public_blob(), Identity::Key(key).public_blob());
                    assert_eq!(comment, "my comment");
                    assert_eq!(constraints.lifetime, Some(30));
                    assert!(constraints.confirm);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn sign_lock_and_answers_round_trip() {
        match round_trip(&Request::Sign {
            key_blob: vec![1, 2],
            data: vec![3],
            flags: RSA_SHA2_512,
        }) {
            Request::Sign {
                key_blob,
                data,
                flags,
            } => assert_eq!((key_blob, data, flags), (vec![1, 2], vec![3], 4)),
            other => panic!("{other:?}"),
        }
        match round_trip(&Request::Lock(Secret::new("pw".into()))) {
            Request::Lock(s) => assert_eq!(s.expose(), "pw"),
            other => panic!("{other:?}"),
        }
        for resp in [
            Response::Success,
            Response::Failure,
            Response::Identities(vec![(vec![9, 9], "c".into())]),
            Response::Signature(vec![7]),
        ] {
            let mut buf = BytesMut::from(&resp.encode()[..]);
            let body = decode_frame(&mut buf).expect("ok").expect("frame");
            assert_eq!(Response::decode(&body).expect("decode"), resp);
        }
    }

    // Regression: ssh-add sends an ECDSA scalar as an mpint, which drops
    // leading zeros; a 31-byte P-256 scalar (one key in 256) was refused.
    #[test]
    fn ecdsa_scalar_shorter_than_its_curve_is_padded() {
        use russh::keys::ssh_key::private::{EcdsaKeypair, KeypairData};
        let (key, private) = (0..20_000)
            .find_map(|_| {
                let key = generate(KeyType::Ecdsa, Some(256), "").expect("key");
                match key.key_data() {
                    KeypairData::Ecdsa(EcdsaKeypair::NistP256 { private, .. })
                        if private.as_slice()[0] == 0 =>
                    {
                        let p = private.as_slice().to_vec();
                        Some((key, p))
                    }
                    _ => None,
                }
            })
            .expect("a scalar with a leading zero byte in 20000 keys");
        let public = match key.public_key().key_data() {
            KeyData::Ecdsa(p) => p.as_sec1_bytes().to_vec(),
            other => panic!("{other:?}"),
        };
        let mut body = vec![ADD_IDENTITY];
        for field in [&b"ecdsa-sha2-nistp256"[..], b"nistp256", &public] {
            field.encode(&mut body).expect("enc");
        }
        // The mpint as OpenSSH writes it: no leading zero bytes.
        let start = private.iter().position(|&b| b != 0).expect("nonzero");
        private[start..].encode(&mut body).expect("enc");
        "c".encode(&mut body).expect("enc");
        match Request::decode(&body).expect("decode") {
            Request::Add { identity, .. } => {
                assert_eq!(identity.private_key().key_data(), key.key_data());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_extension_constraint_is_reported_not_guessed() {
        let key = generate(KeyType::Ed25519, None, "").expect("key");
        let mut body = vec![ADD_ID_CONSTRAINED];
        key.key_data().encode(&mut body).expect("enc");
        "c".encode(&mut body).expect("enc");
        body.push(CONSTRAIN_EXTENSION);
        "restrict-destination-v00@openssh.com"
            .encode(&mut body)
            .expect("enc");
        body.extend_from_slice(&[0, 0, 0, 0]);
        match Request::decode(&body).expect("decode") {
            Request::Add { constraints, .. } => assert_eq!(
                constraints.unknown_extension.as_deref(),
                Some("restrict-destination-v00@openssh.com")
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for body in [
            &[][..],
            &[SIGN_REQUEST, 0, 0],
            &[ADD_IDENTITY, 0, 0, 0, 9, b'x'],
        ] {
            let _ = Request::decode(body);
        }
        assert!(Request::decode(&[]).is_err());
    }
}
