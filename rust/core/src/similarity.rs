//! Neuron-to-neuron costs (docs/definition.md#neuron-distance) as a sparse matrix whose absent entries are 1.
//!
//! Two neurons that share no input have cost exactly 1, so only pairs that share an input (and
//! pairs of empty neurons, whose cost is 0) are ever stored. Overlaps are counted by walking the
//! inputs of each neuron of A through the input-to-neuron lists of B.

use rayon::prelude::*;

use crate::alloc;
use crate::cancel::Cancel;
use crate::error::Result;
use crate::topology::{Idx, Layer};

/// The normalised edit distance of two input sets from their sizes and overlap:
/// `(union - shared) / union`, one float64 division, 0 for two empty sets.
///
/// Written as a single division on purpose: `1 - shared / union` rounds differently for many
/// pairs, and that is enough to change which optimal assignment a solver picks.
pub fn set_distance(len_a: usize, len_b: usize, shared: usize) -> f64 {
    let union = len_a + len_b - shared;
    if union == 0 {
        0.0
    } else {
        (union - shared) as f64 / union as f64
    }
}

/// The distance between two sorted input sets.
pub fn neuron_distance(a: &[Idx], b: &[Idx]) -> f64 {
    let (mut i, mut j, mut shared) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    set_distance(a.len(), b.len(), shared)
}

/// A cost matrix in compressed sparse row form whose missing entries equal 1.0.
/// Within a row, columns are strictly increasing.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseCost {
    pub n_rows: usize,
    pub n_cols: usize,
    pub rowptr: Vec<usize>,
    pub cols: Vec<Idx>,
    pub vals: Vec<f64>,
}

impl SparseCost {
    /// The stored (column, cost) entries of row `i`.
    pub fn row(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let span = self.rowptr[i]..self.rowptr[i + 1];
        self.cols[span.clone()]
            .iter()
            .map(|&c| c as usize)
            .zip(self.vals[span].iter().copied())
    }

    /// The cost of entry (i, j).
    pub fn get(&self, i: usize, j: usize) -> f64 {
        let span = self.rowptr[i]..self.rowptr[i + 1];
        match self.cols[span.clone()].binary_search(&(j as Idx)) {
            Ok(k) => self.vals[span.start + k],
            Err(_) => 1.0,
        }
    }

    /// The dense matrix, row-major.
    pub fn to_dense(&self) -> Result<Vec<f64>> {
        let cells = self.n_rows.saturating_mul(self.n_cols);
        let mut dense = alloc::filled(cells, 1.0, "the dense cost matrix")?;
        for i in 0..self.n_rows {
            for (j, c) in self.row(i) {
                dense[i * self.n_cols + j] = c;
            }
        }
        Ok(dense)
    }

    /// Builds a sparse cost from a dense row-major matrix, storing every entry that is not 1
    /// (the tests' way of writing a cost matrix).
    #[cfg(test)]
    pub(crate) fn from_dense(n_rows: usize, n_cols: usize, dense: &[f64]) -> SparseCost {
        let mut rowptr = vec![0];
        let (mut cols, mut vals) = (Vec::new(), Vec::new());
        for i in 0..n_rows {
            for j in 0..n_cols {
                let c = dense[i * n_cols + j];
                if c != 1.0 {
                    cols.push(j as Idx);
                    vals.push(c);
                }
            }
            rowptr.push(cols.len());
        }
        SparseCost {
            n_rows,
            n_cols,
            rowptr,
            cols,
            vals,
        }
    }

    /// The transposed matrix (rows become columns).
    pub fn transpose(&self) -> Result<SparseCost> {
        let mut rowptr = vec![0usize; self.n_cols + 1];
        for &c in &self.cols {
            rowptr[c as usize + 1] += 1;
        }
        for j in 0..self.n_cols {
            rowptr[j + 1] += rowptr[j];
        }
        let mut fill = rowptr.clone();
        let mut cols: Vec<Idx> = alloc::zeros(self.cols.len(), TRANSPOSED_GRAPH)?;
        let mut vals: Vec<f64> = alloc::zeros(self.vals.len(), TRANSPOSED_GRAPH)?;
        for i in 0..self.n_rows {
            for (j, c) in self.row(i) {
                cols[fill[j]] = i as Idx;
                vals[fill[j]] = c;
                fill[j] += 1;
            }
        }
        Ok(SparseCost {
            n_rows: self.n_cols,
            n_cols: self.n_rows,
            rowptr,
            cols,
            vals,
        })
    }

