//! `warren demo`: warren end to end on this machine with nothing set up and
//! no network. Two `warren serve` servers start in this process on free
//! loopback ports (a bastion and a target) with throwaway keys; then the
//! client code `warren ssh` uses logs in, runs commands, opens -L, -R and
//! -D forwards and a -J chain, and pushes bytes through each. A table says
//! what worked, how fast, and for a failure why; the exit status is 0 only
//! if every step worked.
//!
//! Design choice: every step has its own timeout inside one overall
//! budget, and a step that cannot run because an earlier one failed is
//! reported as not run rather than left out, so the table always has the
//! same rows. Nothing of the user's is read or written (see [`lab`]).

mod lab;
mod log;
mod traffic;

use std::future::Future;
use std::io::Write as _;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use clap::{Parser, ValueEnum};
use tokio::io::{AsyncReadExt as _, DuplexStream};
use tokio_util::sync::CancellationToken;
use warren_core::exec::{self, Exit, RunOptions, Stdio};
use warren_core::forward::manage::Forwards;
use warren_core::forward::{Endpoint, ForwardOptions, ForwardSpec};
use warren_core::prompt::NoPrompt;
use warren_core::session::{self, Hop, Route, Session};

use lab::Lab;
use traffic::Transfer;

#[derive(Debug, Parser)]
#[command(
    name = "warren demo",
    disable_version_flag = true,
    about = "warren end to end on this machine: two in-process servers, throwaway keys, \
             a command, -L, -R, -D and -J with traffic through each"
)]
pub(super) struct DemoArgs {
    /// Log what the client and both servers do on stderr (-v steps, -vv
    /// debug, -vvv everything including russh).
    #[arg(short, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Point STEP at a port nobody listens on, to see how a failure is
    /// reported.
    #[arg(long, value_enum, value_name = "STEP")]
    unreachable: Option<Unreachable>,
}

/// Steps `--unreachable` can break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Unreachable {
    /// The login to the target.
    Login,
    /// The -L forward's destination.
    Local,
    /// The -R forward's destination.
    Remote,
    /// The destination asked of the -D SOCKS proxy.
    Socks,
    /// The target behind the bastion (-J).
    Jump,
}

/// One step's time limit.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole demo's time limit; steps left when it runs out are not run.
const BUDGET: Duration = Duration::from_secs(20);

const LOGIN: &str = "login (host key, publickey)";
const EXEC: &str = "exec: echo";
const EXEC_BULK: &str = "exec: 16 MiB of output";
const LOCAL: &str = "-L  local forward";
const REMOTE: &str = "-R  remote forward";
const DYNAMIC: &str = "-D  SOCKS5 proxy";
const JUMP: &str = "-J  bastion -> target login";
const JUMP_LOCAL: &str = "-L  through the -J chain";
const STEPS: [&str; 8] = [
    LOGIN, EXEC, EXEC_BULK, LOCAL, REMOTE, DYNAMIC, JUMP, JUMP_LOCAL,
];

