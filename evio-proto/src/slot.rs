//! One connection's slot: where it is in its life, what the engine knows about its
//! socket, and its metadata. (Its bytes live in the byte storage: `buffers.rs`.)

use core::fmt;
use core::ops::{BitOr, BitOrAssign};

use crate::buffers::BufState;
use crate::engine::life::{Event, Facts, Life, Refused};
use crate::lists::{Lane, Link, Linked};
use crate::timers::{Timed, TimerLink, Timers};
use crate::{Addr, CloseError, ConnId, ConnInfo, Instant, ListenerId, Options};

/// Storage for an engine's slots: anything that derefs to `[Slot<C>]` (a `Vec`, a boxed
/// slice, an array, a `&'static mut` array).
pub trait SlotStorage<C>: AsRef<[Slot<C>]> + AsMut<[Slot<C>]> {}

impl<C, T: AsRef<[Slot<C>]> + AsMut<[Slot<C>]> + ?Sized> SlotStorage<C> for T {}

/// What the engine knows about a connection's socket and what it still owes it: a set
/// of the flags below.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Flags(u32);

impl Flags {
    /// No flag.
    pub(crate) const EMPTY: Flags = Flags(0);
    /// The poller reported it readable (or hung up) and no read has drained it since.
    pub(crate) const READABLE: Flags = Flags(1 << 0);
    /// The poller reported a hang-up or an error not read yet.
    pub(crate) const HUP: Flags = Flags(1 << 1);
    /// A read found the end of the stream.
    pub(crate) const EOF: Flags = Flags(1 << 2);
    /// A write was short or would block, and no writability was reported since.
    pub(crate) const WRITE_BLOCKED: Flags = Flags(1 << 3);
    /// The poller watches it for readability (what the driver was last told).
    pub(crate) const REG_READ: Flags = Flags(1 << 4);
    /// The poller watches it for writability.
    pub(crate) const REG_WRITE: Flags = Flags(1 << 5);
    /// Unconsumed input waits for output to drain (the handler's write did not fit).
    pub(crate) const STALLED: Flags = Flags(1 << 6);
    /// Its socket options changed and are still to be applied.
    pub(crate) const CONFIGURE: Flags = Flags(1 << 7);
    /// Output backed up (a short write, or a write that did not fit): `drained` is owed
    /// once it is all sent.
    pub(crate) const BACKED_UP: Flags = Flags(1 << 8);
    /// An outbound connection the driver has not been asked to connect yet: it has no
    /// socket, so it ends without a `Close` or `Abort` output.
    pub(crate) const CONNECT_PENDING: Flags = Flags(1 << 9);
    /// Unconsumed input waits for another connection's output to drain (a relay whose
    /// peer is full): no read, no frame-too-large, `data` again once it drains.
    pub(crate) const WAITING: Flags = Flags(1 << 10);
    /// The handler shut the sending side: `Output::ShutdownWrite` once the output is
    /// sent, and no more writes.
    pub(crate) const SHUT_WR: Flags = Flags(1 << 11);
    /// `Output::ShutdownWrite` was emitted for it.
    pub(crate) const WR_SHUT: Flags = Flags(1 << 12);
    /// Other connections' input waits for its output to drain.
    pub(crate) const WAITED_ON: Flags = Flags(1 << 13);
    /// Its peer ended its stream while input read before the end was waiting for
    /// another connection: `input_ended` is owed once that input has been delivered.
    /// (In `Life::Failing`: the failure is owed.)
    pub(crate) const ENDED_OWED: Flags = Flags(1 << 14);
    /// Its bytes go through the handler's transport (TLS): see `transport.rs`.
    pub(crate) const TRANSFORMED: Flags = Flags(1 << 15);
    /// Its handler never heard of it (a transformed connection still handshaking):
    /// it ends without `closed`.
    pub(crate) const UNANNOUNCED: Flags = Flags(1 << 16);
    /// The transport's closing message is queued: the close goes ahead once it is sent.
    pub(crate) const CLOSE_SENT: Flags = Flags(1 << 17);
    /// Its transport has bytes to send (`Transport::outgoing` is not empty).
    pub(crate) const OUTGOING: Flags = Flags(1 << 18);

