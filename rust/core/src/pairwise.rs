//! All-pairs distance matrices, computed in parallel over pairs.
//!
//! Each pair is computed sequentially and written to its own slot, so the result does not
//! depend on the number of threads or on the order in which rayon runs the pairs.

use rayon::prelude::*;

use crate::alloc;
use crate::cancel::Cancel;
use crate::canonical;
use crate::error::{Error, Result};
use crate::network::{check_comparable, distance};
use crate::policy::{Options, Solver};
use crate::topology::Network;

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

/// An `n x n x depth` row-major array of per-layer distances. `cancel` counts finished pairs.
pub fn pairwise(
    networks: &[&Network],
    depth: Option<usize>,
    options: &Options,
    pairs: Pairs,
    threads: Option<usize>,
    cancel: &Cancel,
) -> Result<Vec<f64>> {
    let n = networks.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    for (k, net) in networks.iter().enumerate().skip(1) {
        check_comparable(networks[0], net)
            .map_err(|e| Error::Mismatch(format!("network {k} against network 0: {e}")))?;
    }
    let depth = depth.unwrap_or(networks[0].depth());
    let list = pair_list(n, pairs)?;
    // Allocated before any pair is computed, so that a matrix the machine cannot hold is
    // refused at once rather than after the work.
    let cells = n.saturating_mul(n).saturating_mul(depth);
    let mut out = alloc::zeros(cells, "the pairwise distance matrix")?;
    let compute = || -> Result<Vec<Vec<f64>>> {
        // The canonical mode labels each network once, not once per pair.
        let prepared = if options.solver == Solver::Canonical {
            Some(
                networks
                    .par_iter()
                    .map(|net| canonical::prepare(net, cancel))
                    .collect::<Result<Vec<_>>>()?,
            )
        } else {
            None
        };
        list.par_iter()
            .map(|&(i, j)| {
                cancel.check()?;
                let d = match &prepared {
                    Some(p) => {
                        canonical::distance_prepared(&p[i], &p[j], Some(depth), options, cancel)?
                    }
                    None => distance(networks[i], networks[j], Some(depth), options, cancel)?,
                };
                cancel.tick();
                Ok(d.iter().map(|l| l.distance).collect())
            })
            .collect()
    };
    let rows = match threads {
        None => compute()?,
        Some(t) => rayon::ThreadPoolBuilder::new()
            .num_threads(t.max(1))
            .build()
            .map_err(|e| Error::InvalidArgument(format!("cannot start {t} threads: {e}")))?
            .install(compute)?,
    };
    for (&(i, j), layers) in list.iter().zip(&rows) {
        out[(i * n + j) * depth..][..depth].copy_from_slice(layers);
        if pairs == Pairs::Paper {
            out[(j * n + i) * depth..][..depth].copy_from_slice(layers);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
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
