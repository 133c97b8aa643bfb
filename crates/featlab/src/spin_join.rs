//! Fork–join for steps of a few microseconds: one persistent helper thread that *spins*
//! while it waits for work.
//!
//! A full-batch step of a small two-layer net (n = 256, d = 16, m = 64) takes ≈ 13 µs. A
//! rayon worker that finds no work goes to sleep within microseconds, and waking it
//! (futex + scheduler) takes longer than half a step: the caller finishes both halves
//! before the sleeper gets going, so `rayon::join` gives no speed-up at this size. A
//! [`SpinJoin`] keeps its helper spinning for [`SPIN_FOR`] after each job (then it parks,
//! and the next job unparks it), and the caller takes the second half back itself if the
//! helper has not claimed it by the time the first half is done — so a join is never much
//! slower than running both halves in sequence.
//!
//! Results do not depend on which thread ran which half (the caller combines them in a
//! fixed order), so everything built on it stays bitwise deterministic.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long the helper spins for the next job before it parks.
pub const SPIN_FOR: Duration = Duration::from_micros(200);

/// The second half of a join, type-erased: `call(data)` runs it once.
#[derive(Clone, Copy)]
struct JobRef {
    data: *mut (),
    call: unsafe fn(*mut ()),
}

/// State shared by the caller and the helper. Generation `g` (1, 2, …) is one job:
/// `posted = g` publishes it, `claimed = g` is set by whichever thread runs it (CAS from
/// g − 1), `finished = g` once it has run.
struct Shared {
    job: UnsafeCell<Option<JobRef>>,
    posted: AtomicU64,
    claimed: AtomicU64,
    finished: AtomicU64,
    panicked: AtomicBool,
    sleeping: AtomicBool,
    stop: AtomicBool,
}

// SAFETY: `job` is written by the caller only while no job is posted (before `posted` is
// released) and read by the helper only after acquiring `posted` and winning the claim;
// the caller does not return from `join` until the job has finished.
unsafe impl Sync for Shared {}
// SAFETY: as above; the raw pointer in `job` is only dereferenced under that protocol.
unsafe impl Send for Shared {}

/// A two-way fork–join with one spinning helper thread (see the module docs). Created
/// lazily by [`SpinJoin::new`]; dropping it stops and joins the helper.
pub struct SpinJoin {
    shared: Arc<Shared>,
    helper: Option<JoinHandle<()>>,
    generation: u64,
    /// Consecutive joins in which the caller waited longer than [`SLOW_WAIT`] for the
    /// helper (it was descheduled: the machine is oversubscribed).
    slow_joins: u32,
    /// Joins left to run on the caller alone after [`SLOW_JOINS`] slow ones in a row.
    solo: u32,
}

/// A join is slow when the caller waits longer than this for the helper after its own half:
/// far longer than a half's work in the passes this is used for (tens of microseconds) and
/// than a spinning helper's response, far shorter than a scheduler slice (≈ 1–3 ms) that a
/// descheduled helper costs.
pub const SLOW_WAIT: Duration = Duration::from_micros(200);

/// Slow joins in a row after which [`SpinJoin::join`] runs both halves on the caller for
/// [`SOLO_JOINS`] joins (on an oversubscribed machine a spinning helper that is
/// descheduled mid-job costs the caller a whole scheduler slice).
pub const SLOW_JOINS: u32 = 3;
/// See [`SLOW_JOINS`].
pub const SOLO_JOINS: u32 = 2000;

impl std::fmt::Debug for SpinJoin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpinJoin")
            .field("generation", &self.generation)
            .finish()
    }
}

