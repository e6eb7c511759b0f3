//! SQLite's WAL written in one piece per commit: a VFS that wraps SQLite's own (`unix`) and
//! gathers the frames a transaction appends to the write-ahead log into one buffer, written
//! with one `pwrite` when SQLite syncs the log.
//!
//! Why: SQLite writes each frame of the WAL with two `pwrite` calls, its 24-byte header and
//! its 4,096-byte page, and a frame of 4,120 bytes straddles two pages of the file: the
//! kernel's write path ran three times per page of the database. That was a fifth of the mail
//! writer's time under the webhook at four clients (docs/benchmarks.md, "Where the mail
//! writer's time went"). The bytes, their places in the file and the `fsync`s are SQLite's own; only
//! the number of calls changes.
//!
//! When it is safe: a frame must be in the file before any other connection can read it,
//! that is before the commit is published in the WAL's index (shared memory). A connection
//! at `synchronous = FULL` or `EXTRA` syncs the log before it publishes each commit, so its
//! frames are buffered and written in the sync (a failed write fails the commit, as it
//! would have). Connections at `NORMAL` or below, whose commits are not synced, write
//! through, as before. The level is read from the `PRAGMA synchronous` SQLite offers to the
//! VFS first (`SQLITE_FCNTL_PRAGMA`); a connection that never sets it writes through. As a
//! second guard, the main database file's `xShmBarrier`, which SQLite calls just before it
//! publishes a commit, writes anything still buffered; should that write fail, the process
//! stops before the commit is published (nothing acknowledged is lost: the commit was not
//! synced, so it was never promised).
//!
//! Every other operation on the log (a read, a size, a truncation, a lock, closing it) writes
//! what is buffered first, so SQLite never sees the file otherwise than it wrote it. What is
//! still buffered when the connection lets go of the WAL's write lock belongs to a
//! transaction that spilled pages into the log and was rolled back: it is dropped, as SQLite
//! drops those frames (written later, it would overwrite frames another connection had
//! committed at the same places; a review found this, `tests.rs` keeps the two cases).

use libsqlite3_sys as ffi;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;

/// The name this VFS is registered under (as the default).
const VFS_NAME: &CStr = c"recoverydesk";

/// A commit larger than this is written in pieces of about this size. Under 128 KiB: SQLite's
/// `unix` VFS writes at most 128 KiB less one byte per call (it masks the length to 17 bits,
/// so a longer write reaches the file short, reported as a full disk).
const BUFFER_LIMIT: usize = 124 * 1024;

/// What the VFS puts in front of SQLite's own file object, which follows it in the same
/// allocation (`sqlite3_vfs.szOsFile` counts both).
#[repr(C)]
struct Shim {
    /// Must come first: SQLite reads `pMethods` from the start of the object.
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    role: Role,
}

enum Role {
    /// A database file: whether its connection syncs every commit, and its open WAL.
    Main { synced: bool, wal: *mut Shim },
    /// A write-ahead log, the database file it belongs to, and the frames not yet written.
    Wal {
        main: *mut Shim,
        pending: Vec<u8>,
        pending_at: i64,
    },
    /// Anything else (journals, temporary files): passed through.
    Other,
}

