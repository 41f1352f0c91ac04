//! The SSH stages of each hop, first jump host first: transport (resolve
//! and TCP, a channel through the previous hop, or a ProxyCommand), the
//! banner, the handshake and host key, authentication; then, on the
//! destination, a session.
//!
//! Design choice: the doctor's own connection never prompts and never
//! writes known_hosts (StrictHostKeyChecking yes, BatchMode yes on a copy
//! of the options): an unknown or changed key is reported, and nothing is
//! authenticated to a host whose key was not verified.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::ChannelMsg;
use tokio::io::{AsyncRead, AsyncWrite};
use warren_wire::{Chain, Escaped, escape_str};

use super::network::{self, Banner};
use super::{Action, Check, Inputs, Sink, Status, behind, denial, forwards, remote, speed};
use crate::prompt::NoPrompt;
use crate::session::stages::{Dialed, Negotiated, ServerKey};
use crate::session::{AuthError, Hop, HostKeyError, Route, Session, SessionError, proxy};

/// How long a network step may take when ConnectTimeout says nothing.
const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// How long a TCP connect may take when ConnectTimeout says nothing: a
/// host that drops packets is reported after this, not after the
/// kernel's two minutes of retries.
const DEFAULT_CONNECT_WAIT: Duration = Duration::from_secs(5);
/// The most of a command's output kept.
const OUTPUT_LIMIT: usize = 64 * 1024;
/// How long the session checks may take.
const SESSION_WAIT: Duration = Duration::from_secs(30);

/// Runs the stages of every hop in `hops` (first dialled first), then the
/// session checks on the last one.
pub async fn run_chain(inputs: &Inputs, sink: &mut Sink<'_>) {
    let hops = super::chain(&inputs.hop);
    let destination = inputs.destination.as_str();
    let mut sessions: Vec<Session> = Vec::new();
    for (i, hop) in hops.iter().enumerate() {
        let via = match (i.checked_sub(1).map(|p| hops[p]), sessions.last()) {
            (Some(prev), Some(session)) => Some((prev, session)),
            _ => None,
        };
        match one_hop(hop, via, destination, sink).await {
            Some(session) => sessions.push(session),
            None => {
                if i + 1 == hops.len() {
                    sink.push(Check::skip(
                        format!("{} session", label(hop)),
                        "not attempted: not logged in",
                    ));
                }
                for later in &hops[i + 1..] {
                    sink.push(Check::skip(
                        label(later),
                        format!("not reached: {} failed", label(hop)),
                    ));
                }
                break;
            }
        }
    }
    if sessions.len() == hops.len()
        && let Some(target) = sessions.last()
    {
        let name = hops.last().map_or_else(String::new, |h| label(h));
        session_checks(&name, destination, target, sink).await;
        let wait = hops.last().map_or(DEFAULT_WAIT, |h| wait_for(h));
        for check in forwards::checks(&name, destination, target, &inputs.forwards, wait).await {
            sink.push(check);
        }
        if inputs.speed {
            sink.push(speed::check(&name, target, SESSION_WAIT).await);
        }
    } else if !inputs.forwards.is_empty() || inputs.speed {
        let name = hops.last().map_or_else(String::new, |h| label(h));
        sink.push(Check::skip(
            format!("{name} forwards"),
            "not attempted: not logged in",
        ));
    }
    for s in sessions.iter().rev() {
        s.close().await;
    }
}

/// How a hop is named in checks: the name it was given (an alias or a
/// host).
fn label(hop: &Hop) -> String {
    escape_str(&hop.opts.host).into_owned()
}

fn wait_for(hop: &Hop) -> Duration {
    hop.opts.connect_timeout.unwrap_or(DEFAULT_WAIT)
}

fn connect_wait_for(hop: &Hop) -> Duration {
    hop.opts.connect_timeout.unwrap_or(DEFAULT_CONNECT_WAIT)
}

