//! A session channel: exec, shell or subsystem, with stdin/stdout/stderr
//! pumped binary-safe, EOF passed both ways, the exit status (or signal)
//! returned, and for a PTY the raw terminal, window changes and escapes.
//!
//! Design choice: stdin is read in its own task and written to the
//! channel's write half, while this task drains the read half; neither side
//! can stall the other, and the channel's window gives backpressure.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use bytes::BytesMut;
use russh::ChannelMsg;
use russh::client::Handle;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{debug, info};

use crate::forward::Counters;
use crate::forward::manage::Forwards;
use crate::session::error::SessionError;
use crate::session::handler::ClientHandler;
use crate::terminal;

pub mod command_line;
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
    /// What escapes act on beyond the channel.
    pub escapes: EscapeContext,
    /// X11 forwarding as configured (-X, -Y, ForwardX11).
    pub x11_request: Option<crate::session::x11::X11Request>,
    /// X11 forwarding set up for this session: sent as an x11-req.
    pub x11: Option<Arc<crate::session::x11::X11Forwarding>>,
}

/// Raises (`true`) or lowers the log level; returns the new level's name.
pub type LogLevelHook = Arc<dyn Fn(bool) -> Option<String> + Send + Sync>;

/// What escape sequences reach beyond the session channel: the live
/// forwards (`~C`, `~#`) and the log level (`~v`, `~V`).
#[derive(Clone, Default)]
pub struct EscapeContext {
    pub forwards: Option<Arc<Forwards>>,
    pub log_level: Option<LogLevelHook>,
    /// A multiplexed client's session, run by the master: `~^Z` and
    /// `~v`/`~V` would act on the master process, so they are refused.
    pub multiplexed: bool,
}

impl std::fmt::Debug for EscapeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EscapeContext")
            .field("forwards", &self.forwards.is_some())
            .field("log_level", &self.log_level.is_some())
            .field("multiplexed", &self.multiplexed)
            .finish()
    }
}

