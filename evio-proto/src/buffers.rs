//! The byte storage: every connection's input and output buffer, and the two loop-wide
//! scratch buffers. Every byte offset the engine uses is computed here.
//!
//! A connection touches its own buffers only for carry-over: input the handler left
//! unconsumed (a partial frame), and output the socket has not taken yet. A request
//! read whole goes into the scratch input buffer, and a reply written whole into the
//! scratch output buffer, which its connection owns until the reply is sent; when
//! another connection needs the scratch output first, the owner's bytes move
//! ("spill") into its own buffer.
//!
//! The methods every request passes through are `#[inline(always)]`: their bodies
//! are a few instructions and the call cost more (callgrind on `echo_requests`: 913
//! instructions per request with plain `#[inline]`, 889 with them inlined).

use core::ops::Range;

use crate::Config;

/// Storage for an engine's buffers: anything that derefs to `[u8]`.
pub trait ByteStorage: AsRef<[u8]> + AsMut<[u8]> {}

impl<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized> ByteStorage for T {}

/// Where each buffer is: all input buffers and the scratch input buffer, then all
/// output buffers and the scratch output buffer. Inputs first and outputs after, so a
/// handler call can hold its input and every connection's output at once (it may
/// write to other connections).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    input: usize,
    output: usize,
    /// Where the scratch input buffer starts (after every input buffer).
    scratch_input: usize,
    /// Where the output buffers start: everything before is input.
    outputs: usize,
    /// Where the scratch output buffer starts (after every output buffer).
    scratch_output: usize,
}

impl Layout {
    /// The layout for `config` (already validated: nothing overflows). The starts are
    /// worked out once: every request uses them.
    #[inline]
    pub(crate) const fn new(config: &Config) -> Self {
        let (slots, input, output) = (
            config.max_connections,
            config.input_capacity,
            config.output_capacity,
        );
        let outputs = (slots + 1) * input;
        Layout {
            input,
            output,
            scratch_input: slots * input,
            outputs,
            scratch_output: outputs + slots * output,
        }
    }

    /// Slot `i`'s input buffer.
    #[inline]
    pub(crate) fn input(&self, i: u32) -> Range<usize> {
        let start = i as usize * self.input;
        start..start + self.input
    }

    /// Slot `i`'s output buffer.
    #[inline]
    pub(crate) fn output(&self, i: u32) -> Range<usize> {
        let start = self.outputs + i as usize * self.output;
        start..start + self.output
    }

    /// The scratch input buffer.
    #[inline]
    pub(crate) fn scratch_input(&self) -> Range<usize> {
        self.scratch_input..self.scratch_input + self.input
    }

    /// The scratch output buffer.
    #[inline]
    pub(crate) fn scratch_output(&self) -> Range<usize> {
        self.scratch_output..self.scratch_output + self.output
    }

    /// Where the output buffers start: everything before is input.
    #[inline]
    pub(crate) fn outputs_start(&self) -> usize {
        self.outputs
    }

    /// Bytes of one output buffer.
    #[inline]
    pub(crate) fn output_capacity(&self) -> usize {
        self.output
    }

    /// Bytes of storage the layout covers ([`Config::bytes_needed`]).
    #[inline]
    pub(crate) fn total(&self) -> usize {
        self.scratch_output().end
    }
}

/// A connection's share of the buffers: `in_len` bytes of unconsumed input at the
/// start of its input buffer, and `out_len` bytes of pending output from `out_start`
/// in its output buffer (unless its pending output is in the scratch buffer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BufState {
    pub(crate) in_len: u32,
    out_start: u32,
    out_len: u32,
}

impl BufState {
    /// Nothing kept.
    pub(crate) const EMPTY: BufState = BufState {
        in_len: 0,
        out_start: 0,
        out_len: 0,
    };
}

/// Where a `data` call's input is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InputSource {
    /// The first `len` bytes of the scratch input buffer: read whole, nothing kept.
    Scratch(usize),
    /// The connection's own input buffer, `in_len` bytes.
    Own,
}

/// Where a handler call writes its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutputTarget {
    /// The scratch output buffer (the connection has nothing pending of its own).
    Scratch,
    /// After the output pending in the connection's own buffer.
    Own,
}

