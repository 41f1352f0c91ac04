//! Where a local forward (-L, -D) takes its SSH session from.
//!
//! Design choice: a forward does not own a fixed session handle but reads
//! a [`SessionSlot`], a `tokio::sync::watch` of the current session. Under
//! `warren ssh` the slot is filled once and never changes (a failed channel
//! open fails at once, as before). Under `warren tunnel` the supervisor
//! empties the slot when the session dies and fills it when a new one is
//! up: a connection accepted meanwhile waits, up to a bound, for the next
//! session instead of being refused, and an open that was under way on a
//! session that went away is retried on its successor.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use russh::client::{Handle, Msg};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::session::ClientHandler;

/// A session handle shared by the tasks that open channels on it.
pub type SharedHandle = Arc<Handle<ClientHandler>>;

/// Why a forwarded connection got no channel.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("no SSH session came up within {0:?}")]
    NoSession(Duration),
    #[error("the server did not open the channel within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Ssh(#[from] russh::Error),
}

/// The current session of a forward; cheap to clone (clones share it).
#[derive(Clone)]
pub struct SessionSlot {
    tx: Arc<watch::Sender<Option<SharedHandle>>>,
    /// `None`: a fixed session, never waited for.
    wait: Option<Duration>,
}

impl SessionSlot {
    /// A slot holding `handle` for good (`warren ssh`).
    pub fn fixed(handle: SharedHandle) -> SessionSlot {
        SessionSlot {
            tx: Arc::new(watch::Sender::new(Some(handle))),
            wait: None,
        }
    }

    /// An empty slot whose users wait up to `wait` for a session.
    pub fn waiting(wait: Duration) -> SessionSlot {
        SessionSlot {
            tx: Arc::new(watch::Sender::new(None)),
            wait: Some(wait),
        }
    }

    /// Puts a new session in (or takes it out with `None`); waiting
    /// connections wake up.
    pub fn set(&self, handle: Option<SharedHandle>) {
        self.tx.send_replace(handle);
    }

    /// The session in the slot now, if any.
    pub fn current(&self) -> Option<SharedHandle> {
        self.tx.borrow().clone()
    }

    /// Opens a channel with `open` on the current session. A waiting slot
    /// waits for a live session, and starts over on the next one when the
    /// session is replaced or dies during the open; the server refusing
    /// the channel is final.
    pub async fn open<F, Fut>(&self, open: F) -> Result<russh::Channel<Msg>, OpenError>
    where
        F: Fn(SharedHandle) -> Fut,
        Fut: Future<Output = Result<russh::Channel<Msg>, russh::Error>>,
    {
        let Some(wait) = self.wait else {
            let handle = self.current().ok_or(OpenError::NoSession(Duration::ZERO))?;
            return Ok(open(handle).await?);
        };
        let deadline = Instant::now() + wait;
        let mut rx = self.tx.subscribe();
        loop {
            let handle = live(&mut rx, deadline)
                .await
                .ok_or(OpenError::NoSession(wait))?;
            tokio::select! {
                opened = open(handle.clone()) => match opened {
                    Ok(channel) => return Ok(channel),
                    Err(e @ russh::Error::ChannelOpenFailure(_)) => return Err(e.into()),
                    Err(e) if !handle.is_closed() && !rx.has_changed().unwrap_or(true) => {
                        return Err(e.into())
                    }
                    Err(_) => {}
                },
                _ = rx.changed() => {}
                () = tokio::time::sleep_until(deadline) => return Err(OpenError::Timeout(wait)),
            }
        }
    }
}

/// Waits until the slot holds a session that is not closed, or
/// `deadline`. Marks the value seen, so a later change is noticed.
async fn live(
    rx: &mut watch::Receiver<Option<SharedHandle>>,
    deadline: Instant,
) -> Option<SharedHandle> {
    loop {
        let current = rx.borrow_and_update().clone();
        if let Some(h) = current.filter(|h| !h.is_closed()) {
            return Some(h);
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            // Deadline, or every sender gone (the slot is being dropped).
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_empty_slot_gives_up_at_the_bound() {
        let slot = SessionSlot::waiting(Duration::from_secs(30));
        let started = Instant::now();
        let r = slot
            .open(|_h| async { Err::<russh::Channel<Msg>, _>(russh::Error::Disconnect) })
            .await;
        assert!(matches!(r, Err(OpenError::NoSession(_))), "{r:?}");
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn an_emptied_slot_wakes_no_one() {
        let slot = SessionSlot::waiting(Duration::from_secs(5));
        let waiter = {
            let slot = slot.clone();
            tokio::spawn(async move {
                let mut rx = slot.tx.subscribe();
                live(&mut rx, Instant::now() + Duration::from_secs(5)).await
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        slot.set(None);
        assert!(waiter.await.is_ok_and(|h| h.is_none()));
    }
}
