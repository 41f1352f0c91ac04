//! Setting up a session's forwards (-L, -D, -R) as ssh does: each local
//! listener bound before anything is reported ready, each remote forward
//! requested from the server; a failure is a warning, or fatal under
//! ExitOnForwardFailure.

use anyhow::bail;
use tracing::warn;
use warren_core::forward::ForwardSpec;
use warren_core::forward::manage::{Forwards, describe};
use warren_wire::Chain;

/// Starts every forward in `specs` on `forwards`.
pub async fn start(forwards: &Forwards, specs: &[ForwardSpec]) -> anyhow::Result<()> {
    for spec in specs {
        match forwards.add(spec).await {
            Ok(added) => {
                if let (Some(port), ForwardSpec::Remote { connect, .. }) =
                    (added.allocated_port, spec)
                {
                    // ssh prints this line on stderr, and scripts parse it.
                    eprintln!(
                        "Allocated port {port} for remote forward to {}",
                        describe(connect)
                    );
                }
            }
            Err(e) if forwards.options().exit_on_forward_failure => {
                bail!("{} (ExitOnForwardFailure is set)", Chain(&e))
            }
            Err(e) => warn!("Warning: {}", Chain(&e)),
        }
    }
    Ok(())
}