    const NAMES: [(Flags, &'static str); 19] = [
        (Flags::READABLE, "READABLE"),
        (Flags::HUP, "HUP"),
        (Flags::EOF, "EOF"),
        (Flags::WRITE_BLOCKED, "WRITE_BLOCKED"),
        (Flags::REG_READ, "REG_READ"),
        (Flags::REG_WRITE, "REG_WRITE"),
        (Flags::STALLED, "STALLED"),
        (Flags::CONFIGURE, "CONFIGURE"),
        (Flags::BACKED_UP, "BACKED_UP"),
        (Flags::CONNECT_PENDING, "CONNECT_PENDING"),
        (Flags::WAITING, "WAITING"),
        (Flags::SHUT_WR, "SHUT_WR"),
        (Flags::WR_SHUT, "WR_SHUT"),
        (Flags::WAITED_ON, "WAITED_ON"),
        (Flags::ENDED_OWED, "ENDED_OWED"),
        (Flags::TRANSFORMED, "TRANSFORMED"),
        (Flags::UNANNOUNCED, "UNANNOUNCED"),
        (Flags::CLOSE_SENT, "CLOSE_SENT"),
        (Flags::OUTGOING, "OUTGOING"),
    ];

    /// 1 if `OUTGOING` is set, else 0: without a branch, for the count of bytes to
    /// send.
    #[inline(always)]
    pub(crate) const fn outgoing(self) -> usize {
        ((self.0 & Flags::OUTGOING.0) >> 18) as usize
    }

    /// Every flag of `other` is set.
    #[inline]
    pub(crate) const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Some flag of `other` is set.
    #[inline]
    pub(crate) const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    /// Sets every flag of `other`.
    #[inline]
    pub(crate) fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    /// Clears every flag of `other`.
    #[inline]
    pub(crate) fn remove(&mut self, other: Flags) {
        self.0 &= !other.0;
    }

    /// Sets or clears every flag of `other`.
    #[inline]
    pub(crate) fn set(&mut self, other: Flags, on: bool) {
        if on {
            self.insert(other);
        } else {
            self.remove(other);
        }
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.insert(rhs);
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut set = f.debug_set();
        for (flag, name) in Flags::NAMES {
            if self.contains(flag) {
                set.entry(&format_args!("{name}"));
            }
        }
        set.finish()
    }
}

/// No slot (in a `WaitLink`).
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// A slot's place in the waiting lists of `relay.rs`: whom it waits for, its neighbours among that
/// slot's waiters, and the first of its own waiters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WaitLink {
    pub(crate) on: u32,
    pub(crate) prev: u32,
    pub(crate) next: u32,
    pub(crate) head: u32,
}

impl WaitLink {
    /// Waits for nobody, and nobody waits for it.
    pub(crate) const NONE: WaitLink = WaitLink {
        on: NO_SLOT,
        prev: NO_SLOT,
        next: NO_SLOT,
        head: NO_SLOT,
    };

    /// The slot it waits for, if any.
    pub(crate) fn on(&self) -> Option<u32> {
        (self.on != NO_SLOT).then_some(self.on)
    }

    /// Some slot waits for it.
    #[cfg(test)]
    pub(crate) fn has_waiters(&self) -> bool {
        self.head != NO_SLOT
    }
}

/// One connection slot: the metadata of one connection (its buffers live in the byte
/// storage). Storage for an engine is `max_connections` of these, made with
/// [`Slot::new`] or `Default`.
pub struct Slot<C> {
    pub(crate) info: ConnInfo,
    pub(crate) generation: u32,
    pub(crate) state: Life,
    pub(crate) flags: Flags,
    pub(crate) bufs: BufState,
    /// Which connection's drain it waits for, and who waits for its own.
    pub(crate) wait: WaitLink,
    pub(crate) link: Link,
    /// Its place among the sends held back until the turn's reads are done.
    pub(crate) send_link: Link,
    pub(crate) timer: TimerLink,
    /// The coalescing window in which the connection was last reported ready.
    pub(crate) active_window: u32,
    pub(crate) error: Option<CloseError>,
    pub(crate) options: Options,
    pub(crate) context: Option<C>,
}

impl<C> Slot<C> {
    /// A free slot.
    pub const fn new() -> Self {
        Slot {
            info: ConnInfo {
                id: ConnId::new(0, 0),
                listener: ListenerId::FIRST,
                local: Addr::Unix,
                peer: Addr::Unix,
                outbound: false,
            },
            generation: 0,
            wait: WaitLink::NONE,
            state: Life::Free,
            flags: Flags::EMPTY,
            bufs: BufState::EMPTY,
            link: Link::NONE,
            send_link: Link::NONE,
            timer: TimerLink::NONE,
            active_window: 0,
            error: None,
            options: Options {
                nodelay: true,
                keepalive: None,
            },
            context: None,
        }
    }

