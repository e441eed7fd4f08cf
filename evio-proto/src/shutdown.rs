//! Shutdown sequencing: the triggering connection's output first, then every open
//! connection closed, then the driver told to stop.

/// The next step of a shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Write the triggering connection's pending output (once per turn, as far as the
    /// socket takes it without blocking).
    Flush(u32),
    /// Close this connection.
    Close(u32),
    /// Every connection is closed: `Output::Shutdown`.
    Done,
}

/// Where a shutdown is.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Shutdown {
    /// The connection whose handler asked for the shutdown, while its output is owed.
    trigger: Option<u32>,
    /// Slots below this one are closed.
    cursor: usize,
}

impl Shutdown {
    /// A shutdown asked for by slot `trigger`'s handler (`None`: by the server's).
    pub(crate) fn new(trigger: Option<u32>) -> Self {
        Shutdown { trigger, cursor: 0 }
    }

    /// Slot `i`'s output was written as far as its socket took it without blocking
    /// (a short write, or one that would block): if it is the trigger, its flush is
    /// over.
    pub(crate) fn flushed(&mut self, i: u32) {
        if self.trigger == Some(i) {
            self.trigger = None;
        }
    }

    /// The next step, over `slots` slots: `live(i)` says whether slot `i` has a
    /// connection to close, `owes_output(i)` whether it still has output to try.
    pub(crate) fn next(
        &mut self,
        slots: usize,
        live: impl Fn(u32) -> bool,
        owes_output: impl Fn(u32) -> bool,
    ) -> Step {
        if let Some(trigger) = self.trigger {
            if live(trigger) && owes_output(trigger) {
                return Step::Flush(trigger);
            }
            self.trigger = None;
        }
        while self.cursor < slots {
            let i = self.cursor as u32;
            if live(i) {
                // The cursor stays: the close makes the slot not live, and the next
                // call moves past it.
                return Step::Close(i);
            }
            self.cursor += 1;
        }
        Step::Done
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::cell::Cell;
    use std::vec::Vec;

    use super::*;

    /// Runs a shutdown over slots with these liveness and owed-output flags, closing
    /// and flushing as asked, and returns the steps.
    fn steps(trigger: Option<u32>, live: &[bool], owes: &[u32]) -> Vec<Step> {
        let live: Vec<Cell<bool>> = live.iter().map(|&b| Cell::new(b)).collect();
        let owes: Vec<Cell<u32>> = owes.iter().map(|&n| Cell::new(n)).collect();
        let mut s = Shutdown::new(trigger);
        let mut out = Vec::new();
        loop {
            let step = s.next(
                live.len(),
                |i| live[i as usize].get(),
                |i| owes[i as usize].get() > 0,
            );
            out.push(step);
            match step {
                Step::Flush(i) => owes[i as usize].set(owes[i as usize].get() - 1),
                Step::Close(i) => live[i as usize].set(false),
                Step::Done => return out,
            }
            assert!(out.len() < 100, "never done");
        }
    }

    #[test]
    fn the_trigger_flushes_first_then_every_live_slot_closes_in_order() {
        assert_eq!(
            steps(Some(2), &[true, false, true, true], &[5, 0, 2, 1]),
            [
                Step::Flush(2),
                Step::Flush(2),
                Step::Close(0),
                Step::Close(2),
                Step::Close(3),
                Step::Done
            ]
        );
    }

    #[test]
    fn without_a_trigger_or_output_owed_it_only_closes() {
        assert_eq!(
            steps(None, &[false, true], &[0, 3]),
            [Step::Close(1), Step::Done]
        );
        assert_eq!(steps(Some(0), &[true], &[0]), [Step::Close(0), Step::Done]);
        assert_eq!(
            steps(Some(0), &[false], &[4]),
            [Step::Done],
            "a trigger already gone"
        );
        assert_eq!(steps(None, &[], &[]), [Step::Done]);
    }
}