/// One hop, up to an authenticated session; `None` when a stage failed
/// (its checks say why).
async fn one_hop(
    hop: &Hop,
    via: Option<(&Hop, &Session)>,
    destination: &str,
    sink: &mut Sink<'_>,
) -> Option<Session> {
    let name = label(hop);
    match (&hop.route, via) {
        (Route::Direct, _) => {
            let Some((stream, ip)) = direct(hop, sink).await else {
                skip_login(&name, "the server was not reached", sink);
                return None;
            };
            ssh_stages(stream, Some(ip), hop, destination, sink).await
        }
        (Route::Jump(_), Some((prev, session))) => {
            let Some(stream) = through(hop, prev, session, sink).await else {
                skip_login(&name, "the server was not reached", sink);
                return None;
            };
            ssh_stages(stream, None, hop, destination, sink).await
        }
        (Route::Jump(_), None) => {
            sink.push(Check::skip(name, "not reached: its jump host failed"));
            None
        }
        (Route::ProxyCommand(command), _) => {
            let start = Instant::now();
            match proxy::spawn(command) {
                Ok(stream) => {
                    sink.push(
                        Check::ok(
                            format!("{name} proxy"),
                            format!("through ProxyCommand {}", escape_str(command)),
                        )
                        .since(start),
                    );
                    ssh_stages(stream, None, hop, destination, sink).await
                }
                Err(e) => {
                    sink.push(
                        Check::fail(format!("{name} proxy"), Chain(&e).to_string())
                            .fix("check the ProxyCommand for this host in ssh_config")
                            .since(start),
                    );
                    None
                }
            }
        }
    }
}

/// Resolve, connect to each address, probe the banner: the first
/// connection that opened, for the handshake.
async fn direct(hop: &Hop, sink: &mut Sink<'_>) -> Option<(tokio::net::TcpStream, IpAddr)> {
    let name = label(hop);
    let opts = &hop.opts;
    let wait = wait_for(hop);
    let (check, addrs) =
        network::resolve(&name, &opts.hostname, opts.port, opts.address_family, wait).await;
    sink.push(check);
    let mut open: Option<tokio::net::TcpStream> = None;
    let mut checks = Vec::new();
    for addr in &addrs {
        let (check, stream) =
            network::connect(&name, &opts.hostname, *addr, connect_wait_for(hop)).await;
        checks.push(check);
        if open.is_none() {
            open = stream;
        }
    }
    // An address that fails while another works costs a delay, not the
    // connection: a warning.
    let some_open = open.is_some();
    for mut check in checks {
        if some_open && check.status == Status::Fail {
            check.status = Status::Warn;
        }
        sink.push(check);
    }
    let stream = open?;
    let ip = stream.peer_addr().ok()?.ip();
    let start = Instant::now();
    let banner =
        match tokio::time::timeout(wait, tokio::net::TcpStream::connect((ip, opts.port))).await {
            Ok(Ok(probe)) => network::probe(probe, wait).await,
            _ => Banner::Closed,
        };
    let check = network::banner_check(&name, &opts.hostname, opts.port, &banner, start.elapsed());
    let good = check.status == Status::Ok;
    sink.push(check);
    good.then_some((stream, ip))
}

/// A channel to the hop through the previous hop's session, with a
/// banner probe over a second one.
async fn through(
    hop: &Hop,
    prev: &Hop,
    session: &Session,
    sink: &mut Sink<'_>,
) -> Option<russh::ChannelStream<russh::client::Msg>> {
    let name = label(hop);
    let bastion = label(prev);
    let opts = &hop.opts;
    let wait = wait_for(hop);
    let open = || {
        tokio::time::timeout(
            wait,
            session.handle().channel_open_direct_tcpip(
                opts.hostname.as_str(),
                u32::from(opts.port),
                "127.0.0.1",
                0,
            ),
        )
    };
    let start = Instant::now();
    let target = format!("{}:{}", escape_str(&opts.hostname), opts.port);
    let channel = match open().await {
        Ok(Ok(c)) => c,
        outcome => {
            let why = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer within {}s", wait.as_secs()),
            };
            sink.push(
                Check::fail(
                    format!("{name} channel"),
                    format!("jump host {bastion} could not connect to {target}: {}", escape_str(&why)),
                )
                .fix(format!(
                    "check from {bastion} that {target} accepts connections (warren ssh {bastion} nc -zv {} {}), \
                     and that {bastion}'s sshd allows AllowTcpForwarding",
                    escape_str(&opts.hostname),
                    opts.port
                ))
                .since(start),
            );
            return None;
        }
    };
    sink.push(
        Check::ok(
            format!("{name} channel"),
            format!("jump host {bastion} connected to {target}"),
        )
        .since(start),
    );
    let start = Instant::now();
    let banner = match open().await {
        Ok(Ok(c)) => network::probe(c.into_stream(), wait).await,
        _ => Banner::Closed,
    };
    let check = network::banner_check(&name, &opts.hostname, opts.port, &banner, start.elapsed());
    let good = check.status == Status::Ok;
    sink.push(check);
    good.then(|| channel.into_stream())
}