    /// Opens the slot for connection `info`: a fresh generation, state and context.
    /// Returns the new connection's id (`info.id` is replaced).
    pub(crate) fn open(&mut self, mut info: ConnInfo, options: Options) -> ConnId
    where
        C: Default,
    {
        self.generation = (self.generation + 1) & crate::id::GEN_MASK;
        info.id = ConnId::new(info.id.word(), self.generation);
        self.info = info;
        self.go(Event::Accepted, Facts::default());
        self.flags = Flags::REG_READ;
        self.bufs = BufState::EMPTY;
        self.error = None;
        self.options = options;
        self.context = Some(C::default());
        if options != Options::NONE {
            self.flags.insert(Flags::CONFIGURE);
        }
        self.info.id
    }

    /// Opens the slot for an outbound connection to `peer`, not connected yet
    /// (`Life::Connecting`), with `context`. Returns its id.
    pub(crate) fn open_outbound(
        &mut self,
        word: u32,
        peer: Addr,
        options: Options,
        context: C,
    ) -> ConnId {
        self.generation = (self.generation + 1) & crate::id::GEN_MASK;
        self.info = ConnInfo {
            id: ConnId::new(word, self.generation),
            listener: ListenerId::FIRST,
            local: Addr::Unix,
            peer,
            outbound: true,
        };
        self.go(Event::Connect, Facts::default());
        self.flags = Flags::CONNECT_PENDING;
        self.bufs = BufState::EMPTY;
        self.error = None;
        self.options = options;
        self.context = Some(context);
        if !matches!(peer, Addr::Unix) && options != Options::NONE {
            self.flags.insert(Flags::CONFIGURE);
        }
        self.info.id
    }

    /// Empties the slot (its generation is kept, so the next connection's id differs).
    pub(crate) fn clear(&mut self) {
        self.go(Event::Ended, Facts::default());
        self.flags = Flags::EMPTY;
        self.bufs = BufState::EMPTY;
        self.error = None;
        self.context = None;
    }
}

impl<C> Slot<C> {
    /// What its life's transitions read of it; `input_capacity` is the engine's.
    #[inline]
    pub(crate) fn facts(&self, input_capacity: usize) -> Facts {
        Facts {
            unread_input: self.bufs.in_len > 0,
            eof: self.flags.contains(Flags::EOF),
            input_room: (self.bufs.in_len as usize) < input_capacity,
            stalled: self.flags.contains(Flags::STALLED),
            waiting: self.flags.contains(Flags::WAITING),
        }
    }

    /// Moves its life on by `event`, when its state allows it ([`Life::on`]).
    ///
    /// # Errors
    ///
    /// [`Refused`]: the state does not take the event; nothing changed.
    #[inline]
    pub(crate) fn try_go(&mut self, event: Event, facts: Facts) -> Result<Life, Refused> {
        let next = self.state.on(event, facts)?;
        self.state = next;
        Ok(next)
    }

    /// Moves its life on by `event`, which the engine only reports where the state
    /// takes it: a refusal is the engine's own mistake (checked in debug builds; in a
    /// release build the state stays as it was).
    #[inline]
    pub(crate) fn go(&mut self, event: Event, facts: Facts) -> Life {
        match self.try_go(event, facts) {
            Ok(next) => next,
            Err(refused) => {
                debug_assert!(false, "{refused}");
                self.state
            }
        }
    }
}

/// A handler's request (`Close`, `Detach` or `Abort`) for slot `i`, made by its own
/// [`Action`](crate::Action) or through [`Loop`](crate::Loop): one code path for both,
/// so they cannot behave differently. A connection that starts to leave gets its send
/// bound, `bound` (`None`: unbounded), replacing its handler's timeout.
///
/// # Errors
///
/// [`Refused`] when its state does not take the request (it already leaves, or is
/// gone).
pub(crate) fn request<C>(
    slots: &mut [Slot<C>],
    timers: &mut Timers,
    i: u32,
    event: Event,
    input_capacity: usize,
    bound: Option<Instant>,
) -> Result<Life, Refused> {
    let slot = &mut slots[i as usize];
    let before = slot.state;
    // A transformed connection's socket is of no use without its session: a detach
    // closes it (its closing message first).
    let event = if event == Event::Detach && slot.flags.contains(Flags::TRANSFORMED) {
        Event::Close
    } else {
        event
    };
    let next = slot.try_go(event, slot.facts(input_capacity))?;
    if next.is_leaving() && !before.is_leaving() {
        timers.set(slots, i, bound);
    }
    Ok(next)
}

