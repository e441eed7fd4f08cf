//! The listeners: when to accept, how many at a time, and the back-off after an accept
//! failed for lack of descriptors or memory.

use core::time::Duration;

use crate::{AcceptError, DriverError, Instant, MAX_LISTENERS};

/// A change of a listener's registration the driver still has to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// Stop watching it (`Output::PauseAccept`).
    Pause,
    /// Watch it again (`Output::ResumeAccept`).
    Resume,
}

#[derive(Clone, Copy, Debug)]
struct Listener {
    /// Connections are waiting (a readiness report, not yet answered by EAGAIN).
    ready: bool,
    /// Accepts left for the current readiness report.
    accepts_left: u32,
    /// Paused after a failed accept, until then.
    paused_until: Option<Instant>,
    /// The next pause's length.
    backoff: Duration,
    command: Option<Command>,
}

/// Every listener's accept state.
#[derive(Debug)]
pub(crate) struct Listeners {
    list: [Listener; MAX_LISTENERS],
    count: usize,
    /// Some listener has a command for the driver (most calls have none).
    commands: bool,
    /// Most accepts per readiness report.
    batch: u32,
    /// First pause after a failure, and the longest.
    backoff: Duration,
    backoff_max: Duration,
}

impl Listeners {
    /// No listeners yet ([`Listeners::start`] says how many), with these limits.
    pub(crate) fn new(batch: u32, backoff: Duration, backoff_max: Duration) -> Self {
        let idle = Listener {
            ready: false,
            accepts_left: 0,
            paused_until: None,
            backoff,
            command: None,
        };
        Listeners {
            list: [idle; MAX_LISTENERS],
            count: 0,
            commands: false,
            batch,
            backoff,
            backoff_max,
        }
    }

    /// The server listens on `count` listeners (at most `MAX_LISTENERS`).
    pub(crate) fn start(&mut self, count: usize) {
        self.count = count.min(MAX_LISTENERS);
    }

