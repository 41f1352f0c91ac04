//! The forwards configured for the destination, tried on the logged-in
//! session without listening here: each LocalForward target is opened as
//! a direct channel (the server connects to it, as it would for a
//! forwarded connection), each RemoteForward is requested and cancelled.
//!
//! Design choice: nothing is bound on this machine and nothing stays
//! bound on the server; a local listen port that is taken is `warren
//! ssh`'s to report, the server's side is what only a session can show.

use std::time::{Duration, Instant};

use russh::ChannelOpenFailure;
use warren_wire::escape_str;

use super::{Check, shell_quote};
use crate::forward::{Endpoint, ForwardSpec};
use crate::session::Session;

/// One check per LocalForward and RemoteForward (DynamicForward has no
/// server side to try).
pub async fn checks(
    name: &str,
    destination: &str,
    session: &Session,
    forwards: &[ForwardSpec],
    wait: Duration,
) -> Vec<Check> {
    let mut out = Vec::new();
    for spec in forwards {
        let start = Instant::now();
        let check_name = format!("{name} forward {}", escape_str(&spec.to_string()));
        let check = match spec {
            ForwardSpec::Local { connect, .. } => {
                local(check_name, destination, session, connect, wait).await
            }
            ForwardSpec::Remote { listen, .. } => remote(check_name, session, listen, wait).await,
            ForwardSpec::Dynamic { .. } => continue,
        };
        out.push(check.since(start));
    }
    out
}

/// Opens a channel to the LocalForward's target, as a forwarded
/// connection would.
async fn local(
    check_name: String,
    destination: &str,
    session: &Session,
    connect: &Endpoint,
    wait: Duration,
) -> Check {
    let handle = session.handle();
    let target = escape_str(&connect.to_string()).into_owned();
    let opened = match connect {
        Endpoint::Tcp { host, port } => {
            let host = host.as_deref().unwrap_or("localhost");
            tokio::time::timeout(
                wait,
                handle.channel_open_direct_tcpip(host, u32::from(*port), "127.0.0.1", 0),
            )
            .await
        }
        Endpoint::Unix(path) => {
            tokio::time::timeout(
                wait,
                handle.channel_open_direct_streamlocal(path.to_string_lossy()),
            )
            .await
        }
    };
    let probe = match connect {
        Endpoint::Tcp { host, port } => format!(
            "nc -zv {} {port}",
            shell_quote(host.as_deref().unwrap_or("localhost"))
        ),
        Endpoint::Unix(path) => format!("ls -l {}", shell_quote(&path.to_string_lossy())),
    };
    let check_from_server = format!(
        "warren ssh {} {}",
        shell_quote(destination),
        shell_quote(&probe)
    );
    match opened {
        Ok(Ok(channel)) => {
            let _ = channel.close().await;
            Check::ok(check_name, format!("the server reaches {target}"))
        }
        Ok(Err(russh::Error::ChannelOpenFailure(ChannelOpenFailure::ConnectFailed))) => {
            Check::fail(
                check_name,
                format!(
                    "the server could not connect to {target}: nothing listens there, or it is not reachable from the server"
                ),
            )
            .fix(format!(
                "start the service on {target}, or correct the forward's target (names and addresses are the server's view); check with: {check_from_server}"
            ))
        }
        Ok(Err(russh::Error::ChannelOpenFailure(
            ChannelOpenFailure::AdministrativelyProhibited,
        ))) => Check::fail(
            check_name,
            format!("the server refuses to forward to {target}: administratively prohibited"),
        )
        .fix("on the server, allow it in sshd_config: AllowTcpForwarding yes (or local), and PermitOpen naming this target if PermitOpen is set"),
        Ok(Err(e)) => Check::fail(
            check_name,
            format!("the server did not open a channel to {target}: {}", escape_str(&e.to_string())),
        ),
        Err(_) => Check::fail(
            check_name,
            format!("no answer within {}s opening a channel to {target}", wait.as_secs()),
        )
        .fix(format!("the target may drop packets; check with: {check_from_server}")),
    }
}

/// Asks the server to listen for a RemoteForward, then cancels it.
async fn remote(check_name: String, session: &Session, listen: &Endpoint, wait: Duration) -> Check {
    let shown = escape_str(&listen.to_string()).into_owned();
    let asked = match listen {
        Endpoint::Tcp { host, port } => remote_tcp(session, host.as_deref(), *port, wait).await,
        Endpoint::Unix(path) => remote_unix(session, &path.to_string_lossy(), wait).await,
    };
    match asked {
        Ok(Ok(())) => Check::ok(
            check_name,
            format!("the server can listen on {shown} (requested and cancelled)"),
        ),
        Ok(Err(russh::Error::RequestDenied)) => Check::fail(
            check_name,
            format!("the server refused to listen on {shown}"),
        )
        .fix(refused_fix(listen)),
        Ok(Err(e)) => Check::fail(
            check_name,
            format!("the listen request failed: {}", escape_str(&e.to_string())),
        ),
        Err(_) => Check::fail(
            check_name,
            format!("no answer within {}s to the listen request", wait.as_secs()),
        ),
    }
}

/// Why a listen may be refused, for a TCP port or a Unix socket.
fn refused_fix(listen: &Endpoint) -> String {
    match listen {
        Endpoint::Tcp { port, .. } => format!(
            "the port may be taken on the server (ss -ltn there), below 1024 for a user that is not root, \
             or forbidden by sshd_config (AllowTcpForwarding yes or remote, PermitListen {port})"
        ),
        Endpoint::Unix(path) => format!(
            "the socket {} may exist already on the server (remove it, or set StreamLocalBindUnlink yes in \
             its sshd_config), its directory may be missing or not writable by you, or sshd_config forbids it \
             (AllowStreamLocalForwarding yes or remote)",
            escape_str(&shell_quote(&path.to_string_lossy()))
        ),
    }
}

/// `tcpip-forward` and its cancel, as ssh asks without GatewayPorts.
async fn remote_tcp(
    session: &Session,
    host: Option<&str>,
    port: u16,
    wait: Duration,
) -> Result<Result<(), russh::Error>, tokio::time::error::Elapsed> {
    let address = host.unwrap_or("localhost");
    let handle = session.handle();
    let bound = tokio::time::timeout(wait, handle.tcpip_forward(address, u32::from(port))).await?;
    Ok(match bound {
        Ok(bound) => {
            let cancel = if port == 0 { bound } else { u32::from(port) };
            let _ = tokio::time::timeout(wait, handle.cancel_tcpip_forward(address, cancel)).await;
            Ok(())
        }
        Err(e) => Err(e),
    })
}

/// `streamlocal-forward@openssh.com` and its cancel. sshd leaves the
/// socket file behind when a listener is cancelled, and a file there
/// makes the next real forward fail: once cancelled, it is removed.
async fn remote_unix(
    session: &Session,
    path: &str,
    wait: Duration,
) -> Result<Result<(), russh::Error>, tokio::time::error::Elapsed> {
    let handle = session.handle();
    if let Err(e) = tokio::time::timeout(wait, handle.streamlocal_forward(path)).await? {
        return Ok(Err(e));
    }
    let _ = tokio::time::timeout(wait, handle.cancel_streamlocal_forward(path)).await;
    // Only a socket: whatever else is there is not ours.
    let quoted = shell_quote(path);
    let remove = format!(
        "sh -c {}",
        shell_quote(&format!("test -S {quoted} && rm -f -- {quoted}"))
    );
    let _ = tokio::time::timeout(wait, super::login::run_command(session, &remove)).await;
    Ok(Ok(()))
}