/// A handler call's view of an output buffer: the pending bytes are
/// `buf[start..start + len]`; new bytes go after them, moving them to the front when
/// they would not fit at the end.
#[derive(Debug)]
pub(crate) struct OutputWindow<'a> {
    buf: &'a mut [u8],
    start: usize,
    len: usize,
}

impl<'a> OutputWindow<'a> {
    /// A window over `buf` with `len` bytes pending from `start`.
    #[inline]
    pub(crate) fn new(buf: &'a mut [u8], start: usize, len: usize) -> Self {
        debug_assert!(start + len <= buf.len());
        OutputWindow { buf, start, len }
    }

    /// Bytes pending.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.len
    }

    /// Bytes that still fit.
    #[inline]
    pub(crate) fn room(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Where the pending bytes are, after the call: `(start, len)`.
    #[inline]
    pub(crate) fn into_parts(self) -> (usize, usize) {
        (self.start, self.len)
    }

    /// Appends `bytes`, which must fit ([`OutputWindow::room`]).
    #[inline]
    pub(crate) fn append(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        debug_assert!(bytes.len() <= self.room());
        if self.start + self.len + bytes.len() > self.buf.len() {
            // Compact: the pending bytes move to the front of the buffer.
            self.buf.copy_within(self.start..self.start + self.len, 0);
            self.start = 0;
        }
        let end = self.start + self.len;
        self.buf[end..end + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Forgets what was appended after the first `len` pending bytes.
    #[cfg(test)]
    pub(crate) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// Who holds the scratch output buffer, and how much of it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Scratch {
    /// The slot whose pending output is in the scratch output buffer.
    owner: Option<u32>,
    /// Bytes of it pending.
    len: usize,
}

/// Every output buffer, for a handler call: its own connection's and the others' (a
/// handler may write to any open connection). Offsets are the layout's.
#[derive(Debug)]
pub(crate) struct OutputArea<'a> {
    /// The output half of the storage (from `layout.outputs_start()`).
    bytes: &'a mut [u8],
    layout: &'a Layout,
    scratch: &'a mut Scratch,
}

impl OutputArea<'_> {
    /// Bytes of one output buffer.
    #[inline(always)]
    pub(crate) fn capacity(&self) -> usize {
        self.layout.output_capacity()
    }

    /// Bytes of one input buffer.
    #[inline(always)]
    pub(crate) fn input_capacity(&self) -> usize {
        self.layout.input
    }

    /// Where slot `i`'s pending output is: the scratch buffer if it holds it, else its
    /// own buffer (a write to a connection other than the one called never takes the
    /// scratch buffer).
    #[inline(always)]
    pub(crate) fn target(&self, i: u32) -> OutputTarget {
        if self.scratch.owner == Some(i) {
            OutputTarget::Scratch
        } else {
            OutputTarget::Own
        }
    }

    /// Bytes pending for slot `i` in `target`.
    #[inline(always)]
    pub(crate) fn pending(&self, st: &BufState, target: OutputTarget) -> usize {
        match target {
            OutputTarget::Scratch => self.scratch.len,
            OutputTarget::Own => st.out_len as usize,
        }
    }

    /// Bytes that still fit for slot `i` writing into `target`.
    #[inline(always)]
    pub(crate) fn room(&self, st: &BufState, target: OutputTarget) -> usize {
        self.capacity() - self.pending(st, target)
    }

    /// Appends `bytes` (which must fit: [`OutputArea::room`]) to slot `i`'s output in
    /// `target`.
    #[inline(always)]
    pub(crate) fn append(&mut self, i: u32, st: &mut BufState, target: OutputTarget, bytes: &[u8]) {
        let base = self.layout.outputs_start();
        match target {
            OutputTarget::Scratch => {
                let start = self.layout.scratch_output().start - base;
                let len = self.scratch.len;
                debug_assert!(len + bytes.len() <= self.capacity());
                self.bytes[start + len..start + len + bytes.len()].copy_from_slice(bytes);
                self.scratch.len = len + bytes.len();
                if self.scratch.len > 0 {
                    self.scratch.owner = Some(i);
                }
            }
            OutputTarget::Own => {
                let r = self.layout.output(i);
                let buf = &mut self.bytes[r.start - base..r.end - base];
                let mut w = OutputWindow::new(buf, st.out_start as usize, st.out_len as usize);
                w.append(bytes);
                let (start, len) = w.into_parts();
                st.out_start = start as u32;
                st.out_len = len as u32;
            }
        }
    }

    /// Forgets what slot `i` appended to `target` after its first `len` pending bytes.
    pub(crate) fn truncate(&mut self, i: u32, st: &mut BufState, target: OutputTarget, len: usize) {
        match target {
            OutputTarget::Scratch => {
                self.scratch.len = self.scratch.len.min(len);
                if self.scratch.len == 0 && self.scratch.owner == Some(i) {
                    self.scratch.owner = None;
                }
            }
            OutputTarget::Own => st.out_len = st.out_len.min(len as u32),
        }
    }
}

