//! Zero heap allocations per training step in steady state (issue 8).
//!
//! This file is its own test binary so that its counting `#[global_allocator]` affects
//! nothing else. The counter is per thread: each test counts only the allocations of its
//! own thread, so tests running in parallel do not disturb each other. The steps run with
//! `Par::Seq`, i.e. on the calling thread, exactly as the runner drives them
//! (`Problem` + `Stepper::step`); allocations are counted over several steps after a
//! warm-up (the first steps may size lazily allocated buffers, e.g. GEMM packing space).

use faer::{Mat, Par};
use featlab::data::Dataset;
use featlab::model::deep_linear::DeepLinear;
use featlab::model::mlp::Mlp;
use featlab::model::two_layer::TwoLayer;
use featlab::model::{Activation, Loss, Model};
use featlab::rng::{normal_vec, stream};
use featlab::train::ode::PidController;
use featlab::train::{Adam, Flow, GradientDescent, Momentum, Problem, Sgd, Stepper};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// The system allocator, counting allocations (and reallocations) per thread.
struct CountingAllocator;

thread_local! {
    // const-initialised and without destructor: usable from inside the allocator.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

thread_local! {
    // set on the threads of the two-thread test's own pool (and its caller)
    static IN_COUNTED_POOL: Cell<bool> = const { Cell::new(false) };
}

/// Allocations made on threads flagged with `IN_COUNTED_POOL`.
static POOL_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

fn count_one() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    if IN_COUNTED_POOL.try_with(Cell::get).unwrap_or(false) {
        POOL_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; counting has no effect on memory.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Warm-up steps before counting.
const WARMUP: usize = 5;
/// Warm-up steps of the two-thread test.
const WARMUP_POOL: usize = 200;
/// Steps counted.
const COUNTED: usize = 20;

/// Heap allocations of the calling thread during `COUNTED` steps, after `WARMUP` steps.
fn allocations_per_steps(stepper: &mut dyn Stepper, problem: &mut Problem<'_>) -> u64 {
    for _ in 0..WARMUP {
        stepper.step(problem, f64::INFINITY).unwrap();
    }
    let before = allocations();
    for _ in 0..COUNTED {
        stepper.step(problem, f64::INFINITY).unwrap();
    }
    let after = allocations();
    // the steps did something
    assert!(stepper.t() > 0.0 && stepper.last_loss().is_finite());
    after - before
}

/// Standard-normal inputs (n × d) and smooth targets (n × c).
fn dataset(n: usize, d: usize, c: usize) -> Dataset {
    let xv = normal_vec(&mut stream(7, "alloc-x"), n * d, 1.0);
    let x = Mat::from_fn(n, d, |i, j| xv[i * d + j]);
    let y = Mat::from_fn(n, c, |i, k| {
        x[(i, k % d)].max(0.0) + 0.5 * x[(i, (k + 1) % d)].powi(2)
    });
    Dataset::new(x, y).unwrap()
}

fn init(model: &dyn Model, scale: f64) -> Vec<f64> {
    normal_vec(&mut stream(7, "alloc-init"), model.num_params(), scale)
}

/// Full-batch GD, momentum and Adam, and the adaptive flow, each from `init`.
fn assert_no_allocation_full_batch(model: &dyn Model, data: &Dataset, params: &[f64], lr: f64) {
    let steppers: Vec<Box<dyn Stepper>> = vec![
        Box::new(GradientDescent::new(lr, params.to_vec())),
        Box::new(Momentum::new(lr, 0.9, params.to_vec())),
        Box::new(Adam::new(
            lr,
            0.9,
            0.999,
            1e-8,
            None,
            params.to_vec(),
            stream(7, "alloc-batches"),
        )),
        Box::new(Flow::new(
            params.to_vec(),
            PidController::new(1e-6, 1e-12),
            None,
        )),
    ];
    for mut stepper in steppers {
        let mut problem = Problem::new(model, data, Loss::Mse, 1e-4, Par::Seq);
        let allocs = allocations_per_steps(stepper.as_mut(), &mut problem);
        assert_eq!(
            allocs,
            0,
            "{} on {} allocated {allocs} times in {COUNTED} steady-state steps",
            stepper.name(),
            model.name()
        );
    }
}

#[test]
fn two_layer_scalar_output_steps_do_not_allocate() {
    // the small size, every activation of the fused scalar-output path
    let data = dataset(256, 16, 1);
    for act in [Activation::Relu, Activation::Quadratic, Activation::Linear] {
        let model = TwoLayer::new(16, 64, 1, act, false);
        assert_no_allocation_full_batch(&model, &data, &init(&model, 1e-3), 0.05);
    }
}

#[test]
fn two_layer_vector_output_steps_do_not_allocate() {
    let data = dataset(128, 8, 3);
    for bias in [false, true] {
        let model = TwoLayer::new(8, 32, 3, Activation::Relu, bias);
        assert_no_allocation_full_batch(&model, &data, &init(&model, 1e-2), 0.05);
    }
}

#[test]
fn deep_linear_steps_do_not_allocate() {
    let data = dataset(128, 16, 4);
    let model = DeepLinear::new(vec![16, 32, 32, 32, 4], vec![1.0; 4], vec![1.0; 4]);
    assert_no_allocation_full_batch(&model, &data, &init(&model, 0.1), 1e-3);
}

#[test]
fn mlp_steps_do_not_allocate() {
    let data = dataset(128, 16, 2);
    for bias in [false, true] {
        let model = Mlp::new(
            vec![16, 32, 32, 32, 2],
            Activation::Relu,
            bias,
            vec![1.0; 4],
            vec![1.0; 4],
        );
        assert_no_allocation_full_batch(&model, &data, &init(&model, 0.1), 1e-3);
    }
}

#[test]
fn minibatch_steps_do_not_allocate_across_epochs() {
    // 64 samples in batches of 16: 20 counted steps cross 5 epoch boundaries (reshuffles)
    let data = dataset(64, 8, 1);
    let model = TwoLayer::new(8, 16, 1, Activation::Relu, false);
    let params = init(&model, 1e-2);
    let steppers: Vec<Box<dyn Stepper>> = vec![
        Box::new(Sgd::new(
            0.05,
            16,
            0.9,
            params.clone(),
            stream(7, "alloc-batches"),
        )),
        Box::new(Adam::new(
            1e-3,
            0.9,
            0.999,
            1e-8,
            Some(16),
            params.clone(),
            stream(7, "alloc-batches"),
        )),
    ];
    for mut stepper in steppers {
        let mut problem = Problem::new(&model, &data, Loss::Mse, 0.0, Par::Seq);
        let allocs = allocations_per_steps(stepper.as_mut(), &mut problem);
        assert_eq!(
            allocs,
            0,
            "{} allocated {allocs} times in {COUNTED} steady-state minibatch steps",
            stepper.name()
        );
    }
}

/// With two threads (lanes of the two-layer net, column blocks of `linalg::matmul`), no
/// thread of the pool allocates either.
#[test]
fn two_thread_steps_do_not_allocate() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .start_handler(|_| IN_COUNTED_POOL.with(|c| c.set(true)))
        .build()
        .unwrap();
    let par = Par::rayon(2);
    let scalar = TwoLayer::new(32, 512, 1, Activation::Relu, true);
    let small = TwoLayer::new(16, 64, 1, Activation::Relu, false);
    let vector = TwoLayer::new(32, 256, 3, Activation::Relu, true);
    let deep = DeepLinear::new(vec![128, 128, 128, 4], vec![1.0; 3], vec![1.0; 3]);
    let mlp = Mlp::new(
        vec![128, 128, 128, 2],
        Activation::Relu,
        true,
        vec![1.0; 3],
        vec![1.0; 3],
    );
    let cases: Vec<(&dyn Model, Dataset, f64)> = vec![
        (&scalar, dataset(512, 32, 1), 1e-2),
        (&small, dataset(256, 16, 1), 1e-2),
        (&vector, dataset(512, 32, 3), 1e-2),
        (&deep, dataset(512, 128, 4), 1e-3),
        (&mlp, dataset(512, 128, 2), 1e-3),
    ];
    for (model, data, lr) in &cases {
        let params = init(*model, 0.05);
        let allocs = pool.install(|| {
            IN_COUNTED_POOL.with(|c| c.set(true));
            let mut problem = Problem::new(*model, data, Loss::Mse, 0.0, par);
            let mut gd = GradientDescent::new(*lr, params);
            // Long warm-up: which pool thread runs which lane or column block varies with
            // work stealing, and a thread's GEMM packing memory (faer's thread-local stack)
            // is sized on its first product of each shape.
            for _ in 0..WARMUP_POOL {
                gd.step(&mut problem, f64::INFINITY).unwrap();
            }
            let before = POOL_ALLOCATIONS.load(Ordering::SeqCst);
            for _ in 0..COUNTED {
                gd.step(&mut problem, f64::INFINITY).unwrap();
            }
            assert!(gd.last_loss().is_finite());
            POOL_ALLOCATIONS.load(Ordering::SeqCst) - before
        });
        assert_eq!(
            allocs,
            0,
            "two-thread GD on {} allocated {allocs} times in {COUNTED} steps",
            model.name()
        );
    }
}

/// The counter does count (a test of the test).
#[test]
fn the_counter_sees_an_allocation() {
    let before = allocations();
    let v = std::hint::black_box(vec![1.0f64; 100]);
    assert_eq!(allocations() - before, 1);
    drop(v);
}

/// With the NFA observer attached (recording every 10 steps, as the runner calls it), the
/// training steps between records still do not allocate: the AGOP pass and the metrics
/// allocate only inside `observe`, and leave nothing behind that a step would resize.
#[test]
fn steps_between_nfa_records_do_not_allocate() {
    use featlab::experiments::nfa::observer::NfaObserver;
    use featlab::theory::nfa::NfaOptions;
    use featlab::train::Observer;
    let data = dataset(96, 8, 3);
    for act in [Activation::Relu, Activation::Tanh] {
        let model = Mlp::new(vec![8, 24, 24, 3], act, true, vec![1.0; 3], vec![1.0; 3]);
        let params = init(&model, 0.2);
        let mut obs = NfaObserver::new(
            &model,
            &params,
            NfaOptions {
                batch: 40,
                ..NfaOptions::default()
            },
            true,
            false,
            Par::Seq,
        )
        .unwrap();
        let mut problem = Problem::new(&model, &data, Loss::Mse, 1e-4, Par::Seq);
        let mut gd = GradientDescent::new(1e-2, params);
        for record in 0..4 {
            let p = gd.params().to_vec();
            let row = obs.observe(gd.t(), &p, &mut problem).unwrap();
            assert!(
                row.iter().all(|v| v.is_finite()),
                "record {record}: {row:?}"
            );
            // first interval: warm-up (GEMM packing space sized on first use)
            let before = allocations();
            for _ in 0..10 {
                gd.step(&mut problem, f64::INFINITY).unwrap();
            }
            let allocs = allocations() - before;
            if record > 0 {
                assert_eq!(
                    allocs, 0,
                    "{act:?}: {allocs} allocations in the 10 steps after NFA record {record}"
                );
            }
        }
    }
}
