//! A session channel: exec, shell or subsystem, with stdin/stdout/stderr
//! pumped binary-safe, EOF passed both ways, the exit status (or signal)
//! returned, and for a PTY the raw terminal, window changes and escapes.
//!
//! Design choice: stdin is read in its own task and written to the
//! channel's write half, while this task drains the read half; neither side
//! can stall the other, and the channel's window gives backpressure.

use std::io::Write as _;
use std::os::fd::AsFd;
use std::sync::Arc;

use bytes::BytesMut;
use russh::ChannelMsg;
use russh::client::Handle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, info};

use crate::forward::Counters;
use crate::session::error::SessionError;
use crate::session::handler::ClientHandler;
use crate::terminal;

mod escape;

type WriteHalf = russh::ChannelWriteHalf<russh::client::Msg>;
pub use escape::{EscapeAction, EscapeFilter};

/// What to run on the session channel.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The command (joined as ssh joins it); `None` for a login shell.
    pub command: Option<String>,
    /// Run `command` as a subsystem name (`-s`).
    pub subsystem: bool,
    /// Request a PTY.
    pub pty: bool,
    pub term: String,
    /// Environment variables to send (SendEnv and SetEnv, in order).
    pub env: Vec<(String, String)>,
    /// `-n` / StdinNull: never read stdin.
    pub stdin_null: bool,
    /// The escape character, `None` for `EscapeChar none`.
    pub escape_char: Option<u8>,
    /// The session's forwards and their counters, for `~#`.
    pub forwards: Vec<(String, Arc<Counters>)>,
    /// Ask the server to forward the agent (auth-agent-req@openssh.com).
    pub forward_agent: bool,
}

/// How the remote side ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Status(u32),
    Signal {
        name: String,
        core_dumped: bool,
        message: String,
    },
    /// The channel closed with neither (or the user typed `~.`).
    Unknown,
}

impl Exit {
    /// The process exit code, as ssh computes it (255 without a status).
    pub fn code(&self) -> i32 {
        match self {
            Exit::Status(s) => (*s & 0xff) as i32,
            Exit::Signal { .. } | Exit::Unknown => 255,
        }
    }
}

/// Runs one session channel to completion.
pub async fn run(handle: &Handle<ClientHandler>, opts: &RunOptions) -> Result<Exit, SessionError> {
    let channel = handle.channel_open_session().await?;
    let stdin_fd = std::io::stdin();
    let tty = opts.pty && terminal::is_terminal(stdin_fd.as_fd());
    if opts.pty {
        let (cols, rows, px, py) = terminal::window_size(stdin_fd.as_fd());
        channel
            .request_pty(true, &opts.term, cols, rows, px, py, &[])
            .await?;
    }
    if opts.forward_agent {
        info!("Requesting authentication agent forwarding.");
        channel.agent_forward(false).await?;
    }
    for (name, value) in &opts.env {
        debug!(%name, "Sending env");
        channel
            .set_env(false, name.as_str(), value.as_str())
            .await?;
    }
    match (&opts.command, opts.subsystem) {
        (Some(cmd), true) => channel.request_subsystem(true, cmd.as_str()).await?,
        (Some(cmd), false) => {
            info!("Sending command: {cmd}");
            channel.exec(true, cmd.as_bytes()).await?
        }
        (None, _) => channel.request_shell(true).await?,
    }
    let raw = if tty {
        terminal::RawModeGuard::enter(stdin_fd.as_fd())
    } else {
        None
    };
    let (mut read, write) = channel.split();
    let write = Arc::new(write);
    // As ssh: escapes follow the PTY request (-tt too), not the local terminal.
    let escape = if opts.pty { opts.escape_char } else { None };
    let (quit_tx, mut quit_rx) = tokio::sync::mpsc::channel::<()>(1);
    let stdin_task = if opts.stdin_null {
        // -n: the remote sees end of input at once.
        write.eof().await?;
        None
    } else {
        Some(tokio::spawn(pump_stdin(
            write.clone(),
            escape,
            quit_tx,
            opts.forwards.clone(),
        )))
    };
    let resize_task = tty.then(|| tokio::spawn(forward_window_changes(write.clone())));
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let mut exit = Exit::Unknown;
    loop {
        let msg = tokio::select! {
            m = read.wait() => m,
            // `~.`; a closed sender (stdin done) is not a request to quit.
            Some(()) = quit_rx.recv() => break,
        };
        let Some(msg) = msg else { break };
        match msg {
            ChannelMsg::Data { data } => {
                stdout.write_all(&data).await?;
                stdout.flush().await?;
            }
            ChannelMsg::ExtendedData { data, ext: 1 } => {
                stderr.write_all(&data).await?;
                stderr.flush().await?;
            }
            ChannelMsg::ExitStatus { exit_status } => exit = Exit::Status(exit_status),
            ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                error_message,
                ..
            } => {
                exit = Exit::Signal {
                    name: format!("{signal_name:?}"),
                    core_dumped,
                    message: error_message,
                }
            }
            ChannelMsg::Failure => {
                return Err(SessionError::Io(std::io::Error::other(
                    match &opts.command {
                        Some(c) if opts.subsystem => {
                            format!("subsystem request for {c} failed on channel 0")
                        }
                        Some(_) => "exec request failed on channel 0".to_owned(),
                        None => "shell request failed on channel 0".to_owned(),
                    },
                )));
            }
            ChannelMsg::Eof | ChannelMsg::Success | ChannelMsg::WindowAdjusted { .. } => {}
            ChannelMsg::Close => break,
            other => debug!(?other, "channel message"),
        }
    }
    // tokio's stdio hands writes to a blocking thread: flush before the
    // runtime goes away, or the tail of the output is lost.
    stdout.flush().await?;
    stderr.flush().await?;
    drop(raw);
    if let Some(t) = stdin_task {
        t.abort();
    }
    if let Some(t) = resize_task {
        t.abort();
    }
    Ok(exit)
}

