//! Solves a cost matrix stored as raw little-endian CSR buffers (for profiling):
//! `solve_csr DIR [REPS] [paper|sparse]` reads DIR/{shape,indptr,indices,data}.bin. `paper`
//! (the default) times the paper mode's solver on a full cost matrix; `sparse` times the
//! row-by-row and the phased sparse solvers on stored costs below 1, with the neurons that have
//! no input in DIR/{empty_rows,empty_cols}.bin.
use nnstd_core::assign::{scipy_order, sparse, ssp};
use nnstd_core::cancel::Cancel;
use nnstd_core::similarity::SparseCost;

fn words(dir: &str, name: &str) -> Vec<u64> {
    let path = format!("{dir}/{name}.bin");
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn indices(dir: &str, name: &str) -> Vec<usize> {
    words(dir, name).into_iter().map(|x| x as usize).collect()
}

fn timed(label: &str, reps: usize, mut solve: impl FnMut() -> f64) {
    let t = std::time::Instant::now();
    let total: f64 = (0..reps).map(|_| solve()).sum();
    println!(
        "{label}: cost {:.9} in {:?} per solve",
        total / reps as f64,
        t.elapsed() / reps as u32
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .expect("usage: solve_csr DIR [REPS] [paper|sparse]");
    let reps: usize = args.get(2).map_or(1, |s| s.parse().unwrap());
    let shape = words(dir, "shape");
    let cost = SparseCost {
        n_rows: shape[0] as usize,
        n_cols: shape[1] as usize,
        rowptr: indices(dir, "indptr"),
        cols: words(dir, "indices")
            .into_iter()
            .map(|x| x as u32)
            .collect(),
        vals: words(dir, "data").into_iter().map(f64::from_bits).collect(),
    };
    let cancel = Cancel::new();
    if args.get(3).is_some_and(|mode| mode == "sparse") {
        let (rows, cols) = (indices(dir, "empty_rows"), indices(dir, "empty_cols"));
        timed("row by row", reps, || {
            ssp::solve(&cost, &rows, &cols, &cancel).unwrap().cost
        });
        timed("sparse", reps, || {
            sparse::solve(&cost, &rows, &cols, &cancel).unwrap().cost
        });
        return;
    }
    timed("paper", reps, || {
        scipy_order::try_solve(&cost, &cancel).unwrap().cost
    });
}