// For tests: on this thread, SQLite's writes to a log and the writes that reached the file.
#[cfg(test)]
thread_local! {
    static LOG_WRITES: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

#[cfg(test)]
fn count_log_write(asked: u64, written: u64) {
    LOG_WRITES.with(|c| {
        let (a, w) = c.get();
        c.set((a + asked, w + written));
    });
}

#[cfg(not(test))]
fn count_log_write(_asked: u64, _written: u64) {}

/// Where SQLite's own file object starts within ours.
const REAL_OFFSET: usize = std::mem::size_of::<Shim>().next_multiple_of(16);

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

/// Registers the VFS as SQLite's default, wrapping the default it finds. Called once, after
/// SQLite's process-wide options are set (registering initialises SQLite). Does nothing when
/// the default is not SQLite's `unix` VFS: this wrapper forwards to it knowing its ways.
pub(super) fn register() {
    // SAFETY: `sqlite3_vfs_find(NULL)` returns the default VFS or NULL; its fields are
    // read-only after registration and live for the process. The new VFS is leaked on
    // purpose: SQLite keeps a pointer to it for the process's life.
    unsafe {
        let base = ffi::sqlite3_vfs_find(ptr::null());
        if base.is_null() || CStr::from_ptr((*base).zName) != c"unix" {
            tracing::info!("SQLite's default VFS is not `unix`: WAL writes are not gathered");
            return;
        }
        let Ok(size) = c_int::try_from(REAL_OFFSET + usize::try_from((*base).szOsFile).unwrap_or(0)) else {
            return;
        };
        let vfs = Box::leak(Box::new(ffi::sqlite3_vfs {
            szOsFile: size,
            pNext: ptr::null_mut(),
            zName: VFS_NAME.as_ptr(),
            pAppData: base.cast(),
            xOpen: Some(open),
            // `unix`'s other methods do not read the VFS they are given but for
            // `mxPathname`, which is copied: they are SQLite's own.
            ..*base
        }));
        let rc = ffi::sqlite3_vfs_register(vfs, 1);
        if rc != ffi::SQLITE_OK {
            tracing::info!(
                rc,
                "the WAL-gathering VFS was not registered: WAL writes are not gathered"
            );
        }
    }
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite gives `file` `szOsFile` bytes (ours, then the real object's);
    // `pAppData` is the wrapped VFS (set in `register`).
    unsafe {
        let base = (*vfs).pAppData.cast::<ffi::sqlite3_vfs>();
        let shim = file.cast::<Shim>();
        let real = file.cast::<u8>().add(REAL_OFFSET).cast::<ffi::sqlite3_file>();
        (*file).pMethods = ptr::null();
        (*real).pMethods = ptr::null();
        let Some(open_real) = (*base).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        let rc = open_real(base, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            // Ours stays unset, so SQLite will not call `close`: the real one is closed here.
            if let Some(close_real) = (*real).pMethods.as_ref().and_then(|m| m.xClose) {
                close_real(real);
            }
            return rc;
        }
        let role = if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
            Role::Main {
                synced: false,
                wal: ptr::null_mut(),
            }
        } else if flags & ffi::SQLITE_OPEN_WAL != 0 && !name.is_null() {
            let main = ffi::sqlite3_database_file_object(name).cast::<Shim>();
            let main = if !main.is_null() && ptr::eq((*main).base.pMethods, &METHODS) {
                main
            } else {
                ptr::null_mut()
            };
            if let Some(Role::Main { wal, .. }) = main.as_mut().map(|m| &mut m.role) {
                *wal = shim;
            }
            Role::Wal {
                main,
                pending: Vec::new(),
                pending_at: 0,
            }
        } else {
            Role::Other
        };
        ptr::write(
            shim,
            Shim {
                base: ffi::sqlite3_file { pMethods: &METHODS },
                real,
                role,
            },
        );
        ffi::SQLITE_OK
    }
}

/// The real file's method `$m`, or `$missing` when it has none.
macro_rules! real_method {
    ($shim:expr, $m:ident, $missing:expr) => {
        match (*(*$shim).real).pMethods.as_ref().and_then(|m| m.$m) {
            Some(f) => f,
            None => return $missing,
        }
    };
}

/// Writes what a log holds back; SQLite's result code. Nothing for other files.
unsafe fn flush(shim: *mut Shim) -> c_int {
    // SAFETY: `shim` is one of ours, open (the callers are SQLite's calls on it).
    unsafe {
        match &mut (*shim).role {
            Role::Wal {
                pending, pending_at, ..
            } => write_pending((*shim).real, pending, *pending_at),
            _ => ffi::SQLITE_OK,
        }
    }
}

/// Writes `pending` at `at` in the real file, and empties it.
unsafe fn write_pending(real: *mut ffi::sqlite3_file, pending: &mut Vec<u8>, at: i64) -> c_int {
    if pending.is_empty() {
        return ffi::SQLITE_OK;
    }
    // SAFETY: `real` is the open file behind one of ours.
    let Some(write_real) = (unsafe { (*real).pMethods.as_ref() }).and_then(|m| m.xWrite) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    // At most `BUFFER_LIMIT`: always fits an `int`.
    let amount = c_int::try_from(pending.len()).unwrap_or(c_int::MAX);
    // SAFETY: `pending` holds `amount` bytes.
    let rc = unsafe { write_real(real, pending.as_ptr().cast(), amount, at) };
    count_log_write(0, 1);
    // Written or not, it is SQLite's to write again: a failed commit is rolled back.
    pending.clear();
    rc
}

/// Whether the database file `main` belongs to a connection that syncs every commit.
unsafe fn syncs_every_commit(main: *mut Shim) -> bool {
    // SAFETY: `main` is null or the open database file of the log's connection.
    unsafe { matches!(main.as_ref().map(|m| &m.role), Some(Role::Main { synced: true, .. })) }
}

unsafe extern "C" fn write(file: *mut ffi::sqlite3_file, data: *const c_void, amount: c_int, offset: i64) -> c_int {
    let shim = file.cast::<Shim>();
    // SAFETY: `file` is one of ours; `data` holds `amount` bytes (SQLite's contract).
    unsafe {
        let write_real = real_method!(shim, xWrite, ffi::SQLITE_IOERR_WRITE);
        let real = (*shim).real;
        let Role::Wal {
            main,
            pending,
            pending_at,
        } = &mut (*shim).role
        else {
            return write_real(real, data, amount, offset);
        };
        count_log_write(1, 0);
        let length = usize::try_from(amount).unwrap_or(0);
        let synced = syncs_every_commit(*main);
        let follows = !pending.is_empty() && offset == *pending_at + pending.len() as i64;
        if !(follows && synced && pending.len() + length <= BUFFER_LIMIT) {
            let rc = write_pending(real, pending, *pending_at);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            if !synced || length >= BUFFER_LIMIT {
                count_log_write(0, 1);
                return write_real(real, data, amount, offset);
            }
            *pending_at = offset;
        }
        pending.extend_from_slice(std::slice::from_raw_parts(data.cast::<u8>(), length));
        ffi::SQLITE_OK
    }
}

/// Forwards SQLite's call `$m` to the real file after writing what a log holds back.
macro_rules! flushed_then {
    ($file:expr, $m:ident, $missing:expr, $($arg:expr),*) => {{
        let shim = $file.cast::<Shim>();
        let rc = flush(shim);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        let f = real_method!(shim, $m, $missing);
        f((*shim).real, $($arg),*)
    }};
}

/// Defines a method that writes what a log holds back, then forwards SQLite's call.
macro_rules! flushing_method {
    ($name:ident, $m:ident, $missing:expr, ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> c_int {
            // SAFETY: SQLite calls it on one of our files, open, with arguments it forwards
            // unchanged to the real file's method.
            unsafe { flushed_then!(file, $m, $missing, $($arg),*) }
        }
    };
}

flushing_method!(read, xRead, ffi::SQLITE_IOERR_READ, (data: *mut c_void, amount: c_int, offset: i64));
flushing_method!(truncate, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, (size: i64));
flushing_method!(sync, xSync, ffi::SQLITE_IOERR_FSYNC, (flags: c_int));
flushing_method!(file_size, xFileSize, ffi::SQLITE_IOERR_FSTAT, (size: *mut i64));
flushing_method!(lock, xLock, ffi::SQLITE_IOERR_LOCK, (level: c_int));
flushing_method!(unlock, xUnlock, ffi::SQLITE_IOERR_UNLOCK, (level: c_int));
flushing_method!(check_reserved_lock, xCheckReservedLock, ffi::SQLITE_IOERR_CHECKRESERVEDLOCK, (out: *mut c_int));
flushing_method!(shm_map, xShmMap, ffi::SQLITE_IOERR_SHMMAP, (page: c_int, size: c_int, extend: c_int, out: *mut *mut c_void));
flushing_method!(shm_unmap, xShmUnmap, ffi::SQLITE_OK, (delete: c_int));
flushing_method!(unfetch, xUnfetch, ffi::SQLITE_OK, (offset: i64, page: *mut c_void));

unsafe extern "C" fn file_control(file: *mut ffi::sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    // SAFETY: as the methods of `flushing_method!`; for `SQLITE_FCNTL_PRAGMA`, `arg` is SQLite's array of three strings
    // (the result slot, the pragma's name, its value or NULL).
    unsafe {
        let shim = file.cast::<Shim>();
        if op == ffi::SQLITE_FCNTL_PRAGMA
            && let Role::Main { synced, .. } = &mut (*shim).role
        {
            let words = arg.cast::<*const c_char>();
            let (name, value) = (*words.add(1), *words.add(2));
            if !name.is_null()
                && CStr::from_ptr(name).to_bytes().eq_ignore_ascii_case(b"synchronous")
                && !value.is_null()
            {
                *synced = syncs_at_level(CStr::from_ptr(value).to_bytes());
            }
        }
        flushed_then!(file, xFileControl, ffi::SQLITE_NOTFOUND, op, arg)
    }
}

/// Whether `PRAGMA synchronous = value` certainly makes SQLite sync the WAL at every commit:
/// exactly `FULL`, `EXTRA`, `2` or `3`, as SQLite reads them (no blanks: SQLite reads
/// " 2" as its default). Anything else counts as not synced, which is always safe: the
/// connection's frames are then written as SQLite asks.
fn syncs_at_level(value: &[u8]) -> bool {
    value.eq_ignore_ascii_case(b"full") || value.eq_ignore_ascii_case(b"extra") || value == b"2" || value == b"3"
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let shim = file.cast::<Shim>();
    // SAFETY: as the methods of `flushing_method!`.
    unsafe { real_method!(shim, xSectorSize, 4096)((*shim).real) }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let shim = file.cast::<Shim>();
    // SAFETY: as the methods of `flushing_method!`.
    unsafe { real_method!(shim, xDeviceCharacteristics, 0)((*shim).real) }
}

/// SQLite's `WAL_WRITE_LOCK`: the first lock of the WAL index, held by the one writer.
const WAL_WRITE_LOCK: c_int = 0;

unsafe extern "C" fn shm_lock(file: *mut ffi::sqlite3_file, offset: c_int, n: c_int, flags: c_int) -> c_int {
    let shim = file.cast::<Shim>();
    // SAFETY: as the methods of `flushing_method!`; a paired log is open (its `close` unpairs it).
    unsafe {
        let releases_the_write_lock =
            offset == WAL_WRITE_LOCK && flags & ffi::SQLITE_SHM_UNLOCK != 0 && flags & ffi::SQLITE_SHM_EXCLUSIVE != 0;
        if releases_the_write_lock
            && let Role::Main { wal, .. } = (*shim).role
            && let Some(Role::Wal { pending, .. }) = wal.as_mut().map(|w| &mut w.role)
        {
            // A commit's frames are written by now (its sync, else the barrier before it
            // was published), so anything left belongs to a transaction rolled back after
            // it spilled pages into the log. SQLite forgets those frames; written after this
            // lock is let go, they would land on frames another connection commits there.
            pending.clear();
        }
        let f = real_method!(shim, xShmLock, ffi::SQLITE_IOERR_SHMLOCK);
        f((*shim).real, offset, n, flags)
    }
}

/// Called on the database file just before SQLite publishes a commit in the WAL's index:
/// the log's frames must be in the file by then.
unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    let shim = file.cast::<Shim>();
    // SAFETY: as the methods of `flushing_method!`; a paired log is open (its `close` unpairs it).
    unsafe {
        if let Role::Main { wal, synced } = &mut (*shim).role
            && let Some(Role::Wal { pending, .. }) = wal.as_mut().map(|w| &mut w.role)
            && !pending.is_empty()
        {
            // A commit about to be published that was not synced: the level SQLite applies
            // is not the one the VFS read (a `PRAGMA synchronous` SQLite refused inside a
            // transaction). From now on this connection writes through; this once, its
            // frames are written here. A failure cannot be reported from here, and
            // publishing the commit would show other connections frames that are not in
            // the file: the process stops instead. The commit was not synced, so it was
            // never promised to anyone.
            *synced = false;
            if flush(*wal) != ffi::SQLITE_OK {
                eprintln!(
                    "recoverydesk: writing SQLite's write-ahead log failed before a commit was published; stopping"
                );
                std::process::abort();
            }
        }
        if let Some(barrier) = (*(*shim).real).pMethods.as_ref().and_then(|m| m.xShmBarrier) {
            barrier((*shim).real);
        }
    }
}

