//! Running a session's program (the user's shell, with `-c COMMAND` for
//! exec) and moving its bytes: over pipes (stdout as data, stderr as
//! extended data) or over a PTY, then reporting how it ended
//! (exit-status, or exit-signal for a program killed by a signal) and
//! closing the channel.
//!
//! Design choice: each program is one task owning its channel. The channel
//! is drained into stdin through warren-core's bounded pump queue, so a
//! program that does not read its input never stalls the connection's
//! other channels; output goes through the channel's flow-controlled
//! writer, so a client that reads slowly holds back only this program.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use russh::server::{Handle, Msg};
use russh::{Channel, ChannelId, ChannelWriteHalf, Sig};
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};
use warren_core::forward::pump::{Counters, download};

/// What to run and how.
#[derive(Debug, Clone)]
pub struct Program {
    pub shell: PathBuf,
    /// `None` runs an interactive login shell.
    pub command: Option<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// Run `shell` with exactly these arguments instead of through the
    /// shell (warren's own sync helper, see `session.rs`).
    pub direct_args: Option<Vec<String>>,
}

impl Program {
    fn argv0(&self) -> String {
        if self.direct_args.is_some() {
            return self.shell.display().to_string();
        }
        let base = self
            .shell
            .file_name()
            .map_or_else(|| "sh".into(), |n| n.to_string_lossy().into_owned());
        if self.command.is_none() {
            format!("-{base}")
        } else {
            base
        }
    }

    fn args(&self) -> Vec<String> {
        if let Some(args) = &self.direct_args {
            return args.clone();
        }
        match &self.command {
            Some(c) => vec!["-c".into(), c.clone()],
            None => Vec::new(),
        }
    }
}

/// Terminal parameters of a pty-req.
#[derive(Debug, Clone)]
pub struct PtySpec {
    pub term: String,
    pub cols: u32,
    pub rows: u32,
    pub px_width: u32,
    pub px_height: u32,
    pub modes: Vec<(russh::Pty, u32)>,
}

/// A started program, as the handler needs it for signals and resizes.
#[derive(Debug)]
pub struct Running {
    pub pid: Option<u32>,
    /// The PTY master, for window changes.
    pub pty: Option<OwnedFd>,
}

impl Running {
    /// Delivers a client's `signal` request to the program's process group.
    pub fn signal(&self, sig: &Sig) {
        let (Some(pid), Some(signal)) = (self.pid, to_signal(sig)) else {
            return;
        };
        if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process_group(pid, signal);
        }
    }

    pub fn resize(&self, cols: u32, rows: u32, px_width: u32, px_height: u32) {
        if let Some(fd) = &self.pty {
            let _ =
                rustix::termios::tcsetwinsize(fd.as_fd(), winsize(cols, rows, px_width, px_height));
        }
    }
}

fn winsize(cols: u32, rows: u32, px_width: u32, px_height: u32) -> rustix::termios::Winsize {
    let c = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
    rustix::termios::Winsize {
        ws_row: c(rows),
        ws_col: c(cols),
        ws_xpixel: c(px_width),
        ws_ypixel: c(px_height),
    }
}

