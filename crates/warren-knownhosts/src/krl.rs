//! OpenSSH key revocation lists (KRLs, PROTOCOL.krl), as written by
//! `ssh-keygen -k` and read for `RevokedHostKeys`: a sans-IO codec and the
//! revocation check of OpenSSH's `ssh_krl_check_key`.
//!
//! Design choice: [`Krl`] keeps the sections as they were written (no
//! merged trees), so `Krl::parse(&krl.to_bytes())` gives back the same
//! value and the check is a scan, proportional to the file. The parser
//! refuses what OpenSSH's `ssh_krl_from_blob` refuses (serial 0, empty
//! ranges, bitmaps that wrap, unknown section types, trailing data,
//! critical extensions) and never allocates more than the input it has
//! already consumed. Signature sections are skipped unverified, as
//! OpenSSH does since it dropped KRL signatures (9.4; no OpenSSH tool
//! ever wrote one).

use sha1::{Digest as _, Sha1};
use sha2::Sha256;
use warren_wire::{Escaped, wire};

use crate::error::ParseError;
use crate::key::HostKey;

/// The eight bytes every KRL starts with.
pub const KRL_MAGIC: &[u8; 8] = b"SSHKRL\n\0";
const FORMAT_VERSION: u32 = 1;

const SECTION_CERTIFICATES: u8 = 1;
const SECTION_EXPLICIT_KEY: u8 = 2;
const SECTION_FINGERPRINT_SHA1: u8 = 3;
const SECTION_SIGNATURE: u8 = 4;
const SECTION_FINGERPRINT_SHA256: u8 = 5;
const SECTION_EXTENSION: u8 = 255;

const CERT_SERIAL_LIST: u8 = 0x20;
const CERT_SERIAL_RANGE: u8 = 0x21;
const CERT_SERIAL_BITMAP: u8 = 0x22;
const CERT_KEY_ID: u8 = 0x23;
const CERT_EXTENSION: u8 = 0x39;

/// OpenSSH's `SSHBUF_MAX_BIGNUM`: the longest bitmap, in bytes.
const MAX_BITMAP_BYTES: usize = 16384 / 8;

/// A parsed KRL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Krl {
    /// Increases each time the KRL is modified.
    pub version: u64,
    /// Seconds since the epoch when it was generated.
    pub generated_date: u64,
    /// No flags are defined; kept as read.
    pub flags: u64,
    /// Reserved header field, kept as read.
    pub reserved: Vec<u8>,
    /// Free text (file-supplied: escape before printing).
    pub comment: Vec<u8>,
    /// The sections, in file order.
    pub sections: Vec<Section>,
}

/// One top-level KRL section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Section {
    /// Certificates revoked by serial or key ID, for one CA or all.
    Certificates(CertSection),
    /// Plain public key blobs.
    ExplicitKeys(Vec<Vec<u8>>),
    /// SHA-1 hashes of plain public key blobs.
    Sha1(Vec<[u8; 20]>),
    /// SHA-256 hashes of plain public key blobs.
    Sha256(Vec<[u8; 32]>),
    /// A signature over the KRL so far; not verified (see the module doc).
    Signature {
        /// The signing key's blob.
        key: Vec<u8>,
        /// The signature blob.
        signature: Vec<u8>,
    },
    /// A non-critical extension (a critical one fails the parse).
    Extension(Extension),
}

/// A certificates section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSection {
    /// The CA's public key blob; `None` means any CA.
    pub ca_key: Option<Vec<u8>>,
    /// Reserved field, kept as read.
    pub reserved: Vec<u8>,
    /// The subsections, in order.
    pub entries: Vec<CertEntry>,
}

/// One subsection of a certificates section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertEntry {
    /// Revoked serials (none is 0).
    Serials(Vec<u64>),
    /// Serials `lo..=hi` (`0 < lo <= hi`).
    Range {
        /// First revoked serial.
        lo: u64,
        /// Last revoked serial.
        hi: u64,
    },
    /// Bit `n` of `bits` (a big-endian number without leading zero
    /// bytes) revokes serial `offset + n`.
    Bitmap {
        /// Serial of bit 0.
        offset: u64,
        /// The bitmap as an unsigned big-endian number.
        bits: Vec<u8>,
    },
    /// Revoked key IDs (no NUL bytes).
    KeyIds(Vec<Vec<u8>>),
    /// A non-critical extension.
    Extension(Extension),
}

/// A KRL extension (section or certificate subsection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// Its name (no NUL bytes).
    pub name: Vec<u8>,
    /// Whether a reader that does not know it must refuse the KRL.
    pub critical: bool,
    /// Its contents.
    pub value: Vec<u8>,
}