/// Handshake, host key, authentication over `stream`.
async fn ssh_stages<S>(
    stream: S,
    peer_ip: Option<IpAddr>,
    hop: &Hop,
    destination: &str,
    sink: &mut Sink<'_>,
) -> Option<Session>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let name = label(hop);
    // Never prompt, never record a key: report instead.
    let mut opts = hop.opts.clone();
    opts.host_keys.strict = crate::session::StrictHostKeyChecking::Yes;
    opts.auth.batch_mode = true;
    let start = Instant::now();
    let handshake = match Dialed::over(stream, peer_ip)
        .handshake(&opts, Arc::new(NoPrompt))
        .await
    {
        Ok(h) => h,
        Err(e) => {
            sink.push(
                Check::fail(
                    format!("{name} handshake"),
                    one_line(&Chain(&e).to_string()),
                )
                .fix_opt(e.hint())
                .since(start),
            );
            skip_login(&name, "the handshake failed", sink);
            return None;
        }
    };
    let key = handshake.server_key.clone();
    let checked = match handshake.check_host_key().await {
        Ok(c) => c,
        Err(e) => {
            sink.push(host_key_problem(&name, &key, e, destination).since(start));
            skip_login(&name, "the host key was not verified", sink);
            return None;
        }
    };
    sink.push(
        Check::ok(
            format!("{name} host key"),
            format!("{} {} matches known_hosts", key.algorithm, key.fingerprint),
        )
        .since(start),
    );
    sink.push(algorithms_check(&name, &checked.algorithms));
    let start = Instant::now();
    match checked.authenticate().await {
        Ok(login) => {
            sink.push(
                Check::ok(
                    format!("{name} auth"),
                    format!(
                        "logged in as {} with {}",
                        escape_str(&opts.user),
                        escape_str(&login.accepted)
                    ),
                )
                .took(login.elapsed),
            );
            let seen = behind::Login {
                user: &opts.user,
                accepted: &login.accepted,
                before: &login.before,
                keys_offered: login.keys_offered,
                notes: &login.notes,
            };
            for check in behind::checks(&name, destination, &seen) {
                sink.push(check);
            }
            Some(login.session)
        }
        Err(e) => {
            sink.push(auth_failure(&name, &e, destination).since(start));
            None
        }
    }
}

/// A failed login: what the server said, what was noticed locally, and
/// the fixes, the certain ones first.
fn auth_failure(name: &str, e: &SessionError, destination: &str) -> Check {
    let why = denial::explain(e, destination);
    let mut summary = one_line(&Chain(e).to_string());
    for said in &why.said {
        summary.push_str("; ");
        summary.push_str(said);
    }
    let mut fixes = why.first;
    if !why.settled {
        match e.hint() {
            Some(hint) => fixes.push(hint),
            None if why.then.is_empty() => fixes.push(
                "run `warren ssh -v` to see each attempt and the server's answers".to_owned(),
            ),
            None => {}
        }
        fixes.extend(why.then);
        if strict_modes_denial(e) {
            fixes.push(STRICT_MODES_FIX.to_owned());
        }
    }
    Check::fail(format!("{name} auth"), summary)
        .fix_opt((!fixes.is_empty()).then(|| fixes.join("; ")))
}

