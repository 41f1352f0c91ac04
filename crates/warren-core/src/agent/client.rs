//! A client for any ssh-agent (OpenSSH's or warren's): list, add with
//! constraints and comments, remove, lock and unlock.

use std::path::Path;

use bytes::BytesMut;
use russh::keys::ssh_encoding::Decode as _;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{Certificate, PublicKey};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::UnixStream;

use super::proto::{self, Constraints, Identity, ProtoError, Request, Response};
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("Could not open a connection to your authentication agent at {path}")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("agent connection failed")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Proto(#[from] ProtoError),
    #[error("the agent refused the request")]
    Refused,
    #[error("the agent gave an unexpected answer")]
    Unexpected,
}

impl AgentError {
    /// One line telling the user what to do, where there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            AgentError::Connect { .. } => {
                Some("is SSH_AUTH_SOCK right? start an agent with: eval $(warren agent -s)")
            }
            _ => None,
        }
    }
}

/// One identity as the agent lists it.
#[derive(Debug, Clone)]
pub struct ListedIdentity {
    pub blob: Vec<u8>,
    pub comment: String,
    /// The key (for a certificate, the certified key).
    pub key: KeyData,
    pub certificate: Option<Box<Certificate>>,
}

impl ListedIdentity {
    fn parse(blob: Vec<u8>, comment: String) -> Option<ListedIdentity> {
        // Certificates first: a certificate blob also decodes as an
        // opaque key of an unknown type.
        if let Ok(cert) = Certificate::from_bytes(&blob) {
            return Some(ListedIdentity {
                key: cert.public_key().clone(),
                certificate: Some(Box::new(cert)),
                blob,
                comment,
            });
        }
        let key = KeyData::decode(&mut blob.as_slice()).ok()?;
        Some(ListedIdentity {
            blob,
            comment,
            key,
            certificate: None,
        })
    }

    /// The `ssh-add -L` line: `TYPE BASE64 COMMENT`.
    pub fn public_line(&self) -> String {
        use base64ct::Encoding as _;
        let name = match &self.certificate {
            Some(c) => c.algorithm().to_certificate_type().to_string(),
            None => self.key.algorithm().as_str().to_owned(),
        };
        let b64 = base64ct::Base64::encode_string(&self.blob);
        if self.comment.is_empty() {
            format!("{name} {b64}")
        } else {
            format!("{name} {b64} {}", self.comment)
        }
    }

    /// The public key (for a certificate, the certified key).
    pub fn public_key(&self) -> PublicKey {
        PublicKey::new(self.key.clone(), self.comment.as_str())
    }
}

/// A connection to an agent.
pub struct AgentClient {
    stream: UnixStream,
    buf: BytesMut,
}

impl AgentClient {
    pub async fn connect(path: &Path) -> Result<AgentClient, AgentError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| AgentError::Connect {
                path: path.display().to_string(),
                source,
            })?;
        Ok(AgentClient {
            stream,
            buf: BytesMut::new(),
        })
    }

    async fn call(&mut self, request: &Request) -> Result<Response, AgentError> {
        let mut bytes = request.encode()?;
        let sent = self.stream.write_all(&bytes).await;
        zeroize::Zeroize::zeroize(&mut bytes);
        sent?;
        loop {
            if let Some(body) = proto::decode_frame(&mut self.buf)? {
                return Ok(Response::decode(&body)?);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(AgentError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the agent closed the connection",
                )));
            }
        }
    }

    async fn expect_success(&mut self, request: &Request) -> Result<(), AgentError> {
        match self.call(request).await? {
            Response::Success => Ok(()),
            Response::Failure => Err(AgentError::Refused),
            _ => Err(AgentError::Unexpected),
        }
    }

    /// The identities the agent holds, in its order.
    pub async fn list(&mut self) -> Result<Vec<ListedIdentity>, AgentError> {
        match self.call(&Request::RequestIdentities).await? {
            Response::Identities(ids) => Ok(ids
                .into_iter()
                .filter_map(|(b, c)| ListedIdentity::parse(b, c))
                .collect()),
            Response::Failure => Err(AgentError::Refused),
            _ => Err(AgentError::Unexpected),
        }
    }

    pub async fn add(
        &mut self,
        identity: Identity,
        comment: &str,
        constraints: Constraints,
    ) -> Result<(), AgentError> {
        let request = Request::Add {
            identity,
            comment: comment.to_owned(),
            constraints,
        };
        self.expect_success(&request).await
    }

    pub async fn remove(&mut self, blob: &[u8]) -> Result<(), AgentError> {
        self.expect_success(&Request::Remove {
            key_blob: blob.to_vec(),
        })
        .await
    }

    pub async fn remove_all(&mut self) -> Result<(), AgentError> {
        self.expect_success(&Request::RemoveAll).await
    }

    pub async fn lock(&mut self, pass: Secret) -> Result<(), AgentError> {
        self.expect_success(&Request::Lock(pass)).await
    }

    pub async fn unlock(&mut self, pass: Secret) -> Result<(), AgentError> {
        self.expect_success(&Request::Unlock(pass)).await
    }
}