/// Starts `program` with pipes and a task that serves it on `channel`.
pub fn spawn_exec(
    program: &Program,
    channel: Channel<Msg>,
    handle: Handle,
    token: CancellationToken,
) -> std::io::Result<Running> {
    let mut cmd = tokio::process::Command::new(&program.shell);
    cmd.arg0(program.argv0())
        .args(program.args())
        .env_clear()
        .envs(program.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&program.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let id = channel.id();
    let (read, write) = channel.split();
    let write = Arc::new(write);
    tokio::spawn(async move {
        let input = tokio::spawn(async move {
            match stdin {
                Some(stdin) => {
                    download(
                        read,
                        stdin,
                        warren_core::forward::SERVER_QUEUE_LIMIT,
                        &Counters::default(),
                    )
                    .await
                    .1
                }
                None => false,
            }
        });
        let out = tokio::spawn(copy_out(stdout, write.clone(), None));
        let err = tokio::spawn(copy_out(stderr, write.clone(), Some(1)));
        let status = tokio::select! {
            status = async {
                let _ = out.await;
                let _ = err.await;
                child.wait().await
            } => status.ok(),
            () = token.cancelled() => None,
        };
        input.abort();
        if status.is_none() {
            kill_group(pid);
        }
        finish(&handle, id, status).await;
    });
    Ok(Running { pid, pty: None })
}

/// Starts `program` on a new PTY and a task that serves it on `channel`.
pub fn spawn_pty(
    program: &Program,
    spec: &PtySpec,
    channel: Channel<Msg>,
    handle: Handle,
    token: CancellationToken,
) -> std::io::Result<Running> {
    let (pty, pts) = pty_process::open().map_err(std::io::Error::other)?;
    pty.resize(pty_process::Size::new_with_pixel(
        u16::try_from(spec.rows).unwrap_or(u16::MAX),
        u16::try_from(spec.cols).unwrap_or(u16::MAX),
        u16::try_from(spec.px_width).unwrap_or(u16::MAX),
        u16::try_from(spec.px_height).unwrap_or(u16::MAX),
    ))
    .map_err(std::io::Error::other)?;
    apply_modes(&pts, &spec.modes);
    let cmd = pty_process::Command::new(&program.shell)
        .arg0(program.argv0())
        .args(program.args())
        .env_clear()
        .envs(program.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&program.cwd)
        .kill_on_drop(true);
    let mut child = cmd.spawn(pts).map_err(std::io::Error::other)?;
    let pid = child.id();
    let master = pty.as_fd().try_clone_to_owned()?;
    let (pty_read, pty_write) = pty.into_split();
    let id = channel.id();
    let (read, write) = channel.split();
    let write = Arc::new(write);
    tokio::spawn(async move {
        let input = tokio::spawn(async move {
            download(
                read,
                pty_write,
                warren_core::forward::SERVER_QUEUE_LIMIT,
                &Counters::default(),
            )
            .await
        });
        let mut out = tokio::spawn(copy_out(Some(pty_read), write.clone(), None));
        let status = tokio::select! {
            status = child.wait() => status.ok(),
            () = token.cancelled() => None,
        };
        // Output the program left in the terminal still goes out; a
        // background job holding the terminal open does not hold the
        // session.
        if tokio::time::timeout(Duration::from_secs(2), &mut out)
            .await
            .is_err()
        {
            out.abort();
        }
        input.abort();
        if status.is_none() {
            kill_group(pid);
        }
        finish(&handle, id, status).await;
    });
    Ok(Running {
        pid,
        pty: Some(master),
    })
}

/// Copies program output to the channel (stderr as extended data 1); a
/// PTY's EIO at the end counts as EOF.
async fn copy_out<R: AsyncRead + Unpin>(
    reader: Option<R>,
    channel: Arc<ChannelWriteHalf<Msg>>,
    ext: Option<u32>,
) {
    let Some(mut reader) = reader else {
        return;
    };
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        buf.reserve(64 * 1024);
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let chunk = buf.split().freeze();
                let sent = match ext {
                    None => channel.data_bytes(chunk).await,
                    Some(ext) => channel.extended_data_bytes(ext, chunk).await,
                };
                if sent.is_err() {
                    return;
                }
            }
        }
    }
}

/// exit-status or exit-signal, then EOF and close.
async fn finish(handle: &Handle, id: ChannelId, status: Option<ExitStatus>) {
    match status {
        Some(s) if s.code().is_some() => {
            let code = s.code().unwrap_or(255) as u32;
            debug!(channel = %id, code, "program exited");
            let _ = handle.exit_status_request(id, code).await;
        }
        Some(s) => {
            let signal = s.signal().unwrap_or(rustix::process::Signal::KILL.as_raw());
            info!(channel = %id, signal, "program killed by a signal");
            let _ = handle
                .exit_signal_request(
                    id,
                    from_signal(signal),
                    s.core_dumped(),
                    String::new(),
                    String::new(),
                )
                .await;
        }
        None => {}
    }
    let _ = handle.eof(id).await;
    let _ = handle.close(id).await;
}

fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::HUP);
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// Applies the client's terminal modes (RFC 4254 8) that Linux has.
fn apply_modes(pts: &pty_process::Pts, modes: &[(russh::Pty, u32)]) {
    use rustix::termios::{self, OptionalActions};
    let Ok(mut t) = termios::tcgetattr(pts) else {
        return;
    };
    for &(mode, value) in modes {
        apply_mode(&mut t, mode, value);
    }
    let _ = termios::tcsetattr(pts, OptionalActions::Now, &t);
}

fn apply_mode(t: &mut rustix::termios::Termios, mode: russh::Pty, value: u32) {
    use russh::Pty as P;
    use rustix::termios::{
        InputModes as I, LocalModes as L, OutputModes as O, SpecialCodeIndex as S,
    };
    let on = value != 0;
    let cc = |t: &mut rustix::termios::Termios, i: S| t.special_codes[i] = value as u8;
    match mode {
        P::VINTR => cc(t, S::VINTR),
        P::VQUIT => cc(t, S::VQUIT),
        P::VERASE => cc(t, S::VERASE),
        P::VKILL => cc(t, S::VKILL),
        P::VEOF => cc(t, S::VEOF),
        P::VSUSP => cc(t, S::VSUSP),
        P::ICRNL => t.input_modes.set(I::ICRNL, on),
        P::IXON => t.input_modes.set(I::IXON, on),
        P::IUTF8 => t.input_modes.set(I::IUTF8, on),
        P::ISIG => t.local_modes.set(L::ISIG, on),
        P::ICANON => t.local_modes.set(L::ICANON, on),
        P::ECHO => t.local_modes.set(L::ECHO, on),
        P::ECHOE => t.local_modes.set(L::ECHOE, on),
        P::ECHOK => t.local_modes.set(L::ECHOK, on),
        P::OPOST => t.output_modes.set(O::OPOST, on),
        P::ONLCR => t.output_modes.set(O::ONLCR, on),
        _ => {}
    }
}

/// RFC 4254 signal names onto this system's signals.
fn to_signal(sig: &Sig) -> Option<rustix::process::Signal> {
    use rustix::process::Signal as S;
    Some(match sig {
        Sig::ABRT => S::ABORT,
        Sig::ALRM => S::ALARM,
        Sig::FPE => S::FPE,
        Sig::HUP => S::HUP,
        Sig::ILL => S::ILL,
        Sig::INT => S::INT,
        Sig::KILL => S::KILL,
        Sig::PIPE => S::PIPE,
        Sig::QUIT => S::QUIT,
        Sig::SEGV => S::SEGV,
        Sig::TERM => S::TERM,
        Sig::USR1 => S::USR1,
        Sig::Custom(name) => match name.as_str() {
            "USR2" => S::USR2,
            "CONT" => S::CONT,
            "STOP" => S::STOP,
            "TSTP" => S::TSTP,
            "WINCH" => S::WINCH,
            _ => return None,
        },
    })
}

/// A raw signal number as RFC 4254 names it.
fn from_signal(raw: i32) -> Sig {
    use rustix::process::Signal as S;
    let table = [
        (S::ABORT, Sig::ABRT),
        (S::ALARM, Sig::ALRM),
        (S::FPE, Sig::FPE),
        (S::HUP, Sig::HUP),
        (S::ILL, Sig::ILL),
        (S::INT, Sig::INT),
        (S::KILL, Sig::KILL),
        (S::PIPE, Sig::PIPE),
        (S::QUIT, Sig::QUIT),
        (S::SEGV, Sig::SEGV),
        (S::TERM, Sig::TERM),
        (S::USR1, Sig::USR1),
    ];
    table
        .into_iter()
        .find(|(s, _)| s.as_raw() == raw)
        .map_or_else(|| Sig::Custom(format!("SIG{raw}")), |(_, sig)| sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_round_trip() {
        for sig in [
            Sig::HUP,
            Sig::INT,
            Sig::KILL,
            Sig::TERM,
            Sig::USR1,
            Sig::PIPE,
        ] {
            let s = to_signal(&sig).unwrap();
            assert_eq!(format!("{:?}", from_signal(s.as_raw())), format!("{sig:?}"));
        }
        assert_eq!(
            to_signal(&Sig::Custom("USR2".into())),
            Some(rustix::process::Signal::USR2)
        );
        assert_eq!(to_signal(&Sig::Custom("NOPE".into())), None);
    }
}
