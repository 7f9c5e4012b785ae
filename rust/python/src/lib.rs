//! Python bindings of `nnstd-core`: array conversion, error mapping, GIL release. No algorithm
//! code lives here.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use nnstd_core::arguments;
use nnstd_core::assign::{scipy_order, UNMATCHED};
use nnstd_core::similarity::SparseCost;
use nnstd_core::{
    self as core, Cancel, Graph, Group, GroupKind, Layer, Network, Options, Pairs, Read, Shape,
    Solver, Writer,
};
use numpy::ndarray::{Array2, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::create_exception;
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBool;

create_exception!(
    nnstd, // shown as nnstd.TopologyError in tracebacks, where users import it from
    TopologyError,
    PyValueError,
    "A topology that cannot be read or compared; the message names the layer and the problem."
);

/// The process that started rayon's global thread pool (0: none yet). A process forked from it
/// inherits the pool's bookkeeping but not its threads, so work sent there never runs.
static GLOBAL_POOL_OWNER: AtomicU32 = AtomicU32::new(0);

/// Held while the global pool is being started, so that two first calls start it once.
static GLOBAL_POOL_START: Mutex<()> = Mutex::new(());

/// Where work runs: `None` for rayon's global pool, started here if no process has yet (this
/// one, or the one it was forked from); in a process forked after the parent started it, a
/// fresh pool (same results: the core's output does not depend on the threads), since a forked
/// process inherits the global pool's bookkeeping but not its threads.
///
/// Started here rather than on first use, because rayon panics when it cannot start its threads
/// (no memory for their stacks under an address-space limit, or a limit on threads): that
/// becomes a one-line `MemoryError` here, and the next call tries again.
fn live_pool() -> PyResult<Option<rayon::ThreadPool>> {
    let pid = std::process::id();
    if GLOBAL_POOL_OWNER.load(Ordering::Acquire) == 0 {
        let _starting = GLOBAL_POOL_START
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if GLOBAL_POOL_OWNER.load(Ordering::Acquire) == 0 {
            rayon::ThreadPoolBuilder::new()
                .build_global()
                .map_err(threads_refused)?;
            GLOBAL_POOL_OWNER.store(pid, Ordering::Release);
        }
    }
    if GLOBAL_POOL_OWNER.load(Ordering::Acquire) == pid {
        return Ok(None);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .build()
        .map_err(threads_refused)?;
    Ok(Some(pool))
}

/// The error for worker threads the system would not start.
fn threads_refused(err: impl std::fmt::Display) -> PyErr {
    PyMemoryError::new_err(format!(
        "cannot start nnstd's worker threads ({err}): too little memory, or too many threads"
    ))
}

/// The one place where core errors become Python exceptions. A buffer the system refused is a
/// `MemoryError` (what Python raises when it cannot allocate), with the core's one-line message.
fn to_py_err(err: core::Error) -> PyErr {
    match err {
        core::Error::Interrupted => pyo3::exceptions::PyKeyboardInterrupt::new_err("interrupted"),
        oom @ core::Error::OutOfMemory { .. } => PyMemoryError::new_err(oom.to_string()),
        other => TopologyError::new_err(other.to_string()),
    }
}

/// A progress callback and what it counts (finished pairs or layers).
type Progress<'a> = (&'a Py<PyAny>, fn(&Cancel) -> usize);

/// Runs `work` without the GIL on a helper thread while this (the calling) thread watches for
/// Ctrl-C and reports progress; a signal raises the cancel flag and its exception is re-raised
/// once `work` stops. A panic in `work` becomes a `RuntimeError` instead of crossing into Python.
/// `progress`, when given, is a callback and the count it is called with (finished pairs or
/// layers) about every 0.2 s; an exception it raises stops the work like Ctrl-C. Works in a
/// forked child too ([`live_pool`]). Threads the system will not start are a `MemoryError`.
fn run_interruptibly<T, F>(py: Python<'_>, progress: Option<Progress<'_>>, work: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce(&Cancel) -> core::Result<T> + Send,
{
    let pool = live_pool()?;
    let cancel = Cancel::new();
    let done = AtomicBool::new(false);
    let spawned = py.detach(|| {
        thread::scope(|scope| -> std::io::Result<_> {
            let watcher = thread::current();
            let cancel = &cancel;
            let done = &done;
            let handle = thread::Builder::new().spawn_scoped(scope, move || {
                // Set before waking the watcher, so that it never parks again once work is over.
                let out = catch_unwind(AssertUnwindSafe(|| match &pool {
                    Some(pool) => pool.install(|| work(cancel)),
                    None => work(cancel),
                }));
                done.store(true, Ordering::Release);
                watcher.unpark();
                out
            })?;
            let mut signal = None;
            while !done.load(Ordering::Acquire) {
                thread::park_timeout(Duration::from_millis(200));
                if signal.is_none() {
                    let checked = Python::attach(|py| {
                        py.check_signals()?;
                        match progress {
                            Some((callback, count)) if !done.load(Ordering::Acquire) => {
                                callback.call1(py, (count(cancel),)).map(drop)
                            }
                            _ => Ok(()),
                        }
                    });
                    if let Err(err) = checked {
                        cancel.cancel();
                        signal = Some(err);
                    }
                }
            }
            let outcome = handle.join().unwrap_or_else(Err);
            // A Ctrl-C that came after the last check still belongs to this call.
            if signal.is_none() {
                signal = Python::attach(|py| py.check_signals()).err();
            }
            Ok((outcome, signal))
        })
    });
    let (outcome, signal) = spawned.map_err(threads_refused)?;
    if let Some(err) = signal {
        return Err(err);
    }
    match outcome {
        Ok(result) => result.map_err(to_py_err),
        Err(_) => Err(PyRuntimeError::new_err(
            "nnstd internal error (a bug: please report it)",
        )),
    }
}

/// An argument the core refused (a solver name, a thread count): a `ValueError`, not a
/// `TopologyError`, since no topology is at fault.
fn argument_error(err: core::Error) -> PyErr {
    PyValueError::new_err(err.to_string())
}

fn parse_options(solver: Option<&str>, memory_budget: Option<u64>) -> PyResult<Options> {
    let solver = match solver {
        None => Solver::default(),
        Some(name) => Solver::from_name(name).map_err(argument_error)?,
    };
    let memory_budget = memory_budget.unwrap_or(core::DEFAULT_MEMORY_BUDGET);
    Ok(Options {
        solver,
        memory_budget,
    })
}

/// The worker threads a Python value asks for, by the core's rule
/// ([`arguments::worker_threads`]): a bool, a value that is no whole number and an integer out
/// of range are refused alike, naming the value as given.
fn worker_threads(requested: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
    let Some(value) = requested.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    let count = match value.is_instance_of::<PyBool>() {
        true => None,
        false => value.extract::<i128>().ok(),
    };
    match count {
        Some(count) => arguments::worker_threads(Some(count)),
        None => Err(arguments::threads_refused(&value.repr()?)),
    }
    .map_err(argument_error)
}

/// The options every computing call takes, checked by the core's rules before any work:
/// `(solver, memory_budget, threads)` with the solver's own name (`"exact"` is `"paper"`), the
/// budget's default filled in (4 GiB) and `threads` as the core reads it (`None`: one per core).
#[pyfunction]
#[pyo3(signature = (solver=None, memory_budget=None, threads=None))]
fn check_options(
    solver: Option<&Bound<'_, PyAny>>,
    memory_budget: Option<u64>,
    threads: Option<&Bound<'_, PyAny>>,
) -> PyResult<(&'static str, u64, Option<usize>)> {
    let solver = match solver.filter(|s| !s.is_none()) {
        None => None,
        Some(name) => match name.extract::<String>() {
            Ok(name) => Some(name),
            Err(_) => Some(name.repr()?.to_string()),
        },
    };
    let options = parse_options(solver.as_deref(), memory_budget)?;
    let threads = worker_threads(threads)?;
    Ok((options.solver.name(), options.memory_budget, threads))
}

/// The layers to report, in the order asked (`None`: all `depth` of them), by the core's rule
/// ([`arguments::layer_selection`]): a missing layer or an empty list is a `TopologyError`.
#[pyfunction]
#[pyo3(signature = (layers, depth))]
fn layer_selection(layers: Option<Vec<i128>>, depth: usize) -> PyResult<Vec<usize>> {
    arguments::layer_selection(layers.as_deref(), depth).map_err(to_py_err)
}

/// Whether `b` can be compared with `a` (the core's rule for chains and for graphs); a
/// `TopologyError` saying why not.
#[pyfunction]
fn check_comparable(a: &Topology, b: &Topology) -> PyResult<()> {
    match split_nets([a, b])? {
        Nets::Chains(n) => Shape::check_comparable(n[0].as_ref(), n[1].as_ref()),
        Nets::Graphs(n) => Shape::check_comparable(n[0].as_ref(), n[1].as_ref()),
    }
    .map_err(to_py_err)
}

fn to_usize(k: usize, what: &str, values: &PyReadonlyArray1<'_, i64>) -> PyResult<Vec<usize>> {
    values
        .as_array()
        .iter()
        .map(|&x| {
            usize::try_from(x)
                .map_err(|_| TopologyError::new_err(format!("layer {k}: negative {what} {x}")))
        })
        .collect()
}

/// `(n_in, n_out, indptr, indices, group)` of one layer, as Python passes it.
type LayerBuffers<'py> = (
    usize,
    usize,
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, i64>,
    i64,
);

/// A network as the core holds it: a chain of layers or a graph of permutation groups.
#[derive(Clone)]
enum Net {
    Chain(Arc<Network>),
    Graph(Arc<Graph>),
}

/// The binary topology of a network, layer by layer (or writer by writer for a graph), in
/// compressed sparse column form.
#[pyclass(frozen, module = "nnstd._core")]
struct Topology {
    inner: Net,
}

/// A layer from the buffers Python passes; `k` labels errors.
fn build_layer(k: usize, buffers: &LayerBuffers<'_>) -> PyResult<Layer> {
    let (n_in, n_out, indptr, indices, group) = buffers;
    let indptr = to_usize(k, "indptr entry", indptr)?;
    let indices = to_usize(k, "input index", indices)?
        .into_iter()
        .map(|r| core::Idx::try_from(r).unwrap_or(core::Idx::MAX))
        .collect();
    let group = usize::try_from(*group).map_err(|_| to_py_err(Layer::group_refused(k, group)))?;
    Layer::from_csc(k, *n_in, *n_out, indptr, indices)
        .and_then(|l| l.with_group(k, group))
        .map_err(to_py_err)
}

/// `(size, kind, heads, head_set)` of one group of a graph, as Python passes it.
type GroupTuple = (usize, String, usize, Option<usize>);
/// `(group, [(read group, width)], layer buffers)` of one writer of a graph.
type WriterTuple<'py> = (usize, Vec<(usize, usize)>, LayerBuffers<'py>);

