//! The scheduling priority of the desk's own threads, where one stage of a pipeline must not
//! wait for a core behind the stages that feed it.
//!
//! `import-maildir` reads and scans messages on one thread per core and writes them on one
//! more: three busy threads on two cores. The writer is the import's critical path (every
//! message goes through it, in order), while a parsing thread that falls behind only lets its
//! bounded queue run down. With all three at the same priority the scheduler shared the two
//! cores evenly among them; with the parsing threads five steps nicer, both benchmark corpora
//! imported about 8 % faster for the same CPU (docs/benchmarks.md, "The import's writer
//! first").
//!
//! Linux keeps a niceness per thread (a task), not per process, so lowering it here changes
//! only the calling thread. Raising it back needs a privilege the desk does not have: only a
//! thread that does the same kind of work until it ends is lowered.

use std::io;

/// Niceness that `import-maildir`'s parsing threads add to their own: with CFS, a thread five
/// steps nicer has about a third of the weight of the writer, so the writer wins a contended
/// core and the parsers still keep theirs when it is idle.
pub const IMPORT_PARSER_NICENESS: i32 = 5;

/// The highest niceness Linux accepts.
const NICEST: i32 = 19;

/// The calling thread's niceness.
pub fn this_threads_niceness() -> io::Result<i32> {
    let tid = this_thread_id();
    // getpriority returns -1 both for an error and for a niceness of -1: errno tells them apart.
    // SAFETY: __errno_location points to this thread's errno; getpriority reads no memory of
    // ours and only sets errno on failure.
    let niceness = unsafe {
        *libc::__errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, tid)
    };
    let error = io::Error::last_os_error();
    if niceness == -1 && error.raw_os_error() != Some(0) {
        return Err(error);
    }
    Ok(niceness)
}

/// Makes the calling thread `by` steps nicer (at most 19), and returns its new niceness.
pub fn lower_this_threads_priority(by: i32) -> io::Result<i32> {
    let target = this_threads_niceness()?.saturating_add(by.max(0)).min(NICEST);
    // SAFETY: setpriority reads no memory of ours; on Linux PRIO_PROCESS with a thread id
    // changes that thread alone.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, this_thread_id(), target) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(target)
}

fn this_thread_id() -> libc::id_t {
    // SAFETY: gettid cannot fail; a thread id is positive, so the conversion is exact.
    unsafe { libc::gettid() as libc::id_t }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_made_nicer_changes_alone_and_stops_at_the_nicest() {
        let before = this_threads_niceness().unwrap();
        let (lowered, again) = std::thread::spawn(move || {
            let start = this_threads_niceness().unwrap();
            assert_eq!(start, before, "a new thread starts at its creator's niceness");
            let lowered = lower_this_threads_priority(IMPORT_PARSER_NICENESS).unwrap();
            assert_eq!(lowered, (start + IMPORT_PARSER_NICENESS).min(NICEST));
            assert_eq!(this_threads_niceness().unwrap(), lowered);
            let again = lower_this_threads_priority(100).unwrap();
            (lowered, again)
        })
        .join()
        .unwrap();
        assert!(lowered > before || before == NICEST);
        assert_eq!(again, NICEST);
        assert_eq!(
            this_threads_niceness().unwrap(),
            before,
            "the thread that spawned it keeps its niceness"
        );
    }

    #[test]
    fn a_negative_step_never_raises_a_priority() {
        let (start, after) = std::thread::spawn(|| {
            let start = this_threads_niceness().unwrap();
            (start, lower_this_threads_priority(-5).unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(after, start);
    }
}