    /// Listener `l` reported connections waiting: up to a batch of accepts.
    /// How many listeners the server was started with.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    pub(crate) fn ready(&mut self, l: usize) -> Result<(), DriverError> {
        if l >= self.count {
            return Err(DriverError::UnknownListener);
        }
        let listener = &mut self.list[l];
        listener.ready = true;
        listener.accepts_left = self.batch;
        Ok(())
    }

    /// The next registration change to hand the driver, first come first served.
    #[inline]
    pub(crate) fn next_command(&mut self) -> Option<(usize, Command)> {
        if !self.commands {
            return None;
        }
        let list = &mut self.list[..self.count];
        let next = list
            .iter_mut()
            .enumerate()
            .find_map(|(i, l)| l.command.take().map(|c| (i, c)));
        self.commands = next.is_some();
        next
    }

    /// The next listener to accept one connection on, counting it against its batch;
    /// `None` when none is ready, unpaused and within its batch.
    pub(crate) fn next_accept(&mut self) -> Option<usize> {
        for (i, l) in self.list[..self.count].iter_mut().enumerate() {
            if l.ready && l.paused_until.is_none() {
                if l.accepts_left == 0 {
                    // The batch is used up: the next readiness report starts another.
                    l.ready = false;
                    continue;
                }
                l.accepts_left -= 1;
                return Some(i);
            }
        }
        None
    }

    /// Accepting on `l` would block: its backlog is empty.
    pub(crate) fn blocked(&mut self, l: usize) {
        self.list[l].ready = false;
    }

    /// An accept on `l` succeeded: the next failure starts the back-off afresh.
    pub(crate) fn accepted(&mut self, l: usize) {
        self.list[l].backoff = self.backoff;
    }

    /// An accept on `l` failed at `now`. A connection that went away is no reason to
    /// stop; anything else pauses the listener for the current back-off, which then
    /// doubles (up to the maximum) for the next failure in a row. Returns whether it
    /// paused the listener.
    pub(crate) fn failed(&mut self, l: usize, error: AcceptError, now: Instant) -> bool {
        if error == AcceptError::Aborted {
            return false;
        }
        let listener = &mut self.list[l];
        if listener.paused_until.is_some() {
            return false;
        }
        listener.paused_until = Some(now + listener.backoff);
        listener.backoff = (listener.backoff * 2).min(self.backoff_max);
        listener.ready = false;
        listener.command = Some(Command::Pause);
        self.commands = true;
        true
    }

    /// Resumes every listener whose pause ended by `now`; a resumed listener tries a
    /// batch at once (the connections that waited are still there).
    pub(crate) fn resume_due(&mut self, now: Instant) {
        for l in &mut self.list[..self.count] {
            if l.paused_until.is_some_and(|t| t <= now) {
                l.paused_until = None;
                l.command = Some(Command::Resume);
                self.commands = true;
                l.ready = true;
                l.accepts_left = self.batch;
            }
        }
    }

    /// When the earliest pause ends.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.list[..self.count]
            .iter()
            .filter_map(|l| l.paused_until)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn two(batch: u32) -> Listeners {
        let mut l = Listeners::new(batch, 10 * MS, 35 * MS);
        l.start(2);
        l
    }

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn a_readiness_report_allows_one_batch_of_accepts() {
        let mut l = two(2);
        assert_eq!(l.next_accept(), None, "nothing reported");
        l.ready(1).unwrap();
        assert_eq!(l.next_accept(), Some(1));
        assert_eq!(l.next_accept(), Some(1));
        assert_eq!(l.next_accept(), None, "the batch is used up");
        assert_eq!(l.next_accept(), None);
        l.ready(1).unwrap();
        assert_eq!(l.next_accept(), Some(1), "a new report, a new batch");
        l.blocked(1);
        assert_eq!(l.next_accept(), None, "EAGAIN ends it");
        assert_eq!(l.ready(2), Err(DriverError::UnknownListener));
    }

    #[test]
    fn exhaustion_pauses_with_a_back_off_that_doubles_up_to_the_maximum() {
        let mut l = two(8);
        l.ready(0).unwrap();
        assert!(l.failed(0, AcceptError::Exhausted, at(0)));
        assert_eq!(l.next_command(), Some((0, Command::Pause)));
        assert_eq!(l.next_command(), None);
        assert_eq!(l.deadline(), Some(at(10)));
        assert_eq!(l.next_accept(), None, "paused");
        // A second failure reported while paused changes nothing.
        assert!(!l.failed(0, AcceptError::Exhausted, at(1)));
        l.resume_due(at(9));
        assert_eq!(l.next_command(), None, "not yet");
        l.resume_due(at(10));
        assert_eq!(l.next_command(), Some((0, Command::Resume)));
        assert_eq!(l.next_accept(), Some(0), "resumed listeners try at once");
        assert!(l.failed(0, AcceptError::Other(Some(23)), at(10)));
        assert_eq!(l.deadline(), Some(at(30)), "doubled");
        l.resume_due(at(30));
        assert!(l.failed(0, AcceptError::Exhausted, at(30)));
        assert_eq!(l.deadline(), Some(at(65)), "capped at 35 ms");
        // A success starts afresh.
        l.resume_due(at(65));
        l.accepted(0);
        assert!(l.failed(0, AcceptError::Exhausted, at(70)));
        assert_eq!(l.deadline(), Some(at(80)));
    }

    #[test]
    fn an_aborted_accept_does_not_pause_and_listeners_back_off_alone() {
        let mut l = two(8);
        l.ready(0).unwrap();
        l.ready(1).unwrap();
        assert!(!l.failed(0, AcceptError::Aborted, at(0)));
        assert_eq!(l.next_accept(), Some(0));
        assert!(l.failed(0, AcceptError::Exhausted, at(0)));
        assert_eq!(l.next_accept(), Some(1), "the other listener goes on");
        assert_eq!(l.deadline(), Some(at(10)));
    }
}