/// All chains or all graphs: the core compares networks of one shape.
enum Nets {
    Chains(Vec<Arc<Network>>),
    Graphs(Vec<Arc<Graph>>),
}

fn split_nets<'a>(nets: impl IntoIterator<Item = &'a Topology>) -> PyResult<Nets> {
    let (mut chains, mut graphs) = (Vec::new(), Vec::new());
    for net in nets {
        match &net.inner {
            Net::Chain(c) => chains.push(c.clone()),
            Net::Graph(g) => graphs.push(g.clone()),
        }
    }
    match (chains.is_empty(), graphs.is_empty()) {
        (_, true) => Ok(Nets::Chains(chains)),
        (true, false) => Ok(Nets::Graphs(graphs)),
        (false, false) => Err(TopologyError::new_err(
            "a chain of layers cannot be compared with a graph of groups",
        )),
    }
}

#[pymethods]
impl Topology {
    /// `layers`: one `(n_in, n_out, indptr, indices, group)` tuple a layer: CSC of the connection
    /// pattern, and the number of inputs per neuron of the previous layer.
    #[new]
    fn new(layers: Vec<LayerBuffers<'_>>) -> PyResult<Self> {
        let built = layers
            .iter()
            .enumerate()
            .map(|(k, buffers)| build_layer(k, buffers))
            .collect::<PyResult<Vec<_>>>()?;
        let inner = Network::new(built).map_err(to_py_err)?;
        Ok(Topology {
            inner: Net::Chain(Arc::new(inner)),
        })
    }

