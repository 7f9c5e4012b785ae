//! The state of a shortest augmenting path search, shared by every algorithm that searches: the
//! row-by-row searches of [`super::ssp`], the all-free-rows searches of [`super::sparse`]'s
//! phases, and the list and dense searches of [`super::lapjv`].
//!
//! A search is Dijkstra's algorithm on reduced costs over columns: a column is reached (a
//! tentative distance and the row it came through), then settled (its distance final). What
//! differs between the algorithms is where a row's costs come from ([`RowCosts`]: a row of the
//! similarity graph with its dummy, a row of the doubled graph, a row's candidate list, a dense
//! row), how a cost becomes a distance, and which reached columns a search bothers to queue; the
//! arrays, the stamps that reset them in O(1) between searches, and the queue are this
//! module's.
//!
//! One [`Workspace`] serves a whole layer, and is handed back to a per-thread pool when dropped,
//! so the next layer solved on the thread (the many small layers of a pairwise matrix) reuses
//! its arrays instead of allocating them again; one that has grown large is freed instead, so
//! that no thread holds memory the memory budget (`crate::policy`) no longer counts.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{Key, UNMATCHED};
use crate::alloc;
use crate::error::Result;

/// A cost form as the searches read it: every `(column, cost)` edge of a row.
pub(crate) trait RowCosts {
    /// The number of edges of `row` (the queue grows by at most this many entries per row).
    fn degree(&self, row: usize) -> usize;
    /// The edges of `row`, each column once.
    fn edges(&self, row: usize) -> impl Iterator<Item = (usize, f64)> + '_;
}

/// What a queued column carries beside its distance, which orders columns at equal distances
/// (see [`super::ssp`]'s and [`super::lapjv`]'s tie rules). Encoded in a `u64` so that one queue
/// type serves every algorithm: `encode` must be injective and keep the order of `Self`, so the
/// queue pops the same sequence as a queue of `(distance, Self)` would.
pub(crate) trait Tie: Copy {
    fn encode(self) -> u64;
    fn decode(bits: u64) -> Self;
}

/// A plain column: equal distances in increasing column order.
impl Tie for usize {
    fn encode(self) -> u64 {
        self as u64
    }
    fn decode(bits: u64) -> Self {
        bits as usize
    }
}

/// An entry of the queue: a distance, then its [`Tie`], least first.
type Entry = Reverse<(Key, u64)>;

/// Bytes of one queue entry, for the memory budget.
pub(crate) const ENTRY_BYTES: usize = size_of::<Entry>();

/// Bytes of one settled column's record, for the memory budget.
pub(crate) const SETTLED_BYTES: usize = size_of::<(usize, f64)>();

/// Workspaces up to this many bytes go back to the thread's pool when dropped (a layer of a few
/// thousand neurons); larger ones are freed.
const POOLED_BYTES: usize = 4 << 20;

/// The arrays of a search over `n` columns.
#[derive(Default)]
struct Buffers {
    /// The columns the arrays are in use for (they may be longer, from an earlier layer).
    n: usize,
    /// The current search's stamp: `mark[j] == stamp` when column `j` was reached in it,
    /// `stamp + 1` once settled. Grows by 2 a search (back to 0 with every mark cleared when it
    /// would wrap), so marks from earlier searches, or earlier layers, never match; one array,
    /// so that a relaxed column costs one read of it.
    stamp: u32,
    mark: Vec<u32>,
    /// The distance of a column reached in the current search, final once settled. The
    /// searches of [`super::lapjv`] read it without marks ("by distance"): infinite where not
    /// reached, NaN once settled (its distance then in `settled`), so that one read and one
    /// comparison `d < dist[j]` decide a column of a whole dense row.
    dist: Vec<f64>,
    /// The columns a search by distance reached, to reset to infinite.
    touched: Vec<usize>,
    /// Whether `dist` may hold values `touched` does not list (a search with marks, or a dense
    /// search, ran since the last reset): the next search by distance resets all of it.
    dirty: bool,
    /// The row through which a reached column got its distance: the shortest-path forest.
    pred: Vec<usize>,
    /// The settled columns of the current search and their distances, in settling order.
    settled: Vec<(usize, f64)>,
    heap: BinaryHeap<Entry>,
}