impl SpinJoin {
    /// Start the helper thread.
    ///
    /// # Errors
    /// The OS error if the thread cannot be spawned.
    pub fn new() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            job: UnsafeCell::new(None),
            posted: AtomicU64::new(0),
            claimed: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            panicked: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        let helper = thread::Builder::new()
            .name("featlab-spin-join".into())
            .spawn(move || helper_loop(&s))?;
        Ok(SpinJoin {
            shared,
            helper: Some(helper),
            generation: 0,
            slow_joins: 0,
            solo: 0,
        })
    }

    /// Run `a` on the calling thread and `b` on the helper (or on the calling thread too,
    /// after `a`, if the helper has not started it by then); return when both are done.
    /// After [`SLOW_JOINS`] joins in a row in which the caller waited longer than
    /// [`SLOW_WAIT`] for the helper, the next [`SOLO_JOINS`] joins run `a` then `b` on the
    /// caller.
    ///
    /// # Panics
    /// If `a` or `b` panics (after both have stopped running).
    pub fn join<A, B>(&mut self, a: A, b: B)
    where
        A: FnOnce(),
        B: FnOnce() + Send,
    {
        unsafe fn call<B: FnOnce()>(data: *mut ()) {
            // SAFETY: `data` points to the caller's `Option<B>`, alive until the job has
            // finished; the claim protocol runs this at most once.
            let slot = unsafe { &mut *(data as *mut Option<B>) };
            if let Some(b) = slot.take() {
                b();
            }
        }
        if self.solo > 0 {
            self.solo -= 1;
            a();
            b();
            return;
        }
        let mut slot = Some(b);
        let job = JobRef {
            data: (&mut slot as *mut Option<B>).cast(),
            call: call::<B>,
        };
        let sh = &*self.shared;
        let g = self.generation + 1;
        self.generation = g;
        // SAFETY: no job is posted (the previous one finished before the last join
        // returned), so the helper does not read `job` now.
        unsafe { *sh.job.get() = Some(job) };
        sh.posted.store(g, Ordering::SeqCst);
        if sh.sleeping.load(Ordering::SeqCst) {
            if let Some(h) = &self.helper {
                h.thread().unpark();
            }
        }
        // Wait for b on every exit from here (also if `a` panics): it borrows the stack.
        struct WaitForHelper<'a>(&'a Shared, u64);
        impl Drop for WaitForHelper<'_> {
            fn drop(&mut self) {
                let (sh, g) = (self.0, self.1);
                if sh
                    .claimed
                    .compare_exchange(g - 1, g, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    // The helper has not started b: run it here.
                    run_claimed(sh, g);
                    return;
                }
                let mut spins = 0u32;
                while sh.finished.load(Ordering::Acquire) != g {
                    std::hint::spin_loop();
                    spins = spins.wrapping_add(1);
                    if spins.is_multiple_of(4096) {
                        thread::yield_now();
                    }
                }
            }
        }
        let started = Instant::now();
        let own = {
            let _wait = WaitForHelper(sh, g);
            a();
            started.elapsed()
        };
        if started.elapsed().saturating_sub(own) > SLOW_WAIT {
            self.slow_joins += 1;
            if self.slow_joins >= SLOW_JOINS {
                self.slow_joins = 0;
                self.solo = SOLO_JOINS;
            }
        } else {
            self.slow_joins = 0;
        }
        if sh.panicked.swap(false, Ordering::SeqCst) {
            panic!("SpinJoin: the second half of a join panicked");
        }
    }
}

fn helper_loop(sh: &Shared) {
    let mut seen = 0u64;
    loop {
        let mut idle_since = Instant::now();
        let mut spins = 0u32;
        let g = loop {
            let p = sh.posted.load(Ordering::Acquire);
            if p != seen {
                break p;
            }
            if sh.stop.load(Ordering::Acquire) {
                return;
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(256) && idle_since.elapsed() > SPIN_FOR {
                sh.sleeping.store(true, Ordering::SeqCst);
                if sh.posted.load(Ordering::SeqCst) == seen && !sh.stop.load(Ordering::SeqCst) {
                    thread::park();
                }
                sh.sleeping.store(false, Ordering::SeqCst);
                idle_since = Instant::now();
            }
        };
        seen = g;
        if sh
            .claimed
            .compare_exchange(g - 1, g, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            continue; // the caller ran it
        }
        run_claimed(sh, g);
    }
}

/// Run job `g`, whose claim the calling thread has just won, then publish `finished = g`
/// (a panic is caught and flagged for the caller of [`SpinJoin::join`]).
fn run_claimed(sh: &Shared, g: u64) {
    // SAFETY: posted = g was published before the claim could be won, so `job` is this
    // generation's, and the caller of `join` waits for `finished = g` before its stack
    // (which the job borrows) moves on.
    let job = unsafe { (*sh.job.get()).expect("posted job") };
    let r = catch_unwind(AssertUnwindSafe(|| unsafe { (job.call)(job.data) }));
    if r.is_err() {
        sh.panicked.store(true, Ordering::SeqCst);
    }
    sh.finished.store(g, Ordering::Release);
}

impl Drop for SpinJoin {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.helper.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

/// A slot for a lazily started [`SpinJoin`] inside a cloneable workspace: a clone starts
/// empty (two workspaces never share a helper).
#[derive(Debug, Default)]
pub struct SpinJoinSlot(Option<SpinJoin>);

impl Clone for SpinJoinSlot {
    fn clone(&self) -> Self {
        SpinJoinSlot(None)
    }
}

impl SpinJoinSlot {
    /// The slot's [`SpinJoin`], started on first use; `None` if the thread cannot be
    /// spawned (callers then run both halves in sequence).
    pub fn get(&mut self) -> Option<&mut SpinJoin> {
        if self.0.is_none() {
            self.0 = SpinJoin::new().ok();
        }
        self.0.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_halves_run_once_per_join_in_many_joins() {
        let mut sj = SpinJoin::new().unwrap();
        let (mut a_runs, mut total) = (0u64, 0u64);
        for i in 0..20_000u64 {
            let mut b_out = 0u64;
            let b_ref = &mut b_out;
            sj.join(|| a_runs += 1, move || *b_ref = i * 2);
            total += b_out;
            // now and then let the helper park, so that unparking is exercised too
            if i % 5000 == 4999 {
                thread::sleep(SPIN_FOR * 3);
            }
        }
        assert_eq!(a_runs, 20_000);
        assert_eq!(total, 2 * (0..20_000u64).sum::<u64>());
    }

    #[test]
    fn a_panic_in_the_helper_half_reaches_the_caller_and_the_join_stays_usable() {
        let mut sj = SpinJoin::new().unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| sj.join(|| {}, || panic!("boom"))));
        assert!(r.is_err());
        let mut v = 0;
        sj.join(|| {}, || v = 7);
        assert_eq!(v, 7);
    }
}