    /// The number of stored entries.
    pub fn nnz(&self) -> usize {
        self.cols.len()
    }
}

/// A dense row-major cost matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseCost {
    pub n_rows: usize,
    pub n_cols: usize,
    /// `data[i * n_cols + j]` is the cost of row `i` and column `j`.
    pub data: Vec<f64>,
}

impl DenseCost {
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.n_cols..(i + 1) * self.n_cols]
    }

    pub fn transpose(&self) -> Result<DenseCost> {
        let mut data = matrix_buffer(self.data.len(), "the transposed dense cost matrix")?;
        for i in 0..self.n_rows {
            for (j, &c) in self.row(i).iter().enumerate() {
                data[j * self.n_rows + i] = c;
            }
        }
        Ok(DenseCost {
            n_rows: self.n_cols,
            n_cols: self.n_rows,
            data,
        })
    }

    /// The same matrix with rows of zeros appended up to a square.
    pub fn padded_square(&self) -> Result<DenseCost> {
        let cells = self.n_cols.saturating_mul(self.n_cols);
        let mut data = matrix_buffer(cells, "the dense cost matrix padded to a square")?;
        data[..self.data.len()].copy_from_slice(&self.data);
        Ok(DenseCost {
            n_rows: self.n_cols,
            n_cols: self.n_cols,
            data,
        })
    }
}

/// `len` zeros for a dense matrix (`what`, for the error when the system refuses them). Large
/// ones are backed by transparent huge pages where the system offers them on request (Linux's
/// `madvise` mode): the first write to a fresh matrix otherwise takes a page fault every 4 KiB,
/// about a fifth of a dense layer's time at 2,048 wide.
pub(crate) fn matrix_buffer(len: usize, what: &'static str) -> Result<Vec<f64>> {
    let mut data: Vec<f64> = alloc::with_capacity(len, what)?;
    #[cfg(target_os = "linux")]
    advise_huge_pages(data.as_mut_ptr() as usize, len * std::mem::size_of::<f64>());
    data.resize(len, 0.0);
    Ok(data)
}

/// What the similarity graph's buffers are called in out-of-memory errors.
const GRAPH: &str = "the similarity graph";
const TRANSPOSED_GRAPH: &str = "the transposed similarity graph";

/// Asks for huge pages over the whole 2 MiB pages inside `[start, start + bytes)`.
#[cfg(target_os = "linux")]
fn advise_huge_pages(start: usize, bytes: usize) {
    const HUGE_PAGE: usize = 2 << 20;
    if bytes < 4 * HUGE_PAGE {
        return;
    }
    let (first, end) = (
        start.next_multiple_of(HUGE_PAGE),
        (start + bytes) / HUGE_PAGE * HUGE_PAGE,
    );
    if end > first {
        // SAFETY: advice over whole pages inside an allocation this function's caller owns and
        // has not written yet; it changes neither their contents nor their validity, and a
        // refusal (huge pages disabled) leaves ordinary pages.
        unsafe {
            libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
        }
    }
}

/// Whether [`layer_costs_with`] stores the zero cost between two empty neurons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyPairs {
    Store,
    Skip,
}

/// The cost matrix between the neurons of `a` (rows) and of `b` (columns), empty pairs stored.
/// Both layers must use the same input labels (B's inputs already renamed through the carried
/// matching).
pub fn layer_costs(a: &Layer, b: &Layer) -> Result<SparseCost> {
    layer_costs_with(a, b, EmptyPairs::Store)
}

/// Rows per parallel task when building costs.
const ROWS_PER_TASK: usize = 2048;

