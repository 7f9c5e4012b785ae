//! Solves a cost matrix stored as raw little-endian CSR buffers (for profiling):
//! `solve_csr DIR` reads DIR/{shape,indptr,indices,data}.bin.
use nnstd_core::assign::exact;
use nnstd_core::cancel::Cancel;
use nnstd_core::similarity::SparseCost;

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: solve_csr DIR");
    let words = |name: &str| -> Vec<u64> {
        read(&format!("{dir}/{name}.bin"))
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let shape = words("shape");
    let cost = SparseCost {
        n_rows: shape[0] as usize,
        n_cols: shape[1] as usize,
        rowptr: words("indptr").into_iter().map(|x| x as usize).collect(),
        cols: words("indices").into_iter().map(|x| x as u32).collect(),
        vals: words("data").into_iter().map(f64::from_bits).collect(),
    };
    let reps: usize = std::env::args().nth(2).map_or(1, |s| s.parse().unwrap());
    for method in [
        exact::Method::Grouped,
        exact::Method::Blocked,
        exact::Method::Adaptive,
    ] {
        let t = std::time::Instant::now();
        let mut total = 0.0;
        for _ in 0..reps {
            total += exact::solve_with(&cost, method, &Cancel::new())
                .unwrap()
                .cost;
        }
        println!(
            "{method:?}: cost {total} in {:?} per solve",
            t.elapsed() / reps as u32
        );
    }
}
