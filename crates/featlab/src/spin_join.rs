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
    /// Whether joins currently run on both threads or on the caller alone.
    mode: ModeProbe,
    /// Joins so far, and how many of them ran on the caller alone.
    stats: JoinStats,
}

/// Counts of a [`SpinJoin`]'s joins: all of them, and those [`ModeProbe`] ran on the caller
/// alone (two threads measured slower than one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JoinStats {
    pub joins: u64,
    pub solo: u64,
}

impl JoinStats {
    /// The counts since `earlier` (a previous reading of the same join).
    pub fn since(self, earlier: JoinStats) -> JoinStats {
        JoinStats {
            joins: self.joins - earlier.joins,
            solo: self.solo - earlier.solo,
        }
    }
}

/// How long the joins run in the settled mode before the other mode is probed.
pub const STRETCH_TIME: Duration = Duration::from_millis(100);
/// How long a probe of the other mode is timed (longer than a scheduler slice, ≈ 1–3 ms,
/// so that a descheduled thread shows in the mean).
pub const PROBE_TIME: Duration = Duration::from_millis(5);
/// Joins of a probe run before its timing starts (the helper may have to be unparked).
pub const WARMUP_JOINS: u32 = 8;
/// Joins of the very first stretch run before its timing starts: the helper thread has just
/// been spawned and the caches are cold, which would make two threads look slow.
pub const START_WARMUP_JOINS: u32 = 64;
/// Most [`PROBE_TIME`] windows of a stretch kept for its median.
pub const MAX_WINDOWS: usize = 32;
/// A probed mode replaces the settled one only if its mean join time is this much lower.
pub const SWITCH_MARGIN: f64 = 0.05;

/// Chooses from measured join times whether [`SpinJoin::join`] offers its second half to
/// the helper (*joined*) or runs both halves on the caller (*solo*).
///
/// Two threads pay only when both have a core. On an oversubscribed machine (another
/// process busy, or the hypervisor taking one of the VM's cores away) a join waits for a
/// descheduled thread and two threads run slower than one (measured: 38–43 k vs 54–68 k
/// steps/s of the small two-layer GD). So the joins run in stretches: [`STRETCH_TIME`] in
/// the settled mode, then a probe of the other mode ([`WARMUP_JOINS`] joins, then
/// [`PROBE_TIME`] timed); the probed mode is kept if its mean join time (wall time over
/// joins, so waits for a descheduled thread count) is at least [`SWITCH_MARGIN`] lower
/// than the settled stretch's median [`PROBE_TIME`] window, else the settled mode resumes.
/// (One typical window against one window: a long stretch nearly always contains a thread
/// descheduled for a few ms, a 5 ms probe usually does not; comparing the stretch's overall
/// mean with the probe sent 40–74% of idle 2-thread runs to one thread.) Persistent
/// oversubscription slows most windows and still switches. The first stretch lasts
/// [`PROBE_TIME`] after [`START_WARMUP_JOINS`] untimed joins (thread start-up), so a bad
/// start is corrected within ≈ 10 ms. Probing the worse mode costs
/// ≈ 5 of every 105 ms. Which thread runs a half never changes a result, so the choice
/// cannot change any bits.
#[derive(Debug, Clone)]
pub struct ModeProbe {
    solo: bool,
    probing: bool,
    /// Joins of the current stretch so far (including a probe's warm-up).
    joins: u32,
    /// Start of the current stretch's timing (after a probe's warm-up).
    since: Option<Instant>,
    /// Start of the current [`PROBE_TIME`] window and its joins.
    window: (Option<Instant>, u32),
    /// Mean join times of the stretch's complete windows (the last [`MAX_WINDOWS`]) and
    /// how many there were.
    means: [f64; MAX_WINDOWS],
    windows: usize,
    /// The settled stretch's median window (0 before the first stretch ends).
    settled: f64,
}

impl Default for ModeProbe {
    fn default() -> Self {
        ModeProbe {
            solo: false,
            probing: false,
            joins: 0,
            since: None,
            window: (None, 0),
            means: [0.0; MAX_WINDOWS],
            windows: 0,
            settled: 0.0,
        }
    }
}

impl ModeProbe {
    /// Whether the next join runs both halves on the caller.
    pub fn solo(&self) -> bool {
        self.solo
    }

