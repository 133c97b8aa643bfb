//! The few matrix operations everyone needs, over faer.
//!
//! All GEMMs go through [`matmul`], which is deterministic whatever the thread count:
//! with `Par::Rayon`, the destination is cut into a fixed grid of column blocks that
//! depends only on the shape (never on the number of threads) and each block is computed
//! by faer's sequential kernel. The reduction dimension is never split, so every output
//! element is summed in the same order on 1 or 32 threads.

use faer::linalg::matmul::matmul as faer_matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par, Side};

/// Minimum number of multiply-adds (m·n·k) before [`matmul`] uses threads at all.
/// Measured on a 2-core Zen 5: splitting smaller products costs more than it gains.
pub const PAR_MIN_FLOPS: usize = 1 << 21;

/// Fixed column-block width of the deterministic parallel split.
const BLOCK_COLS: usize = 64;

/// `dst ← beta·dst + alpha · lhs · rhs` (beta = 0 for `Accum::Replace`, 1 for `Accum::Add`).
///
/// Shapes: lhs m×k, rhs k×n, dst m×n (panics otherwise, like faer). Results are bitwise
/// identical for every `par` (see the module docs).
#[track_caller]
pub fn matmul(
    dst: MatMut<'_, f64>,
    accum: Accum,
    lhs: MatRef<'_, f64>,
    rhs: MatRef<'_, f64>,
    alpha: f64,
    par: Par,
) {
    assert_eq!(lhs.ncols(), rhs.nrows(), "matmul: inner dimensions differ");
    assert_eq!(dst.nrows(), lhs.nrows(), "matmul: dst rows");
    assert_eq!(dst.ncols(), rhs.ncols(), "matmul: dst cols");
    let (m, n, k) = (lhs.nrows(), rhs.ncols(), lhs.ncols());
    let threads = match par {
        Par::Seq => 1,
        Par::Rayon(t) => t.get(),
    };
    if threads <= 1 || m * n * k < PAR_MIN_FLOPS || n <= BLOCK_COLS {
        // Even sequentially, compute block by block so the result does not depend on
        // whether the parallel path was taken.
        blocked_seq(dst, accum, lhs, rhs, alpha);
        return;
    }
    split_cols(dst, accum, lhs, rhs, alpha);
}

/// Compute `dst ← … lhs · rhs` (see [`matmul`]) over the fixed column blocks of width
/// [`BLOCK_COLS`], halving the block range with `rayon::join` (no allocation); each block
/// is one sequential faer product.
fn split_cols(
    dst: MatMut<'_, f64>,
    accum: Accum,
    lhs: MatRef<'_, f64>,
    rhs: MatRef<'_, f64>,
    alpha: f64,
) {
    let nblocks = rhs.ncols().div_ceil(BLOCK_COLS);
    if nblocks <= 1 {
        faer_matmul(dst, accum, lhs, rhs, alpha, Par::Seq);
        return;
    }
    let split = (nblocks / 2) * BLOCK_COLS;
    let (left, right) = dst.split_at_col_mut(split);
    let (rl, rr) = rhs.split_at_col(split);
    rayon::join(
        || split_cols(left, accum, lhs, rl, alpha),
        || split_cols(right, accum, lhs, rr, alpha),
    );
}

fn blocked_seq(
    dst: MatMut<'_, f64>,
    accum: Accum,
    lhs: MatRef<'_, f64>,
    rhs: MatRef<'_, f64>,
    alpha: f64,
) {
    let n = rhs.ncols();
    if n <= BLOCK_COLS {
        faer_matmul(dst, accum, lhs, rhs, alpha, Par::Seq);
        return;
    }
    let mut rest = dst;
    let mut c0 = 0;
    while c0 < n {
        let w = BLOCK_COLS.min(n - c0);
        let (left, right) = rest.split_at_col_mut(w);
        faer_matmul(left, accum, lhs, rhs.subcols(c0, w), alpha, Par::Seq);
        rest = right;
        c0 += w;
    }
}