impl Buffers {
    fn bytes(&self) -> usize {
        self.mark.capacity() * size_of::<u32>()
            + self.dist.capacity() * size_of::<f64>()
            + self.touched.capacity() * size_of::<usize>()
            + self.pred.capacity() * size_of::<usize>()
            + self.settled.capacity() * SETTLED_BYTES
            + self.heap.capacity() * ENTRY_BYTES
    }
}

thread_local! {
    /// The workspace the last search on this thread left behind, if small enough to keep.
    static POOL: Cell<Option<Buffers>> = const { Cell::new(None) };
}

/// A search's state over `n` columns (see the module). Dropping it hands its arrays to the
/// thread's pool.
pub(crate) struct Workspace {
    buffers: Buffers,
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let buffers = std::mem::take(&mut self.buffers);
        if buffers.bytes() <= POOLED_BYTES {
            // The pool is gone only while the thread exits; the arrays are freed then anyway.
            let _ = POOL.try_with(|pool| pool.set(Some(buffers)));
        }
    }
}

impl Workspace {
    /// A workspace for searches over `n` columns, the thread's pooled arrays when it has some.
    pub(crate) fn new(n: usize) -> Self {
        let mut buffers = POOL
            .try_with(|pool| pool.take())
            .ok()
            .flatten()
            .unwrap_or_default();
        if buffers.dist.len() < n {
            buffers.mark.resize(n, 0);
            buffers.dist.resize(n, f64::INFINITY);
            buffers.pred.resize(n, UNMATCHED);
        }
        buffers.n = n;
        let mut ws = Workspace { buffers };
        ws.begin();
        ws
    }

    /// Starts a search: no column reached or settled, nothing queued.
    pub(crate) fn begin(&mut self) {
        let b = &mut self.buffers;
        if b.stamp >= u32::MAX - 2 {
            b.mark.fill(0);
            b.stamp = 0;
        }
        b.stamp += 2;
        b.dirty = true;
        b.heap.clear();
        b.settled.clear();
    }

    /// Starts a search by distance (see `Buffers::dist`): every distance infinite, nothing
    /// settled or queued.
    pub(crate) fn begin_by_distance(&mut self) {
        let b = &mut self.buffers;
        if b.dirty {
            b.dist[..b.n].fill(f64::INFINITY);
            b.dirty = false;
        } else {
            for &j in &b.touched {
                b.dist[j] = f64::INFINITY;
            }
        }
        b.touched.clear();
        b.heap.clear();
        b.settled.clear();
    }

    /// [`Self::relax`] in a search by distance, every column worth reaching.
    pub(crate) fn relax_by_distance<T: Tie>(
        &mut self,
        costs: &impl RowCosts,
        row: usize,
        distance: impl Fn(usize, f64) -> f64,
        mut tie: impl FnMut(usize, f64) -> T,
    ) -> Result<()> {
        let b = &mut self.buffers;
        alloc::grow_heap(
            &mut b.heap,
            costs.degree(row),
            "an assignment search's queue",
        )?;
        for (j, c) in costs.edges(row) {
            let d = distance(j, c);
            let known = b.dist[j];
            // False where settled (NaN).
            if d < known {
                if known == f64::INFINITY {
                    b.touched.push(j);
                }
                b.dist[j] = d;
                b.pred[j] = row;
                b.heap.push(Reverse((Key(d), tie(j, d).encode())));
            }
        }
        Ok(())
    }

    /// [`Self::is_current`] in a search by distance.
    pub(crate) fn is_current_by_distance(&self, j: usize, d: f64) -> bool {
        self.buffers.dist[j] == d
    }

