//! Forward searches whose answers are remembered, so that scanning stays
//! linear when matches start inside one another.
//!
//! A value ends at the next blank, quote or newline. When every match
//! computed that end afresh, a text of nothing but `pass:` (each match's value
//! runs to the end of the text) cost the square of its length: 200 KB took
//! seconds, 10 MB hours. Match starts only move forward, so the answer of the
//! last search is still right for any later start before that answer: there
//! is no stop character between them. Each byte is then read about once per
//! kind of search.
//!
//! Under `cfg(test)` every scanner also counts the bytes it examines, so the
//! tests can compare the work on 1× and 8× the input without a clock.

/// The first character at or after a position that satisfies `stop`.
pub(super) struct NextChar {
    stop: fn(char) -> bool,
    /// The last search started at `from` and found `found` (or the end).
    from: usize,
    found: usize,
}

impl NextChar {
    pub(super) fn new(stop: fn(char) -> bool) -> Self {
        Self {
            stop,
            from: usize::MAX,
            found: 0,
        }
    }

    /// Byte offset of the first stop character at or after `start`, or
    /// `text.len()` when there is none.
    pub(super) fn find(&mut self, text: &str, start: usize) -> usize {
        if self.from <= start && start <= self.found {
            return self.found;
        }
        let rest = &text[start..];
        let length = rest.find(self.stop).unwrap_or(rest.len());
        count(length + 1);
        self.from = start;
        self.found = start + length;
        self.found
    }
}

#[cfg(test)]
thread_local! {
    static WORK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Records that a scanner examined `bytes` bytes (tests only).
#[inline]
pub(super) fn count(bytes: usize) {
    #[cfg(test)]
    WORK.with(|work| work.set(work.get() + bytes));
    #[cfg(not(test))]
    let _ = bytes;
}

/// The bytes examined on this thread since the last call (tests only).
#[cfg(test)]
pub(super) fn take_work() -> usize {
    WORK.with(|work| work.replace(0))
}