/// Lower triangle of a Gram matrix: `dst[i, j] += alpha · Σ_r a[r, i] a[r, j]` for i ≥ j
/// (`dst` k × k, `a` m × k), i.e. the lower half of `alpha · aᵀa` accumulated in place,
/// at half the flops of the full product (m·k(k + 1), counting the diagonal blocks
/// whole). Computed over the same fixed grid of [`BLOCK_COLS`]-wide column blocks as
/// [`matmul`], each block `dst[j0.., j0..j0+w] += alpha · a[:, j0..]ᵀ a[:, j0..j0+w]` one
/// sequential faer product, so the result depends only on the shapes. Entries strictly
/// above the diagonal inside the diagonal blocks are also accumulated; entries above them
/// are untouched. Callers mirror the lower triangle when they need the full matrix.
#[track_caller]
pub fn gram_lower(dst: MatMut<'_, f64>, a: MatRef<'_, f64>, alpha: f64) {
    let k = a.ncols();
    assert_eq!(
        (dst.nrows(), dst.ncols()),
        (k, k),
        "gram_lower: dst must be k × k"
    );
    let mut dst = dst;
    let mut j0 = 0;
    while j0 < k {
        let w = BLOCK_COLS.min(k - j0);
        let block = dst.as_mut().submatrix_mut(j0, j0, k - j0, w);
        faer_matmul(
            block,
            Accum::Add,
            a.subcols(j0, k - j0).transpose(),
            a.subcols(j0, w),
            alpha,
            Par::Seq,
        );
        j0 += w;
    }
}

/// Fewest elements a column-wise elementwise pass must touch before
/// [`for_column_blocks`] uses threads (below this a rayon hand-off costs more than the pass).
pub const PAR_MIN_ELEMENTS: usize = 1 << 16;

/// Matrices (or tuples of matrices with the same number of columns) that can be cut into
/// column ranges, for [`for_column_blocks`].
pub trait ColumnBlocks: Send + Sized {
    /// Number of columns.
    fn ncols(&self) -> usize;
    /// Columns `[0, mid)` and `[mid, ncols)`.
    fn split_at_col(self, mid: usize) -> (Self, Self);
}

impl ColumnBlocks for MatMut<'_, f64> {
    fn ncols(&self) -> usize {
        MatMut::ncols(self)
    }
    fn split_at_col(self, mid: usize) -> (Self, Self) {
        self.split_at_col_mut(mid)
    }
}

impl ColumnBlocks for MatRef<'_, f64> {
    fn ncols(&self) -> usize {
        MatRef::ncols(self)
    }
    fn split_at_col(self, mid: usize) -> (Self, Self) {
        MatRef::split_at_col(self, mid)
    }
}

impl<A: ColumnBlocks, B: ColumnBlocks> ColumnBlocks for (A, B) {
    fn ncols(&self) -> usize {
        self.0.ncols()
    }
    fn split_at_col(self, mid: usize) -> (Self, Self) {
        let (a0, a1) = self.0.split_at_col(mid);
        let (b0, b1) = self.1.split_at_col(mid);
        ((a0, b0), (a1, b1))
    }
}

impl<A: ColumnBlocks, B: ColumnBlocks, C: ColumnBlocks> ColumnBlocks for (A, B, C) {
    fn ncols(&self) -> usize {
        self.0.ncols()
    }
    fn split_at_col(self, mid: usize) -> (Self, Self) {
        let (a0, a1) = self.0.split_at_col(mid);
        let (b0, b1) = self.1.split_at_col(mid);
        let (c0, c1) = self.2.split_at_col(mid);
        ((a0, b0, c0), (a1, b1, c1))
    }
}

