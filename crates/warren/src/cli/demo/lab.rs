//! The demo's throwaway world: two `warren serve` servers in this process
//! (a bastion and a target) on free loopback ports, each with a fresh host
//! key, a fresh client key they both accept, a known_hosts naming exactly
//! those two host keys, and the TCP service every forward leads to.
//!
//! Design choice: nothing comes from the user's files. The client key and
//! known_hosts live in a private temp directory (0700, removed on drop)
//! because the client reads both from paths; the connect options are built
//! here field by field, so no ssh_config is read and no agent is asked
//! (`SSH_AUTH_SOCK` is never looked at), and host keys are checked strictly
//! against the throwaway known_hosts.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use russh::keys::PrivateKey;
use russh::keys::ssh_key::LineEnding;
use tokio::task::JoinHandle;
use warren_core::algorithms::AlgorithmOptions;
use warren_core::session::options::{AddKeys, DEFAULT_WINDOW};
use warren_core::session::{
    AddressFamily, AuthOptions, ConnectOptions, HostKeyOptions, StrictHostKeyChecking,
};
use warren_server::{AuthorizedKeys, Login, Server, ServerConfig, ServerError, ShutdownHandle};

use super::traffic::Service;

/// How long a connection may take to be up (TCP, banner, key exchange).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One in-process server.
pub struct Served {
    pub addr: SocketAddr,
    pub fingerprint: String,
    shutdown: ShutdownHandle,
    task: JoinHandle<Result<(), ServerError>>,
}

/// Everything the steps run against; dropping it removes the temp dir.
pub struct Lab {
    dir: tempfile::TempDir,
    user: String,
    key: PathBuf,
    known_hosts: PathBuf,
    pub bastion: Served,
    pub target: Served,
    pub service: Service,
}

impl Lab {
    /// Creates the keys, starts both servers and the service that checks
    /// `payload`.
    pub async fn start(payload: Arc<[u8]>) -> anyhow::Result<Lab> {
        let dir = tempfile::Builder::new()
            .prefix("warren-demo-")
            .tempdir()
            .context("cannot create a private temp directory (set TMPDIR to a writable one)")?;
        let client_key = warren_server::hostkey::generate_ephemeral();
        let key = dir.path().join("id_ed25519");
        let pem = client_key
            .to_openssh(LineEnding::LF)
            .context("encoding the client key")?;
        write_private(&key, pem.as_bytes())?;
        let authorized = format!(
            "{} warren-demo\n",
            client_key
                .public_key()
                .to_openssh()
                .context("encoding the client key")?
        );
        // Sessions run /bin/sh in a home inside the temp dir: whatever a
        // command does lands there, not in the user's files.
        let home = dir.path().join("home");
        std::fs::create_dir(&home).with_context(|| format!("creating {}", home.display()))?;
        let login = Login {
            user: Login::current().user,
            home,
            shell: PathBuf::from("/bin/sh"),
        };
        let bastion = serve(&login, &authorized).await?;
        let target = serve(&login, &authorized).await?;
        let known_hosts = dir.path().join("known_hosts");
        let lines = [&bastion, &target]
            .iter()
            .map(|s| s.known_hosts_line.clone())
            .collect::<Vec<_>>()
            .join("");
        write_private(&known_hosts, lines.as_bytes())?;
        let service = Service::start(payload)
            .await
            .context("starting the test service on 127.0.0.1")?;
        Ok(Lab {
            dir,
            user: login.user,
            key,
            known_hosts,
            bastion: bastion.served,
            target: target.served,
            service,
        })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// How the client reaches `server`, named `name` in messages: strict
    /// host key checking against the throwaway known_hosts, the throwaway
    /// key only, nothing asked.
    pub fn connect_options(&self, name: &str, port: u16) -> ConnectOptions {
        ConnectOptions {
            host: name.to_owned(),
            hostname: "127.0.0.1".to_owned(),
            port,
            user: self.user.clone(),
            connect_timeout: Some(CONNECT_TIMEOUT),
            connection_attempts: 1,
            address_family: AddressFamily::Inet,
            bind_address: None,
            bind_interface: None,
            server_alive_interval: None,
            server_alive_count_max: 3,
            tcp_keep_alive: true,
            algorithms: AlgorithmOptions::default(),
            host_keys: HostKeyOptions {
                user_known_hosts: vec![self.known_hosts.clone()],
                global_known_hosts: Vec::new(),
                strict: StrictHostKeyChecking::Yes,
                hash_known_hosts: false,
                host_key_alias: None,
                check_host_ip: false,
                visual_host_key: false,
                revoked_host_keys: None,
                known_hosts_command: None,
                update_host_keys: Default::default(),
                ca_signature_algorithms: Vec::new(),
                required_rsa_size: 0,
            },
            auth: AuthOptions {
                identity_files: vec![self.key.clone()],
                identity_files_explicit: true,
                certificate_files: Vec::new(),
                identities_only: true,
                identity_agent: None,
                preferred: vec!["publickey".to_owned()],
                batch_mode: true,
                pubkey: true,
                password: false,
                kbd_interactive: false,
                number_of_password_prompts: 1,
                add_keys_to_agent: AddKeys::No,
                add_keys_lifetime: None,
                pubkey_algorithms: Vec::new(),
            },
            window_size: DEFAULT_WINDOW,
            forward_agent: None,
            rekey: Default::default(),
            show_banner: false,
            unsupported: Vec::new(),
            gssapi: false,
        }
    }

    /// Stops the servers and the service; the temp dir goes with
    /// `self`.
    pub async fn stop(self) {
        self.service.stop().await;
        for served in [self.bastion, self.target] {
            served.shutdown.shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(3), served.task).await;
        }
    }
}

/// A server being started, with its known_hosts line.
struct Started {
    served: Served,
    known_hosts_line: String,
}

async fn serve(login: &Login, authorized: &str) -> anyhow::Result<Started> {
    let host_key: PrivateKey = warren_server::hostkey::generate_ephemeral();
    let mut config = ServerConfig::new(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        vec![host_key],
        AuthorizedKeys::Text(authorized.to_owned()),
    );
    config.login = login.clone();
    config.sftp = false;
    config.login_grace_time = Duration::from_secs(10);
    config.shutdown_grace = Duration::from_secs(1);
    let server = Server::bind(config).await?;
    let addr = server.local_addr();
    let public = server
        .host_public_key()
        .to_openssh()
        .context("encoding a host key")?;
    let known_hosts_line = format!("[127.0.0.1]:{} {public}\n", addr.port());
    let fingerprint = server.host_key_fingerprint();
    let shutdown = server.shutdown_handle();
    let task = tokio::spawn(server.run());
    Ok(Started {
        served: Served {
            addr,
            fingerprint,
            shutdown,
            task,
        },
        known_hosts_line,
    })
}

/// Creates `path` readable by the owner only (the client refuses a key
/// others can read) and writes `bytes`.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// A loopback port nobody listens on (bound, then released), for
/// `--unreachable`.
pub fn closed_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").context("finding a closed port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}
