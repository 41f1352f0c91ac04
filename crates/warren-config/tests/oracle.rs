//! Oracle test: the real OpenSSH `ssh -G` and warren-config must print the
//! same configuration for a corpus of configs and command lines.
//!
//! Every line is compared except the algorithm lists, which are warren's
//! own. The configs live in a temporary directory and use absolute paths,
//! because ssh resolves `~` through the passwd database, not `$HOME`.
//! A missing `/usr/bin/ssh` fails the test: the oracle is the point.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "fixture helpers: any failure should abort the test loudly"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use warren_config::{
    Algorithms, CommandLine, ConfigError, ConfigFile, Flag, LineErrorKind, SystemEnvironment,
    resolve,
};

const SSH: &str = "/usr/bin/ssh";

/// Keys whose values are warren's algorithm choices, not OpenSSH's.
const ALGORITHM_KEYS: &[&str] = &[
    "ciphers",
    "macs",
    "kexalgorithms",
    "hostkeyalgorithms",
    "pubkeyacceptedalgorithms",
    "casignaturealgorithms",
    "hostbasedacceptedalgorithms",
];

struct Case {
    name: &'static str,
    /// (file name relative to the case directory, contents); `@DIR@` is
    /// replaced by the case directory. The first file is passed to `-F`.
    files: &'static [(&'static str, &'static str)],
    /// ssh arguments after `-G -F <file>`, destination included.
    args: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "defaults",
        files: &[("config", "")],
        args: &["example.com"],
    },
    Case {
        name: "first value wins, Host patterns and negation",
        files: &[(
            "config",
            "Host *.example.com !db.example.com\n  User web\n  Port 2222\nHost db.example.com\n  User dba\nHost *\n  User fallback\n  Port 22\n  Compression yes\n",
        )],
        args: &["app.example.com"],
    },
    Case {
        name: "negated host skips the block",
        files: &[(
            "config",
            "Host *.example.com !db.example.com\n  User web\nHost *\n  User other\n",
        )],
        args: &["db.example.com"],
    },
    Case {
        name: "HostName with %h, uppercase destination, Match host",
        files: &[(
            "config",
            "Host short\n  HostName %h.internal.example\nMatch host *.internal.example\n  User matched\n  IdentityFile @DIR@/id_%h_%r_%p\n",
        )],
        args: &["SHORT"],
    },
    Case {
        name: "hostname lowercase and Match originalhost",
        files: &[(
            "config",
            "Host Short\n  HostName TARGET.example\nMatch originalhost Short\n  Port 2200\n",
        )],
        args: &["Short"],
    },
    Case {
        name: "Match user, localuser, exec with tokens",
        files: &[(
            "config",
            "Match user deploy\n  Port 1111\nMatch localuser root exec \"test %h = box && test %r = deploy\"\n  ServerAliveInterval 30\nMatch exec false\n  ServerAliveCountMax 9\nMatch !exec false\n  ConnectTimeout 7\n",
        )],
        args: &["-l", "deploy", "box"],
    },
    Case {
        name: "Match final re-parses with canonical host name",
        files: &[(
            "config",
            "Host alias\n  HostName real.example\nHost real.example\n  User second-pass\nMatch final host real.example\n  Port 4444\nMatch canonical\n  ConnectionAttempts 3\nMatch !final\n  TCPKeepAlive no\n",
        )],
        args: &["alias"],
    },
    Case {
        name: "Match all and comments",
        files: &[(
            "config",
            "# leading comment\nMatch all # trailing\n  User everyone # not a comment for User? \n",
        )],
        args: &["h"],
    },
    Case {
        name: "Include relative-to-absolute glob, nested, inside Match",
        files: &[
            (
                "config",
                "Include @DIR@/conf.d/*.conf\nHost inc\n  Include @DIR@/host.d/extra\nHost *\n  Port 2022\n",
            ),
            (
                "conf.d/10-first.conf",
                "Host inc\n  User from-10\n  SendEnv LANG\n",
            ),
            (
                "conf.d/20-second.conf",
                "Host inc\n  User from-20\n  SendEnv LC_*\nInclude @DIR@/nested/n.conf\n",
            ),
            ("conf.d/skip.txt", "User never\n"),
            ("nested/n.conf", "Host *\n  ForwardAgent yes\n"),
            (
                "host.d/extra",
                "LogLevel VERBOSE\nHost other\n  ServerAliveInterval 5\n",
            ),
        ],
        args: &["inc"],
    },
    Case {
        name: "Include under a non-matching block does not apply",
        files: &[
            (
                "config",
                "Host nope\n  Include @DIR@/inc.conf\nHost *\n  User plain\n",
            ),
            ("inc.conf", "User included\nHost *\n  Port 3333\n"),
        ],
        args: &["h"],
    },
    Case {
        name: "relative Include that matches nothing",
        files: &[(
            "config",
            "Include warren-oracle-does-not-exist-*.conf\nUser x\n",
        )],
        args: &["h"],
    },
    Case {
        name: "accumulating IdentityFile, CertificateFile, forwards, SendEnv, SetEnv",
        files: &[(
            "config",
            "Host *\n  IdentityFile @DIR@/id_one\n  IdentityFile @DIR@/id_two\n  IdentityFile @DIR@/id_one\n  CertificateFile @DIR@/cert_%h\n  LocalForward 5432 db:5432\n  LocalForward 127.0.0.1:8080 [::1]:80\n  LocalForward 5432 db:5432\n  RemoteForward 2222 localhost:22\n  RemoteForward 9000\n  DynamicForward 1080\n  DynamicForward localhost:1081\n  SendEnv LANG LC_*\n  SendEnv -LC_* XMODIFIERS\n  SetEnv FOO=bar BAZ=\"q u x\"\n  SetEnv IGNORED=yes\n",
        )],
        args: &["h"],
    },
    Case {
        name: "tokens in ControlPath, UserKnownHostsFile, RemoteCommand, ProxyCommand, LocalCommand",
        files: &[(
            "config",
            "Host *\n  ControlPath @DIR@/cm-%C-%r@%h:%p-%n-%L-%l-%u-%i-%d-%k\n  UserKnownHostsFile @DIR@/kh_%h @DIR@/kh2_%%\n  RemoteCommand echo %h %p %r %%\n  ProxyCommand nc %h %p\n  LocalCommand echo %n\n  HostKeyAlias MyAlias\n  User u\n  Port 2201\n",
        )],
        args: &["tok.example"],
    },
    Case {
        name: "ProxyJump wins over later ProxyCommand",
        files: &[(
            "config",
            "Host *\n  ProxyJump me@bastion:2222,10.0.0.1\n  ProxyCommand nc %h %p\n",
        )],
        args: &["h"],
    },
    Case {
        name: "ProxyJump none",
        files: &[(
            "config",
            "Host *\n  ProxyJump none\n  ProxyCommand nc %h %p\n",
        )],
        args: &["h"],
    },
    Case {
        name: "-o options come first, both spellings",
        files: &[(
            "config",
            "Host *\n  User config-user\n  Port 2000\n  ServerAliveInterval 10\n",
        )],
        args: &[
            "-o",
            "User=opt-user",
            "-o",
            "Port 3000",
            "-oServerAliveInterval=1h30m",
            "h",
        ],
    },
    Case {
        name: "-p -l -i flags versus config and user@host",
        files: &[(
            "config",
            "Host *\n  User config-user\n  Port 2000\n  IdentityFile /etc/hostname\n",
        )],
        args: &[
            "-p",
            "2022",
            "-i",
            "/etc/passwd",
            "-i",
            "/nonexistent-warren-key",
            "other@h",
            "-l",
            "late",
        ],
    },
    Case {
        name: "-l before user@host wins",
        files: &[("config", "")],
        args: &["-l", "early", "other@h"],
    },
    Case {
        name: "typed flags overwrite config",
        files: &[(
            "config",
            "Host *\n  ForwardAgent no\n  Compression no\n  AddressFamily inet6\n  RequestTTY no\n  LogLevel ERROR\n  ControlMaster no\n  GatewayPorts no\n  EscapeChar %\n  BindAddress 10.0.0.1\n",
        )],
        args: &[
            "-A",
            "-C",
            "-4",
            "-t",
            "-t",
            "-vv",
            "-M",
            "-g",
            "-e",
            "^B",
            "-b",
            "127.0.0.1",
            "-S",
            "/tmp/ctl-%h",
            "h",
        ],
    },
    Case {
        name: "-N -n -f -q -T -x -L -R -D -W",
        files: &[("config", "Host *\n  LocalForward 7000 a:70\n")],
        args: &[
            "-N",
            "-n",
            "-f",
            "-q",
            "-T",
            "-Y",
            "-L",
            "8000:b:80",
            "-R",
            "9000:c:90",
            "-D",
            "1080",
            "h",
        ],
    },
    Case {
        name: "-W changes forwarding defaults",
        files: &[("config", "Host *\n  LocalForward 7000 a:70\n")],
        args: &["-W", "target:22", "h"],
    },
    Case {
        name: "ClearAllForwardings",
        files: &[(
            "config",
            "Host *\n  ClearAllForwardings yes\n  LocalForward 7000 a:70\n  Tunnel yes\n",
        )],
        args: &["-L", "8000:b:80", "h"],
    },
    Case {
        name: "quoting, equals signs, case, tabs",
        files: &[(
            "config",
            "HOST=h\n\tuser \"quoted user\"\n  port=2345\n  IdentityFile \"@DIR@/with space\"\n  SetEnv \"A=b c\" D='e f'\n  ProxyCommand sh -c \"nc %h %p\" # kept\n  HostKeyAlias=MiXeD\n",
        )],
        args: &["h"],
    },
    Case {
        name: "typed values: durations, multistates, numbers",
        files: &[(
            "config",
            "Host *\n  ConnectTimeout 1m\n  ServerAliveInterval 1h30m\n  ServerAliveCountMax 5\n  ConnectionAttempts 4\n  ControlPersist 10m\n  ControlMaster autoask\n  StrictHostKeyChecking accept-new\n  AddKeysToAgent confirm 5m\n  RequestTTY force\n  SessionType subsystem\n  PubkeyAuthentication host-bound\n  CanonicalizeMaxDots 3\n  ForwardX11Timeout 2h\n  RekeyLimit 1G 1h\n  IPQoS af21 cs1\n  StreamLocalBindMask 0022\n  TunnelDevice 3:any\n  Tunnel point-to-point\n  VerifyHostKeyDNS ask\n  UpdateHostKeys ask\n  FingerprintHash md5\n  EscapeChar none\n  SyslogFacility LOCAL3\n  LogVerbose kex.c:*:1000 packet.c:*\n  NumberOfPasswordPrompts 1\n  RequiredRSASize 2048\n  PermitRemoteOpen localhost:8080 [::1]:*\n  CanonicalDomains Example.com. b.example\n  GlobalKnownHostsFile /etc/a /etc/b\n  ForwardAgent /tmp/agent.sock\n  IdentityAgent none\n  KbdInteractiveDevices pam\n  PreferredAuthentications publickey,password\n  XAuthLocation /opt/xauth\n  SecurityKeyProvider none\n  KnownHostsCommand /bin/kh %h\n  RevokedHostKeys /etc/revoked\n  IgnoreUnknown Foo*,Bar\n  FooOption 1\n  Protocol 2\n  UseRoaming no\n",
        )],
        args: &["h"],
    },
    Case {
        name: "Debian keywords and aliases",
        files: &[(
            "config",
            "Host *\n  GSSAPIAuthentication yes\n  GSSAPIKeyExchange yes\n  GSSAPIClientIdentity me@REALM\n  GSSAPIServerIdentity host@REALM\n  GSSAPITrustDNS yes\n  GSSAPIRenewalForcesRekey yes\n  ChallengeResponseAuthentication no\n  KeepAlive no\n  ProtocolKeepAlives 15\n  PKCS11Provider /usr/lib/p11.so\n",
        )],
        args: &["h"],
    },
    Case {
        name: "addresses are canonicalised, not lowercased",
        files: &[("config", "Host 127.1\n  HostName 10.0.0.01\n")],
        args: &["127.1"],
    },
    Case {
        name: "ipv6 destination",
        files: &[("config", "Host ::0001\n  Port 2022\n")],
        args: &["::0001"],
    },
    Case {
        name: "Unix socket forwards with tokens",
        files: &[(
            "config",
            "Host *\n  LocalForward @DIR@/l-%h.sock /run/r.sock\n  RemoteForward /run/remote-%r.sock 127.0.0.1:80\n",
        )],
        args: &["h"],
    },
    Case {
        name: "final pass re-adds SendEnv and IdentityFile",
        files: &[(
            "config",
            "SendEnv LANG\nIdentityFile @DIR@/k\nLocalForward 1 a:1\nMatch final\n  User f\n",
        )],
        args: &["h"],
    },
    Case {
        name: "-i and IdentityFile of the same path, -o IdentityFile",
        files: &[(
            "config",
            "IdentityFile /etc/passwd\nIdentityFile /etc/hostname\n",
        )],
        args: &["-i", "/etc/passwd", "-o", "IdentityFile=/etc/hostname", "h"],
    },
    Case {
        name: "Host comma is literal, Match host comma is a list, negations",
        files: &[(
            "config",
            "Host a,h\n  User literal\nMatch host x,h\n  Port 1234\nMatch !host nothing !originalhost other\n  ServerAliveInterval 9\nHost=* !h\n  Compression yes\n",
        )],
        args: &["h"],
    },
    Case {
        name: "Match exec tokens %C %L %l %u %i %d %n %k",
        files: &[(
            "config",
            "Match exec \"test %C = 0 || echo %L %l %u %i %d %n %k %p %r >/dev/null\"\n  User tokens-ran\n",
        )],
        args: &["h"],
    },
    Case {
        name: "IgnoreUnknown only covers later lines",
        files: &[("config", "Foo yes\nIgnoreUnknown Foo\n")],
        args: &["h"],
    },
    Case {
        name: "IgnoreUnknown in an inactive block does not apply",
        files: &[(
            "config",
            "Host nomatch\n  IgnoreUnknown Foo\nHost *\n  Foo yes\n",
        )],
        args: &["h"],
    },
    Case {
        name: "recursive include",
        files: &[("config", "Include @DIR@/config\n")],
        args: &["h"],
    },
    Case {
        name: "empty Host argument",
        files: &[("config", "Host \"\"\n")],
        args: &["h"],
    },
    Case {
        name: "Match host without argument",
        files: &[("config", "Match host\n")],
        args: &["h"],
    },
    Case {
        name: "Match all combined",
        files: &[("config", "Match all host x\n")],
        args: &["h"],
    },
    Case {
        name: "keyword without argument",
        files: &[("config", "Port\n")],
        args: &["h"],
    },
    Case {
        name: "unterminated quote",
        files: &[("config", "User \"abc\n")],
        args: &["h"],
    },
    Case {
        name: "extra arguments",
        files: &[("config", "Port 22 23\n")],
        args: &["h"],
    },
    Case {
        name: "unknown %token in HostName",
        files: &[("config", "HostName %z\n")],
        args: &["h"],
    },
    Case {
        name: "misc values",
        files: &[(
            "config",
            "ControlPersist 0\nAddKeysToAgent 1h\nIdentityAgent ${HOME}/agent.sock\nUserKnownHostsFile ~/kh\nGlobalKnownHostsFile none\nPermitRemoteOpen none\nPort ssh\nLocalForward 1234 /tmp/sock\nSetEnv A=1 A=2 B=3\nCipher des\nHostName %%weird%%\nKbdInteractiveAuthentication no\nCanonicalizeHostname no\nCanonicalizeFallbackLocal no\n",
        )],
        args: &["h"],
    },
    Case {
        name: "flags before -o and config: -p wins, -o user wins over config",
        files: &[("config", "Port 1\nUser c\n")],
        args: &["-p", "2", "-o", "Port=3", "-o", "User=o", "-l", "l", "h"],
    },
    Case {
        name: "-w -K -k -B -v -q -v",
        files: &[("config", "Tunnel ethernet\n")],
        args: &["-w", "1:2", "-K", "-k", "-B", "eth9", "-v", "-q", "-v", "h"],
    },
    Case {
        name: "Tunnel yes",
        files: &[("config", "Tunnel yes\nTunnelDevice 3\n")],
        args: &["h"],
    },
    Case {
        name: "environment variables where ssh expands them",
        files: &[(
            "config",
            "ControlPath ${HOME}/cm-%h\nUserKnownHostsFile ${HOME}/kh ~/kh2\nIdentityAgent ${HOME}/agent\nRemoteCommand echo ${HOME}\nIdentityFile ${HOME}/id\nGlobalKnownHostsFile ~/g\nCertificateFile %d/c\nCertificateFile %d/c\nLocalCommand ${HOME}\n",
        )],
        args: &["h"],
    },
    Case {
        name: "unset variable in ControlPath",
        files: &[("config", "ControlPath ${WARREN_ORACLE_UNSET}/x\n")],
        args: &["h"],
    },
    Case {
        name: "odd spacing and separators",
        files: &[(
            "config",
            "   Port    =   2200   \nUser=\"x y\"\t\n\tHostName\t\"h.example\"\nSendEnv  A B\tC\nIdentityFile a\\ b\n",
        )],
        args: &["h"],
    },
    Case {
        name: "Hostname with dot and non-ASCII user",
        files: &[("config", "HostName h.example.\nUser j\u{f6}rg\n")],
        args: &["h"],
    },
    Case {
        name: "-l with a shell metacharacter",
        files: &[("config", "")],
        args: &["-l", "a;b", "h"],
    },
    Case {
        name: "-l with a dollar is fine",
        files: &[("config", "")],
        args: &["-l", "a$b", "h"],
    },
    Case {
        name: "-o User is checked like -l",
        files: &[("config", "")],
        args: &["-o", "User=a|b", "h"],
    },
    Case {
        name: "config User is not checked",
        files: &[("config", "User a;b\n")],
        args: &["h"],
    },
    Case {
        name: "destination with a metacharacter",
        files: &[("config", "")],
        args: &["a;b"],
    },
    Case {
        name: "-J is strict",
        files: &[("config", "")],
        args: &["-J", "u@b$x", "h"],
    },
    Case {
        name: "-o ProxyJump is strict",
        files: &[("config", "")],
        args: &["-o", "ProxyJump=a;b", "h"],
    },
    Case {
        name: "config ProxyJump is lax",
        files: &[("config", "ProxyJump a;b\n")],
        args: &["h"],
    },
    Case {
        name: "included file writable by others is refused",
        files: &[
            ("config", "Include @DIR@/world-writable\n"),
            ("world-writable", "User x\n"),
        ],
        args: &["h"],
    },
    Case {
        name: "-F file writable by others is accepted",
        files: &[("world-writable", "User x\n")],
        args: &["h"],
    },
    Case {
        name: "canonicalization that finds nothing falls back",
        files: &[(
            "config",
            "CanonicalizeHostname yes\nCanonicalDomains nothere.invalid\nMatch canonical\n  User canon\n",
        )],
        args: &["localhost."],
    },
    Case {
        name: "canonicalization without fallback fails",
        files: &[(
            "config",
            "CanonicalizeHostname yes\nCanonicalDomains nothere.invalid\nCanonicalizeFallbackLocal no\n",
        )],
        args: &["zz"],
    },
    Case {
        name: "bad -p",
        files: &[("config", "")],
        args: &["-p", "0", "h"],
    },
    Case {
        name: "-J with -o ProxyCommand",
        files: &[("config", "")],
        args: &["-o", "ProxyCommand=nc %h %p", "-J", "b", "h"],
    },
    Case {
        name: "-J",
        files: &[("config", "ProxyCommand nc %h %p\n")],
        args: &["-J", "u@b:2,c", "h"],
    },
    Case {
        name: "jump loop",
        files: &[("config", "")],
        args: &["-J", "h", "h"],
    },
    Case {
        name: "Host -o is refused",
        files: &[("config", "")],
        args: &["-o", "Host=x", "h"],
    },
    Case {
        name: "ConnectionAttempts 0",
        files: &[("config", "ConnectionAttempts 0\n")],
        args: &["h"],
    },
    Case {
        name: "bad option is an error",
        files: &[("config", "Host *\n  Bogus yes\n")],
        args: &["h"],
    },
    Case {
        name: "bad value is an error",
        files: &[("config", "Port 0\nCompression maybe\n")],
        args: &["h"],
    },
    Case {
        name: "bad value in an inactive block is an error",
        files: &[("config", "Host nomatch\n  ServerAliveInterval soon\n")],
        args: &["h"],
    },
    Case {
        name: "unsupported Match attribute",
        files: &[("config", "Match localnetwork 10.0.0.0/8\n  User x\n")],
        args: &["h"],
    },
    Case {
        name: "bad -o",
        files: &[("config", "")],
        args: &["-o", "Port=x", "h"],
    },
];

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let slug: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let dir = std::env::temp_dir().join(format!("warren-oracle-{}-{slug}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_files(dir: &Path, case: &Case) -> PathBuf {
    for (name, contents) in case.files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents.replace("@DIR@", &dir.to_string_lossy())).unwrap();
        if name.contains("world-writable") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
    }
    dir.join(case.files[0].0)
}

