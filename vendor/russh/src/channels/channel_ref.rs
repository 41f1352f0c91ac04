use std::collections::VecDeque;

use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::TrySendError;

use super::WindowSizeRef;
use crate::ChannelMsg;

/// A handle to the [`super::Channel`]'s to be able to transmit messages
/// to it and update it's `window_size`.
#[derive(Debug)]
pub struct ChannelRef {
    pub(super) sender: Sender<ChannelMsg>,
    pub(super) window_size: WindowSizeRef,
    /// PATCH(warren): messages the channel's queue had no room for yet, in
    /// order; see [`ChannelRef::deliver`].
    overflow: VecDeque<ChannelMsg>,
}

impl ChannelRef {
    pub fn new(sender: Sender<ChannelMsg>) -> Self {
        Self {
            sender,
            window_size: WindowSizeRef::new(0),
            overflow: VecDeque::new(),
        }
    }

    pub(crate) fn with_window(sender: Sender<ChannelMsg>, window_size: WindowSizeRef) -> Self {
        Self {
            sender,
            window_size,
            overflow: VecDeque::new(),
        }
    }

    pub(crate) fn window_size(&self) -> &WindowSizeRef {
        &self.window_size
    }

    /// PATCH(warren): hands `msg` to the channel without waiting. When the
    /// application is not reading, the message waits here (after any that
    /// wait already, so order holds) instead of stopping the session loop
    /// and every other channel with it; the channel's window bounds how
    /// much data can pile up. [`ChannelRef::drain`] moves it on once the
    /// application takes messages again. A message for a channel whose
    /// reader is gone is dropped, as a failed send was before, and so is
    /// anything still waiting: then this returns `false`, and the caller
    /// counts the data as consumed (nothing else will).
    pub(crate) fn deliver(&mut self, msg: ChannelMsg) -> bool {
        if self.sender.is_closed() {
            self.overflow.clear();
            return false;
        }
        if !self.overflow.is_empty() {
            self.overflow.push_back(msg);
            return true;
        }
        match self.sender.try_send(msg) {
            Ok(()) => true,
            Err(TrySendError::Closed(_)) => false,
            Err(TrySendError::Full(msg)) => {
                self.overflow.push_back(msg);
                true
            }
        }
    }

    /// PATCH(warren): the last message, `msg`, after any still waiting;
    /// those the channel has no room for yet are sent from a task of their
    /// own, so that the session loop never waits on one reader.
    pub(crate) fn close(mut self, msg: ChannelMsg) {
        let _ = self.deliver(msg);
        if self.overflow.is_empty() {
            return;
        }
        let Self {
            sender, overflow, ..
        } = self;
        russh_util::runtime::spawn(async move {
            for msg in overflow {
                if sender.send(msg).await.is_err() {
                    return;
                }
            }
        });
    }

    /// PATCH(warren): moves waiting messages onto the channel while it has
    /// room.
    pub(crate) fn drain(&mut self) {
        while let Some(msg) = self.overflow.pop_front() {
            match self.sender.try_send(msg) {
                Ok(()) => {}
                Err(TrySendError::Full(msg)) => {
                    self.overflow.push_front(msg);
                    return;
                }
                Err(TrySendError::Closed(_)) => {
                    self.overflow.clear();
                    return;
                }
            }
        }
    }
}

impl std::ops::Deref for ChannelRef {
    type Target = Sender<ChannelMsg>;

    fn deref(&self) -> &Self::Target {
        &self.sender
    }
}