    /// Column `j`'s distance in the current search (where reached; see `Buffers::dist` for the
    /// dense search).
    pub(crate) fn dist(&self, j: usize) -> f64 {
        self.buffers.dist[j]
    }

    /// The row through which column `j` was last reached.
    pub(crate) fn pred(&self, j: usize) -> usize {
        self.buffers.pred[j]
    }

    /// The settled columns and their distances, in settling order.
    pub(crate) fn settled(&self) -> &[(usize, f64)] {
        &self.buffers.settled
    }

    /// Entries in the queue, stale ones included.
    pub(crate) fn queued(&self) -> usize {
        self.buffers.heap.len()
    }

    /// Queues `tie` at distance `d` (an entry that is not a column's, such as a row to read).
    pub(crate) fn push<T: Tie>(&mut self, d: f64, tie: T) {
        self.buffers.heap.push(Reverse((Key(d), tie.encode())));
    }

    /// The least queued entry, stale or not (see [`Self::is_current`]).
    pub(crate) fn pop<T: Tie>(&mut self) -> Option<(f64, T)> {
        let Reverse((Key(d), bits)) = self.buffers.heap.pop()?;
        Some((d, T::decode(bits)))
    }

    /// Whether a popped entry of column `j` at distance `d` is still its distance: not settled,
    /// nor reached again at a shorter one since it was queued.
    pub(crate) fn is_current(&self, j: usize, d: f64) -> bool {
        let b = &self.buffers;
        b.mark[j] == b.stamp && b.dist[j] == d
    }

    /// Settles column `j`, reached at distance `d`.
    pub(crate) fn settle(&mut self, j: usize, d: f64) {
        let b = &mut self.buffers;
        b.mark[j] = b.stamp + 1;
        b.settled.push((j, d));
    }

    /// Relaxes the edges of `row` (from `costs`): every column not yet settled gets distance
    /// `d = distance(j, c)` through `row` where that is its first or a shorter one and
    /// `worth(d)` (no need to reach it otherwise), and is queued with the tie `tie(j, d)`.
    pub(crate) fn relax<T: Tie>(
        &mut self,
        costs: &impl RowCosts,
        row: usize,
        distance: impl Fn(usize, f64) -> f64,
        worth: impl Fn(f64) -> bool,
        mut tie: impl FnMut(usize, f64) -> T,
    ) -> Result<()> {
        let b = &mut self.buffers;
        alloc::grow_heap(
            &mut b.heap,
            costs.degree(row),
            "an assignment search's queue",
        )?;
        let (reached, settled) = (b.stamp, b.stamp + 1);
        for (j, c) in costs.edges(row) {
            let mark = b.mark[j];
            // Settled: no need to compute a distance (which reads the column's dual).
            if mark == settled {
                continue;
            }
            let d = distance(j, c);
            if (mark != reached || d < b.dist[j]) && worth(d) {
                b.mark[j] = reached;
                b.dist[j] = d;
                b.pred[j] = row;
                b.heap.push(Reverse((Key(d), tie(j, d).encode())));
            }
        }
        Ok(())
    }

    /// Starts a dense search by distance, which reads and writes every distance itself (array
    /// scans): every distance infinite, nothing settled.
    pub(crate) fn begin_dense(&mut self) {
        let b = &mut self.buffers;
        b.dist[..b.n].fill(f64::INFINITY);
        b.touched.clear();
        b.dirty = true;
        b.heap.clear();
        b.settled.clear();
    }

    /// Settles column `j`, reached at distance `d`, in a search by distance: its distance
    /// becomes NaN, so that relaxing and the array scans pass over it.
    pub(crate) fn settle_by_distance(&mut self, j: usize, d: f64) {
        let b = &mut self.buffers;
        b.dist[j] = f64::NAN;
        b.settled.push((j, d));
    }