/// Why bytes are not a usable KRL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KrlError {
    /// The input does not start with `SSHKRL\n\0`: it is not a KRL at all
    /// (a `RevokedHostKeys` file may then be a list of keys).
    #[error("not a KRL (no SSHKRL magic)")]
    NotKrl,
    /// A format version other than 1.
    #[error("unsupported KRL format version {0}")]
    Version(u32),
    /// The input ends inside a field.
    #[error("KRL is truncated: it ends inside {0}")]
    Truncated(&'static str),
    /// Bytes left over at the end of a section.
    #[error("KRL {0} section has trailing data")]
    Trailing(&'static str),
    /// A section type OpenSSH does not know.
    #[error("unsupported KRL section type {0}")]
    UnknownSection(u8),
    /// A certificate subsection type OpenSSH does not know.
    #[error("unsupported KRL certificate section type {0:#04x}")]
    UnknownCertSection(u8),
    /// A fingerprint of the wrong length.
    #[error("KRL {kind} fingerprint is {len} bytes long, not {want}")]
    HashLength {
        /// "SHA1" or "SHA256".
        kind: &'static str,
        /// Its length.
        len: usize,
        /// The length it must have.
        want: usize,
    },
    /// Serial 0, or a range whose start is 0 or above its end.
    #[error("KRL revokes an invalid certificate serial range {lo}-{hi}")]
    BadSerial {
        /// Start of the range.
        lo: u64,
        /// End of the range.
        hi: u64,
    },
    /// A serial bitmap that is negative, too long, or runs past 2^64-1.
    #[error("KRL serial bitmap is invalid: {0}")]
    BadBitmap(&'static str),
    /// A text field (comment, key ID, extension name) with a NUL byte.
    #[error("KRL {0} contains a NUL byte")]
    Nul(&'static str),
    /// The CA key of a certificates section is not a public key.
    #[error("KRL certificate section names an invalid CA key: {0}")]
    BadCaKey(ParseError),
    /// An extension marked critical: OpenSSH knows none, so refuses.
    #[error("KRL contains unsupported critical extension \"{0}\"")]
    CriticalExtension(String),
}

impl Krl {
    /// Parse a KRL. [`KrlError::NotKrl`] says the magic is missing.
    pub fn parse(bytes: &[u8]) -> Result<Krl, KrlError> {
        let body = bytes.strip_prefix(KRL_MAGIC).ok_or(KrlError::NotKrl)?;
        let mut r = Reader::new(body);
        let version = r.u32("the header")?;
        if version != FORMAT_VERSION {
            return Err(KrlError::Version(version));
        }
        let mut krl = Krl {
            version: r.u64("the header")?,
            generated_date: r.u64("the header")?,
            flags: r.u64("the header")?,
            reserved: r.string("the header")?.to_vec(),
            comment: r.cstring("the header", "comment")?.to_vec(),
            sections: Vec::new(),
        };
        while !r.is_empty() {
            krl.sections.push(Section::parse(&mut r)?);
        }
        Ok(krl)
    }

    /// The KRL in its wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = KRL_MAGIC.to_vec();
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        for n in [self.version, self.generated_date, self.flags] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        put_string(&mut out, &self.reserved);
        put_string(&mut out, &self.comment);
        for section in &self.sections {
            section.encode(&mut out);
        }
        out
    }

    /// OpenSSH's `ssh_krl_check_key`: whether the key is revoked, or for
    /// a certificate, the certificate, the key it certifies, or its CA.
    pub fn is_revoked(&self, key: &HostKey) -> bool {
        self.key_revoked(key) || key.signature_key().is_some_and(|ca| self.key_revoked(&ca))
    }

    /// `is_key_revoked`: by hash or blob of the plain key, then (for a
    /// certificate) by serial or key ID.
    fn key_revoked(&self, key: &HostKey) -> bool {
        let plain = key.plain_blob();
        let sha1: [u8; 20] = Sha1::digest(&plain).into();
        let sha256: [u8; 32] = Sha256::digest(&plain).into();
        let cert = CertView::of(key);
        self.sections.iter().any(|s| match s {
            Section::Sha1(hashes) => hashes.contains(&sha1),
            Section::Sha256(hashes) => hashes.contains(&sha256),
            Section::ExplicitKeys(blobs) => blobs.contains(&plain),
            Section::Certificates(c) => cert.as_ref().is_some_and(|cert| c.revokes(cert)),
            Section::Signature { .. } | Section::Extension(_) => false,
        })
    }
}

/// What the certificate checks need from a certificate.
struct CertView {
    ca: Vec<u8>,
    serial: u64,
    key_id: Vec<u8>,
}

impl CertView {
    fn of(key: &HostKey) -> Option<Self> {
        Some(Self {
            ca: key.signature_key()?.blob().to_vec(),
            serial: key.certificate_serial()?,
            key_id: key.certificate_key_id()?.to_vec(),
        })
    }
}

impl Section {
    fn parse(r: &mut Reader<'_>) -> Result<Section, KrlError> {
        let kind = r.u8("a section type")?;
        let mut body = Reader::new(r.string("a section")?);
        let section = match kind {
            SECTION_CERTIFICATES => Section::Certificates(CertSection::parse(&mut body)?),
            SECTION_EXPLICIT_KEY => {
                let mut blobs = Vec::new();
                while !body.is_empty() {
                    blobs.push(body.string("an explicit key")?.to_vec());
                }
                Section::ExplicitKeys(blobs)
            }
            SECTION_FINGERPRINT_SHA1 => Section::Sha1(hashes(&mut body, "SHA1")?),
            SECTION_FINGERPRINT_SHA256 => Section::Sha256(hashes(&mut body, "SHA256")?),
            // The one section whose body is two strings: the first was
            // read as `body`, the signature follows.
            SECTION_SIGNATURE => Section::Signature {
                key: body.rest().to_vec(),
                signature: r.string("a signature")?.to_vec(),
            },
            SECTION_EXTENSION => Section::Extension(Extension::parse(&mut body)?),
            other => return Err(KrlError::UnknownSection(other)),
        };
        if !body.is_empty() {
            return Err(KrlError::Trailing(section.name()));
        }
        Ok(section)
    }

    fn name(&self) -> &'static str {
        match self {
            Section::Certificates(_) => "certificates",
            Section::ExplicitKeys(_) => "explicit key",
            Section::Sha1(_) => "SHA1 fingerprint",
            Section::Sha256(_) => "SHA256 fingerprint",
            Section::Signature { .. } => "signature",
            Section::Extension(_) => "extension",
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let mut body = Vec::new();
        let kind = match self {
            Section::Certificates(c) => {
                c.encode(&mut body);
                SECTION_CERTIFICATES
            }
            Section::ExplicitKeys(blobs) => {
                blobs.iter().for_each(|b| put_string(&mut body, b));
                SECTION_EXPLICIT_KEY
            }
            Section::Sha1(hashes) => {
                hashes.iter().for_each(|h| put_string(&mut body, h));
                SECTION_FINGERPRINT_SHA1
            }
            Section::Sha256(hashes) => {
                hashes.iter().for_each(|h| put_string(&mut body, h));
                SECTION_FINGERPRINT_SHA256
            }
            Section::Signature { key, signature } => {
                out.push(SECTION_SIGNATURE);
                put_string(out, key);
                put_string(out, signature);
                return;
            }
            Section::Extension(e) => {
                e.encode(&mut body);
                SECTION_EXTENSION
            }
        };
        out.push(kind);
        put_string(out, &body);
    }
}

/// Fixed-length hashes, one per string.
fn hashes<const N: usize>(
    body: &mut Reader<'_>,
    kind: &'static str,
) -> Result<Vec<[u8; N]>, KrlError> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let hash = body.string("a fingerprint")?;
        let hash = <[u8; N]>::try_from(hash).map_err(|_| KrlError::HashLength {
            kind,
            len: hash.len(),
            want: N,
        })?;
        out.push(hash);
    }
    Ok(out)
}

