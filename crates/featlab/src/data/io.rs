//! File formats: `.npy` read/write, CSV, IDX (MNIST family), CIFAR-10 binary; atomic writes.
//! (Being written.)