/// [`layer_costs`], built in parallel over blocks of rows; the result does not depend on the
/// number of threads.
pub fn layer_costs_with(a: &Layer, b: &Layer, empty: EmptyPairs) -> Result<SparseCost> {
    let (n1, n2) = (a.n_out(), b.n_out());
    let (b_rowptr, b_cols) = b.neurons_by_input();
    let empty_b: Vec<Idx> = match empty {
        EmptyPairs::Store => empty_neurons(b).into_iter().map(|j| j as Idx).collect(),
        EmptyPairs::Skip => Vec::new(),
    };
    let blocks: Vec<(Vec<usize>, Vec<Idx>, Vec<f64>)> = (0..n1.div_ceil(ROWS_PER_TASK))
        .into_par_iter()
        .map(|block| {
            let rows = block * ROWS_PER_TASK..((block + 1) * ROWS_PER_TASK).min(n1);
            // At most one entry per shared input (plus the empty pairs): reserved up front.
            let bound: usize = rows
                .clone()
                .map(|i| {
                    let inputs = a.inputs(i).iter().filter(|&&r| (r as usize) < b.n_in());
                    let fed: usize = inputs
                        .map(|&r| b_rowptr[r as usize + 1] - b_rowptr[r as usize])
                        .sum();
                    fed.min(n2)
                        + if a.inputs(i).is_empty() {
                            empty_b.len()
                        } else {
                            0
                        }
                })
                .sum();
            let mut row = RowBuilder::new(n2);
            let mut lens = Vec::with_capacity(rows.len());
            let mut cols: Vec<Idx> = alloc::with_capacity(bound, GRAPH)?;
            let mut vals: Vec<f64> = alloc::with_capacity(bound, GRAPH)?;
            for i in rows {
                let before = cols.len();
                let inputs = a.inputs(i);
                if inputs.is_empty() {
                    cols.extend_from_slice(&empty_b);
                    vals.extend(std::iter::repeat_n(0.0, empty_b.len()));
                }
                let lists = inputs
                    .iter()
                    .filter(|&&r| (r as usize) < b.n_in())
                    .map(|&r| &b_cols[b_rowptr[r as usize]..b_rowptr[r as usize + 1]]);
                let (touched, shared) = row.overlaps(lists);
                // Whole-row extends (exact-length iterators) rather than a push per entry: no
                // capacity check per value in the loop that dominates small layers.
                cols.extend_from_slice(touched);
                vals.extend(touched.iter().map(|&j| {
                    let s = std::mem::take(&mut shared[j as usize]) as usize;
                    set_distance(inputs.len(), b.inputs(j as usize).len(), s)
                }));
                lens.push(cols.len() - before);
            }
            Ok((lens, cols, vals))
        })
        .collect::<Result<_>>()?;
    let mut rowptr = Vec::with_capacity(n1 + 1);
    rowptr.push(0);
    for (lens, _, _) in &blocks {
        for len in lens {
            rowptr.push(rowptr.last().expect("non-empty") + len);
        }
    }
    let (cols, vals) = if blocks.len() == 1 {
        let (_, cols, vals) = blocks.into_iter().next().expect("one block");
        (cols, vals)
    } else {
        let nnz = rowptr[n1];
        let mut cols: Vec<Idx> = alloc::with_capacity(nnz, GRAPH)?;
        let mut vals: Vec<f64> = alloc::with_capacity(nnz, GRAPH)?;
        for (_, block_cols, block_vals) in blocks {
            cols.extend_from_slice(&block_cols);
            vals.extend_from_slice(&block_vals);
        }
        (cols, vals)
    };
    Ok(SparseCost {
        n_rows: n1,
        n_cols: n2,
        rowptr,
        cols,
        vals,
    })
}

/// One row's overlap counts, by a sparse accumulator over the columns that is reused from row
/// to row (its arrays are all zero between rows).
struct RowBuilder {
    /// `shared[j]`: inputs the row shares with column `j` (zero outside a row's counting).
    shared: Vec<u32>,
    /// A bit per column, set while the row touches it.
    marks: Vec<u64>,
    /// The touched columns, increasing (`order[..len]`), with [`FLATTEN_SLACK`] spare slots.
    order: Vec<Idx>,
}

/// Slots past the last touched column that [`flatten_word`] may write into.
const FLATTEN_SLACK: usize = 4;

