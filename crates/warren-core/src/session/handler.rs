//! russh's client callbacks. They never block the connection: host key
//! verification (which may prompt) runs on the blocking pool.

use std::sync::Arc;

use russh::keys::PublicKeyOrCertificate;

use super::error::SessionError;
use super::hostkey::HostKeyVerifier;

/// The per-connection handler russh calls into.
pub struct ClientHandler {
    verifier: Arc<HostKeyVerifier>,
}

impl ClientHandler {
    pub(crate) fn new(verifier: HostKeyVerifier) -> Self {
        ClientHandler {
            verifier: Arc::new(verifier),
        }
    }
}

impl russh::client::Handler for ClientHandler {
    type Error = SessionError;

    async fn kex_done(
        &mut self,
        _shared_secret: Option<&[u8]>,
        names: &russh::Names,
        _session: &mut russh::client::Session,
    ) -> Result<(), SessionError> {
        tracing::info!(
            "kex: {}, host key: {}, cipher: {}, MAC: {}",
            names.kex.as_ref(),
            names.key.as_str(),
            names.cipher.as_ref(),
            names.client_mac.as_ref(),
        );
        Ok(())
    }

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, SessionError> {
        let verifier = self.verifier.clone();
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => PublicKeyOrCertificate::PublicKey {
                key: key.clone(),
                hash_alg: None,
            },
            PublicKeyOrCertificate::Certificate(c) => {
                PublicKeyOrCertificate::Certificate(c.clone())
            }
        };
        tokio::task::spawn_blocking(move || verifier.verify(&key))
            .await
            .map_err(|e| SessionError::Io(std::io::Error::other(e)))??;
        Ok(true)
    }
}