    /// A graph of permutation groups (docs/definition.md#graphs-of-permutation-groups):
    /// `groups` in matching order, each `(size, kind, heads, head_set)` with kind `"input"`,
    /// `"hidden"` or `"output"`; `writers`, each `(group, [(read group, width)], layer)`.
    #[staticmethod]
    #[pyo3(signature = (groups, writers, fixed_outputs=false))]
    fn graph(
        groups: Vec<GroupTuple>,
        writers: Vec<WriterTuple<'_>>,
        fixed_outputs: bool,
    ) -> PyResult<Self> {
        let groups = groups
            .into_iter()
            .map(|(size, kind, heads, head_set)| {
                let kind = match kind.as_str() {
                    "input" => GroupKind::Input,
                    "hidden" => GroupKind::Hidden,
                    "output" => GroupKind::Output,
                    other => return Err(PyValueError::new_err(format!("unknown kind {other:?}"))),
                };
                Ok(Group {
                    size,
                    kind,
                    heads,
                    head_set,
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let writers = writers
            .iter()
            .enumerate()
            .map(|(k, (group, reads, buffers))| {
                Ok(Writer {
                    group: *group,
                    reads: reads
                        .iter()
                        .map(|&(group, width)| Read { group, width })
                        .collect(),
                    layer: build_layer(k, buffers)?,
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let inner = Graph::new(groups, writers, fixed_outputs).map_err(to_py_err)?;
        Ok(Topology {
            inner: Net::Graph(Arc::new(inner)),
        })
    }

    /// `(n_in, n_out)` of every layer (of every writer, for a graph).
    #[getter]
    fn shapes(&self) -> Vec<(usize, usize)> {
        self.layers().map(|l| (l.n_in(), l.n_out())).collect()
    }

    /// The number of connections of every layer (of every writer, for a graph).
    #[getter]
    fn connections(&self) -> Vec<usize> {
        self.layers().map(|l| l.n_connections()).collect()
    }

    /// The number of values a distance reports: layers of a chain, reported groups of a graph.
    #[getter]
    fn depth(&self) -> usize {
        match &self.inner {
            Net::Chain(c) => c.depth(),
            Net::Graph(g) => g.depth(),
        }
    }
}

impl Topology {
    fn layers(&self) -> Box<dyn Iterator<Item = &Layer> + '_> {
        match &self.inner {
            Net::Chain(c) => Box::new(c.layers().iter()),
            Net::Graph(g) => Box::new(g.writers().iter().map(|w| &w.layer)),
        }
    }
}

type DistanceArrays<'py> = (
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Vec<Bound<'py, PyArray1<i64>>>,
    Vec<&'static str>,
);

/// Per-layer distances, costs, matchings (-1 where a neuron of A has no partner) and solvers used.
#[pyfunction]
#[pyo3(signature = (a, b, depth=None, solver=None, memory_budget=None, progress=None))]
fn distance<'py>(
    py: Python<'py>,
    a: &Topology,
    b: &Topology,
    depth: Option<usize>,
    solver: Option<&str>,
    memory_budget: Option<u64>,
    progress: Option<Py<PyAny>>,
) -> PyResult<DistanceArrays<'py>> {
    let options = parse_options(solver, memory_budget)?;
    let report = progress
        .as_ref()
        .map(|p| (p, Cancel::layers_finished as fn(&Cancel) -> usize));
    let layers = match split_nets([a, b])? {
        Nets::Chains(n) => distance_of(py, report, n, depth, options)?,
        Nets::Graphs(n) => distance_of(py, report, n, depth, options)?,
    };
    let solvers: Vec<&'static str> = layers.iter().map(|l| l.algorithm.name()).collect();
    let distances: Vec<f64> = layers.iter().map(|l| l.distance).collect();
    let costs: Vec<f64> = layers.iter().map(|l| l.cost).collect();
    let matchings = layers
        .into_iter()
        .map(|l| matching_array(py, &l.matching))
        .collect();
    Ok((
        distances.into_pyarray(py),
        costs.into_pyarray(py),
        matchings,
        solvers,
    ))
}

fn distance_of<N: Shape + Send + Sync>(
    py: Python<'_>,
    report: Option<Progress<'_>>,
    nets: Vec<Arc<N>>,
    depth: Option<usize>,
    options: Options,
) -> PyResult<Vec<core::LayerMatch>> {
    run_interruptibly(py, report, move |cancel| {
        core::distance(nets[0].as_ref(), nets[1].as_ref(), depth, &options, cancel)
    })
}

/// An `(n, n, depth)` array of per-layer distances over all pairs of networks.
#[pyfunction]
#[pyo3(signature = (networks, depth=None, solver=None, ordered=false, threads=None, progress=None, memory_budget=None))]
#[allow(clippy::too_many_arguments)] // one argument per Python keyword
fn pairwise<'py>(
    py: Python<'py>,
    networks: Vec<PyRef<'py, Topology>>,
    depth: Option<usize>,
    solver: Option<&str>,
    ordered: bool,
    threads: Option<&Bound<'py, PyAny>>,
    progress: Option<Py<PyAny>>,
    memory_budget: Option<u64>,
) -> PyResult<Bound<'py, PyArray3<f64>>> {
    let options = parse_options(solver, memory_budget)?;
    let threads = worker_threads(threads)?;
    let pairs = if ordered {
        Pairs::Ordered
    } else {
        Pairs::Paper
    };
    let n = networks.len();
    let depth = depth.unwrap_or_else(|| networks.first().map_or(0, |net| net.depth()));
    let report = progress
        .as_ref()
        .map(|p| (p, Cancel::done as fn(&Cancel) -> usize));
    let flat = match split_nets(networks.iter().map(|t| &**t))? {
        Nets::Chains(nets) => pairwise_of(py, report, nets, depth, options, pairs, threads)?,
        Nets::Graphs(nets) => pairwise_of(py, report, nets, depth, options, pairs, threads)?,
    };
    let array = Array3::from_shape_vec((n, n, depth), flat)
        .map_err(|e| PyRuntimeError::new_err(format!("nnstd internal error: {e}")))?;
    Ok(array.into_pyarray(py))
}

fn pairwise_of<N: Shape + Send + Sync>(
    py: Python<'_>,
    report: Option<Progress<'_>>,
    nets: Vec<Arc<N>>,
    depth: usize,
    options: Options,
    pairs: Pairs,
    threads: Option<usize>,
) -> PyResult<Vec<f64>> {
    run_interruptibly(py, report, move |cancel| {
        let refs: Vec<&N> = nets.iter().map(|n| n.as_ref()).collect();
        core::pairwise(&refs, Some(depth), &options, pairs, threads, cancel)
    })
}

/// An `(m, depth)` array: row `p` holds the per-layer distances of `networks[i]` (as A) from
/// `networks[j]` (as B) for `pairs[p] = (i, j)`. Each network named by a pair is prepared once
/// (the canonical mode's labelling), whichever pairs it is in: the pair scheduler of every route
/// that computes a block of a matrix (store, Dask, cross-distances).
#[pyfunction]
#[pyo3(signature = (networks, pairs, depth=None, solver=None, threads=None, progress=None, memory_budget=None))]
#[allow(clippy::too_many_arguments)] // one argument per Python keyword
fn pairs<'py>(
    py: Python<'py>,
    networks: Vec<PyRef<'py, Topology>>,
    pairs: PyReadonlyArray2<'py, i64>,
    depth: Option<usize>,
    solver: Option<&str>,
    threads: Option<&Bound<'py, PyAny>>,
    progress: Option<Py<PyAny>>,
    memory_budget: Option<u64>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let options = parse_options(solver, memory_budget)?;
    let threads = worker_threads(threads)?;
    let view = pairs.as_array();
    if view.ncols() != 2 {
        return Err(PyValueError::new_err(format!(
            "pairs must have shape (m, 2), got {:?}",
            view.shape()
        )));
    }
    let list: Vec<(usize, usize)> = view
        .rows()
        .into_iter()
        .map(
            |row| match (usize::try_from(row[0]), usize::try_from(row[1])) {
                (Ok(i), Ok(j)) => Ok((i, j)),
                _ => Err(PyValueError::new_err(format!(
                    "pairs hold network positions, got ({}, {})",
                    row[0], row[1]
                ))),
            },
        )
        .collect::<PyResult<_>>()?;
    let depth = depth.unwrap_or_else(|| {
        list.first()
            .map_or(0, |&(i, _)| networks.get(i).map_or(0, |n| n.depth()))
    });
    let m = list.len();
    let report = progress
        .as_ref()
        .map(|p| (p, Cancel::done as fn(&Cancel) -> usize));
    let rows = match split_nets(networks.iter().map(|t| &**t))? {
        Nets::Chains(nets) => pairs_of(py, report, nets, list, depth, options, threads)?,
        Nets::Graphs(nets) => pairs_of(py, report, nets, list, depth, options, threads)?,
    };
    let flat: Vec<f64> = rows.into_iter().flatten().collect();
    let array = Array2::from_shape_vec((m, depth), flat)
        .map_err(|e| PyRuntimeError::new_err(format!("nnstd internal error: {e}")))?;
    Ok(array.into_pyarray(py))
}

fn pairs_of<N: Shape + Send + Sync>(
    py: Python<'_>,
    report: Option<Progress<'_>>,
    nets: Vec<Arc<N>>,
    list: Vec<(usize, usize)>,
    depth: usize,
    options: Options,
    threads: Option<usize>,
) -> PyResult<Vec<Vec<f64>>> {
    run_interruptibly(py, report, move |cancel| {
        let refs: Vec<&N> = nets.iter().map(|n| n.as_ref()).collect();
        let distances =
            |_, d: Vec<core::LayerMatch>| d.into_iter().map(|l| l.distance).collect::<Vec<f64>>();
        core::pairs(
            &refs,
            &list,
            Some(depth),
            &options,
            threads,
            cancel,
            distances,
        )
    })
}

/// SciPy's optimal assignment of a cost matrix given as CSR buffers whose absent entries are 1.
/// Returns the column of each row (-1 where none). `dense=True` runs the dense scan.
#[pyfunction]
#[pyo3(signature = (n_rows, n_cols, indptr, indices, data, dense=false))]
fn assign_exact<'py>(
    py: Python<'py>,
    n_rows: usize,
    n_cols: usize,
    indptr: PyReadonlyArray1<'py, i64>,
    indices: PyReadonlyArray1<'py, i64>,
    data: PyReadonlyArray1<'py, f64>,
    dense: bool,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let cost = sparse_cost(n_rows, n_cols, &indptr, &indices, &data)?;
    let assignment = run_interruptibly(py, None, move |cancel| {
        if dense {
            scipy_order::try_solve_dense(n_rows, n_cols, &cost.to_dense()?, cancel)
        } else {
            scipy_order::try_solve(&cost, cancel)
        }
    })?;
    Ok(matching_array(py, &assignment.col_of_row))
}