unsafe extern "C" fn fetch(file: *mut ffi::sqlite3_file, offset: i64, amount: c_int, out: *mut *mut c_void) -> c_int {
    // SAFETY: as the methods of `flushing_method!`. Without the method, no mapping: SQLite then reads.
    unsafe {
        *out = ptr::null_mut();
        flushed_then!(file, xFetch, ffi::SQLITE_OK, offset, amount, out)
    }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    let shim = file.cast::<Shim>();
    // SAFETY: as the methods of `flushing_method!`; after this SQLite never uses the object again, so ours is dropped.
    unsafe {
        let flushed = flush(shim);
        match &mut (*shim).role {
            Role::Wal { main, .. } => {
                if let Some(Role::Main { wal, .. }) = main.as_mut().map(|m| &mut m.role) {
                    *wal = ptr::null_mut();
                }
            }
            Role::Main { wal, .. } => {
                if let Some(Role::Wal { main, .. }) = wal.as_mut().map(|w| &mut w.role) {
                    *main = ptr::null_mut();
                }
            }
            Role::Other => {}
        }
        let real = (*shim).real;
        let rc = match (*real).pMethods.as_ref().and_then(|m| m.xClose) {
            Some(close_real) => close_real(real),
            None => ffi::SQLITE_OK,
        };
        ptr::drop_in_place(&raw mut (*shim).role);
        (*shim).base.pMethods = ptr::null();
        if flushed != ffi::SQLITE_OK { flushed } else { rc }
    }
}

#[cfg(test)]
mod tests;