    /// The distances and predecessors of the `n` columns, for a dense search's array scans.
    pub(crate) fn dense_arrays(&mut self) -> (&mut [f64], &mut [usize]) {
        let b = &mut self.buffers;
        (&mut b.dist[..b.n], &mut b.pred[..b.n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row `r`'s edges: columns `r..r + 3` at cost `r`.
    struct Band;

    impl RowCosts for Band {
        fn degree(&self, _: usize) -> usize {
            3
        }
        fn edges(&self, row: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
            (row..row + 3).map(move |j| (j, row as f64))
        }
    }

    #[test]
    fn searches_and_layers_start_afresh() {
        let mut ws = Workspace::new(6);
        ws.begin();
        ws.relax(&Band, 0, |_, c| c, |_| true, |j, _| j).unwrap();
        assert_eq!(ws.pop::<usize>(), Some((0.0, 0)));
        ws.settle(0, 0.0);
        ws.relax(&Band, 1, |_, c| c, |_| true, |j, _| j).unwrap();
        // Column 1 was reached at 0 through row 0, and 1 through row 1 is no shorter.
        assert_eq!(ws.pred(1), 0);
        assert!(ws.is_current(1, 0.0));
        // Column 3 only through row 1; column 0 is settled and stays so.
        assert_eq!((ws.pred(3), ws.dist(3)), (1, 1.0));
        assert!(!ws.is_current(0, 0.0));
        ws.relax(&Band, 0, |_, c| c, |_| true, |j, _| j).unwrap();
        assert_eq!(ws.settled(), &[(0, 0.0)]);
        drop(ws);
        // The next layer on this thread gets the same arrays, with nothing reached or settled.
        let mut ws = Workspace::new(4);
        ws.begin();
        ws.relax(&Band, 0, |j, c| c + 2.0 + j as f64, |d| d < 4.0, |j, _| j)
            .unwrap();
        assert_eq!(ws.pop::<usize>(), Some((2.0, 0)));
        assert!(ws.is_current(0, 2.0));
        assert_eq!(ws.pop::<usize>(), Some((3.0, 1)));
        assert_eq!(ws.pop::<usize>(), None);
        assert_eq!(ws.settled(), &[]);
    }

    #[test]
    fn a_search_after_a_dense_one_starts_afresh() {
        let mut ws = Workspace::new(4);
        ws.begin_dense();
        let (d, pred) = ws.dense_arrays();
        d.copy_from_slice(&[0.5, 0.25, 3.0, 1.0]);
        pred.fill(3);
        ws.settle_by_distance(2, 3.0);
        ws.begin();
        ws.relax(&Band, 1, |_, c| c + 1.0, |_| true, |j, _| j)
            .unwrap();
        assert!(!ws.is_current(0, 0.5));
        assert!(ws.is_current(1, 2.0) && ws.is_current(2, 2.0) && ws.is_current(3, 2.0));
        assert_eq!(ws.settled(), &[]);
        // And one by distance after a search with marks, and after another by distance.
        for _ in 0..2 {
            ws.begin_by_distance();
            ws.relax_by_distance(&Band, 0, |_, c| c + 0.5, |j, _| j)
                .unwrap();
            assert_eq!(ws.pop::<usize>(), Some((0.5, 0)));
            ws.settle_by_distance(0, 0.5);
            assert!(!ws.is_current_by_distance(0, 0.5));
            assert!(ws.is_current_by_distance(1, 0.5));
            assert_eq!(ws.dist(3), f64::INFINITY);
        }
    }

    #[test]
    fn the_stamp_wraps_with_every_mark_cleared() {
        let mut ws = Workspace::new(4);
        ws.buffers.stamp = u32::MAX - 3;
        ws.begin();
        ws.relax(&Band, 0, |_, c| c, |_| true, |j, _| j).unwrap();
        ws.settle(1, 0.0);
        assert!(!ws.is_current(1, 0.0));
        ws.begin();
        assert_eq!(ws.buffers.stamp, 2);
        // Nothing reached: column 1 is reached afresh, at a longer distance.
        ws.relax(&Band, 1, |_, c| c, |_| true, |j, _| j).unwrap();
        assert!(ws.is_current(1, 1.0));
    }
}