impl RowBuilder {
    fn new(n_cols: usize) -> RowBuilder {
        RowBuilder {
            shared: vec![0; n_cols],
            marks: vec![0; n_cols.div_ceil(64)],
            order: vec![0; n_cols + FLATTEN_SLACK],
        }
    }

    /// Counts, for every column fed by one of `lists` (each a sorted list of columns, one per
    /// input of the row), how many of them feed it. Returns the touched columns in increasing
    /// order and the counts, which the caller reads and resets to zero (`std::mem::take`) for
    /// each touched column.
    ///
    /// The columns come out ordered by a bitmap pass over the words between the lists' first and
    /// last columns when that span is short against a comparison sort of the row (always, on
    /// layers up to a few thousand neurons wide); otherwise by sorting them.
    fn overlaps<'l>(
        &mut self,
        lists: impl Iterator<Item = &'l [Idx]> + Clone,
    ) -> (&[Idx], &mut [u32]) {
        let (mut lo, mut hi, mut fed) = (Idx::MAX, 0, 0usize);
        for list in lists.clone() {
            if let (Some(&first), Some(&last)) = (list.first(), list.last()) {
                lo = lo.min(first);
                hi = hi.max(last);
                fed += list.len();
            }
        }
        if fed == 0 {
            return (&[], &mut self.shared);
        }
        let (first_word, last_word) = (lo as usize / 64, hi as usize / 64);
        // A comparison sort costs about n log2 n steps; the bitmap one step per word of the span.
        let len = if last_word - first_word <= fed * (usize::BITS - fed.leading_zeros()) as usize {
            for list in lists {
                for &j in list {
                    self.shared[j as usize] += 1;
                    self.marks[j as usize / 64] |= 1 << (j % 64);
                }
            }
            let mut len = 0;
            for w in first_word..=last_word {
                // Wide rows leave most words of their span empty.
                let bits = std::mem::take(&mut self.marks[w]);
                if bits != 0 {
                    len += flatten_word(bits, (w * 64) as Idx, &mut self.order[len..]);
                }
            }
            len
        } else {
            let mut len = 0;
            for list in lists {
                for &j in list {
                    if self.shared[j as usize] == 0 {
                        self.order[len] = j;
                        len += 1;
                    }
                    self.shared[j as usize] += 1;
                }
            }
            self.order[..len].sort_unstable();
            len
        };
        (&self.order[..len], &mut self.shared)
    }
}

/// Writes the positions of the set bits of `bits`, plus `base`, increasing, at the start of
/// `out`, and returns how many there are. The first [`FLATTEN_SLACK`] slots are written
/// whatever the count (beyond it, with values the next word overwrites): a word holds only a
/// bit or two on sparse rows, and a loop that stops at the last bit would mispredict its exit
/// on nearly every word.
#[inline(always)]
fn flatten_word(mut bits: u64, base: Idx, out: &mut [Idx]) -> usize {
    let count = bits.count_ones() as usize;
    for slot in &mut out[..FLATTEN_SLACK] {
        *slot = base.wrapping_add(bits.trailing_zeros());
        bits &= bits.wrapping_sub(1);
    }
    let mut k = FLATTEN_SLACK;
    while bits != 0 {
        out[k] = base + bits.trailing_zeros();
        bits &= bits - 1;
        k += 1;
    }
    count
}