impl CertSection {
    fn parse(body: &mut Reader<'_>) -> Result<CertSection, KrlError> {
        let ca = body.string("a certificates section header")?;
        let reserved = body.string("a certificates section header")?.to_vec();
        let ca_key = if ca.is_empty() {
            None
        } else {
            HostKey::from_blob(ca.to_vec()).map_err(KrlError::BadCaKey)?;
            Some(ca.to_vec())
        };
        let mut entries = Vec::new();
        while !body.is_empty() {
            entries.push(CertEntry::parse(body)?);
        }
        Ok(CertSection {
            ca_key,
            reserved,
            entries,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_string(out, self.ca_key.as_deref().unwrap_or_default());
        put_string(out, &self.reserved);
        for entry in &self.entries {
            entry.encode(out);
        }
    }

    /// `is_cert_revoked` for a certificate whose CA this section names
    /// (or any CA, for a section without one).
    fn revokes(&self, cert: &CertView) -> bool {
        if self.ca_key.as_ref().is_some_and(|ca| *ca != cert.ca) {
            return false;
        }
        self.entries.iter().any(|e| e.revokes(cert))
    }
}

impl CertEntry {
    fn parse(r: &mut Reader<'_>) -> Result<CertEntry, KrlError> {
        let kind = r.u8("a certificate section type")?;
        let mut body = Reader::new(r.string("a certificate section")?);
        let entry = match kind {
            CERT_SERIAL_LIST => {
                let mut serials = Vec::new();
                while !body.is_empty() {
                    let serial = body.u64("a serial list")?;
                    check_range(serial, serial)?;
                    serials.push(serial);
                }
                CertEntry::Serials(serials)
            }
            CERT_SERIAL_RANGE => {
                let lo = body.u64("a serial range")?;
                let hi = body.u64("a serial range")?;
                check_range(lo, hi)?;
                CertEntry::Range { lo, hi }
            }
            CERT_SERIAL_BITMAP => parse_bitmap(&mut body)?,
            CERT_KEY_ID => {
                let mut ids = Vec::new();
                while !body.is_empty() {
                    ids.push(body.cstring("a key ID section", "key ID")?.to_vec());
                }
                CertEntry::KeyIds(ids)
            }
            CERT_EXTENSION => CertEntry::Extension(Extension::parse(&mut body)?),
            other => return Err(KrlError::UnknownCertSection(other)),
        };
        if !body.is_empty() {
            return Err(KrlError::Trailing("certificate"));
        }
        Ok(entry)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let mut body = Vec::new();
        let kind = match self {
            CertEntry::Serials(serials) => {
                serials
                    .iter()
                    .for_each(|s| body.extend_from_slice(&s.to_be_bytes()));
                CERT_SERIAL_LIST
            }
            CertEntry::Range { lo, hi } => {
                body.extend_from_slice(&lo.to_be_bytes());
                body.extend_from_slice(&hi.to_be_bytes());
                CERT_SERIAL_RANGE
            }
            CertEntry::Bitmap { offset, bits } => {
                body.extend_from_slice(&offset.to_be_bytes());
                put_mpint(&mut body, bits);
                CERT_SERIAL_BITMAP
            }
            CertEntry::KeyIds(ids) => {
                ids.iter().for_each(|id| put_string(&mut body, id));
                CERT_KEY_ID
            }
            CertEntry::Extension(e) => {
                e.encode(&mut body);
                CERT_EXTENSION
            }
        };
        out.push(kind);
        put_string(out, &body);
    }

    fn revokes(&self, cert: &CertView) -> bool {
        match self {
            CertEntry::KeyIds(ids) => ids.contains(&cert.key_id),
            CertEntry::Extension(_) => false,
            // Serial 0 means "none set" and is never revoked by serial.
            _ if cert.serial == 0 => false,
            CertEntry::Serials(serials) => serials.contains(&cert.serial),
            CertEntry::Range { lo, hi } => (*lo..=*hi).contains(&cert.serial),
            CertEntry::Bitmap { offset, bits } => bit_set(*offset, bits, cert.serial),
        }
    }
}

/// `ssh_krl_revoke_cert_by_serial_range`'s argument check.
fn check_range(lo: u64, hi: u64) -> Result<(), KrlError> {
    if lo == 0 || lo > hi {
        return Err(KrlError::BadSerial { lo, hi });
    }
    Ok(())
}

/// A bitmap subsection: a serial offset and an mpint, with OpenSSH's
/// limits (non-negative, at most 2048 bytes of value, no serial 0, no
/// wrap past 2^64-1).
fn parse_bitmap(body: &mut Reader<'_>) -> Result<CertEntry, KrlError> {
    let offset = body.u64("a serial bitmap")?;
    let raw = body.string("a serial bitmap")?;
    if raw.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(KrlError::BadBitmap("negative"));
    }
    if raw.len() > MAX_BITMAP_BYTES + 1 || (raw.len() == MAX_BITMAP_BYTES + 1 && raw[0] != 0) {
        return Err(KrlError::BadBitmap("longer than 16384 bits"));
    }
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    let bits = &raw[start..];
    let nbits = match bits.first() {
        Some(top) => (bits.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
        None => 0,
    };
    if offset == 0 && bits.last().is_some_and(|b| b & 1 != 0) {
        return Err(KrlError::BadSerial { lo: 0, hi: 0 });
    }
    let last = u64::try_from(nbits.saturating_sub(1)).unwrap_or(u64::MAX);
    if offset.checked_add(last).is_none() {
        return Err(KrlError::BadBitmap("it runs past serial 2^64-1"));
    }
    Ok(CertEntry::Bitmap {
        offset,
        bits: bits.to_vec(),
    })
}

fn bit_set(offset: u64, bits: &[u8], serial: u64) -> bool {
    let Some(index) = serial.checked_sub(offset) else {
        return false;
    };
    let Ok(byte) = usize::try_from(index / 8) else {
        return false;
    };
    byte < bits.len() && bits[bits.len() - 1 - byte] >> (index % 8) & 1 == 1
}

impl Extension {
    fn parse(body: &mut Reader<'_>) -> Result<Extension, KrlError> {
        let name = body.cstring("an extension", "extension name")?.to_vec();
        let critical = body.u8("an extension")? != 0;
        let value = body.string("an extension")?.to_vec();
        if critical {
            let name = Escaped::truncated(&name, 200).to_string();
            return Err(KrlError::CriticalExtension(name));
        }
        Ok(Extension {
            name,
            critical,
            value,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_string(out, &self.name);
        out.push(u8::from(self.critical));
        put_string(out, &self.value);
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    // Every field comes from a parsed KRL or a caller's small value; a
    // field of 4 GiB or more cannot be written and is cut short.
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s[..len as usize]);
}

/// An unsigned mpint: a zero byte first when the top bit is set.
fn put_mpint(out: &mut Vec<u8>, magnitude: &[u8]) {
    let start = magnitude
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(magnitude.len());
    let magnitude = &magnitude[start..];
    if magnitude.first().is_some_and(|b| b & 0x80 != 0) {
        let mut padded = Vec::with_capacity(magnitude.len() + 1);
        padded.push(0);
        padded.extend_from_slice(magnitude);
        put_string(out, &padded);
    } else {
        put_string(out, magnitude);
    }
}

/// The shared wire reader, each read naming what it was for when the
/// input ends first.
struct Reader<'a>(wire::Reader<'a>);

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self(wire::Reader::new(bytes))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn rest(&mut self) -> &'a [u8] {
        self.0.rest()
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, KrlError> {
        self.0.u8().ok_or(KrlError::Truncated(what))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, KrlError> {
        self.0.u32().ok_or(KrlError::Truncated(what))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, KrlError> {
        self.0.u64().ok_or(KrlError::Truncated(what))
    }

    fn string(&mut self, what: &'static str) -> Result<&'a [u8], KrlError> {
        self.0.string().ok_or(KrlError::Truncated(what))
    }

    /// `sshbuf_get_cstring`: a string with no NUL except one at the end,
    /// which is dropped.
    fn cstring(&mut self, what: &'static str, field: &'static str) -> Result<&'a [u8], KrlError> {
        let s = self.string(what)?;
        let s = s.strip_suffix(b"\0").unwrap_or(s);
        if s.contains(&0) {
            return Err(KrlError::Nul(field));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkeys::{ecdsa, ed, ed_cert};
    use proptest::prelude::*;

    fn krl(sections: Vec<Section>) -> Krl {
        Krl {
            version: 7,
            generated_date: 1_700_000_000,
            comment: b"test".to_vec(),
            sections,
            ..Krl::default()
        }
    }

    fn certs(ca: Option<&HostKey>, entries: Vec<CertEntry>) -> Section {
        Section::Certificates(CertSection {
            ca_key: ca.map(|k| k.blob().to_vec()),
            reserved: Vec::new(),
            entries,
        })
    }

    /// Bytes of a KRL whose last section is `kind` with body `body`.
    fn raw_section(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = krl(Vec::new()).to_bytes();
        out.push(kind);
        put_string(&mut out, body);
        out
    }

    fn raw_cert_entry(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut section = Vec::new();
        put_string(&mut section, b"");
        put_string(&mut section, b"");
        section.push(kind);
        put_string(&mut section, body);
        raw_section(SECTION_CERTIFICATES, &section)
    }

    #[test]
    fn header_round_trips_and_magic_is_required() {
        let k = krl(Vec::new());
        let bytes = k.to_bytes();
        assert!(bytes.starts_with(b"SSHKRL\n\0\0\0\0\x01"));
        assert_eq!(Krl::parse(&bytes), Ok(k));
        assert_eq!(Krl::parse(b"ssh-ed25519 AAAA"), Err(KrlError::NotKrl));
        assert_eq!(Krl::parse(b"SSHKRL\n"), Err(KrlError::NotKrl));
        let mut v2 = bytes.clone();
        v2[11] = 2;
        assert_eq!(Krl::parse(&v2), Err(KrlError::Version(2)));
        for cut in 8..bytes.len() {
            assert!(
                matches!(Krl::parse(&bytes[..cut]), Err(KrlError::Truncated(_))),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn plain_keys_by_blob_and_hashes() {
        let (a, b, c, d) = (ed(1), ecdsa(2), ed(3), ed(4));
        let sha1: [u8; 20] = Sha1::digest(b.blob()).into();
        let sha256: [u8; 32] = Sha256::digest(c.blob()).into();
        let k = krl(vec![
            Section::ExplicitKeys(vec![a.blob().to_vec()]),
            Section::Sha1(vec![sha1]),
            Section::Sha256(vec![sha256]),
        ]);
        let k = Krl::parse(&k.to_bytes()).expect("parses");
        assert!(k.is_revoked(&a) && k.is_revoked(&b) && k.is_revoked(&c));
        assert!(!k.is_revoked(&d));
        // A certificate of a revoked key is revoked, whoever signed it; a
        // certificate signed by a revoked key too.
        assert!(k.is_revoked(&ed_cert(1, &ed(9))));
        assert!(k.is_revoked(&ed_cert(9, &a)));
        assert!(!k.is_revoked(&ed_cert(9, &d)));
    }

    #[test]
    fn certificates_by_serial_and_key_id_for_their_ca() {
        // ed_cert has serial 7 and key ID "key id".
        let (ca, other) = (ecdsa(1), ecdsa(2));
        let cert = ed_cert(5, &ca);
        type Case = (&'static str, Vec<Section>, bool);
        let cases: Vec<Case> = vec![
            (
                "list",
                vec![certs(Some(&ca), vec![CertEntry::Serials(vec![3, 7])])],
                true,
            ),
            (
                "list, other serials",
                vec![certs(Some(&ca), vec![CertEntry::Serials(vec![6, 8])])],
                false,
            ),
            (
                "list, other CA",
                vec![certs(Some(&other), vec![CertEntry::Serials(vec![7])])],
                false,
            ),
            (
                "list, any CA",
                vec![certs(None, vec![CertEntry::Serials(vec![7])])],
                true,
            ),
            (
                "range",
                vec![certs(Some(&ca), vec![CertEntry::Range { lo: 7, hi: 9 }])],
                true,
            ),
            (
                "range below",
                vec![certs(Some(&ca), vec![CertEntry::Range { lo: 1, hi: 6 }])],
                false,
            ),
            (
                "range above",
                vec![certs(
                    Some(&ca),
                    vec![CertEntry::Range {
                        lo: 8,
                        hi: u64::MAX,
                    }],
                )],
                false,
            ),
            // Bits 0 and 2 from offset 5: serials 5 and 7.
            (
                "bitmap",
                vec![certs(
                    Some(&ca),
                    vec![CertEntry::Bitmap {
                        offset: 5,
                        bits: vec![0b101],
                    }],
                )],
                true,
            ),
            (
                "bitmap, bit clear",
                vec![certs(
                    Some(&ca),
                    vec![CertEntry::Bitmap {
                        offset: 5,
                        bits: vec![0b011],
                    }],
                )],
                false,
            ),
            (
                "bitmap, high byte",
                vec![certs(
                    Some(&ca),
                    vec![CertEntry::Bitmap {
                        offset: 7,
                        bits: vec![0x80, 0, 1],
                    }],
                )],
                true,
            ),
            (
                "bitmap, past the end",
                vec![certs(
                    Some(&ca),
                    vec![CertEntry::Bitmap {
                        offset: 8,
                        bits: vec![0xff],
                    }],
                )],
                false,
            ),
            (
                "key id",
                vec![certs(
                    None,
                    vec![CertEntry::KeyIds(vec![b"x".to_vec(), b"key id".to_vec()])],
                )],
                true,
            ),
            (
                "key id, other",
                vec![certs(None, vec![CertEntry::KeyIds(vec![b"key".to_vec()])])],
                false,
            ),
            (
                "key id, other CA",
                vec![certs(
                    Some(&other),
                    vec![CertEntry::KeyIds(vec![b"key id".to_vec()])],
                )],
                false,
            ),
            (
                "second section for the CA",
                vec![
                    certs(Some(&ca), vec![CertEntry::Serials(vec![1])]),
                    certs(Some(&ca), vec![CertEntry::Serials(vec![7])]),
                ],
                true,
            ),
        ];
        for (name, sections, want) in cases {
            let k = Krl::parse(&krl(sections).to_bytes()).expect(name);
            assert_eq!(k.is_revoked(&cert), want, "{name}");
            // Serial rules never touch plain keys.
            assert!(!k.is_revoked(&ed(5)), "{name}");
        }
    }

    #[test]
    fn serial_zero_is_never_revoked_by_serial() {
        let ca = ecdsa(1);
        let mut blob = ed_cert(5, &ca).blob().to_vec();
        // The serial follows the type, the nonce and the 32-byte key.
        let at = 4 + 32 + 4 + 5 + 4 + 32;
        blob[at..at + 8].copy_from_slice(&0u64.to_be_bytes());
        let cert = HostKey::from_blob(blob).expect("cert");
        assert_eq!(cert.certificate_serial(), Some(0));
        let k = krl(vec![certs(
            Some(&ca),
            vec![CertEntry::Range {
                lo: 1,
                hi: u64::MAX,
            }],
        )]);
        assert!(!k.is_revoked(&cert));
        let k = krl(vec![certs(
            Some(&ca),
            vec![CertEntry::KeyIds(vec![b"key id".to_vec()])],
        )]);
        assert!(k.is_revoked(&cert));
    }

    #[test]
    fn refuses_what_openssh_refuses() {
        let u64s = |ns: &[u64]| ns.iter().flat_map(|n| n.to_be_bytes()).collect::<Vec<u8>>();
        let mut bitmap_past_end = u64s(&[u64::MAX - 7]);
        put_string(&mut bitmap_past_end, &[1, 0]);
        let mut bitmap_at_zero = u64s(&[0]);
        put_string(&mut bitmap_at_zero, &[3]);
        let mut negative = u64s(&[1]);
        put_string(&mut negative, &[0x80]);
        let mut too_long = u64s(&[1]);
        put_string(&mut too_long, &[1; MAX_BITMAP_BYTES + 1]);
        let mut key_id_nul = Vec::new();
        put_string(&mut key_id_nul, b"a\0b");
        let mut critical = Vec::new();
        put_string(&mut critical, b"x@example.com");
        critical.push(1);
        put_string(&mut critical, b"");
        let cases: Vec<(&str, Vec<u8>, KrlError)> = vec![
            (
                "unknown section",
                raw_section(6, b""),
                KrlError::UnknownSection(6),
            ),
            (
                "unknown cert section",
                raw_cert_entry(0x24, b""),
                KrlError::UnknownCertSection(0x24),
            ),
            (
                "serial 0",
                raw_cert_entry(CERT_SERIAL_LIST, &u64s(&[4, 0])),
                KrlError::BadSerial { lo: 0, hi: 0 },
            ),
            (
                "range from 0",
                raw_cert_entry(CERT_SERIAL_RANGE, &u64s(&[0, 4])),
                KrlError::BadSerial { lo: 0, hi: 4 },
            ),
            (
                "empty range",
                raw_cert_entry(CERT_SERIAL_RANGE, &u64s(&[5, 4])),
                KrlError::BadSerial { lo: 5, hi: 4 },
            ),
            (
                "range, trailing",
                raw_cert_entry(CERT_SERIAL_RANGE, &u64s(&[1, 4, 5])),
                KrlError::Trailing("certificate"),
            ),
            (
                "half a serial",
                raw_cert_entry(CERT_SERIAL_LIST, &[0, 0, 0, 1]),
                KrlError::Truncated("a serial list"),
            ),
            (
                "bitmap wraps",
                raw_cert_entry(CERT_SERIAL_BITMAP, &bitmap_past_end),
                KrlError::BadBitmap("it runs past serial 2^64-1"),
            ),
            (
                "bitmap serial 0",
                raw_cert_entry(CERT_SERIAL_BITMAP, &bitmap_at_zero),
                KrlError::BadSerial { lo: 0, hi: 0 },
            ),
            (
                "negative bitmap",
                raw_cert_entry(CERT_SERIAL_BITMAP, &negative),
                KrlError::BadBitmap("negative"),
            ),
            (
                "long bitmap",
                raw_cert_entry(CERT_SERIAL_BITMAP, &too_long),
                KrlError::BadBitmap("longer than 16384 bits"),
            ),
            (
                "NUL in key id",
                raw_cert_entry(CERT_KEY_ID, &key_id_nul),
                KrlError::Nul("key ID"),
            ),
            (
                "bad CA key",
                {
                    let mut s = Vec::new();
                    put_string(&mut s, b"\0\0\0\x0bssh-ed25519");
                    put_string(&mut s, b"");
                    raw_section(SECTION_CERTIFICATES, &s)
                },
                KrlError::BadCaKey(ParseError::MalformedBlob {
                    algorithm: "ssh-ed25519".into(),
                    reason: "truncated key fields",
                }),
            ),
            (
                "short SHA256",
                raw_section(SECTION_FINGERPRINT_SHA256, b"\0\0\0\x01x"),
                KrlError::HashLength {
                    kind: "SHA256",
                    len: 1,
                    want: 32,
                },
            ),
            (
                "critical extension",
                raw_section(SECTION_EXTENSION, &critical),
                KrlError::CriticalExtension("x@example.com".into()),
            ),
            (
                "critical cert extension",
                raw_cert_entry(CERT_EXTENSION, &critical),
                KrlError::CriticalExtension("x@example.com".into()),
            ),
            (
                "section overruns",
                {
                    let mut b = krl(Vec::new()).to_bytes();
                    b.extend_from_slice(&[SECTION_EXPLICIT_KEY, 0xff, 0xff, 0xff, 0xff, 1]);
                    b
                },
                KrlError::Truncated("a section"),
            ),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(Krl::parse(&bytes), Err(want), "{name}");
        }
    }

    #[test]
    fn tolerates_what_openssh_tolerates() {
        // A non-critical extension, a signature (unverified), a key ID with
        // one trailing NUL, a bitmap with a leading zero byte and bitmap
        // bits up to exactly serial 2^64-1.
        let mut ext = Vec::new();
        put_string(&mut ext, b"x@example.com");
        ext.push(0);
        put_string(&mut ext, b"value");
        let mut bytes = raw_section(SECTION_EXTENSION, &ext);
        bytes.push(SECTION_SIGNATURE);
        put_string(&mut bytes, ed(1).blob());
        put_string(&mut bytes, b"sig");
        let parsed = Krl::parse(&bytes).expect("parses");
        assert_eq!(parsed.to_bytes(), bytes);
        let mut id = Vec::new();
        put_string(&mut id, b"key id\0");
        let k = Krl::parse(&raw_cert_entry(CERT_KEY_ID, &id)).expect("parses");
        assert!(k.is_revoked(&ed_cert(1, &ed(2))));
        let mut bitmap = (u64::MAX - 8).to_be_bytes().to_vec();
        put_string(&mut bitmap, &[0, 1, 0]);
        let k = Krl::parse(&raw_cert_entry(CERT_SERIAL_BITMAP, &bitmap)).expect("parses");
        let want = CertEntry::Bitmap {
            offset: u64::MAX - 8,
            bits: vec![1, 0],
        };
        assert!(matches!(&k.sections[0], Section::Certificates(c) if c.entries == [want]));
    }

    fn any_extension() -> impl Strategy<Value = Extension> {
        (
            "[a-z@.]{0,12}",
            proptest::collection::vec(any::<u8>(), 0..8),
        )
            .prop_map(|(name, value)| Extension {
                name: name.into_bytes(),
                critical: false,
                value,
            })
    }

    fn any_cert_entry() -> impl Strategy<Value = CertEntry> {
        prop_oneof![
            proptest::collection::vec(1..=u64::MAX, 0..4).prop_map(CertEntry::Serials),
            (1..=u64::MAX, 0..=u64::MAX).prop_map(|(a, b)| {
                let (lo, hi) = if a <= b || b == 0 {
                    (a, a.max(b))
                } else {
                    (b, a)
                };
                CertEntry::Range { lo, hi }
            }),
            (
                1..u64::MAX / 2,
                proptest::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(offset, bits)| {
                    let start = bits.iter().position(|b| *b != 0).unwrap_or(bits.len());
                    CertEntry::Bitmap {
                        offset,
                        bits: bits[start..].to_vec(),
                    }
                }),
            proptest::collection::vec("[ -~]{0,10}", 0..3).prop_map(|ids| CertEntry::KeyIds(
                ids.into_iter().map(String::into_bytes).collect()
            )),
            any_extension().prop_map(CertEntry::Extension),
        ]
    }

    fn any_section() -> impl Strategy<Value = Section> {
        prop_oneof![
            (
                proptest::option::of((0u8..4).prop_map(|n| ed(n).blob().to_vec())),
                proptest::collection::vec(any::<u8>(), 0..4),
                proptest::collection::vec(any_cert_entry(), 0..4),
            )
                .prop_map(|(ca_key, reserved, entries)| Section::Certificates(
                    CertSection {
                        ca_key,
                        reserved,
                        entries
                    }
                )),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..3)
                .prop_map(Section::ExplicitKeys),
            proptest::collection::vec(any::<[u8; 20]>(), 0..3).prop_map(Section::Sha1),
            proptest::collection::vec(any::<[u8; 32]>(), 0..3).prop_map(Section::Sha256),
            (
                proptest::collection::vec(any::<u8>(), 0..20),
                proptest::collection::vec(any::<u8>(), 0..20)
            )
                .prop_map(|(key, signature)| Section::Signature { key, signature }),
            any_extension().prop_map(Section::Extension),
        ]
    }

    proptest! {
        #[test]
        fn round_trips(
            header in (any::<u64>(), any::<u64>(), any::<u64>()),
            reserved in proptest::collection::vec(any::<u8>(), 0..8),
            comment in "[ -~]{0,20}",
            sections in proptest::collection::vec(any_section(), 0..6),
        ) {
            let k = Krl {
                version: header.0,
                generated_date: header.1,
                flags: header.2,
                reserved,
                comment: comment.into_bytes(),
                sections,
            };
            let bytes = k.to_bytes();
            prop_assert_eq!(Krl::parse(&bytes), Ok(k));
        }

        #[test]
        fn hostile_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut bytes = krl(Vec::new()).to_bytes();
            bytes.extend_from_slice(&tail);
            if let Ok(k) = Krl::parse(&bytes) {
                // Whatever parses encodes back to a KRL that parses the same.
                prop_assert_eq!(Krl::parse(&k.to_bytes()), Ok(k.clone()));
                let _ = k.is_revoked(&ed_cert(1, &ed(2)));
            }
        }
    }
}
