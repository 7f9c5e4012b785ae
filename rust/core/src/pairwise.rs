//! The pair scheduler: distances of any list of (A, B) pairs over a list of networks, each
//! network prepared once by the mode (`crate::mode`), the pairs computed in parallel. Every
//! route goes through [`pairs`]: one distance, all-pairs matrices ([`pairwise`]), and the tiles
//! of the Python package's store, Dask workers and cross-distances.
//!
//! Each pair is computed sequentially and written to its own slot, so the result does not
//! depend on the number of threads or on the order in which rayon runs the pairs.

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::alloc;
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::graph_match::match_graph;
use crate::mode::{InMode, Matcher, Mode, Modes, Options};
use crate::network::{check_comparable, layers_asked, match_chain, LayerMatch};
use crate::topology::Network;

/// A network shape the scheduler drives: a chain ([`Network`]) or a graph of permutation
/// groups ([`Graph`]), on which every mode is defined ([`Modes`]). A pair gives one
/// [`LayerMatch`] per layer of a chain, per reported group of a graph.
pub trait Shape: Sync + Sized + Modes {
    /// The number of values a pair reports.
    fn depth(&self) -> usize;

    /// Whether `other` can be compared with `self`.
    fn check_comparable(&self, other: &Self) -> Result<()>;

    /// The first `depth` values of a pair, from the shape's loop driving the pair's matcher.
    fn match_pair(
        pair: &impl Matcher<Self>,
        depth: usize,
        cancel: &Cancel,
    ) -> Result<Vec<LayerMatch>>;
}

impl Shape for Network {
    fn depth(&self) -> usize {
        Network::depth(self)
    }

    fn check_comparable(&self, other: &Self) -> Result<()> {
        check_comparable(self, other)
    }

    fn match_pair(
        pair: &impl Matcher<Self>,
        depth: usize,
        cancel: &Cancel,
    ) -> Result<Vec<LayerMatch>> {
        match_chain(pair, depth, cancel)
    }
}

impl Shape for Graph {
    fn depth(&self) -> usize {
        Graph::depth(self)
    }

    fn check_comparable(&self, other: &Self) -> Result<()> {
        Graph::check_comparable(self, other)
    }

    /// Every group is matched (a later one may read any earlier one); the first `depth`
    /// reported ones are kept.
    fn match_pair(
        pair: &impl Matcher<Self>,
        depth: usize,
        cancel: &Cancel,
    ) -> Result<Vec<LayerMatch>> {
        let mut values = match_graph(pair, cancel)?;
        values.truncate(depth);
        Ok(values)
    }
}

/// Which (A, B) pairs a matrix holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pairs {
    /// The paper's convention: each unordered pair once, the higher-indexed network as A;
    /// `[i, j] = [j, i]`; the diagonal is 0.
    #[default]
    Paper,
    /// Every ordered pair: `[i, j]` = distance with network `i` as A and `j` as B, diagonal included.
    Ordered,
}

/// The (A, B) index pairs to compute, in a fixed order.
fn pair_list(n: usize, pairs: Pairs) -> Result<Vec<(usize, usize)>> {
    let mut list = alloc::with_capacity(pair_count(n, pairs), "the list of pairs")?;
    match pairs {
        Pairs::Paper => list.extend((0..n).flat_map(|i| (0..i).map(move |j| (i, j)))),
        Pairs::Ordered => list.extend((0..n).flat_map(|i| (0..n).map(move |j| (i, j)))),
    }
    Ok(list)
}

/// The number of pairs [`pairwise`] computes for `n` networks.
pub fn pair_count(n: usize, pairs: Pairs) -> usize {
    match pairs {
        Pairs::Paper => n * n.saturating_sub(1) / 2,
        Pairs::Ordered => n * n,
    }
}

