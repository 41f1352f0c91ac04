//! One session channel: what the client asked for before starting
//! something (a PTY, environment variables, agent forwarding), then the
//! program or subsystem it started.
//!
//! Design choice: requests are answered on the spot (russh keeps one
//! "wants reply" flag per channel, so a reply must go out before the next
//! request is read); starting a program hands the channel to its own task
//! and keeps only what signals and window changes need.

use std::net::SocketAddr;
use std::path::PathBuf;

use russh::server::{Handle, Msg};
use russh::{Channel, Sig};
use tokio_util::sync::CancellationToken;

use crate::auth::Permissions;
use crate::config::ServerConfig;
use crate::process::{self, Program, PtySpec, Running};

/// Variables a client may set, at most, per channel.
const MAX_ENV: usize = 64;

/// State of one session channel.
pub struct SessionChannel {
    channel: Option<Channel<Msg>>,
    env: Vec<(String, String)>,
    pty: Option<PtySpec>,
    pub agent_socket: Option<PathBuf>,
    running: Option<Running>,
}

/// What a session needs from its connection to start a program.
pub struct Context<'a> {
    pub config: &'a ServerConfig,
    pub perms: &'a Permissions,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub handle: Handle,
    pub token: CancellationToken,
}

/// What the client asked to start.
pub enum Start {
    Shell,
    Exec(String),
    Subsystem(String),
}

impl SessionChannel {
    pub fn new(channel: Channel<Msg>) -> SessionChannel {
        SessionChannel {
            channel: Some(channel),
            env: Vec::new(),
            pty: None,
            agent_socket: None,
            running: None,
        }
    }

    /// Whether a program or subsystem already runs here.
    pub fn started(&self) -> bool {
        self.channel.is_none()
    }

    pub fn set_pty(&mut self, spec: PtySpec) -> bool {
        if self.pty.is_some() || self.started() {
            return false;
        }
        self.pty = Some(spec);
        true
    }

    /// AcceptEnv: only names matching a configured pattern are kept.
    pub fn set_env(&mut self, accept: &[String], name: &str, value: &str) -> bool {
        let accepted = accept.iter().any(|p| warren_config::match_pattern(name, p));
        if !accepted || self.env.len() >= MAX_ENV || name.contains('=') || self.started() {
            return false;
        }
        self.env.push((name.to_owned(), value.to_owned()));
        true
    }

    pub fn window_change(&mut self, cols: u32, rows: u32, px_w: u32, px_h: u32) {
        if let Some(r) = &self.running {
            r.resize(cols, rows, px_w, px_h);
        } else if let Some(p) = &mut self.pty {
            (p.cols, p.rows, p.px_width, p.px_height) = (cols, rows, px_w, px_h);
        }
    }

    pub fn signal(&self, sig: &Sig) {
        if let Some(r) = &self.running {
            r.signal(sig);
        }
    }

    /// The client closed the channel: a terminal session hangs up.
    pub fn hang_up(&self) {
        if let Some(r) = &self.running
            && r.pty.is_some()
        {
            r.signal(&Sig::HUP);
        }
    }

    /// Starts a shell, a command or a subsystem; `Err` is the reason to
    /// log when it cannot start.
    pub fn start(&mut self, ctx: &Context<'_>, what: Start) -> Result<(), String> {
        let channel = self
            .channel
            .take()
            .ok_or("a program already runs on this channel")?;
        let original = match &what {
            Start::Exec(c) => Some(c.clone()),
            _ => None,
        };
        let command = match (&ctx.perms.command, what) {
            (Some(forced), _) => Some(forced.clone()),
            (None, Start::Shell) => None,
            (None, Start::Exec(c)) => Some(c),
            (None, Start::Subsystem(name)) => {
                return crate::sftp::start(ctx, &name, channel);
            }
        };
        let mut program = Program {
            shell: ctx.config.login.shell.clone(),
            env: self.environment(ctx, original.as_deref()),
            command,
            cwd: ctx.config.login.home.clone(),
            direct_args: None,
        };
        // `warren sync`'s delta helper is this very binary: the exact
        // command its driver sends when looking for a helper
        // (`--remote-helper auto`) runs our own executable, so a warren
        // serve host gets delta transfer with nothing installed. Only that
        // string, only when no forced command replaced it and no PTY was
        // asked for; everything else goes to the user's shell as ever.
        if ctx.perms.command.is_none()
            && self.pty.is_none()
            && program.command.as_deref() == Some(warren_core::delta::auto_command().as_str())
            && let Ok(exe) = std::env::current_exe()
        {
            program.shell = exe;
            program.direct_args = Some(vec!["sync".into(), "--server".into()]);
        }
        let started = match &self.pty {
            Some(spec) => process::spawn_pty(
                &program,
                spec,
                channel,
                ctx.handle.clone(),
                ctx.token.clone(),
            ),
            None => process::spawn_exec(&program, channel, ctx.handle.clone(), ctx.token.clone()),
        };
        let running =
            started.map_err(|e| format!("cannot run {}: {e}", program.shell.display()))?;
        self.running = Some(running);
        Ok(())
    }

    /// The session's environment, built the way sshd builds it.
    fn environment(&self, ctx: &Context<'_>, original: Option<&str>) -> Vec<(String, String)> {
        let login = &ctx.config.login;
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        let mut env: Vec<(String, String)> = vec![
            ("USER".into(), login.user.clone()),
            ("LOGNAME".into(), login.user.clone()),
            ("HOME".into(), login.home.display().to_string()),
            ("SHELL".into(), login.shell.display().to_string()),
            ("PATH".into(), path),
            (
                "SSH_CLIENT".into(),
                format!("{} {} {}", ctx.peer.ip(), ctx.peer.port(), ctx.local.port()),
            ),
            (
                "SSH_CONNECTION".into(),
                format!(
                    "{} {} {} {}",
                    ctx.peer.ip(),
                    ctx.peer.port(),
                    ctx.local.ip(),
                    ctx.local.port()
                ),
            ),
        ];
        if let Some(pty) = &self.pty {
            env.push(("TERM".into(), pty.term.clone()));
        }
        if let Some(sock) = &self.agent_socket {
            env.push(("SSH_AUTH_SOCK".into(), sock.display().to_string()));
        }
        if let (Some(_), Some(cmd)) = (&ctx.perms.command, original) {
            env.push(("SSH_ORIGINAL_COMMAND".into(), cmd.to_owned()));
        }
        if ctx.config.permit_user_environment {
            env.extend(ctx.perms.environment.iter().cloned());
        }
        env.extend(self.env.iter().cloned());
        // Later entries win, as with repeated `env` in sshd.
        let mut seen = std::collections::HashSet::new();
        let mut out: Vec<_> = env
            .into_iter()
            .rev()
            .filter(|(k, _)| seen.insert(k.clone()))
            .collect();
        out.reverse();
        out
    }
}
