//! Payment card numbers: 13 to 19 digits, alone or grouped by single spaces or
//! dashes, that pass the Luhn check.

use std::ops::Range;

use super::lookahead;
use super::{Finding, SecretKind, glued_after, glued_before};

/// Payment card numbers have 13 to 19 digits (ISO/IEC 7812).
const CARD_MIN_DIGITS: usize = 13;
const CARD_MAX_DIGITS: usize = 19;
/// Cards are written in groups such as 4-4-4-4, 4-6-5 or 4-4-4-4-3; requiring
/// groups of this size keeps dates, phone numbers and times out.
const CARD_GROUP_DIGITS: std::ops::RangeInclusive<usize> = 3..=8;

/// The runs of digit groups separated by a single space or dash that hold at least
/// `min_digits` digits, in order: what the regex `[0-9]+(?:[ -][0-9]+)*` finds (ASCII digits:
/// the Luhn check is defined on them), without a regex. Why: a digit starts a run, and a
/// base64 attachment scanned with the raw message has digits every few bytes; a regex search
/// per run was 14 % of a parsing thread's time, and handing every short run back to be
/// counted again was a tenth of the scan (docs/benchmarks.md). A test checks the two agree.
///
/// Where runs that long cannot be, it reads four bytes at a time ([`next_possible_run`]): a
/// byte-by-byte search for the next digit was 7 % of a parsing thread on mail with
/// attachments (docs/benchmarks.md, "The keyword search on folded text").
pub(super) fn digit_runs(text: &str, min_digits: usize) -> impl Iterator<Item = Range<usize>> + '_ {
    let bytes = text.as_bytes();
    let mut at = 0;
    // Before this position every byte is read; from it on, only where a run could be.
    let mut read_every_byte_until = 0;
    std::iter::from_fn(move || {
        loop {
            if min_digits >= MIN_DIGITS_TO_SKIP && at >= read_every_byte_until {
                let (stretch, block_end) = next_possible_run(bytes, at)?;
                at = stretch;
                read_every_byte_until = block_end;
            }
            let start = at + bytes.get(at..)?.iter().position(u8::is_ascii_digit)?;
            let mut end = start;
            let mut digits = 0;
            loop {
                let group_start = end;
                while bytes.get(end).is_some_and(u8::is_ascii_digit) {
                    end += 1;
                }
                digits += end - group_start;
                let separated = matches!(bytes.get(end), Some(b' ' | b'-'));
                if separated && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
                    end += 1;
                } else {
                    break;
                }
            }
            at = end;
            if digits >= min_digits {
                return Some(start..end);
            }
        }
    })
}

/// Runs of at least this many digits span at least as many bytes, so each holds a whole
/// group of four bytes aligned on a multiple of four, and every four bytes of a run hold two
/// digits at least (separators are single).
const MIN_DIGITS_TO_SKIP: usize = 7;

fn is_run_byte(byte: u8) -> bool {
    byte.is_ascii_digit() || byte == b' ' || byte == b'-'
}

/// The first aligned group of four bytes at or after `from` that could lie inside a run of
/// [`MIN_DIGITS_TO_SKIP`] digits or more (digits, spaces and dashes only, two digits at
/// least), as where the stretch of such bytes around it starts (never before `from`) and
/// where the group ends. `None`: no such run starts at or after `from`. Linear: the caller
/// reads the stretch once and asks again only past the group.
fn next_possible_run(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    let first = from.next_multiple_of(4);
    let Some(index) = bytes.get(first..)?.chunks_exact(4).position(|group| {
        group.iter().all(|&byte| is_run_byte(byte)) && group.iter().filter(|byte| byte.is_ascii_digit()).count() >= 2
    }) else {
        lookahead::count(bytes.len() - from);
        return None;
    };
    let group = first + 4 * index;
    // The groups read, then the stretch read back.
    lookahead::count(2 * (group + 4 - from));
    let stretch = bytes[from..group]
        .iter()
        .rposition(|&byte| !is_run_byte(byte))
        .map_or(from, |last_other| from + last_other + 1);
    Some((stretch, group + 4))
}