/// The byte storage, its layout, and who holds the scratch output buffer.
pub(crate) struct Buffers<B> {
    bytes: B,
    layout: Layout,
    /// The slot whose pending output is in the scratch output buffer.
    scratch: Scratch,
}

impl<B: ByteStorage> Buffers<B> {
    /// Buffers over `bytes`, which must hold at least `layout.total()` bytes (checked
    /// when the engine is built). Nothing is written: zeroed pages stay unmapped.
    #[inline]
    pub(crate) fn new(bytes: B, layout: Layout) -> Self {
        Buffers {
            bytes,
            layout,
            scratch: Scratch::default(),
        }
    }

    /// The layout.
    #[cfg(test)]
    #[inline]
    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The bytes of `range`.
    #[inline]
    pub(crate) fn bytes(&self, range: Range<usize>) -> &[u8] {
        &self.bytes.as_ref()[range]
    }

    /// The bytes of `range`, to write into.
    #[inline]
    pub(crate) fn bytes_mut(&mut self, range: Range<usize>) -> &mut [u8] {
        &mut self.bytes.as_mut()[range]
    }

    /// The slot holding the scratch output buffer, if any.
    #[inline]
    pub(crate) fn scratch_owner(&self) -> Option<u32> {
        self.scratch.owner
    }

    /// Bytes of output pending for slot `i`.
    #[inline(always)]
    pub(crate) fn pending(&self, i: u32, st: &BufState) -> usize {
        if self.scratch.owner == Some(i) {
            self.scratch.len
        } else {
            st.out_len as usize
        }
    }

    /// Where the next read for slot `i` goes: the scratch input buffer when no input is
    /// kept (`true`), else the rest of its own input buffer after the kept input.
    #[inline(always)]
    pub(crate) fn read_target(&self, i: u32, st: &BufState) -> (bool, Range<usize>) {
        if st.in_len == 0 {
            (true, self.layout.scratch_input())
        } else {
            let own = self.layout.input(i);
            (false, own.start + st.in_len as usize..own.end)
        }
    }

    /// Slot `i`'s own input buffer, all of it.
    #[inline]
    pub(crate) fn own_input(&self, i: u32) -> Range<usize> {
        self.layout.input(i)
    }

    /// Slot `i`'s own input buffer after what it holds: where a transformed
    /// connection's reads go.
    #[inline]
    pub(crate) fn own_read_target(&self, i: u32, st: &BufState) -> Range<usize> {
        let own = self.layout.input(i);
        own.start + st.in_len as usize..own.end
    }

    /// A read of `n` bytes into slot `i`'s own input buffer (after its kept input).
    #[inline]
    pub(crate) fn read_into_own(st: &mut BufState, n: usize) {
        st.in_len += n as u32;
    }

    /// Slot `i`'s pending output, for a transmit.
    #[inline(always)]
    pub(crate) fn pending_range(&self, i: u32, st: &BufState) -> Range<usize> {
        if self.scratch.owner == Some(i) {
            let r = self.layout.scratch_output();
            r.start..r.start + self.scratch.len
        } else {
            let start = self.layout.output(i).start + st.out_start as usize;
            start..start + st.out_len as usize
        }
    }

    /// Moves the scratch output into its owner's own buffer (`owner` is its state), so
    /// the scratch buffer can serve another connection.
    #[inline]
    pub(crate) fn spill(&mut self, owner_state: &mut BufState) {
        let Some(owner) = self.scratch.owner.take() else {
            return;
        };
        let len = core::mem::take(&mut self.scratch.len);
        let from = self.layout.scratch_output().start;
        let to = self.layout.output(owner).start;
        self.bytes.as_mut().copy_within(from..from + len, to);
        owner_state.out_start = 0;
        owner_state.out_len = len as u32;
    }

