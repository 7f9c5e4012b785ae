//! Times cost building and the solvers on one random layer pair (for profiling, not a benchmark
//! of record: `python benchmarks/run.py` is).
//!
//! `layers N FANIN|DENSITY SEED_A SEED_B [solvers]`, e.g. `layers 16384 8 1 2 sparse` or
//! `layers 2048 0.3 1 2 dense,exact,exact-dense` (`exact-dense`: the paper mode on a
//! dense matrix, as it runs on layers whose neurons share many inputs).
//! `canonical` and `auto` time the whole distance of two-layer networks in that mode.
use std::time::Instant;

use nnstd_core::assign::{lapjv, scipy_order, sparse};
use nnstd_core::cancel::Cancel;
use nnstd_core::similarity::{
    dense_layer_costs, empty_neurons, layer_costs, layer_costs_with, EmptyPairs,
};
use nnstd_core::topology::{Idx, Layer, Network};
use nnstd_core::{distance, Options, Solver};

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn random_layer(n: usize, fan: f64, seed: u64) -> Layer {
    let mut rng = SplitMix(seed);
    let cols: Vec<Vec<Idx>> = (0..n)
        .map(|_| {
            let mut c: Vec<Idx> = if fan >= 1.0 {
                (0..fan as usize).map(|_| rng.below(n) as Idx).collect()
            } else {
                (0..n)
                    .filter(|_| (rng.next() as f64 / u64::MAX as f64) < fan)
                    .map(|r| r as Idx)
                    .collect()
            };
            c.sort_unstable();
            c.dedup();
            c
        })
        .collect();
    Layer::from_neuron_inputs(0, n, &cols).unwrap()
}

/// A's neurons in shuffled order, with `moved` of their connections each moved to a random input.
fn twin(a: &Layer, moved: f64, seed: u64) -> Layer {
    let mut rng = SplitMix(seed);
    let n = a.n_out();
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let cols: Vec<Vec<Idx>> = order
        .iter()
        .map(|&c| {
            let mut inputs: Vec<Idx> = a
                .inputs(c)
                .iter()
                .map(|&r| {
                    if (rng.next() as f64 / u64::MAX as f64) < moved {
                        rng.below(a.n_in()) as Idx
                    } else {
                        r
                    }
                })
                .collect();
            inputs.sort_unstable();
            inputs.dedup();
            inputs
        })
        .collect();
    Layer::from_neuron_inputs(0, a.n_in(), &cols).unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args[1].parse().unwrap();
    // FANIN (fixed fan-in), a density below 1, "erK" (Erdos-Renyi with mean fan-in K) or
    // "twinK" (fixed fan-in K against a shuffled copy with 30% of connections moved).
    let kind = args[2].as_str();
    let (sa, sb): (u64, u64) = (args[3].parse().unwrap(), args[4].parse().unwrap());
    let which = args.get(5).map_or("sparse", |s| s.as_str());
    let (a, b) = if let Some(k) = kind.strip_prefix("er") {
        let p = k.parse::<f64>().unwrap() / n as f64;
        (random_layer(n, p, sa), random_layer(n, p, sb))
    } else if let Some(k) = kind.strip_prefix("twin") {
        let a = random_layer(n, k.parse().unwrap(), sa);
        let b = twin(&a, 0.3, sb);
        (a, b)
    } else {
        let fan: f64 = kind.parse().unwrap();
        (random_layer(n, fan, sa), random_layer(n, fan, sb))
    };
    for solver in which.split(',') {
        let t = Instant::now();
        match solver {
            "sparse" => {
                let costs = layer_costs_with(&a, &b, EmptyPairs::Skip).unwrap();
                let tc = t.elapsed();
                let s = sparse::solve(
                    &costs,
                    &empty_neurons(&a),
                    &empty_neurons(&b),
                    &Cancel::new(),
                )
                .unwrap();
                println!(
                    "sparse: nnz {} costs {tc:?} total {:?} cost {:.9}",
                    costs.nnz(),
                    t.elapsed(),
                    s.cost
                );
            }
            "dense" => {
                let costs = dense_layer_costs(&a, &b, &Cancel::new()).unwrap();
                let tc = t.elapsed();
                let s = lapjv::solve(&costs, &Cancel::new()).unwrap();
                println!(
                    "dense: costs {tc:?} total {:?} cost {:.9}",
                    t.elapsed(),
                    s.cost
                );
            }
            "exact" => {
                let costs = layer_costs(&a, &b).unwrap();
                let tc = t.elapsed();
                let s = scipy_order::solve(&costs);
                println!(
                    "exact: costs {tc:?} total {:?} cost {:.9}",
                    t.elapsed(),
                    s.cost
                );
            }
            "exact-dense" => {
                let costs = dense_layer_costs(&a, &b, &Cancel::new()).unwrap();
                let tc = t.elapsed();
                let s = scipy_order::solve_dense(costs.n_rows, costs.n_cols, &costs.data);
                println!(
                    "exact-dense: costs {tc:?} total {:?} cost {:.9}",
                    t.elapsed(),
                    s.cost
                );
            }
            // Two-layer networks (the second layer a copy of the first's pattern), the whole
            // distance in the fastest and the canonical mode.
            "canonical" | "auto" => {
                let net = |l: &Layer| Network::new(vec![l.clone(), l.clone()]).unwrap();
                let (na, nb) = (net(&a), net(&b));
                let mode = Solver::from_name(solver).unwrap();
                let t = Instant::now();
                let d = distance(&na, &nb, None, &Options::new(mode), &Cancel::new()).unwrap();
                println!(
                    "{solver}: {:?} costs {:.9} {:.9}",
                    t.elapsed(),
                    d[0].cost,
                    d[1].cost
                );
            }
            // Canonical labels and colours of both two-layer networks, nothing else.
            "prepare" => {
                let net = |l: &Layer| Network::new(vec![l.clone(), l.clone()]).unwrap();
                let t = Instant::now();
                for n in [net(&a), net(&b)] {
                    nnstd_core::canonical::prepare(&n, &Cancel::new()).unwrap();
                }
                println!("prepare: {:?}", t.elapsed());
            }
            other => panic!("unknown solver {other}"),
        }
    }
}
