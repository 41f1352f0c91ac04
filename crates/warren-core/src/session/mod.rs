//! One SSH connection: dial (TCP), handshake, host key check, login.
//!
//! `connect` returns a [`Session`] that is authenticated and ready for
//! channels; every failure on the way is a [`SessionError`] that names what
//! failed and says whether retrying can help.

mod auth;
mod dial;
pub mod error;
pub mod handler;
mod hostkey;
pub mod options;

use std::sync::Arc;

use russh::client::Handle;
use tracing::info;

pub use error::{AuthError, ConnectCause, HostKeyError, SessionError};
pub use handler::ClientHandler;
pub use options::{
    AddressFamily, AuthOptions, ConnectOptions, HostKeyOptions, StrictHostKeyChecking,
};

use crate::prompt::Prompter;

/// An authenticated connection.
pub struct Session {
    handle: Handle<ClientHandler>,
}

impl Session {
    pub fn handle(&self) -> &Handle<ClientHandler> {
        &self.handle
    }

    /// Closes the connection politely.
    pub async fn close(&self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// russh's client configuration for `opts`: 65535-byte packets, a large
/// window, NODELAY, keepalives from ServerAliveInterval.
pub fn client_config(opts: &ConnectOptions) -> Result<russh::client::Config, SessionError> {
    Ok(russh::client::Config {
        window_size: opts.window_size,
        maximum_packet_size: 65535,
        preferred: opts.algorithms.to_preferred()?,
        nodelay: true,
        keepalive_interval: opts.server_alive_interval,
        keepalive_max: opts.server_alive_count_max as usize,
        inactivity_timeout: None,
        ..Default::default()
    })
}

/// Dials, verifies and logs in.
pub async fn connect(
    opts: &ConnectOptions,
    prompter: Arc<dyn Prompter>,
) -> Result<Session, SessionError> {
    let mut config = client_config(opts)?;
    let stream = dial::dial(opts).await?;
    let peer_ip = stream.peer_addr().ok().map(|a| a.ip());
    let verifier = hostkey::HostKeyVerifier::new(opts, peer_ip, prompter.clone());
    verifier.tune_preferred(&mut config.preferred);
    log_offer(&config.preferred);
    let handshake =
        russh::client::connect_stream(Arc::new(config), stream, ClientHandler::new(verifier));
    let mut handle = match opts.connect_timeout {
        // Like ssh, ConnectTimeout also bounds the banner exchange and kex.
        Some(t) => tokio::time::timeout(t, handshake)
            .await
            .map_err(|_| SessionError::Connect {
                host: opts.hostname.clone(),
                port: opts.port,
                cause: ConnectCause::BannerTimeout,
            })?,
        None => handshake.await,
    }
    .map_err(|e| handshake_error(e, opts))?;
    info!(
        "Authenticating to {}:{} as '{}'",
        opts.hostname, opts.port, opts.user
    );
    auth::authenticate(
        &mut handle,
        &opts.auth,
        &opts.user,
        &opts.hostname,
        prompter.as_ref(),
    )
    .await?;
    info!(
        "Authenticated to {} ([{}]:{}).",
        opts.hostname, opts.hostname, opts.port
    );
    Ok(Session { handle })
}

/// -v: what we offer (russh does not expose the negotiated names; -vvv
/// shows them in its own trace).
fn log_offer(p: &russh::Preferred) {
    let names = |v: Vec<&str>| v.join(",");
    info!(
        "kex offer: {}",
        names(p.kex.iter().map(|n| n.as_ref()).collect())
    );
    info!(
        "host key algorithms offer: {}",
        names(p.key.iter().map(|a| a.as_str()).collect())
    );
    info!(
        "cipher offer: {}",
        names(p.cipher.iter().map(|n| n.as_ref()).collect())
    );
    info!(
        "MAC offer: {}",
        names(p.mac.iter().map(|n| n.as_ref()).collect())
    );
}

fn handshake_error(e: SessionError, opts: &ConnectOptions) -> SessionError {
    match e {
        SessionError::Russh(russh::Error::NoCommonAlgo { kind, ours, theirs }) => {
            SessionError::NoCommonAlgorithm {
                host: opts.hostname.clone(),
                port: opts.port,
                kind: format!("{kind:?}").to_lowercase(),
                ours: ours.join(","),
                theirs: theirs.join(","),
            }
        }
        SessionError::Russh(source) => SessionError::Protocol {
            host: opts.hostname.clone(),
            port: opts.port,
            source,
        },
        other => other,
    }
}
