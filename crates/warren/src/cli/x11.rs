//! `-X` / `-Y` / ForwardX11: from the configuration to a session's X11
//! forwarding, with ssh's warnings when it cannot be set up (the session
//! goes on without it, as ssh's does).

use std::sync::Arc;

use warren_config::HostConfig;
use warren_core::session::Session;
use warren_core::session::x11::{X11Forwarding, X11Request};

/// X11 forwarding as the configuration asks for it.
pub fn request(host: &HostConfig) -> Option<X11Request> {
    host.forward_x11().then(|| X11Request {
        trusted: host.forward_x11_trusted(),
        timeout: host.forward_x11_timeout(),
        xauth: host.xauth_location().to_owned(),
    })
}

/// Sets X11 forwarding up on `session` for the next session channel.
pub async fn prepare(
    session: &Session,
    request: Option<&X11Request>,
) -> Option<Arc<X11Forwarding>> {
    let req = request?;
    let display = std::env::var("DISPLAY").ok();
    match X11Forwarding::prepare(display.as_deref(), req.trusted, req.timeout, &req.xauth).await {
        Ok(fwd) => {
            let fwd = Arc::new(fwd);
            session.remote_forwards().x11().set(fwd.clone());
            Some(fwd)
        }
        Err(e) => {
            tracing::warn!("Warning: {}", warren_wire::Chain(&e));
            None
        }
    }
}