/// What to check on the server when a key that should work is refused.
const STRICT_MODES_FIX: &str = "if the key is there, check its modes on the server: \
     sshd (StrictModes yes, its default) refuses authorized_keys when ~, ~/.ssh or the file is \
     writable by group or others or owned by another user (its log says \"Authentication refused: \
     bad ownership or modes\"); fix with `chmod go-w ~ ~/.ssh ~/.ssh/authorized_keys` on the server";

/// A key denial where the keys were read and offered: the server's
/// modes may be why.
fn strict_modes_denial(e: &SessionError) -> bool {
    matches!(
        e,
        SessionError::Auth(AuthError::Denied { tried, notes, .. })
            if !tried.is_empty() && notes.loose_keys.is_empty()
    )
}

fn skip_login(name: &str, why: &str, sink: &mut Sink<'_>) {
    sink.push(Check::skip(
        format!("{name} auth"),
        format!("not attempted: {why}"),
    ));
}

/// A refused host key: what the server showed, what known_hosts says,
/// and how to settle it.
fn host_key_problem(name: &str, key: &ServerKey, e: SessionError, destination: &str) -> Check {
    let check_name = format!("{name} host key");
    let on_server = "ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the server";
    match e {
        SessionError::HostKey(HostKeyError::Changed(c)) => {
            let (warren, ssh) = network::removal_commands(&c.file, &c.host);
            Check::fail(
                check_name,
                format!(
                    "CHANGED: the server now shows {} {}, but {}:{} holds another {} key for {}: \
                     a reinstalled server, or someone in the middle",
                    c.algorithm,
                    c.fingerprint,
                    escape_str(&c.file),
                    c.line,
                    c.old_algorithm,
                    escape_str(&c.host)
                ),
            )
            .fix(format!(
                "confirm {} out of band ({on_server}), then remove the old line: {warren} (or {ssh})",
                c.fingerprint
            ))
            .action(Action::RemoveKnownHost {
                file: std::path::PathBuf::from(&c.file),
                host: c.host.clone(),
                fingerprint: c.fingerprint.clone(),
            })
        }
        SessionError::HostKey(HostKeyError::Unknown {
            algorithm,
            fingerprint,
            host,
            ..
        }) => Check::warn(
            check_name,
            format!(
                "not in known_hosts: {} shows {algorithm} {fingerprint}",
                escape_str(&host)
            ),
        )
        .fix(format!(
            "confirm {fingerprint} out of band ({on_server}), then connect once with `warren ssh {}` and accept it",
            escape_str(destination)
        )),
        other => Check::fail(
            check_name,
            format!(
                "{} {}: {}",
                key.algorithm,
                key.fingerprint,
                one_line(&Chain(&other).to_string())
            ),
        )
        .fix_opt(other.hint()),
    }
}

/// The agreed algorithms; weak ones flagged.
fn algorithms_check(name: &str, a: &Negotiated) -> Check {
    let mac = if a.mac.is_empty() || a.mac == "none" {
        "(implicit)"
    } else {
        a.mac.as_str()
    };
    let summary = format!(
        "kex {}, host key {}, cipher {}, mac {mac}{}",
        a.kex,
        a.host_key,
        a.cipher,
        if a.compression { ", compression" } else { "" }
    );
    let weak = weak_algorithms(a);
    if weak.is_empty() {
        Check::ok(format!("{name} algorithms"), summary)
    } else {
        Check::warn(
            format!("{name} algorithms"),
            format!("{summary}; weak: {}", weak.join(", ")),
        )
        .fix("update the server's OpenSSH, or remove the weak algorithms from its sshd_config (KexAlgorithms, HostKeyAlgorithms, Ciphers, MACs)")
    }
}