/// The cost matrix between the neurons of `a` (rows) and `b` (columns), dense, with overlaps
/// counted on bit-packed input sets (AND and popcount), in parallel over blocks of rows. For
/// layers whose neurons share many inputs this is far cheaper than walking input lists: the work
/// is `n1 * n2 * ceil(inputs / 64)` word operations instead of one per shared input.
///
/// Stops with [`crate::error::Error::Interrupted`] when `cancel` is raised, checked before each
/// block of rows (about `ROWS_PER_TASK * 64` pairs, or one row group when B is wider than that),
/// so Ctrl-C does not wait for the whole matrix.
pub fn dense_layer_costs(a: &Layer, b: &Layer, cancel: &Cancel) -> Result<DenseCost> {
    cancel.check()?;
    let n_in = a.n_in().max(b.n_in());
    let (bits_a, bits_b) = (Bitsets::of(a, n_in)?, Bitsets::of(b, n_in)?);
    let (n1, n2) = (a.n_out(), b.n_out());
    let mut data = matrix_buffer(n1.saturating_mul(n2), "the dense cost matrix")?;
    if n2 == 0 {
        return Ok(DenseCost {
            n_rows: n1,
            n_cols: n2,
            data,
        });
    }
    let rows_per_task = (ROWS_PER_TASK * 64 / n2).clamp(ROW_GROUP, ROWS_PER_TASK);
    let lens_b: Vec<f64> = bits_b.lens.iter().map(|&len| len as f64).collect();
    data.par_chunks_mut(n2 * rows_per_task)
        .enumerate()
        .try_for_each(|(block, out)| {
            cancel.check()?;
            let first = block * rows_per_task;
            bits_a.count_shared(first, &bits_b, out);
            for (k, row) in out.chunks_mut(n2).enumerate() {
                set_distances(bits_a.lens[first + k] as f64, &lens_b, row);
            }
            Ok(())
        })?;
    Ok(DenseCost {
        n_rows: n1,
        n_cols: n2,
        data,
    })
}

/// `shared[j] = set_distance(len_a, lens_b[j], shared[j])`, in float64 throughout so that it
/// vectorises: the sizes are integers far below 2^53, so every sum and difference is exact and
/// the one division rounds exactly as [`set_distance`]'s.
fn set_distances(len_a: f64, lens_b: &[f64], shared: &mut [f64]) {
    for (cost, &len_b) in shared.iter_mut().zip(lens_b) {
        let union = len_a + len_b - *cost;
        let distance = (union - *cost) / union;
        *cost = if union == 0.0 { 0.0 } else { distance };
    }
}

/// What the bit-packed input sets are called in out-of-memory errors.
const BITSETS: &str = "the bit-packed input sets";

/// Rows of A counted together against each neuron of B: every word of B is loaded once for
/// all of them, and their sums are independent chains.
const ROW_GROUP: usize = 4;

/// Bytes of B's bitsets counted against a block of A's rows before moving on: they stay in the
/// core's cache while every row of the block passes over them.
const TILE_BYTES: usize = 128 << 10;

/// The input sets of a layer's neurons as bitsets of `words` 64-bit words each.
struct Bitsets {
    words: usize,
    bits: Vec<u64>,
    lens: Vec<u32>,
    /// The sets' low and high nibbles ([`avx2::Nibbles`]), when the CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    nibbles: Option<avx2::Nibbles>,
}

impl Bitsets {
    fn of(layer: &Layer, n_in: usize) -> Result<Bitsets> {
        // Whole 256-bit vectors per set, for the AVX2 kernel.
        let words = n_in.div_ceil(256).max(1) * 4;
        let mut bits: Vec<u64> = alloc::zeros(words.saturating_mul(layer.n_out()), BITSETS)?;
        let mut lens = Vec::with_capacity(layer.n_out());
        for c in 0..layer.n_out() {
            let set = &mut bits[c * words..(c + 1) * words];
            for &r in layer.inputs(c) {
                set[r as usize / 64] |= 1 << (r % 64);
            }
            lens.push(layer.inputs(c).len() as u32);
        }
        #[cfg(target_arch = "x86_64")]
        let nibbles = if std::arch::is_x86_feature_detected!("avx2") {
            Some(avx2::Nibbles::of(&bits)?)
        } else {
            None
        };
        Ok(Bitsets {
            words,
            #[cfg(target_arch = "x86_64")]
            nibbles,
            bits,
            lens,
        })
    }

    fn set(&self, i: usize) -> &[u64] {
        &self.bits[i * self.words..(i + 1) * self.words]
    }