/// Validated CSR buffers of a cost matrix (finite values; rows with strictly increasing columns).
fn sparse_cost(
    n_rows: usize,
    n_cols: usize,
    indptr: &PyReadonlyArray1<'_, i64>,
    indices: &PyReadonlyArray1<'_, i64>,
    data: &PyReadonlyArray1<'_, f64>,
) -> PyResult<SparseCost> {
    // A CSR matrix is the CSC layout of its transpose: reuse the layer validation for structure.
    let rowptr = to_usize(0, "indptr entry", indptr)?;
    let cols: Vec<core::Idx> = to_usize(0, "column index", indices)?
        .into_iter()
        .map(|c| core::Idx::try_from(c).unwrap_or(core::Idx::MAX))
        .collect();
    let vals: Vec<f64> = data.as_array().iter().copied().collect();
    Layer::from_csc(0, n_cols, n_rows, rowptr.clone(), cols.clone())
        .map_err(|e| TopologyError::new_err(format!("cost matrix: {e}")))?;
    if vals.len() != cols.len() || vals.iter().any(|v| !v.is_finite()) {
        return Err(TopologyError::new_err(
            "cost matrix: data must be finite and match indices in length",
        ));
    }
    Ok(SparseCost {
        n_rows,
        n_cols,
        rowptr,
        cols,
        vals,
    })
}