    /// Forgets slot `i`'s pending output (it closes, or can send no more).
    #[inline]
    pub(crate) fn release(&mut self, i: u32, st: &mut BufState) {
        if self.scratch.owner == Some(i) {
            self.scratch.owner = None;
            self.scratch.len = 0;
        }
        st.out_start = 0;
        st.out_len = 0;
    }

    /// Where slot `i`'s handler call writes: after its own pending output if it has
    /// some, else the scratch buffer. For [`OutputTarget::Scratch`] the scratch buffer
    /// must be free or slot `i`'s: spill another owner's output first.
    #[inline(always)]
    pub(crate) fn output_target(&self, i: u32, st: &BufState) -> OutputTarget {
        if self.scratch.owner != Some(i) && st.out_len > 0 {
            OutputTarget::Own
        } else {
            OutputTarget::Scratch
        }
    }

    /// The input of a `data` call for slot `i`.
    #[inline(always)]
    pub(crate) fn input_range(&self, i: u32, st: &BufState, source: InputSource) -> Range<usize> {
        match source {
            InputSource::Scratch(n) => {
                let r = self.layout.scratch_input();
                r.start..r.start + n
            }
            InputSource::Own => {
                let r = self.layout.input(i);
                r.start..r.start + st.in_len as usize
            }
        }
    }

    /// The input buffers (to read a `data` call's input from) and the output buffers
    /// (to write any connection's output into), borrowed together: they never overlap.
    #[inline(always)]
    pub(crate) fn halves(&mut self) -> (&mut [u8], OutputArea<'_>) {
        let Buffers {
            bytes,
            layout,
            scratch,
        } = self;
        let (input, output) = bytes.as_mut().split_at_mut(layout.outputs_start());
        let area = OutputArea {
            bytes: output,
            layout,
            scratch,
        };
        (input, area)
    }

    /// Keeps the input a `data` call over `total` bytes from `source` did not consume
    /// (the bytes after the first `consumed`) at the front of slot `i`'s own input
    /// buffer. Returns `true` when input moved out of the scratch buffer (a carry).
    #[inline(always)]
    pub(crate) fn keep_input(
        &mut self,
        i: u32,
        st: &mut BufState,
        source: InputSource,
        consumed: usize,
        total: usize,
    ) -> bool {
        let left = total - consumed;
        st.in_len = left as u32;
        if left == 0 {
            return false;
        }
        let own = self.layout.input(i).start;
        let from = match source {
            InputSource::Scratch(_) => self.layout.scratch_input().start + consumed,
            InputSource::Own if consumed == 0 => return false,
            InputSource::Own => own + consumed,
        };
        self.bytes.as_mut().copy_within(from..from + left, own);
        matches!(source, InputSource::Scratch(_))
    }