/// Runs `warren demo` with the arguments after `demo`; returns the exit
/// code (0: every step worked).
pub fn main(args: &[String]) -> u8 {
    let parsed = match DemoArgs::try_parse_from(
        std::iter::once("warren demo".to_owned()).chain(args.iter().cloned()),
    ) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let held = init_logging(parsed.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("warren: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let code = runtime.block_on(async {
        tokio::select! {
            r = run(parsed) => r,
            // Dropping `run` drops the lab: the temp dir is removed.
            _ = tokio::signal::ctrl_c() => Ok(130),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let Some(log) = held {
        log.print();
    }
    match code {
        Ok(code) => code,
        Err(e) => crate::output::report("warren demo", &e, 1),
    }
}

/// Installs logging; with -v, the log is held for after the table.
fn init_logging(verbose: u8) -> Option<log::HeldLog> {
    let filter = match verbose {
        0 => "error",
        1 => "warn,warren=info,warren_core=info,warren_server=info",
        2 => "info,warren=debug,warren_core=debug,warren_server=debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARREN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .log_internal_errors(false)
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time();
    if verbose == 0 {
        // Errors only: they go out at once, as they happen.
        let _ = builder.with_writer(std::io::stderr).try_init();
        return None;
    }
    let held = log::HeldLog::default();
    let writer = held.clone();
    let _ = builder.with_writer(move || writer.clone()).try_init();
    Some(held)
}

async fn run(args: DemoArgs) -> anyhow::Result<u8> {
    let data = traffic::payload(traffic::BULK);
    let lab = Lab::start(data.clone()).await?;
    print_setup(&lab);
    let mut table = Table::new();
    let plan = Plan::new(&lab, data, args.unreachable)?;
    plan.run(&lab, &mut table).await;
    lab.stop().await;
    Ok(table.finish())
}

fn print_setup(lab: &Lab) {
    println!(
        "warren demo: two SSH servers in this process, throwaway keys and known_hosts in {} (removed at exit)",
        lab.dir().display()
    );
    println!(
        "  bastion  {:<21} {}",
        lab.bastion.addr.to_string(),
        lab.bastion.fingerprint
    );
    println!(
        "  target   {:<21} {}",
        lab.target.addr.to_string(),
        lab.target.fingerprint
    );
    println!(
        "  service  {:<21} answers pings and checks the bytes sent to it: the far end of every forward",
        lab.service.addr.to_string()
    );
    println!();
}

/// Where each step connects: the real services, or a closed port for the
/// step `--unreachable` names.
struct Plan {
    data: Arc<[u8]>,
    target_port: u16,
    jump_target_port: u16,
    /// The service itself, for the steps `--unreachable` cannot break.
    service: SocketAddrV4,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    socks: SocketAddrV4,
}

impl Plan {
    fn new(lab: &Lab, data: Arc<[u8]>, unreachable: Option<Unreachable>) -> anyhow::Result<Plan> {
        let service = match lab.service.addr {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(a) => anyhow::bail!("the test service is on IPv6 ({a})"),
        };
        let closed = match unreachable {
            Some(_) => SocketAddrV4::new(*service.ip(), lab::closed_port()?),
            None => service,
        };
        let pick = |step| {
            if unreachable == Some(step) {
                closed
            } else {
                service
            }
        };
        let server = |step, port| {
            if unreachable == Some(step) {
                closed.port()
            } else {
                port
            }
        };
        Ok(Plan {
            data,
            target_port: server(Unreachable::Login, lab.target.addr.port()),
            jump_target_port: server(Unreachable::Jump, lab.target.addr.port()),
            service,
            local: pick(Unreachable::Local),
            remote: pick(Unreachable::Remote),
            socks: pick(Unreachable::Socks),
        })
    }

    async fn run(&self, lab: &Lab, table: &mut Table) {
        let direct = Hop {
            opts: lab.connect_options("target", self.target_port),
            route: Route::Direct,
        };
        let session = table.step(LOGIN, login(&direct)).await;
        match &session {
            Some(s) => self.direct_steps(s, table).await,
            None => {
                for label in [EXEC, EXEC_BULK, LOCAL, REMOTE, DYNAMIC] {
                    table.not_run(label, "the login failed");
                }
            }
        }
        if let Some(s) = session {
            close(s).await;
        }
        let jump = Hop {
            opts: lab.connect_options("target", self.jump_target_port),
            route: Route::Jump(Box::new(Hop {
                opts: lab.connect_options("bastion", lab.bastion.addr.port()),
                route: Route::Direct,
            })),
        };
        let session = table
            .step(JUMP, jump_login(&jump, lab.target.addr.port()))
            .await;
        match session {
            Some(s) => {
                let forwards = forwards(&s);
                table
                    .step(
                        JUMP_LOCAL,
                        local_forward(&forwards, self.service, &self.data),
                    )
                    .await;
                shutdown(forwards).await;
                close(s).await;
            }
            None => table.not_run(JUMP_LOCAL, "the -J login failed"),
        }
    }

    async fn direct_steps(&self, session: &Session, table: &mut Table) {
        table.step(EXEC, echo_command(session)).await;
        table.step(EXEC_BULK, output_command(session)).await;
        let forwards = forwards(session);
        table
            .step(LOCAL, local_forward(&forwards, self.local, &self.data))
            .await;
        table
            .step(REMOTE, remote_forward(&forwards, self.remote, &self.data))
            .await;
        table
            .step(DYNAMIC, socks_proxy(&forwards, self.socks, &self.data))
            .await;
        shutdown(forwards).await;
    }
}

/// What a step measured.
enum Measure {
    Latency(Duration),
    Transfer(Transfer),
}

impl std::fmt::Display for Measure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
        match self {
            Measure::Latency(d) => write!(f, "{:.1} ms", ms(d)),
            Measure::Transfer(t) => {
                let secs = t.elapsed.as_secs_f64().max(1e-9);
                write!(f, "{:.1} MB/s", t.bytes as f64 / secs / 1e6)?;
                if let Some(rtt) = &t.rtt {
                    write!(f, ", round trip {:.2} ms", ms(rtt))?;
                }
                Ok(())
            }
        }
    }
}

/// The results table, printed a row at a time as steps finish.
struct Table {
    width: usize,
    started: Instant,
    ok: usize,
    failed: usize,
}

impl Table {
    fn new() -> Table {
        let width = STEPS.iter().map(|s| s.len()).max().unwrap_or(0);
        let table = Table {
            width,
            started: Instant::now(),
            ok: 0,
            failed: 0,
        };
        table.row("STEP", "RESULT", "MEASURED");
        table
    }

    fn row(&self, step: &str, result: &str, detail: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{step:<w$}  {result:<6}  {detail}", w = self.width);
        let _ = out.flush();
    }

    /// Runs one step within its time limit and prints its row.
    async fn step<T>(
        &mut self,
        label: &str,
        work: impl Future<Output = anyhow::Result<(T, Measure)>>,
    ) -> Option<T> {
        let left = BUDGET.saturating_sub(self.started.elapsed());
        if left.is_zero() {
            self.not_run(
                label,
                &format!("the demo's {}s were used up", BUDGET.as_secs()),
            );
            return None;
        }
        let limit = STEP_TIMEOUT.min(left);
        match tokio::time::timeout(limit, work).await {
            Ok(Ok((value, measure))) => {
                self.ok += 1;
                self.row(label, "ok", &measure.to_string());
                Some(value)
            }
            Ok(Err(e)) => {
                self.fail(label, &reason(&e));
                None
            }
            Err(_) => {
                self.fail(
                    label,
                    &format!("no result within {:.1}s", limit.as_secs_f64()),
                );
                None
            }
        }
    }

    fn not_run(&mut self, label: &str, why: &str) {
        self.fail(label, &format!("not run: {why}"));
    }

    fn fail(&mut self, label: &str, reason: &str) {
        self.failed += 1;
        self.row(label, "FAILED", &reason.replace('\n', " "));
    }

    /// Prints the summary line; returns the exit code.
    fn finish(&self) -> u8 {
        let total = self.ok + self.failed;
        let secs = self.started.elapsed().as_secs_f64();
        println!();
        if self.failed == 0 {
            println!("all {total} steps ok in {secs:.1}s");
            0
        } else {
            println!("{} of {total} steps FAILED ({secs:.1}s)", self.failed);
            1
        }
    }
}

/// The error and its causes on one line, each said once (an error's own
/// message often repeats its source's).
fn reason(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for part in e.chain().map(|c| c.to_string()) {
        if out.contains(&part) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&part);
    }
    out
}

async fn login(hop: &Hop) -> anyhow::Result<(Session, Measure)> {
    let start = Instant::now();
    let session = session::connect_hop(hop, Arc::new(NoPrompt)).await?;
    Ok((session, Measure::Latency(start.elapsed())))
}

/// Logs in to the target through the bastion and checks, from the
/// session's `SSH_CONNECTION`, that the command ran on the target.
async fn jump_login(hop: &Hop, target_port: u16) -> anyhow::Result<(Session, Measure)> {
    let (session, measure) = login(hop).await?;
    let (out, _) = command(&session, "echo $SSH_CONNECTION").await?;
    let text = String::from_utf8_lossy(&out);
    let port = text.split_whitespace().nth(3).unwrap_or("");
    ensure!(
        port == target_port.to_string(),
        "the session ran on port {port:?}, not on the target's {target_port}"
    );
    Ok((session, measure))
}

async fn echo_command(session: &Session) -> anyhow::Result<((), Measure)> {
    let (out, elapsed) = command(session, "echo warren-demo $((6 * 7))").await?;
    ensure!(
        out == b"warren-demo 42\n",
        "unexpected output {:?}",
        String::from_utf8_lossy(&out)
    );
    Ok(((), Measure::Latency(elapsed)))
}

/// A command's output, checked byte for byte: `yes` cut to 16 MiB.
async fn output_command(session: &Session) -> anyhow::Result<((), Measure)> {
    let line = b"warren-demo\n";
    let expected: Vec<u8> = line.iter().copied().cycle().take(traffic::BULK).collect();
    let cmd = format!("yes warren-demo | head -c {}", traffic::BULK);
    let (out, elapsed) = command(session, &cmd).await?;
    traffic::check(&out, &expected)?;
    let transfer = Transfer {
        bytes: out.len(),
        elapsed,
        rtt: None,
    };
    Ok(((), Measure::Transfer(transfer)))
}

/// Runs `cmd` on a session channel, stdin empty; returns its stdout and
/// the time it took. A non-zero exit is an error naming the command's
/// stderr.
async fn command(session: &Session, cmd: &str) -> anyhow::Result<(Vec<u8>, Duration)> {
    let opts = RunOptions {
        command: Some(cmd.to_owned()),
        term: "dumb".to_owned(),
        stdin_null: true,
        ..RunOptions::default()
    };
    let (stdout, mut out_read) = tokio::io::duplex(1 << 20);
    let (stderr, mut err_read) = tokio::io::duplex(64 << 10);
    let stdio = Stdio {
        stdin: Box::new(tokio::io::empty()),
        stdout: Box::new(stdout),
        stderr: Box::new(stderr),
        terminal: None,
        raw_mode: false,
    };
    let start = Instant::now();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (exit, read_out, read_err) = tokio::join!(
        exec::run_with(session.handle(), &opts, stdio, || {}),
        out_read.read_to_end(&mut out),
        read_all(&mut err_read, &mut err),
    );
    let elapsed = start.elapsed();
    let exit = exit.with_context(|| format!("running `{cmd}`"))?;
    read_out.context("reading the command's output")?;
    read_err.context("reading the command's errors")?;
    ensure!(
        exit == Exit::Status(0),
        "`{cmd}` ended with {exit:?}: {}",
        String::from_utf8_lossy(&err).trim()
    );
    Ok((out, elapsed))
}

async fn read_all(from: &mut DuplexStream, into: &mut Vec<u8>) -> std::io::Result<usize> {
    from.read_to_end(into).await
}

fn forwards(session: &Session) -> Forwards {
    Forwards::new(session, ForwardOptions::default(), CancellationToken::new())
}

fn tcp(host: &str, port: u16) -> Endpoint {
    Endpoint::Tcp {
        host: Some(host.to_owned()),
        port,
    }
}

/// `-L 127.0.0.1:0:DEST`: the forward's port is the one the kernel picked.
async fn local_forward(
    forwards: &Forwards,
    dest: SocketAddrV4,
    data: &Arc<[u8]>,
) -> anyhow::Result<((), Measure)> {
    let spec = ForwardSpec::Local {
        listen: tcp("127.0.0.1", 0),
        connect: tcp(&dest.ip().to_string(), dest.port()),
    };
    let added = forwards.add(&spec).await?;
    let port = added
        .local_port
        .context("the -L listener reported no port")?;
    through(SocketAddr::from(([127, 0, 0, 1], port)), None, data)
        .await
        .with_context(|| format!("-L 127.0.0.1:{port}:{dest}"))
}

/// `-R 127.0.0.1:0:DEST`: the server listens on the port it allocated and
/// sends each connection back here, to DEST.
async fn remote_forward(
    forwards: &Forwards,
    dest: SocketAddrV4,
    data: &Arc<[u8]>,
) -> anyhow::Result<((), Measure)> {
    let spec = ForwardSpec::Remote {
        listen: tcp("127.0.0.1", 0),
        connect: Some(tcp(&dest.ip().to_string(), dest.port())),
    };
    let added = forwards.add(&spec).await?;
    let port = added
        .allocated_port
        .and_then(|p| u16::try_from(p).ok())
        .context("the server allocated no port for -R 0")?;
    through(SocketAddr::from(([127, 0, 0, 1], port)), None, data)
        .await
        .with_context(|| format!("-R 127.0.0.1:{port}:{dest}"))
}

/// `-D 127.0.0.1:0`, then a SOCKS5 CONNECT to DEST through it.
async fn socks_proxy(
    forwards: &Forwards,
    dest: SocketAddrV4,
    data: &Arc<[u8]>,
) -> anyhow::Result<((), Measure)> {
    let spec = ForwardSpec::Dynamic {
        listen: tcp("127.0.0.1", 0),
    };
    let added = forwards.add(&spec).await?;
    let port = added
        .local_port
        .context("the -D listener reported no port")?;
    through(SocketAddr::from(([127, 0, 0, 1], port)), Some(dest), data)
        .await
        .with_context(|| format!("-D 127.0.0.1:{port}"))
}

/// Connects to `addr` (through SOCKS5 to `socks_dest` if given) and
/// measures pings and a bulk transfer.
async fn through(
    addr: SocketAddr,
    socks_dest: Option<SocketAddrV4>,
    data: &Arc<[u8]>,
) -> anyhow::Result<((), Measure)> {
    let mut stream = traffic::connect(addr).await?;
    if let Some(dest) = socks_dest {
        traffic::socks5_connect(&mut stream, dest).await?;
    }
    let transfer = traffic::exchange(stream, data).await?;
    Ok(((), Measure::Transfer(transfer)))
}

async fn shutdown(forwards: Forwards) {
    let _ = tokio::time::timeout(Duration::from_secs(2), forwards.shutdown()).await;
}

async fn close(session: Session) {
    let _ = tokio::time::timeout(Duration::from_secs(2), session.close()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_say_each_cause_once() {
        let e = anyhow::anyhow!("connection refused")
            .context("jump host bastion failed: connection refused")
            .context("-J");
        assert_eq!(
            reason(&e),
            "-J: jump host bastion failed: connection refused"
        );
        let e = anyhow::anyhow!("reset").context("-L 1:2");
        assert_eq!(reason(&e), "-L 1:2: reset");
    }

    #[test]
    fn measures_read_as_latency_or_throughput() {
        let latency = Measure::Latency(Duration::from_micros(4_260));
        assert_eq!(latency.to_string(), "4.3 ms");
        let transfer = Measure::Transfer(Transfer {
            bytes: 50_000_000,
            elapsed: Duration::from_millis(250),
            rtt: Some(Duration::from_micros(120)),
        });
        assert_eq!(transfer.to_string(), "200.0 MB/s, round trip 0.12 ms");
    }
}