/// Apply `f` to column ranges of `blocks` (one matrix or a tuple of matrices with the same
/// number of columns) covering all columns once: in parallel (halving the range with
/// `rayon::join`, no allocation) when `par` has threads and the pass touches at least
/// [`PAR_MIN_ELEMENTS`] of `elements`, else as one range. For per-column work (bias, σ, σ',
/// column sums), so results do not depend on `par`.
pub fn for_column_blocks<A: ColumnBlocks>(
    par: Par,
    elements: usize,
    blocks: A,
    f: &(impl Fn(A) + Sync),
) {
    let threads = match par {
        Par::Seq => 1,
        Par::Rayon(t) => t.get(),
    };
    if threads <= 1 || elements < PAR_MIN_ELEMENTS || blocks.ncols() < 2 {
        f(blocks);
        return;
    }
    // ranges of at least ncols / (4·threads) columns: a few per thread for balance
    let grain = blocks.ncols().div_ceil(4 * threads).max(1);
    split_column_blocks(blocks, grain, f);
}

fn split_column_blocks<A: ColumnBlocks>(blocks: A, grain: usize, f: &(impl Fn(A) + Sync)) {
    let n = blocks.ncols();
    if n <= grain || n < 2 {
        f(blocks);
        return;
    }
    let (left, right) = blocks.split_at_col(n / 2);
    rayon::join(
        || split_column_blocks(left, grain, f),
        || split_column_blocks(right, grain, f),
    );
}

/// Column `j` of a column-major matrix as a slice (faer's column-major storage has unit row
/// stride; panics otherwise).
#[track_caller]
pub fn col_mut(m: MatMut<'_, f64>, j: usize) -> &mut [f64] {
    m.col_mut(j)
        .try_as_col_major_mut()
        .expect("col_mut: the matrix is not column-major")
        .as_slice_mut()
}

/// Column `j` of a column-major matrix as a slice (see [`col_mut`]).
#[track_caller]
pub fn col(m: MatRef<'_, f64>, j: usize) -> &[f64] {
    m.col(j)
        .try_as_col_major()
        .expect("col: the matrix is not column-major")
        .as_slice()
}

/// View a row-major slice of length `rows·cols` as a matrix (zero copy).
#[track_caller]
pub fn view(data: &[f64], rows: usize, cols: usize) -> MatRef<'_, f64> {
    MatRef::from_row_major_slice(data, rows, cols)
}

/// Mutable row-major view.
#[track_caller]
pub fn view_mut(data: &mut [f64], rows: usize, cols: usize) -> MatMut<'_, f64> {
    MatMut::from_row_major_slice_mut(data, rows, cols)
}

/// Frobenius norm ‖A‖_F = sqrt(Σ a_ij²).
pub fn frobenius(a: MatRef<'_, f64>) -> f64 {
    a.norm_l2()
}