/// What the stdin task asks of the task that owns the channel's reader
/// and the terminal.
enum Event {
    /// Text to print on our stderr.
    Notice(String),
    /// `~R`.
    Rekey,
    /// `~^Z`.
    Suspend,
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

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Where a session's input comes from and its output goes: this process's
/// stdio, or descriptors a multiplexed client passed over the control
/// socket.
pub struct Stdio {
    pub stdin: Reader,
    pub stdout: Writer,
    pub stderr: Writer,
    /// The terminal on stdin, if it is one: the PTY's size and window
    /// changes come from it.
    pub terminal: Option<OwnedFd>,
    /// Put that terminal in raw mode for the session (a multiplexed
    /// client does that itself).
    pub raw_mode: bool,
}

impl Stdio {
    /// This process's stdin, stdout and stderr.
    pub fn process() -> Stdio {
        let stdin = std::io::stdin();
        Stdio {
            stdin: Box::new(tokio::io::stdin()),
            stdout: Box::new(tokio::io::stdout()),
            stderr: Box::new(tokio::io::stderr()),
            terminal: terminal::is_terminal(stdin.as_fd())
                .then(|| stdin.as_fd().try_clone_to_owned().ok())
                .flatten(),
            raw_mode: true,
        }
    }
}

/// Runs one session channel on this process's stdio to completion.
pub async fn run(handle: &Handle<ClientHandler>, opts: &RunOptions) -> Result<Exit, SessionError> {
    run_with(handle, opts, Stdio::process(), || {}).await
}

/// Runs one session channel on `stdio` to completion. `on_pty_failed`
/// runs if the server refuses the PTY (the session goes on without one,
/// as ssh's does).
pub async fn run_with(
    handle: &Handle<ClientHandler>,
    opts: &RunOptions,
    stdio: Stdio,
    on_pty_failed: impl FnOnce(),
) -> Result<Exit, SessionError> {
    let channel = handle.channel_open_session().await?;
    let Stdio {
        stdin,
        mut stdout,
        mut stderr,
        terminal: term_fd,
        raw_mode,
    } = stdio;
    let term_fd = term_fd.map(Arc::new);
    let tty = opts.pty && term_fd.is_some();
    if opts.pty {
        let (cols, rows, px, py) = match &term_fd {
            Some(fd) => terminal::window_size(fd.as_fd()),
            None => (80, 24, 0, 0),
        };
        channel
            .request_pty(true, &opts.term, cols, rows, px, py, &[])
            .await?;
    }
    if opts.forward_agent {
        info!("Requesting authentication agent forwarding.");
        channel.agent_forward(false).await?;
    }
    if let Some(x11) = &opts.x11 {
        info!("Requesting X11 forwarding with authentication spoofing.");
        channel
            .request_x11(
                false,
                false,
                x11.protocol(),
                x11.fake_cookie_hex(),
                x11.screen,
            )
            .await?;
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
    // Requests are pipelined; replies come in order, so the first one
    // answers the PTY request.
    let mut pty_reply_pending = opts.pty;
    let mut on_pty_failed = Some(on_pty_failed);
    let mut raw = match &term_fd {
        Some(fd) if tty && raw_mode => terminal::RawModeGuard::enter(fd.as_fd()),
        _ => None,
    };
    let (mut read, write) = channel.split();
    let write = Arc::new(write);
    // As ssh: escapes follow the PTY request (-tt too), not the local terminal.
    let escape = if opts.pty { opts.escape_char } else { None };
    let (quit_tx, mut quit_rx) = tokio::sync::mpsc::channel::<()>(1);
    let (notice_tx, mut notice_rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let stdin_task = if opts.stdin_null {
        // -n: the remote sees end of input at once.
        write.eof().await?;
        None
    } else {
        Some(tokio::spawn(pump_stdin(
            stdin,
            write.clone(),
            escape,
            quit_tx,
            notice_tx,
            Escapes {
                listed: opts.forwards.clone(),
                context: opts.escapes.clone(),
            },
        )))
    };
    let resize_task = match &term_fd {
        Some(fd) if tty => Some(tokio::spawn(forward_window_changes(
            write.clone(),
            fd.clone(),
        ))),
        _ => None,
    };
    let mut exit = Exit::Unknown;
    loop {
        let msg = tokio::select! {
            m = read.wait() => m,
            // `~.`; a closed sender (stdin done) is not a request to quit.
            Some(()) = quit_rx.recv() => break,
            Some(event) = notice_rx.recv() => {
                let local = Local { stderr: &mut stderr, raw: &mut raw, terminal: term_fd.as_deref(), escape };
                on_event(event, handle, &write, local).await;
                continue;
            }
        };
        let Some(msg) = msg else { break };
        match msg {
            ChannelMsg::Data { data } => {
                write_out(&mut stdout, &data, "stdout").await?;
            }
            ChannelMsg::ExtendedData { data, ext: 1 } => {
                write_out(&mut stderr, &data, "stderr").await?;
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
            ChannelMsg::Success if pty_reply_pending => pty_reply_pending = false,
            ChannelMsg::Failure if pty_reply_pending => {
                pty_reply_pending = false;
                raw = None;
                eprintln_to(
                    &mut stderr,
                    "PTY allocation request failed on channel 0\r\n",
                )
                .await;
                if let Some(f) = on_pty_failed.take() {
                    f();
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
    flush_out(&mut stdout, "stdout").await?;
    flush_out(&mut stderr, "stderr").await?;
    drop(raw);
    if let Some(t) = stdin_task {
        t.abort();
    }
    if let Some(t) = resize_task {
        t.abort();
    }
    Ok(exit)
}

/// Copies remote output to ours; a failure is [`SessionError::Output`],
/// which a closed pipe (`| head -1`) makes a silent end.
async fn write_out(w: &mut Writer, data: &[u8], stream: &'static str) -> Result<(), SessionError> {
    w.write_all(data)
        .await
        .map_err(|source| SessionError::Output { stream, source })?;
    flush_out(w, stream).await
}

async fn flush_out(w: &mut Writer, stream: &'static str) -> Result<(), SessionError> {
    w.flush()
        .await
        .map_err(|source| SessionError::Output { stream, source })
}

/// Writes a message of warren's own to the session's stderr.
async fn eprintln_to(stderr: &mut Writer, text: &str) {
    let _ = stderr.write_all(text.as_bytes()).await;
    let _ = stderr.flush().await;
}

/// This side of a session, as an escape's event needs it.
struct Local<'a> {
    stderr: &'a mut Writer,
    raw: &'a mut Option<terminal::RawModeGuard>,
    terminal: Option<&'a OwnedFd>,
    escape: Option<u8>,
}

/// Acts on what the stdin task's escapes asked for.
async fn on_event(
    event: Event,
    handle: &Handle<ClientHandler>,
    write: &WriteHalf,
    local: Local<'_>,
) {
    match event {
        Event::Notice(text) => eprintln_to(local.stderr, &text).await,
        Event::Rekey => {
            info!("Requesting rekey");
            if let Err(e) = handle.rekey_soon().await {
                debug!("rekey request failed: {e}");
            }
        }
        Event::Suspend => {
            let text = format!("{}^Z [suspend warren]\r\n", escape_shown(local.escape));
            eprintln_to(local.stderr, &text).await;
            // The terminal goes back to its own modes while we are stopped.
            let restore = local.raw.take().is_some();
            suspend_self();
            if restore && let Some(fd) = local.terminal {
                *local.raw = terminal::RawModeGuard::enter(fd.as_fd());
                let (cols, rows, px, py) = terminal::window_size(fd.as_fd());
                let _ = write.window_change(cols, rows, px, py).await;
            }
        }
    }
}

/// The escape character as ssh shows it in its replies.
fn escape_shown(escape: Option<u8>) -> String {
    match escape {
        Some(c) if c < 0x20 => format!("^{}", (c + b'@') as char),
        Some(c) => (c as char).to_string(),
        None => String::new(),
    }
}

/// ssh's answer to an escape a multiplexed session cannot use.
fn not_multiplexed(escape: Option<u8>, key: &str) -> String {
    format!(
        "{}{key} escape not available to multiplexed sessions\r\n",
        escape_shown(escape)
    )
}

/// Stops this process as the terminal's Ctrl-Z would; returns once it is
/// continued (`fg`).
fn suspend_self() {
    use rustix::process::{Signal, getpid, kill_process};
    if let Err(e) = kill_process(getpid(), Signal::TSTP) {
        debug!("suspend failed: {e}");
    }
}

/// What the stdin task's escapes act on.
struct Escapes {
    /// The forwards set up at start (used without a live registry).
    listed: Vec<(String, Arc<Counters>)>,
    context: EscapeContext,
}

impl Escapes {
    /// The `~#` report, from the live forwards when there are.
    fn connection_list(&self) -> String {
        match &self.context.forwards {
            Some(f) => connection_list(&f.list()),
            None => connection_list(&self.listed),
        }
    }

    /// The `~v` / `~V` reply, as ssh words it.
    fn log_level(&self, escape: Option<u8>, more: bool) -> String {
        let key = if more { 'v' } else { 'V' };
        let e = escape_shown(escape);
        match self.context.log_level.as_ref().and_then(|hook| hook(more)) {
            Some(level) => format!("{e}{key} [LogLevel {level}]\r\n"),
            None => format!("{e}{key} [LogLevel cannot change: logging to a file]\r\n"),
        }
    }
}

/// Copies stdin to the channel, sending EOF at end of input; with an escape
/// character, interprets `~.` and friends at line starts.
async fn pump_stdin(
    mut stdin: Reader,
    write: Arc<WriteHalf>,
    escape: Option<u8>,
    quit: tokio::sync::mpsc::Sender<()>,
    notices: tokio::sync::mpsc::UnboundedSender<Event>,
    escapes: Escapes,
) {
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
                    let event = match action {
                        EscapeAction::Disconnect => {
                            let _ = quit.send(()).await;
                            return;
                        }
                        EscapeAction::Help(text) => Event::Notice(text),
                        EscapeAction::ListConnections => Event::Notice(escapes.connection_list()),
                        EscapeAction::Echo(bytes) => {
                            Event::Notice(String::from_utf8_lossy(&bytes).into_owned())
                        }
                        EscapeAction::Command(line) => Event::Notice(
                            command_line::run(&line, escapes.context.forwards.as_deref()).await,
                        ),
                        EscapeAction::LogLevel { more } if escapes.context.multiplexed => {
                            Event::Notice(not_multiplexed(escape, if more { "v" } else { "V" }))
                        }
                        EscapeAction::Suspend if escapes.context.multiplexed => {
                            Event::Notice(not_multiplexed(escape, "^Z"))
                        }
                        EscapeAction::LogLevel { more } => {
                            Event::Notice(escapes.log_level(escape, more))
                        }
                        EscapeAction::Break => {
                            info!("Sending BREAK");
                            let _ = write.send_break(1000).await;
                            continue;
                        }
                        EscapeAction::Rekey => Event::Rekey,
                        EscapeAction::Suspend => Event::Suspend,
                    };
                    let _ = notices.send(event);
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

/// Sends a window-change request on every SIGWINCH (a multiplexed
/// client relays its own to the master).
async fn forward_window_changes(write: Arc<WriteHalf>, terminal: Arc<OwnedFd>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut winch) = signal(SignalKind::window_change()) else {
        return;
    };
    while winch.recv().await.is_some() {
        let (cols, rows, px, py) = terminal::window_size(terminal.as_fd());
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