/// The same argv, parsed the way warren's CLI will hand it over.
fn command_line(args: &[&str], config: &Path) -> CommandLine {
    let mut flags = Vec::new();
    let mut destination = None;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i];
        let mut value = || {
            i += 1;
            args[i].to_owned()
        };
        if let Some(rest) = arg.strip_prefix("-o").filter(|r| !r.is_empty()) {
            flags.push(Flag::Option(rest.to_owned()));
        } else if arg.starts_with('-') && arg.len() > 2 && !["-vv"].contains(&arg) {
            panic!("combine flags in the corpus one per argument: {arg}");
        } else {
            let flag = match arg {
                "-o" => Flag::Option(value()),
                "-p" => Flag::Port(value()),
                "-l" => Flag::User(value()),
                "-i" => Flag::Identity(value()),
                "-L" => Flag::LocalForward(value()),
                "-R" => Flag::RemoteForward(value()),
                "-D" => Flag::DynamicForward(value()),
                "-W" => Flag::StdioForward(value()),
                "-S" => Flag::ControlPath(value()),
                "-b" => Flag::BindAddress(value()),
                "-e" => Flag::EscapeChar(value()),
                "-J" => Flag::ProxyJump(value()),
                "-w" => Flag::TunnelDevice(value()),
                "-B" => Flag::BindInterface(value()),
                "-K" => Flag::Gssapi,
                "-k" => Flag::NoGssapiDelegation,
                "-v" => Flag::Verbose,
                "-4" => Flag::Ipv4,
                "-6" => Flag::Ipv6,
                "-A" => Flag::ForwardAgent,
                "-a" => Flag::NoForwardAgent,
                "-C" => Flag::Compression,
                "-t" => Flag::Tty,
                "-T" => Flag::NoTty,
                "-N" => Flag::NoCommand,
                "-n" => Flag::StdinNull,
                "-f" => Flag::Background,
                "-q" => Flag::Quiet,
                "-M" => Flag::Master,
                "-g" => Flag::GatewayPorts,
                "-x" => Flag::NoX11,
                "-X" => Flag::X11,
                "-Y" => Flag::TrustedX11,
                "-vv" => {
                    flags.push(Flag::Verbose);
                    Flag::Verbose
                }
                dest => {
                    let (user, host) = match dest.rsplit_once('@') {
                        Some((u, h)) => (Some(u.to_owned()), h.to_owned()),
                        None => (None, dest.to_owned()),
                    };
                    destination = Some(host);
                    Flag::Destination { user, port: None }
                }
            };
            flags.push(flag);
        }
        i += 1;
    }
    let mut cli = CommandLine::new(destination.expect("a destination"));
    cli.flags = flags;
    cli.config_file(ConfigFile::Path(config.to_path_buf()));
    cli
}