/// Euclidean norm of a slice.
pub fn norm2(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Dot product of two slices of equal length.
#[track_caller]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Power of a symmetric positive semi-definite matrix by eigendecomposition:
/// `G^p = U diag(max(λ,0)^p) Uᵀ` (tiny negative eigenvalues from round-off are clamped to 0).
pub fn psd_pow(g: MatRef<'_, f64>, p: f64) -> crate::Result<Mat<f64>> {
    let (u, l) = sym_eig(g)?;
    Ok(psd_pow_from_eig(u.as_ref(), &l, p))
}

/// `U diag(max(λ, 0)^p) Uᵀ` from an eigendecomposition `G = U diag(λ) Uᵀ` already at hand
/// (zero eigenvalues map to zero): [`psd_pow`] without a second decomposition.
pub fn psd_pow_from_eig(u: MatRef<'_, f64>, l: &[f64], p: f64) -> Mat<f64> {
    let n = u.nrows();
    let scaled = Mat::from_fn(n, n, |i, j| {
        let lj = l[j].max(0.0);
        u[(i, j)] * if lj == 0.0 { 0.0 } else { lj.powf(p) }
    });
    let mut out = Mat::zeros(n, n);
    faer_matmul(
        out.as_mut(),
        Accum::Replace,
        scaled.as_ref(),
        u.transpose(),
        1.0,
        Par::Seq,
    );
    out
}

/// Symmetric eigendecomposition `G = U diag(λ) Uᵀ`, eigenvalues ascending.
pub fn sym_eig(g: MatRef<'_, f64>) -> crate::Result<(Mat<f64>, Vec<f64>)> {
    if g.nrows() != g.ncols() {
        return Err(crate::Error::Shape(format!(
            "eigendecomposition needs a square matrix, got {}×{}",
            g.nrows(),
            g.ncols()
        )));
    }
    let evd = g.self_adjoint_eigen(Side::Lower).map_err(|e| {
        crate::Error::Numerical(format!("symmetric eigendecomposition failed: {e:?}"))
    })?;
    let l: Vec<f64> = evd.S().column_vector().iter().copied().collect();
    Ok((evd.U().to_owned(), l))
}

/// Thin SVD `A = U diag(s) Vᵀ`, singular values descending.
pub fn thin_svd(a: MatRef<'_, f64>) -> crate::Result<(Mat<f64>, Vec<f64>, Mat<f64>)> {
    let svd = a
        .thin_svd()
        .map_err(|e| crate::Error::Numerical(format!("SVD failed: {e:?}")))?;
    let s: Vec<f64> = svd.S().column_vector().iter().copied().collect();
    Ok((svd.U().to_owned(), s, svd.V().to_owned()))
}

/// Singular values, descending.
pub fn singular_values(a: MatRef<'_, f64>) -> crate::Result<Vec<f64>> {
    Ok(thin_svd(a)?.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroUsize;

    #[test]
    fn matmul_is_bitwise_identical_across_thread_counts() {
        let (m, k, n) = (300, 70, 513);
        let a = Mat::from_fn(m, k, |i, j| ((i * 31 + j * 17) % 97) as f64 / 97.0 - 0.5);
        let b = Mat::from_fn(k, n, |i, j| ((i * 13 + j * 7) % 89) as f64 / 89.0 - 0.3);
        let mut c1 = Mat::zeros(m, n);
        let mut c2 = Mat::zeros(m, n);
        matmul(
            c1.as_mut(),
            Accum::Replace,
            a.as_ref(),
            b.as_ref(),
            1.0,
            Par::Seq,
        );
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            matmul(
                c2.as_mut(),
                Accum::Replace,
                a.as_ref(),
                b.as_ref(),
                1.0,
                Par::Rayon(NonZeroUsize::new(2).unwrap()),
            )
        });
        for j in 0..n {
            for i in 0..m {
                assert_eq!(c1[(i, j)].to_bits(), c2[(i, j)].to_bits());
            }
        }
        // and it is a correct product
        let mut r = 0.0f64;
        for l in 0..k {
            r += a[(5, l)] * b[(l, 400)];
        }
        assert!((r - c1[(5, 400)]).abs() < 1e-12);
    }

    #[test]
    fn psd_pow_squares_back() {
        let a = Mat::from_fn(5, 4, |i, j| {
            (i as f64 + 1.0) * 0.3 - (j as f64) * 0.7 + ((i * j) % 3) as f64
        });
        let mut g = Mat::zeros(4, 4);
        matmul(
            g.as_mut(),
            Accum::Replace,
            a.transpose(),
            a.as_ref(),
            1.0,
            Par::Seq,
        );
        let h = psd_pow(g.as_ref(), 0.5).unwrap();
        let mut hh = Mat::zeros(4, 4);
        matmul(
            hh.as_mut(),
            Accum::Replace,
            h.as_ref(),
            h.as_ref(),
            1.0,
            Par::Seq,
        );
        for i in 0..4 {
            for j in 0..4 {
                assert!((hh[(i, j)] - g[(i, j)]).abs() < 1e-10 * (1.0 + g[(i, j)].abs()));
            }
        }
    }
}