    /// The socket took `n` of the `len` pending bytes of slot `i`. Returns `true` when
    /// an unsent tail moved out of the scratch buffer (a spill).
    #[inline(always)]
    pub(crate) fn sent(&mut self, i: u32, st: &mut BufState, len: usize, n: usize) -> bool {
        let remaining = len - n;
        if self.scratch.owner == Some(i) {
            if remaining > 0 {
                // Keep the unsent tail in the connection's own buffer.
                let from = self.layout.scratch_output().start;
                let to = self.layout.output(i).start;
                self.bytes.as_mut().copy_within(from + n..from + len, to);
                st.out_start = 0;
                st.out_len = remaining as u32;
            }
            self.scratch.owner = None;
            self.scratch.len = 0;
            remaining > 0
        } else {
            st.out_start += n as u32;
            st.out_len -= n as u32;
            if st.out_len == 0 {
                st.out_start = 0;
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use super::*;

    fn config(slots: usize, input: usize, output: usize) -> Config {
        Config {
            max_connections: slots,
            input_capacity: input,
            output_capacity: output,
            ..Config::new()
        }
    }

    fn buffers(slots: usize, input: usize, output: usize) -> Buffers<Vec<u8>> {
        let layout = Layout::new(&config(slots, input, output));
        Buffers::new(vec![0; layout.total()], layout)
    }

    /// Writes `bytes` as a handler call for slot `i` would.
    fn write(b: &mut Buffers<Vec<u8>>, i: u32, st: &mut BufState, bytes: &[u8]) {
        let target = b.output_target(i, st);
        if target == OutputTarget::Scratch
            && let Some(owner) = b.scratch_owner()
            && owner != i
        {
            panic!("spill slot {owner} first");
        }
        let (_, mut out) = b.halves();
        assert!(out.room(st, target) >= bytes.len());
        out.append(i, st, target, bytes);
    }

    fn pending(b: &Buffers<Vec<u8>>, i: u32, st: &BufState) -> Vec<u8> {
        b.bytes(b.pending_range(i, st)).to_vec()
    }

    #[test]
    fn the_regions_tile_the_storage_exactly_without_overlap() {
        for (slots, input, output) in [(1, 1, 1), (3, 5, 7), (4, 16, 64)] {
            let c = config(slots, input, output);
            let l = Layout::new(&c);
            assert_eq!(l.total(), c.bytes_needed(), "exact fit");
            let mut regions: Vec<Range<usize>> = (0..slots as u32)
                .flat_map(|i| [l.input(i), l.output(i)])
                .collect();
            regions.extend([l.scratch_input(), l.scratch_output()]);
            regions.sort_by_key(|r| r.start);
            let mut at = 0;
            for r in regions {
                assert_eq!(r.start, at, "a gap or an overlap before {r:?}");
                at = r.end;
            }
            assert_eq!(at, l.total());
        }
    }

    #[test]
    fn a_window_compacts_when_new_bytes_would_not_fit_at_the_end() {
        let mut buf = *b"..abc...";
        let mut w = OutputWindow::new(&mut buf, 2, 3);
        assert_eq!(w.room(), 5);
        w.append(b"de");
        assert_eq!(w.into_parts(), (2, 5), "fits at the end: nothing moves");
        let mut w = OutputWindow::new(&mut buf, 2, 5);
        w.append(b"fgh");
        assert_eq!(w.into_parts(), (0, 8), "exact fit after the wrap");
        assert_eq!(&buf, b"abcdefgh");
    }

    #[test]
    fn a_window_takes_nothing_and_forgets_back_to_a_mark() {
        let mut buf = [0u8; 4];
        let mut w = OutputWindow::new(&mut buf, 0, 0);
        w.append(b"");
        assert_eq!(w.pending(), 0);
        w.append(b"ab");
        w.truncate(1);
        w.append(b"c");
        assert_eq!(w.into_parts(), (0, 2));
        assert_eq!(&buf[..2], b"ac");
        let mut empty: [u8; 0] = [];
        let w = OutputWindow::new(&mut empty, 0, 0);
        assert_eq!(w.room(), 0, "a zero-capacity window has no room");
    }

    #[test]
    fn a_whole_reply_stays_in_scratch_and_a_partial_send_keeps_the_tail() {
        let mut b = buffers(2, 4, 8);
        let mut st = BufState::EMPTY;
        write(&mut b, 1, &mut st, b"hello");
        assert_eq!(b.scratch_owner(), Some(1));
        assert_eq!(st, BufState::EMPTY, "the own buffer is untouched");
        assert_eq!(pending(&b, 1, &st), b"hello");
        assert!(b.sent(1, &mut st, 5, 2), "the tail spills");
        assert_eq!(b.scratch_owner(), None);
        assert_eq!(pending(&b, 1, &st), b"llo");
        write(&mut b, 1, &mut st, b"!");
        assert_eq!(pending(&b, 1, &st), b"llo!", "after its own pending output");
        assert!(!b.sent(1, &mut st, 4, 4));
        assert_eq!(st, BufState::EMPTY, "sent whole: back to the start");
    }

    #[test]
    fn another_connection_takes_the_scratch_buffer_after_a_spill() {
        let mut b = buffers(2, 4, 8);
        let (mut a, mut c) = (BufState::EMPTY, BufState::EMPTY);
        write(&mut b, 0, &mut a, b"first");
        b.spill(&mut a);
        assert_eq!(b.scratch_owner(), None);
        assert_eq!(pending(&b, 0, &a), b"first");
        write(&mut b, 1, &mut c, b"second");
        assert_eq!(b.scratch_owner(), Some(1));
        assert_eq!(pending(&b, 0, &a), b"first", "the spilled bytes are intact");
        assert_eq!(pending(&b, 1, &c), b"second");
        b.release(1, &mut c);
        assert_eq!(b.pending(1, &c), 0);
        assert_eq!(b.scratch_owner(), None);
    }

    #[test]
    fn a_partial_frame_is_carried_then_read_after_and_compacted() {
        let mut b = buffers(1, 8, 4);
        let mut st = BufState::EMPTY;
        // A read with nothing kept goes to scratch.
        let (scratch, r) = b.read_target(0, &st);
        assert!(scratch);
        b.bytes_mut(r.start..r.start + 5).copy_from_slice(b"ab\ncd");
        // The handler consumed the first line: "cd" is carried.
        assert!(b.keep_input(0, &mut st, InputSource::Scratch(5), 3, 5));
        assert_eq!(b.bytes(b.input_range(0, &st, InputSource::Own)), b"cd");
        // The next read goes after it, into the rest of the own buffer.
        let (scratch, r) = b.read_target(0, &st);
        assert!(!scratch);
        assert_eq!(r.len(), 6);
        b.bytes_mut(r.start..r.start + 4).copy_from_slice(b"\nef.");
        Buffers::<Vec<u8>>::read_into_own(&mut st, 4);
        assert_eq!(b.bytes(b.input_range(0, &st, InputSource::Own)), b"cd\nef.");
        // Consuming "cd\n" compacts "ef." to the front; consuming nothing moves nothing.
        assert!(!b.keep_input(0, &mut st, InputSource::Own, 3, 6));
        assert_eq!(b.bytes(b.input_range(0, &st, InputSource::Own)), b"ef.");
        assert!(!b.keep_input(0, &mut st, InputSource::Own, 0, 3));
        assert_eq!(b.bytes(b.input_range(0, &st, InputSource::Own)), b"ef.");
        // Consuming everything keeps nothing: the next read is scratch again.
        assert!(!b.keep_input(0, &mut st, InputSource::Own, 3, 3));
        assert_eq!(st.in_len, 0);
        assert!(b.read_target(0, &st).0);
    }

    #[test]
    fn a_full_input_buffer_leaves_no_room_to_read() {
        let mut b = buffers(1, 4, 4);
        let mut st = BufState::EMPTY;
        b.bytes_mut(b.layout().scratch_input())
            .copy_from_slice(b"abcd");
        assert!(b.keep_input(0, &mut st, InputSource::Scratch(4), 0, 4));
        assert_eq!(st.in_len, 4);
        assert!(
            b.read_target(0, &st).1.is_empty(),
            "exact fit: no room left"
        );
    }

    #[test]
    fn a_handler_reads_its_input_while_writing_to_any_connection() {
        let mut b = buffers(3, 4, 4);
        let (mut own, mut other) = (BufState::EMPTY, BufState::EMPTY);
        b.bytes_mut(b.layout().scratch_input())
            .copy_from_slice(b"wxyz");
        let input = b.input_range(1, &own, InputSource::Scratch(4));
        let target = b.output_target(1, &own);
        let (inputs, mut out) = b.halves();
        let got = &inputs[input];
        assert_eq!(got, b"wxyz");
        // Its own reply goes to scratch; another connection's into its own buffer.
        out.append(1, &mut own, target, &got[..2]);
        assert_eq!(out.target(2), OutputTarget::Own);
        assert_eq!(out.room(&other, OutputTarget::Own), 4);
        out.append(2, &mut other, OutputTarget::Own, &got[2..]);
        assert_eq!(out.room(&other, OutputTarget::Own), 2);
        // A write taken back leaves what was there before.
        out.append(2, &mut other, OutputTarget::Own, b"!!");
        out.truncate(2, &mut other, OutputTarget::Own, 2);
        assert_eq!(pending(&b, 1, &own), b"wx");
        assert_eq!(pending(&b, 2, &other), b"yz");
        assert_eq!(b.scratch_owner(), Some(1));
    }

    #[test]
    fn taking_back_a_whole_scratch_reply_frees_the_scratch_buffer() {
        let mut b = buffers(1, 4, 4);
        let mut st = BufState::EMPTY;
        let (_, mut out) = b.halves();
        out.append(0, &mut st, OutputTarget::Scratch, b"ab");
        out.truncate(0, &mut st, OutputTarget::Scratch, 0);
        assert_eq!(b.scratch_owner(), None);
        assert_eq!(b.pending(0, &st), 0);
    }
}
