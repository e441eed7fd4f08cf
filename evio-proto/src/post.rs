//! Between loops: what a handler sends to a connection of another loop of the same
//! server, and why it may be refused.
//!
//! A server of several loops runs an engine per thread. A handler reaches a
//! connection of its own loop at once ([`Loop::write`](crate::Loop::write) answers
//! whether the bytes went in); one of another loop only through that loop's inbox,
//! which its driver empties when it next runs. So a write (or a close, or an abort) to
//! another loop's connection is *posted*: [`Loop::write`](crate::Loop::write) answers
//! only whether the inbox took it, and a refusal found on arrival (the connection had
//! closed, its output had no room) comes back to the sending loop later, through
//! [`Events::post_refused`](crate::Events::post_refused).
//!
//! The driver supplies the inboxes ([`PostOffice`]) and hands what arrives to the
//! engine ([`Engine::handle_post`](crate::Engine::handle_post),
//! [`Engine::handle_refusal`](crate::Engine::handle_refusal)); the engine stays
//! without locks, threads or allocation.

use core::fmt;

use crate::ConnId;

/// What a post asks of the connection it is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PostKind {
    /// Append the bytes to its output, whole or not at all (as
    /// [`Loop::write`](crate::Loop::write)).
    Write,
    /// Close it once its output is flushed (as [`Loop::close`](crate::Loop::close)).
    Close,
    /// Reset it, discarding its output (as [`Loop::abort`](crate::Loop::abort)).
    Abort,
    /// A message for the other loop's handler, not for a connection
    /// ([`Loop::post_message`](crate::Loop::post_message)): `to` names only the loop,
    /// and the bytes go to [`Events::loop_message`](crate::Events::loop_message) there.
    Message,
}

/// Why a post to a connection of another loop was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The connection is not open there (it closed, or the id is stale).
    NotOpen,
    /// Its output buffer had too little room for the bytes (nothing was written).
    Full {
        /// Bytes posted.
        needed: usize,
        /// Room there was.
        room: usize,
    },
    /// That loop's inbox had no room: nothing was posted.
    InboxFull,
    /// No loop of this server has that number.
    NoSuchLoop,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotOpen => f.write_str("the connection is not open"),
            Refusal::Full { needed, room } => {
                write!(f, "its output has room for {room} bytes, {needed} posted")
            }
            Refusal::InboxFull => f.write_str("its loop's inbox is full"),
            Refusal::NoSuchLoop => f.write_str("no loop of this server has its number"),
        }
    }
}

impl core::error::Error for Refusal {}

/// The inboxes of a server's loops, as a driver provides them: any thread may post to
/// any loop.
///
/// An implementation queues each post in the inbox of loop `to.loop_index()`, bounded
/// (fixed memory: it refuses with [`Refusal::InboxFull`] rather than grow), in the
/// order posted from each loop, and wakes that loop's driver, which hands each post to
/// its engine ([`Engine::handle_post`](crate::Engine::handle_post)) and posts any
/// refusal back to the sending loop
/// ([`Engine::handle_refusal`](crate::Engine::handle_refusal) there).
pub trait PostOffice: Send + Sync {
    /// Queues `kind` (with `bytes`, for a write) for connection `to`, from loop `from`.
    ///
    /// # Errors
    ///
    /// [`Refusal::InboxFull`] if that loop's inbox has no room, [`Refusal::NoSuchLoop`]
    /// if there is no such loop.
    fn post(&self, from: usize, to: ConnId, kind: PostKind, bytes: &[u8]) -> Result<(), Refusal>;
}

/// How an engine holds its post office.
#[derive(Clone)]
pub(crate) enum PostRef {
    Static(&'static dyn PostOffice),
    #[cfg(feature = "alloc")]
    Shared(alloc::sync::Arc<dyn PostOffice>),
}

impl PostRef {
    pub(crate) fn get(&self) -> &dyn PostOffice {
        match self {
            PostRef::Static(p) => *p,
            #[cfg(feature = "alloc")]
            PostRef::Shared(p) => &**p,
        }
    }
}

impl fmt::Debug for PostRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PostOffice")
    }
}

/// A loop's place among the loops of its server: its number and the post office
/// ([`Engine::join_loops`](crate::Engine::join_loops)).
#[derive(Clone, Debug)]
pub struct Loops {
    pub(crate) index: u8,
    pub(crate) office: PostRef,
}

impl Loops {
    /// Loop `index` of a server whose inboxes are `office`, state that lives for the
    /// whole program.
    ///
    /// # Panics
    ///
    /// If `index` is not below [`MAX_LOOPS`](crate::MAX_LOOPS).
    pub fn from_static(index: usize, office: &'static dyn PostOffice) -> Self {
        Loops {
            index: loop_number(index),
            office: PostRef::Static(office),
        }
    }

    /// Loop `index` of a server whose inboxes are `office` (std drivers).
    ///
    /// # Panics
    ///
    /// If `index` is not below [`MAX_LOOPS`](crate::MAX_LOOPS).
    #[cfg(feature = "alloc")]
    pub fn from_arc(index: usize, office: alloc::sync::Arc<dyn PostOffice>) -> Self {
        Loops {
            index: loop_number(index),
            office: PostRef::Shared(office),
        }
    }

    /// This loop's number.
    pub fn index(&self) -> usize {
        usize::from(self.index)
    }
}

fn loop_number(index: usize) -> u8 {
    assert!(
        index < crate::id::MAX_LOOPS,
        "loop {index}: at most {} loops",
        crate::id::MAX_LOOPS
    );
    index as u8
}
