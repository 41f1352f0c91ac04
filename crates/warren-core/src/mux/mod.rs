//! Connection sharing (ControlMaster / ControlPath / ControlPersist) in
//! OpenSSH's own protocol, so warren and OpenSSH's `ssh` can use each
//! other's masters.
//!
//! A master ([`master`]) listens on a unix socket (0600, refusing other
//! users) next to its SSH connection; a client ([`client`]) connects,
//! passes its stdin/stdout/stderr and has the master run a session for it
//! over the existing connection: no TCP handshake, no key exchange, no
//! login. Forwards are added and removed the same way (`-O forward`,
//! `-O cancel`). A client may instead put its connection in proxy mode
//! ([`proxy`], `ssh -O proxy`) and speak the SSH connection protocol
//! through it.

pub mod client;
pub mod fdpass;
pub mod master;
pub mod passed;
pub mod proto;
pub mod proxy;

use std::path::{Path, PathBuf};

use crate::forward::{Endpoint, ForwardSpec};
use proto::{FWD_DYNAMIC, FWD_LOCAL, FWD_REMOTE, MuxForward, PORT_STREAMLOCAL};

/// Why talking to a master failed.
#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    #[error("Control socket connect({path})")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "control socket {path} belongs to uid {owner}, not to you (uid {me}); refusing to use it"
    )]
    NotOwner { path: PathBuf, owner: u32, me: u32 },
    #[error("ControlSocket {path} already exists, disabling multiplexing")]
    Exists { path: PathBuf },
    #[error("cannot listen on control socket {path}")]
    Listen {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket {path}: path too long for a unix socket ({len} bytes, at most 107)")]
    PathTooLong { path: PathBuf, len: usize },
    #[error("the master refused: {0}")]
    Refused(String),
    #[error("the master failed: {0}")]
    Failed(String),
    #[error("unexpected reply from the master: {0}")]
    Protocol(String),
    #[error("multiplexing protocol version {0} is not supported (expected 4)")]
    Version(u32),
    #[error(transparent)]
    Malformed(#[from] proto::Malformed),
    #[error("control socket")]
    Io(#[from] std::io::Error),
}

impl MuxError {
    /// No master is listening there (no socket, or a stale one): the
    /// caller may connect directly (and become the master).
    pub fn no_master(&self) -> bool {
        matches!(
            self,
            MuxError::Connect { source, .. }
                if matches!(source.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused)
        )
    }
}

/// Longest path a unix socket address holds (sun_path less its NUL).
const MAX_SOCKET_PATH: usize = 107;

fn check_path(path: &Path) -> Result<(), MuxError> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(MuxError::PathTooLong {
            path: path.to_owned(),
            len,
        });
    }
    Ok(())
}

/// `spec` as the mux protocol carries it (as OpenSSH's client sends it).
pub fn to_mux(spec: &ForwardSpec) -> MuxForward {
    let listen = |e: &Endpoint| match e {
        Endpoint::Tcp { host: None, port } => (String::new(), u32::from(*port)),
        Endpoint::Tcp {
            host: Some(h),
            port,
        } => (h.clone(), u32::from(*port)),
        Endpoint::Unix(p) => (p.to_string_lossy().into_owned(), PORT_STREAMLOCAL),
    };
    let (kind, l, c) = match spec {
        ForwardSpec::Local { listen: l, connect } => (FWD_LOCAL, listen(l), listen(connect)),
        ForwardSpec::Dynamic { listen: l } => (FWD_DYNAMIC, listen(l), (String::new(), 0)),
        ForwardSpec::Remote { listen: l, connect } => (
            FWD_REMOTE,
            listen(l),
            connect.as_ref().map_or((String::new(), 0), listen),
        ),
    };
    MuxForward {
        kind,
        listen_host: l.0,
        listen_port: l.1,
        connect_host: c.0,
        connect_port: c.1,
    }
}

/// The forward a client asked for, or why it makes no sense.
pub fn from_mux(f: &MuxForward) -> Result<ForwardSpec, String> {
    let endpoint = |host: &str, port: u32, default_host: bool| -> Result<Endpoint, String> {
        if port == PORT_STREAMLOCAL {
            if host.is_empty() {
                return Err("empty socket path".into());
            }
            return Ok(Endpoint::Unix(PathBuf::from(host)));
        }
        let port = u16::try_from(port).map_err(|_| format!("invalid port {port}"))?;
        let host = match host {
            "" if default_host => None,
            "" => return Err("missing host".into()),
            h => Some(h.to_owned()),
        };
        Ok(Endpoint::Tcp { host, port })
    };
    match f.kind {
        FWD_LOCAL => Ok(ForwardSpec::Local {
            listen: endpoint(&f.listen_host, f.listen_port, true)?,
            connect: endpoint(&f.connect_host, f.connect_port, false)?,
        }),
        FWD_DYNAMIC => Ok(ForwardSpec::Dynamic {
            listen: endpoint(&f.listen_host, f.listen_port, true)?,
        }),
        FWD_REMOTE => Ok(ForwardSpec::Remote {
            listen: endpoint(&f.listen_host, f.listen_port, true)?,
            connect: if f.connect_host.is_empty() && f.connect_port == 0 {
                None
            } else {
                Some(endpoint(&f.connect_host, f.connect_port, false)?)
            },
        }),
        other => Err(format!("unknown forward type {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: Option<&str>, port: u16) -> Endpoint {
        Endpoint::Tcp {
            host: host.map(str::to_owned),
            port,
        }
    }

    #[test]
    fn forwards_round_trip_through_the_mux_form() {
        let specs = [
            ForwardSpec::Local {
                listen: tcp(None, 8080),
                connect: tcp(Some("db"), 5432),
            },
            ForwardSpec::Local {
                listen: tcp(Some("*"), 8080),
                connect: Endpoint::Unix("/run/db.sock".into()),
            },
            ForwardSpec::Dynamic {
                listen: tcp(Some("127.0.0.1"), 1080),
            },
            ForwardSpec::Remote {
                listen: tcp(None, 0),
                connect: Some(tcp(Some("localhost"), 3000)),
            },
            ForwardSpec::Remote {
                listen: Endpoint::Unix("/tmp/r.sock".into()),
                connect: None,
            },
        ];
        for spec in specs {
            assert_eq!(from_mux(&to_mux(&spec)), Ok(spec));
        }
    }

    #[test]
    fn nonsense_forwards_are_refused() {
        let mut f = to_mux(&ForwardSpec::Dynamic {
            listen: tcp(None, 1080),
        });
        f.listen_port = 70000;
        assert!(from_mux(&f).is_err());
        f.kind = 9;
        assert!(from_mux(&f).is_err());
    }

    #[test]
    fn long_paths_are_named() {
        let long = PathBuf::from(format!("/tmp/{}", "x".repeat(120)));
        let err = check_path(&long).unwrap_err();
        assert!(err.to_string().contains("too long"), "{err}");
    }
}