/// Copies stdin to the channel, sending EOF at end of input; with an escape
/// character, interprets `~.` and friends at line starts.
async fn pump_stdin(
    write: Arc<WriteHalf>,
    escape: Option<u8>,
    quit: tokio::sync::mpsc::Sender<()>,
    forwards: Vec<(String, Arc<Counters>)>,
) {
    let mut stdin = tokio::io::stdin();
    let mut filter = escape.map(EscapeFilter::new);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        buf.reserve(64 * 1024);
        match stdin.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let chunk = buf.split().freeze();
        let chunk = match filter.as_mut() {
            None => chunk,
            Some(f) => {
                let (out, actions) = f.feed(&chunk);
                for action in actions {
                    match action {
                        EscapeAction::Disconnect => {
                            let _ = quit.send(()).await;
                            return;
                        }
                        EscapeAction::Help(text) => {
                            let _ = std::io::stderr().write_all(text.as_bytes());
                        }
                        EscapeAction::ListConnections => {
                            let _ =
                                std::io::stderr().write_all(connection_list(&forwards).as_bytes());
                        }
                    }
                }
                out.into()
            }
        };
        if !chunk.is_empty() && write.data_bytes(chunk).await.is_err() {
            return;
        }
    }
    let _ = write.eof().await;
}

/// The `~#` report: each forward, its open and total connections and bytes.
pub fn connection_list(forwards: &[(String, Arc<Counters>)]) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::from("The following connections are open:\r\n");
    if forwards.is_empty() {
        out.push_str("  (no forwards)\r\n");
    }
    for (spec, c) in forwards {
        out.push_str(&format!(
            "  {spec}: {} open, {} total, {} bytes out, {} bytes in\r\n",
            c.open.load(Relaxed),
            c.connections.load(Relaxed),
            c.sent.load(Relaxed),
            c.received.load(Relaxed)
        ));
    }
    out
}

/// Sends a window-change request on every SIGWINCH.
async fn forward_window_changes(write: Arc<WriteHalf>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut winch) = signal(SignalKind::window_change()) else {
        return;
    };
    while winch.recv().await.is_some() {
        let (cols, rows, px, py) = terminal::window_size(std::io::stdin().as_fd());
        if write.window_change(cols, rows, px, py).await.is_err() {
            return;
        }
    }
}

/// Output of a command run with [`capture`].
#[derive(Debug, Clone)]
pub struct Captured {
    pub exit: Exit,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `command` on a new session channel with `input` as its stdin and
/// collects what it prints (for tools such as copy-id, not for users'
/// commands, whose output is streamed by [`run`]).
pub async fn capture(
    handle: &Handle<ClientHandler>,
    command: &str,
    input: &[u8],
) -> Result<Captured, SessionError> {
    let channel = handle.channel_open_session().await?;
    channel.exec(true, command.as_bytes()).await?;
    let (mut read, write) = channel.split();
    write
        .data_bytes(bytes::Bytes::copy_from_slice(input))
        .await?;
    write.eof().await?;
    let mut out = Captured {
        exit: Exit::Unknown,
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    while let Some(msg) = read.wait().await {
        match msg {
            ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
            ChannelMsg::ExtendedData { data, .. } => out.stderr.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => out.exit = Exit::Status(exit_status),
            ChannelMsg::Failure => {
                return Err(SessionError::Io(std::io::Error::other(
                    "exec request failed on channel 0",
                )));
            }
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    Ok(out)
}