fn matching_array<'py>(py: Python<'py>, col_of_row: &[usize]) -> Bound<'py, PyArray1<i64>> {
    let m: Vec<i64> = col_of_row
        .iter()
        .map(|&j| if j == UNMATCHED { -1 } else { j as i64 })
        .collect();
    m.into_pyarray(py)
}

/// The number of pairs `pairwise` computes for `n` networks.
#[pyfunction]
#[pyo3(signature = (n, ordered=false))]
fn pair_count(n: usize, ordered: bool) -> usize {
    core::pair_count(
        n,
        if ordered {
            Pairs::Ordered
        } else {
            Pairs::Paper
        },
    )
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("TopologyError", m.py().get_type::<TopologyError>())?;
    m.add("MAX_THREADS", arguments::MAX_THREADS)?;
    m.add("INDEX_LIMIT", core::Idx::MAX)?;
    m.add("BYTE_LIMIT", u64::MAX)?; // byte counts (memory budgets) are u64 in the core
    let names: Vec<&str> = Solver::NAMES.iter().map(|(name, _)| *name).collect();
    m.add("SOLVERS", pyo3::types::PyTuple::new(m.py(), names)?)?;
    m.add("DEFAULT_SOLVER", Solver::default().name())?;
    m.add("DEFAULT_MEMORY_BUDGET", core::DEFAULT_MEMORY_BUDGET)?;
    m.add_class::<Topology>()?;
    m.add_function(wrap_pyfunction!(distance, m)?)?;
    m.add_function(wrap_pyfunction!(pairwise, m)?)?;
    m.add_function(wrap_pyfunction!(pairs, m)?)?;
    m.add_function(wrap_pyfunction!(pair_count, m)?)?;
    m.add_function(wrap_pyfunction!(assign_exact, m)?)?;
    m.add_function(wrap_pyfunction!(check_options, m)?)?;
    m.add_function(wrap_pyfunction!(layer_selection, m)?)?;
    m.add_function(wrap_pyfunction!(check_comparable, m)?)?;
    Ok(())
}