    /// Count one join that has just finished at `now` and switch stretches as described on
    /// [`ModeProbe`].
    pub fn after_join(&mut self, now: Instant) {
        self.joins += 1;
        let warmup = if self.probing {
            WARMUP_JOINS
        } else if self.settled == 0.0 {
            START_WARMUP_JOINS
        } else {
            0
        };
        let Some(since) = self.since else {
            if self.joins >= warmup {
                self.since = Some(now);
                self.window = (Some(now), 0);
                self.joins = 0;
            }
            return;
        };
        // windows of PROBE_TIME: the stretch is judged by its median window, the probe by
        // its only one, so both are one typical window (a long stretch's overall mean nearly
        // always includes a thread descheduled for a few ms, which a short probe usually
        // misses: comparing the two favoured whichever mode was probed)
        if let (Some(w0), k) = self.window {
            let w = now.saturating_duration_since(w0);
            if w >= PROBE_TIME {
                self.means[self.windows % MAX_WINDOWS] = w.as_secs_f64() / f64::from(k + 1);
                self.windows += 1;
                self.window = (Some(now), 0);
            } else {
                self.window.1 = k + 1;
            }
        }
        let length = if self.probing || self.settled == 0.0 {
            PROBE_TIME
        } else {
            STRETCH_TIME
        };
        if now.saturating_duration_since(since) < length {
            return;
        }
        let mut done = self.means;
        let done = &mut done[..self.windows.min(MAX_WINDOWS)];
        done.sort_by(f64::total_cmp);
        let mean = done.get(done.len() / 2).copied().unwrap_or(f64::INFINITY);
        if self.probing {
            if mean >= self.settled * (1.0 - SWITCH_MARGIN) {
                self.solo = !self.solo;
            }
            self.probing = false;
        } else {
            self.settled = mean;
            self.solo = !self.solo;
            self.probing = true;
        }
        (self.joins, self.since, self.window, self.windows) = (0, None, (None, 0), 0);
    }
}

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
            mode: ModeProbe::default(),
            stats: JoinStats::default(),
        })
    }

    /// Run `a` on the calling thread and `b` on the helper (or on the calling thread too,
    /// after `a`, if the helper has not started it by then); return when both are done.
    /// In stretches where two threads measured slower than one ([`ModeProbe`]), `a` then
    /// `b` run on the caller.
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
        self.stats.joins += 1;
        if self.mode.solo() {
            self.stats.solo += 1;
            a();
            b();
            self.mode.after_join(Instant::now());
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
        {
            let _wait = WaitForHelper(sh, g);
            a();
        }
        self.mode.after_join(Instant::now());
        if sh.panicked.swap(false, Ordering::SeqCst) {
            panic!("SpinJoin: the second half of a join panicked");
        }
    }
}

impl SpinJoin {
    /// Joins so far and how many ran on the caller alone.
    pub fn stats(&self) -> JoinStats {
        self.stats
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
    /// The join counts of the slot's [`SpinJoin`], if one has been started.
    pub fn stats(&self) -> Option<JoinStats> {
        self.0.as_ref().map(SpinJoin::stats)
    }

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
        assert_eq!(sj.stats().joins, 20_000);
        assert!(sj.stats().solo <= 20_000);
        assert_eq!(total, 2 * (0..20_000u64).sum::<u64>());
    }

    /// Synthetic join times on a synthetic clock: the probe settles on the faster mode
    /// after the first probe, switches when the other becomes faster, and ignores
    /// differences inside the margin.
    #[test]
    fn mode_probe_keeps_the_faster_mode_and_follows_a_change() {
        let us = Duration::from_micros;
        let mut now = Instant::now();
        // run for `span` of clock with join times (joined, solo) in µs; returns the clock
        // time spent solo
        let mut drive = |p: &mut ModeProbe, span: Duration, joined: u64, solo: u64| {
            let (mut spent, mut solo_time) = (Duration::ZERO, Duration::ZERO);
            while spent < span {
                let t = us(if p.solo() { solo } else { joined });
                if p.solo() {
                    solo_time += t;
                }
                now += t;
                spent += t;
                p.after_join(now);
            }
            solo_time
        };
        let mut p = ModeProbe::default();
        assert!(!p.solo());
        // two threads slower (oversubscribed): solo after the first stretch and probe
        drive(&mut p, 2 * PROBE_TIME + us(2000), 20, 12);
        assert!(p.solo());
        // it stays solo apart from probes of joined mode (≈ 5 of every 105 ms)
        let solo_time = drive(&mut p, 10 * STRETCH_TIME, 20, 12);
        assert!(p.solo());
        let share = solo_time.as_secs_f64() / (10 * STRETCH_TIME).as_secs_f64();
        assert!((0.93..0.97).contains(&share), "solo share {share}");
        // the machine frees up: two threads faster; back to joined within one stretch
        drive(&mut p, STRETCH_TIME + 2 * PROBE_TIME, 8, 12);
        assert!(!p.solo());
        let solo_time = drive(&mut p, 10 * STRETCH_TIME, 8, 12);
        let share = solo_time.as_secs_f64() / (10 * STRETCH_TIME).as_secs_f64();
        assert!((0.03..0.07).contains(&share), "solo share {share}");
        // a difference inside the margin does not switch
        drive(&mut p, 3 * STRETCH_TIME, 100, 98);
        assert!(!p.solo());
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