/// The distance of `networks[i]` (as A) from `networks[j]` (as B) for every `(i, j)` in `list`,
/// over the first `depth` layers (all when `None`), each kept as `keep((i, j), layers)` makes
/// it, in `list`'s order. Only networks that some pair names are prepared, each once.
/// `threads`: a pool of its own of that many threads (`None` or 0: rayon's global pool, one
/// thread per core, as [`crate::arguments::worker_threads`] reads a request). `cancel` counts
/// finished pairs.
pub fn pairs<N: Shape, T: Send>(
    networks: &[&N],
    list: &[(usize, usize)],
    depth: Option<usize>,
    options: &Options,
    threads: Option<usize>,
    cancel: &Cancel,
    keep: impl Fn((usize, usize), Vec<LayerMatch>) -> T + Sync,
) -> Result<Vec<T>> {
    let Some(&(first, _)) = list.first() else {
        return Ok(Vec::new());
    };
    let n = networks.len();
    if let Some(&(i, j)) = list.iter().find(|&&(i, j)| i >= n || j >= n) {
        return Err(Error::InvalidArgument(format!(
            "pair ({i}, {j}) names a network beyond the {n} given"
        )));
    }
    for &(i, j) in list {
        for k in [i, j] {
            networks[first].check_comparable(networks[k]).map_err(|e| {
                Error::Mismatch(format!("network {k} against network {first}: {e}"))
            })?;
        }
    }
    let depth = layers_asked(depth, networks[first].depth())?;
    let compute = || {
        let work = PairsInMode {
            networks,
            list,
            depth,
            cancel,
            keep: &keep,
            kept: PhantomData,
        };
        N::in_mode(options, work)
    };
    match threads.filter(|&t| t > 0) {
        None => compute(),
        Some(t) => rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .map_err(|e| Error::InvalidArgument(format!("cannot start {t} threads: {e}")))?
            .install(compute),
    }
}

/// [`pairs`] once the mode is known ([`Modes::in_mode`]): every mode runs this one path.
struct PairsInMode<'a, N, K, T> {
    networks: &'a [&'a N],
    list: &'a [(usize, usize)],
    depth: usize,
    cancel: &'a Cancel,
    keep: &'a K,
    kept: PhantomData<fn() -> T>,
}

impl<N, K, T> InMode<N> for PairsInMode<'_, N, K, T>
where
    N: Shape,
    K: Fn((usize, usize), Vec<LayerMatch>) -> T + Sync,
    T: Send,
{
    type Output = Result<Vec<T>>;

    /// Prepares the networks the pairs name, each once, then matches the pairs.
    fn run<M: Mode<N>>(self, mode: &M) -> Result<Vec<T>> {
        let (needed, slot) = needed_networks(self.networks.len(), self.list);
        let prepared = needed
            .par_iter()
            .map(|&k| {
                mode.prepare(self.networks[k], self.cancel)
                    .map_err(|e| naming(e, k))
            })
            .collect::<Result<Vec<_>>>()?;
        self.list
            .par_iter()
            .map(|&(i, j)| {
                self.cancel.check()?;
                let pair = mode.pair(&prepared[slot[i]], &prepared[slot[j]]);
                let d = N::match_pair(&pair, self.depth, self.cancel)?;
                self.cancel.tick();
                Ok((self.keep)((i, j), d))
            })
            .collect()
    }
}

/// The networks some pair of `list` names, in order of first mention, and `slot[k]`: where
/// network `k` sits among them (`usize::MAX`: not needed).
fn needed_networks(n: usize, list: &[(usize, usize)]) -> (Vec<usize>, Vec<usize>) {
    let mut slot = vec![usize::MAX; n];
    let mut needed = Vec::new();
    for &(i, j) in list {
        for k in [i, j] {
            if slot[k] == usize::MAX {
                slot[k] = needed.len();
                needed.push(k);
            }
        }
    }
    (needed, slot)
}

/// A preparation's refusal (which names only a layer) naming network `k` too.
fn naming(error: Error, k: usize) -> Error {
    match error {
        Error::InvalidArgument(message) => {
            Error::InvalidArgument(format!("network {k}: {message}"))
        }
        other => other,
    }
}

/// The distance of `b` from `a` over their first `depth` layers (all when `None`), in the mode
/// `options.solver` names, with every layer's matching.
pub fn distance<N: Shape>(
    a: &N,
    b: &N,
    depth: Option<usize>,
    options: &Options,
    cancel: &Cancel,
) -> Result<Vec<LayerMatch>> {
    a.check_comparable(b)?;
    let mut one = pairs(&[a, b], &[(0, 1)], depth, options, None, cancel, |_, d| d)?;
    Ok(one.pop().expect("one pair gives one result"))
}