fn comparable(dump: &str) -> Vec<String> {
    dump.lines()
        .filter(|l| !ALGORITHM_KEYS.contains(&l.split(' ').next().unwrap_or("")))
        .map(str::to_owned)
        .collect()
}

fn diff(expected: &[String], actual: &[String]) -> String {
    let mut out = String::new();
    for line in expected.iter().filter(|l| !actual.contains(l)) {
        out.push_str(&format!("  - {line}\n"));
    }
    for line in actual.iter().filter(|l| !expected.contains(l)) {
        out.push_str(&format!("  + {line}\n"));
    }
    if out.is_empty() {
        out.push_str("  (same lines, different order)\n");
    }
    out
}

/// Run one case; `Err` describes the mismatch.
fn check(case: &Case) -> Result<(), String> {
    let dir = TempDir::new(case.name);
    let config = write_files(&dir.0, case);
    let output = Command::new(SSH)
        .arg("-G")
        .arg("-F")
        .arg(&config)
        .args(case.args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {SSH}: {e}"))?;
    let cli = command_line(case.args, &config);
    let ours = resolve(&cli, &SystemEnvironment::new(), &Algorithms::openssh());
    match (output.status.success(), ours) {
        (true, Ok(config)) => {
            let (expected, actual) = (
                comparable(&String::from_utf8_lossy(&output.stdout)),
                comparable(&config.dump()),
            );
            if expected == actual {
                Ok(())
            } else {
                Err(diff(&expected, &actual))
            }
        }
        (false, Err(e)) => same_messages(&e, &String::from_utf8_lossy(&output.stderr)),
        (true, Err(e)) => Err(format!("  ssh accepted it, we said: {e}\n")),
        (false, Ok(_)) => Err(format!(
            "  ssh rejected it ({}), we accepted it\n",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

/// Each bad line we report must be worded exactly as ssh worded it
/// (Match errors excepted: OpenSSH spreads those over two lines).
fn same_messages(ours: &ConfigError, stderr: &str) -> Result<(), String> {
    let lines: Vec<String> = match ours {
        ConfigError::BadOptions { errors, .. } => errors
            .iter()
            .filter(|e| !matches!(e.kind, LineErrorKind::BadMatch(_)))
            .map(ToString::to_string)
            .collect(),
        ConfigError::CommandLine(e) => vec![e.to_string()],
        _ => Vec::new(),
    };
    match lines.iter().find(|l| !stderr.contains(l.as_str())) {
        None => Ok(()),
        Some(line) => Err(format!(
            "  we said {line:?}, ssh said {:?}\n",
            stderr.trim()
        )),
    }
}

#[test]
fn ssh_dash_g_agrees() {
    assert!(
        Path::new(SSH).exists(),
        "{SSH} is missing: the oracle test needs OpenSSH's client installed"
    );
    eprintln!("checking {} cases against {SSH} -G", CASES.len());
    let failures: Vec<String> = CASES
        .iter()
        .filter_map(|case| {
            check(case)
                .err()
                .map(|d| format!("case {:?}:\n{d}", case.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from ssh -G:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}