pub(super) fn find_card_numbers(text: &str, findings: &mut Vec<Finding>) {
    // One search; a run ends at the first byte that is not a digit or a
    // single separator between digits.
    lookahead::count(text.len());
    for run in digit_runs(text, CARD_MIN_DIGITS) {
        let run_text = &text[run.clone()];
        lookahead::count(run_text.len());
        let open_start = !is_inside_number_before(text, run.start);
        let open_end = !is_inside_number_after(text, run.end);
        let mut groups = Groups::new(run_text, run.start);
        let mut at_run_start = true;
        while groups.get(0).is_some() {
            let longest = (open_start || !at_run_start)
                .then(|| longest_card(text, &mut groups, open_end))
                .flatten();
            at_run_start = false;
            match longest {
                Some(last) => {
                    if let (Some(first), Some(end)) = (groups.get(0), groups.get(last)) {
                        findings.push(Finding {
                            range: first.start..end.end,
                            kind: SecretKind::CardNumber,
                        });
                    }
                    groups.drop_front(last + 1);
                }
                None => groups.drop_front(1),
            }
        }
    }
}

/// The digit groups of one run, read as they are needed. A card spans at
/// most [`CARD_MAX_DIGITS`] digits, so only the few groups from the current
/// one on are held: a run of millions of groups ("1 1 1 …") never becomes a
/// list of millions of ranges.
struct Groups<'a> {
    pieces: std::str::Split<'a, [char; 2]>,
    /// Byte offset in the text of the next piece.
    offset: usize,
    /// Byte ranges (in the text) of the groups from the current one on.
    window: std::collections::VecDeque<Range<usize>>,
}

impl<'a> Groups<'a> {
    fn new(run_text: &'a str, run_start: usize) -> Self {
        Self {
            pieces: run_text.split([' ', '-']),
            offset: run_start,
            window: std::collections::VecDeque::new(),
        }
    }

    /// The `index`-th group from the current one, if the run has it.
    fn get(&mut self, index: usize) -> Option<Range<usize>> {
        while self.window.len() <= index {
            let piece = self.pieces.next()?;
            self.window.push_back(self.offset..self.offset + piece.len());
            self.offset += piece.len() + 1;
        }
        self.window.get(index).cloned()
    }

    fn drop_front(&mut self, count: usize) {
        for _ in 0..count {
            // Reads the group first if it is not in the window yet.
            if self.get(0).is_none() {
                return;
            }
            self.window.pop_front();
        }
    }
}

/// The index (from the current group) of the last group of the longest card
/// number that starts at the current group. Never splits a group, so a card
/// is never carved out of a longer digit run such as a timestamp or an order
/// number. Reads at most [`CARD_MAX_DIGITS`] digits and one group more.
fn longest_card(text: &str, groups: &mut Groups<'_>, open_end: bool) -> Option<usize> {
    let first_len = groups.get(0)?.len();
    let mut digits = 0;
    let mut longest = None;
    let mut last = 0;
    while let Some(group) = groups.get(last) {
        digits += group.len();
        lookahead::count(group.len().min(CARD_MAX_DIGITS + 1));
        if digits > CARD_MAX_DIGITS {
            break;
        }
        // A single group may be the whole number; several groups must each
        // look like a card's grouping, and a misfit ends every longer one too.
        let grouping_fits =
            last == 0 || (CARD_GROUP_DIGITS.contains(&first_len) && CARD_GROUP_DIGITS.contains(&group.len()));
        if !grouping_fits {
            break;
        }
        let is_card = digits >= CARD_MIN_DIGITS
            && (groups.get(last + 1).is_some() || open_end)
            && passes_luhn(
                groups
                    .window
                    .range(..=last)
                    .flat_map(|group| text[group.clone()].bytes()),
            );
        if is_card {
            longest = Some(last);
        }
        last += 1;
    }
    longest
}

/// Whether the run starting at `position` continues a word or a decimal
/// number ("A4111…", "3.14159…").
fn is_inside_number_before(text: &str, position: usize) -> bool {
    if glued_before(text, position) {
        return true;
    }
    let mut before = text[..position].chars().rev();
    matches!(before.next(), Some('.' | ',')) && before.next().is_some_and(|c| c.is_ascii_digit())
}

fn is_inside_number_after(text: &str, position: usize) -> bool {
    if glued_after(text, position) {
        return true;
    }
    let mut after = text[position..].chars();
    matches!(after.next(), Some('.' | ',')) && after.next().is_some_and(|c| c.is_ascii_digit())
}

pub(super) fn passes_luhn(digits: impl DoubleEndedIterator<Item = u8>) -> bool {
    let sum: u32 = digits
        .rev()
        .enumerate()
        .map(|(position, byte)| {
            let digit = u32::from(byte - b'0');
            if position % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}