/// An `n x n x depth` row-major array of per-layer distances. `cancel` counts finished pairs.
pub fn pairwise<N: Shape>(
    networks: &[&N],
    depth: Option<usize>,
    options: &Options,
    pairs_kind: Pairs,
    threads: Option<usize>,
    cancel: &Cancel,
) -> Result<Vec<f64>> {
    let n = networks.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let depth = layers_asked(depth, networks[0].depth())?;
    // Every network against the first, so that a mismatch names the right pair even where the
    // list leaves some pair out (one network, the paper's convention).
    for (k, net) in networks.iter().enumerate().skip(1) {
        networks[0]
            .check_comparable(net)
            .map_err(|e| Error::Mismatch(format!("network {k} against network 0: {e}")))?;
    }
    let list = pair_list(n, pairs_kind)?;
    // Allocated before any pair is computed, so that a matrix the machine cannot hold is
    // refused at once rather than after the work; each pair writes its own cells as it ends
    // (no per-pair buffers, which would take several times the matrix).
    let cells = n.saturating_mul(n).saturating_mul(depth);
    let what = "the pairwise distance matrix";
    let out: Vec<AtomicU64> = alloc::collect((0..cells).map(|_| AtomicU64::new(0)), what)?;
    let write = |(i, j): (usize, usize), layers: Vec<LayerMatch>| {
        for (k, layer) in layers.iter().enumerate() {
            let bits = layer.distance.to_bits();
            out[(i * n + j) * depth + k].store(bits, Ordering::Relaxed);
            if pairs_kind == Pairs::Paper {
                out[(j * n + i) * depth + k].store(bits, Ordering::Relaxed);
            }
        }
    };
    pairs(
        networks,
        &list,
        Some(depth),
        options,
        threads,
        cancel,
        write,
    )?;
    Ok(into_floats(out))
}

/// The floats whose bits `cells` hold, in the same allocation (no second matrix).
fn into_floats(cells: Vec<AtomicU64>) -> Vec<f64> {
    let mut cells = ManuallyDrop::new(cells);
    // SAFETY: `AtomicU64` has the size, alignment and bit validity of `u64`, and every `u64` is
    // a valid `f64`; the allocation, its length and capacity are handed over whole, once (the
    // `ManuallyDrop` never frees it), and no other reference to it exists (taken by value).
    unsafe {
        Vec::from_raw_parts(
            cells.as_mut_ptr().cast::<f64>(),
            cells.len(),
            cells.capacity(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::Solver;
    use crate::topology::Layer;

    fn net(seed: u32) -> Network {
        let cols: Vec<Vec<u32>> = (0..6)
            .map(|c| vec![(c * seed) % 5, (c + seed) % 5])
            .collect();
        Network::new(vec![Layer::from_neuron_inputs(0, 5, &cols).unwrap()]).unwrap()
    }

    #[test]
    fn paper_convention_is_symmetric_with_zero_diagonal() {
        let nets = [net(1), net(2), net(3)];
        let refs: Vec<&Network> = nets.iter().collect();
        let m = pairwise(
            &refs,
            None,
            &Options::default(),
            Pairs::Paper,
            Some(2),
            &Cancel::new(),
        )
        .unwrap();
        for i in 0..3 {
            assert_eq!(m[i * 3 + i], 0.0);
            for j in 0..3 {
                assert_eq!(m[i * 3 + j], m[j * 3 + i]);
            }
        }
        assert_eq!(pair_count(3, Pairs::Paper), 3);
        assert_eq!(pair_count(3, Pairs::Ordered), 9);
    }

    #[test]
    fn pairs_give_the_matrix_entries_in_every_mode() {
        let nets = [net(1), net(2), net(3), net(4)];
        let refs: Vec<&Network> = nets.iter().collect();
        let list = [(3, 0), (1, 2), (2, 2), (0, 3)];
        for solver in [Solver::Canonical, Solver::Auto, Solver::Paper] {
            let options = Options::new(solver);
            let cancel = Cancel::new();
            let m = pairwise(&refs, None, &options, Pairs::Ordered, Some(2), &cancel).unwrap();
            let keep = |_, d: Vec<LayerMatch>| d[0].distance;
            let got = pairs(&refs, &list, None, &options, None, &cancel, keep).unwrap();
            let expected: Vec<f64> = list.iter().map(|&(i, j)| m[i * 4 + j]).collect();
            assert_eq!(got, expected, "{solver:?}");
        }
        let beyond = pairs(
            &refs,
            &[(0, 4)],
            None,
            &Options::default(),
            None,
            &Cancel::new(),
            |_, _| (),
        );
        assert!(matches!(beyond, Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn a_raised_cancel_flag_stops_the_work() {
        let nets = [net(1), net(2)];
        let refs: Vec<&Network> = nets.iter().collect();
        let cancel = Cancel::new();
        cancel.cancel();
        let err = pairwise(
            &refs,
            None,
            &Options::default(),
            Pairs::Paper,
            None,
            &cancel,
        )
        .unwrap_err();
        assert_eq!(err, Error::Interrupted);
    }
}