impl<C> Default for Slot<C> {
    fn default() -> Self {
        Slot::new()
    }
}

impl<C> fmt::Debug for Slot<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("state", &self.state)
            .field("generation", &self.generation)
            .field("flags", &self.flags)
            .finish_non_exhaustive()
    }
}

impl<C> Timed for Slot<C> {
    #[inline]
    fn timer(&self) -> &TimerLink {
        &self.timer
    }

    #[inline]
    fn timer_mut(&mut self) -> &mut TimerLink {
        &mut self.timer
    }
}

/// The lane of the sends held back until the turn's reads are done
/// ([`Config::batch_sends`](crate::Config::batch_sends)).
#[derive(Debug)]
pub(crate) struct HeldSends;

impl<C> Lane<Slot<C>> for HeldSends {
    #[inline(always)]
    fn link(slot: &Slot<C>) -> &Link {
        &slot.send_link
    }

    #[inline(always)]
    fn link_mut(slot: &mut Slot<C>) -> &mut Link {
        &mut slot.send_link
    }
}

impl<C> Linked for Slot<C> {
    #[inline]
    fn link(&self) -> &Link {
        &self.link
    }

    #[inline]
    fn link_mut(&mut self) -> &mut Link {
        &mut self.link
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::format;

    use super::*;

    #[test]
    fn flags_insert_remove_and_contain() {
        let mut f = Flags::EMPTY;
        assert!(!f.contains(Flags::READABLE));
        f.insert(Flags::READABLE | Flags::HUP);
        assert!(f.contains(Flags::READABLE) && f.contains(Flags::HUP));
        assert!(f.contains(Flags::READABLE | Flags::HUP));
        assert!(!f.contains(Flags::READABLE | Flags::EOF), "all, not any");
        assert!(f.intersects(Flags::READABLE | Flags::EOF), "any");
        assert!(!f.intersects(Flags::EOF | Flags::CONFIGURE));
        f.remove(Flags::HUP);
        assert!(f.contains(Flags::READABLE) && !f.contains(Flags::HUP));
        f.set(Flags::EOF, true);
        f.set(Flags::READABLE, false);
        assert_eq!(f, Flags::EOF);
        assert!(f.contains(Flags::EMPTY));
    }

    #[test]
    fn flags_are_distinct_and_print_by_name() {
        let mut all = Flags::EMPTY;
        for (flag, _) in Flags::NAMES {
            assert!(!all.contains(flag), "{flag:?} overlaps another flag");
            all |= flag;
        }
        assert_eq!(
            format!("{:?}", Flags::STALLED | Flags::WRITE_BLOCKED),
            "{WRITE_BLOCKED, STALLED}"
        );
    }

    #[test]
    fn opening_a_slot_gives_a_new_generation_and_a_fresh_context() {
        let mut slot: Slot<u32> = Slot::new();
        let info = ConnInfo {
            id: ConnId::new(3, 0),
            listener: ListenerId::FIRST,
            local: Addr::Unix,
            peer: Addr::Unix,
            outbound: false,
        };
        let a = slot.open(info, Options::default());
        assert_eq!((a.slot(), a.generation()), (3, 1));
        assert!(slot.flags.contains(Flags::REG_READ | Flags::CONFIGURE));
        assert_eq!(slot.state, Life::Open);
        *slot.context.as_mut().unwrap() = 9;
        slot.go(Event::ShutdownClose, Facts::default());
        slot.clear();
        assert_eq!(slot.state, Life::Free);
        assert!(slot.context.is_none());
        let b = slot.open(
            info,
            Options {
                nodelay: false,
                keepalive: None,
            },
        );
        assert_eq!(b.generation(), 2, "a reused slot's id differs");
        assert_eq!(slot.context, Some(0));
        assert!(!slot.flags.contains(Flags::CONFIGURE), "nothing to set");
    }
}
