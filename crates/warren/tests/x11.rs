//! X11 forwarding against real sshd (`X11Forwarding yes`): Xvfb is the
//! local display, and `xdpyinfo` run on the remote side must reach it
//! through warren, trusted (-Y) and untrusted (-X with
//! ForwardX11Trusted=no, a cookie from `xauth generate ... untrusted`).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{script, text, warren};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use warren_testkit::Sshd;

/// An Xvfb display with its own authority file; killed on drop.
struct Display {
    child: Child,
    name: String,
    auth: PathBuf,
    _dir: tempfile::TempDir,
}

impl Display {
    fn start() -> Display {
        assert!(
            Path::new("/usr/bin/Xvfb").exists() && Path::new("/usr/bin/xdpyinfo").exists(),
            "Xvfb and xdpyinfo are needed: apt-get install xvfb x11-utils xauth (scripts/test does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let auth = dir.path().join("Xauthority");
        // A display number nobody uses.
        let n = (0..200)
            .map(|i| 300 + (std::process::id() % 300) + i)
            .find(|n| {
                !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                    && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
            })
            .unwrap();
        let name = format!(":{n}");
        let cookie: String = (0..16)
            .map(|i| format!("{:02x}", (i * 17 + 3) % 256))
            .collect();
        let added = Command::new("xauth")
            .arg("-f")
            .arg(&auth)
            .args(["add", &name, ".", &cookie])
            .output()
            .unwrap();
        assert!(added.status.success(), "{}", text(&added.stderr));
        let child = Command::new("Xvfb")
            .args([&name, "-nolisten", "tcp", "-auth"])
            .arg(&auth)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let socket = format!("/tmp/.X11-unix/X{n}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !Path::new(&socket).exists() {
            assert!(Instant::now() < deadline, "Xvfb {name} never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        Display {
            child,
            name,
            auth,
            _dir: dir,
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        // SIGTERM: Xvfb removes its socket and lock file (SIGKILL leaves them).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// sshd with X11 forwarding; its xauth writes to a file of the test's.
fn sshd(remote_auth: &Path) -> Sshd {
    let dir = remote_auth.parent().unwrap();
    let wrapper = script(
        dir.join("xauth-wrapper"),
        &format!("exec /usr/bin/xauth -f {} \"$@\"\n", remote_auth.display()),
    );
    Sshd::builder()
        .config("X11Forwarding yes")
        .config("X11UseLocalhost yes")
        .config(format!("XAuthLocation {}", wrapper.display()))
        .start()
}

fn xdpyinfo(
    display: &Display,
    sshd: &Sshd,
    remote_auth: &Path,
    flags: &[&str],
) -> std::process::Output {
    warren()
        .env("DISPLAY", &display.name)
        .env("XAUTHORITY", &display.auth)
        .args(["ssh", "-F"])
        .arg(sshd.client_config())
        .args(flags)
        .arg("test")
        .arg(format!(
            "XAUTHORITY={} xdpyinfo | head -5; echo DISPLAY=$DISPLAY",
            remote_auth.display()
        ))
        .output()
        .unwrap()
}

#[test]
fn xdpyinfo_on_the_remote_reaches_the_local_display() {
    // Catches: -Y refused as "not supported yet" (no X11 at all).
    let display = Display::start();
    let remote = tempfile::tempdir().unwrap();
    let remote_auth = remote.path().join("remote-Xauthority");
    let sshd = sshd(&remote_auth);
    let out = xdpyinfo(&display, &sshd, &remote_auth, &["-Y"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("name of display:") && stdout.contains("vendor string:"),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("DISPLAY=localhost:1"), "{stdout}");
    // Without X11 forwarding the remote side has no display.
    let out = xdpyinfo(&display, &sshd, &remote_auth, &["-x"]);
    assert!(!text(&out.stdout).contains("vendor string:"));
}

#[test]
fn untrusted_forwarding_generates_an_untrusted_cookie() {
    // Catches: -X refused as "not supported yet", or the user's own
    // (trusted) cookie used where ForwardX11Trusted=no asks for a
    // generated untrusted one. (Xvfb here refuses generated cookies, for
    // OpenSSH's ssh too, so the check is the xauth call, through a
    // logging XAuthLocation.)
    let display = Display::start();
    let remote = tempfile::tempdir().unwrap();
    let remote_auth = remote.path().join("remote-Xauthority");
    let sshd = sshd(&remote_auth);
    let calls = remote.path().join("xauth-calls");
    let logging = script(
        remote.path().join("xauth-logging"),
        &format!(
            "echo \"$*\" >> {}\nexec /usr/bin/xauth \"$@\"\n",
            calls.display()
        ),
    );
    let xauth = format!("XAuthLocation={}", logging.display());
    let out = xdpyinfo(
        &display,
        &sshd,
        &remote_auth,
        &[
            "-X",
            "-o",
            "ForwardX11Trusted=no",
            "-o",
            &xauth,
            "-o",
            "ForwardX11Timeout=5m",
        ],
    );
    let log = std::fs::read_to_string(&calls).unwrap_or_default();
    let want = format!(
        "generate {} MIT-MAGIC-COOKIE-1 untrusted timeout 360",
        display.name
    );
    assert!(
        log.contains(&want),
        "xauth calls:\n{log}\nstderr:\n{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("DISPLAY=localhost:1"),
        "{}",
        text(&out.stdout)
    );
}