/// The agreed algorithms that are weak: SHA-1, CBC, 3DES, RC4, MD5, DSA.
pub fn weak_algorithms(a: &Negotiated) -> Vec<String> {
    let mut out = Vec::new();
    let kex_weak = a.kex.ends_with("-sha1") || a.kex.contains("group1-");
    let key_weak = a.host_key == "ssh-rsa" || a.host_key == "ssh-dss";
    let cipher_weak =
        a.cipher.contains("cbc") || a.cipher.contains("3des") || a.cipher.contains("arcfour");
    let mac_weak = a.mac.contains("md5") || a.mac.starts_with("hmac-sha1");
    for (weak, what) in [
        (kex_weak, &a.kex),
        (key_weak, &a.host_key),
        (cipher_weak, &a.cipher),
        (mac_weak, &a.mac),
    ] {
        if weak {
            out.push(what.clone());
        }
    }
    out
}

/// Multi-line messages (host key warnings) as one line.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('@'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `true` on the destination (quiet login shell?) and the sftp subsystem.
async fn session_checks(name: &str, destination: &str, session: &Session, sink: &mut Sink<'_>) {
    let start = Instant::now();
    let ran = tokio::time::timeout(SESSION_WAIT, run_command(session, "true")).await;
    let check = match ran {
        Err(_) => Check::fail(
            format!("{name} session"),
            format!("`true` did not finish within {}s", SESSION_WAIT.as_secs()),
        )
        .fix("the login shell's startup files hang on a non-interactive command: check ~/.bashrc and the like on the server"),
        Ok(Err(e)) => Check::fail(
            format!("{name} session"),
            format!("could not run a command: {}", one_line(&Chain(&e).to_string())),
        )
        .fix("check the user's login shell on the server (not /usr/sbin/nologin) and sshd's ForceCommand"),
        Ok(Ok(out)) => exec_check(name, &out),
    };
    sink.push(check.since(start));
    let start = Instant::now();
    let ran = tokio::time::timeout(SESSION_WAIT, run_command(session, remote::SCRIPT)).await;
    let check = match ran {
        Ok(Ok(out)) => remote::judge(name, destination, &remote::parse(&out.stdout)),
        _ => Check::skip(
            format!("{name} remote files"),
            "could not run a command to read the modes of ~/.ssh",
        ),
    };
    sink.push(check.since(start));
    let start = Instant::now();
    let sftp = tokio::time::timeout(
        SESSION_WAIT,
        crate::transfer::connect::over_channel(session.handle(), None),
    )
    .await;
    let check = match sftp {
        Ok(Ok(_client)) => Check::ok(format!("{name} sftp"), "the sftp subsystem answers"),
        Ok(Err(crate::transfer::connect::OpenError::Refused)) => Check::warn(
            format!("{name} sftp"),
            "the server has no sftp subsystem: warren cp, sftp and scp (which uses SFTP) fail",
        )
        .fix("add `Subsystem sftp internal-sftp` to the server's sshd_config"),
        Ok(Err(e)) => Check::fail(
            format!("{name} sftp"),
            format!("the sftp subsystem did not start: {}", one_line(&Chain(&e).to_string())),
        )
        .fix("output from the login shell's startup files corrupts SFTP: make them print only in interactive shells"),
        Err(_) => Check::fail(
            format!("{name} sftp"),
            format!("the sftp subsystem did not answer within {}s", SESSION_WAIT.as_secs()),
        ),
    };
    sink.push(check.since(start));
}

/// What `true` printed and how it ended.
#[derive(Debug, Default)]
pub(super) struct Ran {
    pub(super) status: Option<u32>,
    pub(super) stdout: Vec<u8>,
    pub(super) stderr: Vec<u8>,
}

/// Runs `command` on the server, keeping at most [`OUTPUT_LIMIT`] bytes
/// of each output.
pub(super) async fn run_command(session: &Session, command: &str) -> Result<Ran, russh::Error> {
    let mut channel = session.handle().channel_open_session().await?;
    channel.exec(true, command.as_bytes()).await?;
    channel.eof().await?;
    let mut ran = Ran::default();
    let keep = |buf: &mut Vec<u8>, data: &[u8]| {
        let room = OUTPUT_LIMIT.saturating_sub(buf.len());
        buf.extend_from_slice(&data[..data.len().min(room)]);
    };
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => keep(&mut ran.stdout, &data),
            ChannelMsg::ExtendedData { data, .. } => keep(&mut ran.stderr, &data),
            ChannelMsg::ExitStatus { exit_status } => ran.status = Some(exit_status),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    Ok(ran)
}