    /// `out[k * n + j]` = the number of inputs neuron `first + k` of `self` shares with neuron
    /// `j` of `other` (`n` of them), for every row of `out`, as a float.
    fn count_shared(&self, first: usize, other: &Bitsets, out: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if let (Some(a), Some(b)) = (&self.nibbles, &other.nibbles) {
            // SAFETY: nibble planes are only built when the CPU supports AVX2.
            unsafe { avx2::count_shared(a, first, b, self.words, out) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU supports the instructions the function is compiled with.
            unsafe { count_shared_popcnt(self, first, other, out) };
            return;
        }
        count_shared_portable(self, first, other, out);
    }
}

/// [`Bitsets::count_shared`]: B in tiles that stay in cache; within a tile, [`ROW_GROUP`] rows
/// of A at a time against each of its neurons.
#[inline(always)]
fn count_shared_portable(a: &Bitsets, first: usize, b: &Bitsets, out: &mut [f64]) {
    let n = b.lens.len();
    let rows = out.len() / n;
    let tile = (TILE_BYTES / (8 * b.words)).max(1);
    for start in (0..n).step_by(tile) {
        let cols = start..(start + tile).min(n);
        let mut k = 0;
        while k + ROW_GROUP <= rows {
            let sets: [&[u64]; ROW_GROUP] = std::array::from_fn(|r| a.set(first + k + r));
            for j in cols.clone() {
                let counts = shared_with_group(sets, b.set(j));
                for (r, count) in counts.into_iter().enumerate() {
                    out[(k + r) * n + j] = count as f64;
                }
            }
            k += ROW_GROUP;
        }
        for k in k..rows {
            let set = a.set(first + k);
            for j in cols.clone() {
                let count: u32 = set
                    .iter()
                    .zip(b.set(j))
                    .map(|(x, y)| (x & y).count_ones())
                    .sum();
                out[k * n + j] = count as f64;
            }
        }
    }
}

/// The overlaps of [`ROW_GROUP`] sets with `b`.
#[inline(always)]
fn shared_with_group(sets: [&[u64]; ROW_GROUP], b: &[u64]) -> [u32; ROW_GROUP] {
    let sets = sets.map(|s| &s[..b.len()]);
    let mut counts = [0u32; ROW_GROUP];
    for (w, &y) in b.iter().enumerate() {
        for r in 0..ROW_GROUP {
            counts[r] += (sets[r][w] & y).count_ones();
        }
    }
    counts
}

/// [`count_shared_portable`] compiled for CPUs with the POPCNT instruction (almost every x86-64
/// CPU since 2008; the portable build cannot assume it).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn count_shared_popcnt(a: &Bitsets, first: usize, b: &Bitsets, out: &mut [f64]) {
    count_shared_portable(a, first, b, out);
}

