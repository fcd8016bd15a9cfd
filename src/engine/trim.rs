//! Gives memory the loop freed back to the system. glibc keeps freed heap memory resident:
//! after a burst of handshakes (their request buffers, parsed headers, `Open` events) or
//! slow readers leaving (their send queues), the process would keep its peak size for good.
//! So once enough has been freed, a little later (a burst is usually not over yet), at most
//! once a second and only in a quiet turn (the loop waited and nothing came: trimming a heap
//! that traffic churns hands pages back only to fault them in again, and stalls the loop
//! meanwhile: handshakes under a broadcast flood took 100 ms instead of 6), the loop calls
//! `malloc_trim(0)`, which also releases whole free pages inside the heap. Elsewhere it does
//! nothing.

use std::time::{Duration, Instant};

/// Freed bytes (as estimated by the loop) that make a trim worth its cost.
const TRIM_AFTER: usize = 256 * 1024;
/// Wait after the threshold is crossed, so the trim comes after the burst.
const DELAY: Duration = Duration::from_millis(200);
/// Trims are at least this far apart.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// What a handshake leaves to free (request head, parsed headers, the `Open` event).
pub const HANDSHAKE_BYTES: usize = 1024;

#[derive(Default)]
pub struct MemoryTrim {
    freed: usize,
    due: Option<Instant>,
    last: Option<Instant>,
}

impl MemoryTrim {
    /// Notes `bytes` freed; returns when to trim if that has just become due (the loop makes
    /// sure it wakes up then).
    pub fn freed(&mut self, bytes: usize, now: Instant) -> Option<Instant> {
        self.freed = self.freed.saturating_add(bytes);
        if self.freed < TRIM_AFTER || self.due.is_some() || !cfg!(all(target_os = "linux", target_env = "gnu")) {
            return None;
        }
        let at = (now + DELAY).max(self.last.map_or(now, |t| t + MIN_INTERVAL));
        self.due = Some(at);
        self.due
    }

    /// Trims if it is due and the turn is `quiet`. A due trim in a busy turn is put off:
    /// returns when to look again.
    pub fn run_if_due(&mut self, now: Instant, quiet: bool) -> Option<Instant> {
        if self.due.is_none_or(|t| now < t) {
            return None;
        }
        if !quiet {
            let later = now + MIN_INTERVAL;
            self.due = Some(later);
            return Some(later);
        }
        self.due = None;
        self.last = Some(now);
        self.freed = 0;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only inspects and releases the allocator's free memory.
        unsafe {
            libc::malloc_trim(0);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn trims_once_enough_was_freed_later_and_not_too_often() {
        let t0 = Instant::now();
        let mut trim = MemoryTrim::default();
        assert_eq!(trim.freed(TRIM_AFTER / 2, t0), None);
        let due = trim.freed(TRIM_AFTER / 2, t0).expect("due once past the threshold");
        assert_eq!(due, t0 + DELAY);
        assert_eq!(trim.freed(TRIM_AFTER, t0), None, "already due");
        assert_eq!(trim.run_if_due(t0, true), None);
        assert!(trim.due.is_some(), "not before its time");
        assert_eq!(trim.run_if_due(due, false), Some(due + MIN_INTERVAL), "put off in a busy turn");
        let due = due + MIN_INTERVAL;
        assert_eq!(trim.run_if_due(due, true), None);
        assert!(trim.due.is_none() && trim.freed == 0);
        let next = trim.freed(TRIM_AFTER, due).expect("due again");
        assert_eq!(next, due + MIN_INTERVAL, "a second after the last one");
    }
}