fn exec_check(name: &str, ran: &Ran) -> Check {
    let check_name = format!("{name} session");
    let printed: Vec<&[u8]> = [&ran.stdout[..], &ran.stderr[..]]
        .into_iter()
        .filter(|b| !b.trim_ascii().is_empty())
        .collect();
    if ran.status != Some(0) {
        let said = printed
            .first()
            .map(|b| format!(": {}", Escaped::truncated(b.trim_ascii(), 200)))
            .unwrap_or_default();
        let status = ran
            .status
            .map_or_else(|| "no exit status".to_owned(), |s| format!("status {s}"));
        return Check::fail(check_name, format!("`true` ended with {status}{said}"))
            .fix("check the user's login shell on the server (not /usr/sbin/nologin or /bin/false) and sshd's ForceCommand");
    }
    if let Some(first) = printed.first() {
        let bytes = ran.stdout.len() + ran.stderr.len();
        return Check::warn(
            check_name,
            format!(
                "the login shell printed {bytes} byte(s) on a non-interactive command (\"{}\"): this breaks scp, sftp and rsync",
                Escaped::truncated(first.trim_ascii(), 80)
            ),
        )
        .fix("on the server, print only in interactive shells: put `[ -z \"$PS1\" ] && return` (or `case $- in *i*) ;; *) return;; esac`) before any output in ~/.bashrc");
    }
    Check::ok(check_name, "`true` ran, nothing printed")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn negotiated(kex: &str, key: &str, cipher: &str, mac: &str) -> Negotiated {
        Negotiated {
            kex: kex.into(),
            host_key: key.into(),
            cipher: cipher.into(),
            mac: mac.into(),
            compression: false,
        }
    }

    #[test]
    fn weak_algorithms_table() {
        let cases = [
            (
                negotiated(
                    "curve25519-sha256",
                    "ssh-ed25519",
                    "aes256-gcm@openssh.com",
                    "",
                ),
                vec![],
            ),
            (
                negotiated(
                    "diffie-hellman-group14-sha1",
                    "ssh-rsa",
                    "aes128-cbc",
                    "hmac-sha1",
                ),
                vec![
                    "diffie-hellman-group14-sha1",
                    "ssh-rsa",
                    "aes128-cbc",
                    "hmac-sha1",
                ],
            ),
            (
                negotiated(
                    "diffie-hellman-group1-sha1",
                    "rsa-sha2-512",
                    "aes128-ctr",
                    "hmac-sha2-256-etm@openssh.com",
                ),
                vec!["diffie-hellman-group1-sha1"],
            ),
        ];
        for (a, want) in cases {
            assert_eq!(weak_algorithms(&a), want, "{a:?}");
        }
    }

    #[test]
    fn chatty_shell_is_a_warning() {
        let quiet = Ran {
            status: Some(0),
            ..Ran::default()
        };
        assert_eq!(exec_check("h", &quiet).status, Status::Ok);
        let chatty = Ran {
            status: Some(0),
            stdout: b"Welcome to prod!\x1b[31m\n".to_vec(),
            stderr: vec![],
        };
        let c = exec_check("h", &chatty);
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.summary.contains("Welcome to prod!\\e[31m"),
            "{}",
            c.summary
        );
        assert!(
            c.summary.contains("breaks scp, sftp and rsync"),
            "{}",
            c.summary
        );
        let refused = Ran {
            status: Some(1),
            stdout: b"This account is currently not available.\n".to_vec(),
            stderr: vec![],
        };
        assert_eq!(exec_check("h", &refused).status, Status::Fail);
    }

    #[test]
    fn one_line_drops_the_banner_art() {
        let text = "@@@@\n@ WARNING @\n@@@@\nIT IS POSSIBLE\nThe key changed.\n";
        assert_eq!(one_line(text), "IT IS POSSIBLE The key changed.");
    }
}