/// Overlap counts with AVX2: popcounts by nibble lookup (`vpshufb`), 32 bytes at a time.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{ROW_GROUP, TILE_BYTES};
    use crate::alloc;
    use crate::error::Result;
    use std::arch::x86_64::*;

    /// Every byte of a set split into its low nibble (`lo`) and its high nibble shifted down
    /// (`hi`): the nibbles of `a & b` are then `a.lo & b.lo` and `a.hi & b.hi`, so each set is
    /// split once rather than every pair.
    pub struct Nibbles {
        lo: Vec<u64>,
        hi: Vec<u64>,
    }

    impl Nibbles {
        pub fn of(bits: &[u64]) -> Result<Nibbles> {
            const LOW: u64 = 0x0f0f_0f0f_0f0f_0f0f;
            Ok(Nibbles {
                lo: alloc::collect(bits.iter().map(|&w| w & LOW), super::BITSETS)?,
                hi: alloc::collect(bits.iter().map(|&w| (w >> 4) & LOW), super::BITSETS)?,
            })
        }
    }

    /// Vectors of 32 bytes after which byte counters (at most 8 per vector) are widened before
    /// they could pass 255.
    const FLUSH: usize = 31;

    /// `super::count_shared_portable` with AVX2; the counts are the same integers.
    #[target_feature(enable = "avx2")]
    pub unsafe fn count_shared(
        a: &Nibbles,
        first: usize,
        b: &Nibbles,
        words: usize,
        out: &mut [f64],
    ) {
        let n = b.lo.len() / words;
        let rows = out.len() / n;
        assert!(words % 4 == 0 && (first + rows) * words <= a.lo.len());
        let tile = (TILE_BYTES / (8 * words)).max(1);
        for start in (0..n).step_by(tile) {
            let end = (start + tile).min(n);
            let mut k = 0;
            while k < rows {
                let group = ROW_GROUP.min(rows - k);
                // A short last group repeats its first row; the extra counts are dropped.
                let set = |r: usize| (first + k + if r < group { r } else { 0 }) * words;
                let sets: [usize; ROW_GROUP] = std::array::from_fn(set);
                for j in start..end {
                    let counts = group_counts(a, sets, b, j * words, words);
                    for (r, &count) in counts.iter().enumerate().take(group) {
                        out[(k + r) * n + j] = count as f64;
                    }
                }
                k += group;
            }
        }
    }

    /// The overlaps of the [`ROW_GROUP`] sets of `a` starting at word offsets `sets` with the
    /// set of `b` at word offset `col`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn group_counts(
        a: &Nibbles,
        sets: [usize; ROW_GROUP],
        b: &Nibbles,
        col: usize,
        words: usize,
    ) -> [u64; ROW_GROUP] {
        let lut = _mm256_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2,
            3, 3, 4,
        );
        let load = |v: &[u64], at: usize| {
            debug_assert!(at + 4 <= v.len());
            // SAFETY: every offset is a whole vector inside a set (asserted by the caller).
            unsafe { _mm256_loadu_si256(v.as_ptr().add(at) as *const __m256i) }
        };
        let zero = _mm256_setzero_si256();
        let mut sums = [zero; ROW_GROUP];
        let mut w = 0;
        while w < words {
            let end = (w + 4 * FLUSH).min(words);
            let mut bytes = [zero; ROW_GROUP];
            while w < end {
                let (lo, hi) = (load(&b.lo, col + w), load(&b.hi, col + w));
                for r in 0..ROW_GROUP {
                    let x = _mm256_and_si256(load(&a.lo, sets[r] + w), lo);
                    let y = _mm256_and_si256(load(&a.hi, sets[r] + w), hi);
                    bytes[r] = _mm256_add_epi8(bytes[r], _mm256_shuffle_epi8(lut, x));
                    bytes[r] = _mm256_add_epi8(bytes[r], _mm256_shuffle_epi8(lut, y));
                }
                w += 4;
            }
            for r in 0..ROW_GROUP {
                sums[r] = _mm256_add_epi64(sums[r], _mm256_sad_epu8(bytes[r], zero));
            }
        }
        sums.map(|s| {
            let mut lanes = [0u64; 4];
            // SAFETY: four u64 lanes into a four-element array.
            unsafe { _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, s) };
            lanes.iter().sum()
        })
    }
}

/// The neurons of `layer` that have no input, in increasing order.
pub fn empty_neurons(layer: &Layer) -> Vec<usize> {
    (0..layer.n_out())
        .filter(|&j| layer.inputs(j).is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touched_columns_come_out_increasing_by_either_method() {
        let mut row = RowBuilder::new(13_000);
        // A narrow span: the bitmap pass (a word with more bits than the slack, and repeats);
        // wide and few: the comparison sort.
        let narrow: [&[Idx]; 3] = [&[3, 5, 64, 66, 70, 127], &[0, 1, 2, 3, 4, 5, 6], &[5, 66]];
        let wide: [&[Idx]; 2] = [&[7, 12_000], &[9, 9_000, 12_000]];
        for lists in [&narrow[..], &wide[..]] {
            let mut expected: Vec<Idx> = lists.iter().flat_map(|l| l.iter().copied()).collect();
            expected.sort_unstable();
            expected.dedup();
            let (touched, shared) = row.overlaps(lists.iter().copied());
            let touched = touched.to_vec();
            assert_eq!(touched, expected);
            for &j in &touched {
                let feeding = lists.iter().filter(|l| l.contains(&j)).count() as u32;
                assert_eq!(std::mem::take(&mut shared[j as usize]), feeding);
            }
        }
        assert!(row.shared.iter().all(|&s| s == 0));
        assert!(row.marks.iter().all(|&w| w == 0));
        assert!(row.overlaps(std::iter::empty()).0.is_empty());
    }

    #[test]
    fn matrices_the_system_cannot_give_are_errors() {
        // 2^40 x 2^40 cells: more bytes than any address space.
        let n = 1 << 40;
        let huge = SparseCost {
            n_rows: n,
            n_cols: n,
            rowptr: vec![0; 2], // never read: the matrix is refused first
            cols: Vec::new(),
            vals: Vec::new(),
        };
        let is_out_of_memory = |e: crate::error::Error| matches!(e, crate::error::Error::OutOfMemory { what, .. } if what.contains("matrix"));
        assert!(is_out_of_memory(huge.to_dense().unwrap_err()));
        let wide = DenseCost {
            n_rows: 0,
            n_cols: n,
            data: Vec::new(),
        };
        assert!(is_out_of_memory(wide.padded_square().unwrap_err()));
    }

    #[test]
    fn distance_is_one_division() {
        assert_eq!(set_distance(0, 0, 0), 0.0);
        assert_eq!(set_distance(0, 3, 0), 1.0);
        assert_eq!(set_distance(3, 3, 3), 0.0);
        assert_eq!(set_distance(3, 4, 2), 3.0 / 5.0);
        assert_eq!(neuron_distance(&[1, 2, 5], &[2, 5, 7, 9]), 3.0 / 5.0);
    }

    /// Random layers of `n_out` neurons over `n_in` inputs, each input kept with chance `p`.
    fn random_layer(n_in: usize, n_out: usize, p: f64, seed: u64) -> Layer {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let sets: Vec<Vec<Idx>> = (0..n_out)
            .map(|_| (0..n_in as Idx).filter(|_| next() < p).collect())
            .collect();
        Layer::from_neuron_inputs(0, n_in, &sets).unwrap()
    }

    #[test]
    fn dense_costs_match_sparse_ones_on_every_kernel_path() {
        // Row counts that are not whole row groups, sets longer than one counter flush
        // (> 31 vectors of 256 bits), and a B wider than one cache tile.
        for (n_in, n1, n2, p, seed) in [
            (9000, 7, 130, 0.5, 1),
            (300, 13, 600, 0.2, 2),
            (64, 3, 2, 0.9, 3),
            (1, 5, 6, 0.5, 4),
        ] {
            let a = random_layer(n_in, n1, p, seed);
            let b = random_layer(n_in, n2, p, seed + 10);
            assert_eq!(
                dense_layer_costs(&a, &b, &Cancel::new()).unwrap().data,
                layer_costs(&a, &b).unwrap().to_dense().unwrap()
            );
        }
    }

    #[test]
    fn dense_costs_stop_when_cancelled_and_are_unchanged_otherwise() {
        // Wider than one block of rows, so the kernel runs several blocks.
        let a = random_layer(200, 300, 0.3, 5);
        let b = random_layer(200, 500, 0.3, 6);
        let cancelled = Cancel::new();
        cancelled.cancel();
        assert_eq!(
            dense_layer_costs(&a, &b, &cancelled),
            Err(crate::error::Error::Interrupted)
        );
        let live = dense_layer_costs(&a, &b, &Cancel::new()).unwrap();
        assert_eq!((live.n_rows, live.n_cols), (300, 500));
        assert_eq!(live.data, layer_costs(&a, &b).unwrap().to_dense().unwrap());
        for (i, j) in [(0, 0), (17, 499), (299, 250)] {
            assert_eq!(
                live.data[i * 500 + j],
                neuron_distance(a.inputs(i), b.inputs(j))
            );
        }
    }

    #[test]
    fn sparse_costs_match_the_pairwise_definition() {
        let a =
            Layer::from_neuron_inputs(0, 5, &[vec![0, 1], vec![], vec![2, 3, 4], vec![4]]).unwrap();
        let b =
            Layer::from_neuron_inputs(0, 5, &[vec![], vec![1, 4], vec![3], vec![0, 1, 2]]).unwrap();
        let c = layer_costs(&a, &b).unwrap();
        for i in 0..a.n_out() {
            for j in 0..b.n_out() {
                assert_eq!(
                    c.get(i, j),
                    neuron_distance(a.inputs(i), b.inputs(j)),
                    "({i}, {j})"
                );
            }
        }
        assert_eq!(c.transpose().unwrap().transpose().unwrap(), c);
        let dense = dense_layer_costs(&a, &b, &Cancel::new()).unwrap();
        assert_eq!(dense.data, c.to_dense().unwrap());
    }
}
