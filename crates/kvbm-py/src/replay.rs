//! `kvbm.replay`: the trace simulator of `kvbm replay`, from Python.
//!
//! It runs the command line through `kvbm_cli::run_command`, the one entry
//! point kvbm-cli keeps stable for embedding, and converts the JSON report:
//! the figures are the CLI's by construction.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;

/// Replays a workload through the block manager's eviction policies, like
/// `kvbm replay --json`, and returns its per-policy results as a list of
/// dicts (`policy`, `block_hit_rate`, `token_hit_rate`, `hits`, `misses`,
/// `evictions`, …; the unbounded cache, and the Belady bound where the
/// CLI reports it, included).
///
/// `trace`: a trace file path (Mooncake or token JSONL, optionally
/// gzipped), or `None` for the built-in generator with `requests`
/// requests from `seed`. `capacity_blocks`: cache size (default: a tenth
/// of the workload's unique blocks). `block_size`: tokens per block.
/// `policy`: comma-separated names or `"all"`. `timing`: `"instant"` or
/// `"serve"`. Bad arguments raise `ValueError` with the CLI's message.
/// The GIL is released while the simulation runs.
#[pyfunction]
#[pyo3(signature = (trace=None, capacity_blocks=None, block_size=512, policy="all", timing="instant", requests=None, seed=None, report=false))]
#[allow(clippy::too_many_arguments)]
pub fn replay(
    py: Python<'_>,
    trace: Option<std::path::PathBuf>,
    capacity_blocks: Option<u64>,
    block_size: u32,
    policy: &str,
    timing: &str,
    requests: Option<u64>,
    seed: Option<u64>,
    report: bool,
) -> PyResult<PyObject> {
    let mut args: Vec<std::ffi::OsString> = vec![
        "replay".into(),
        "--json".into(),
        "--quiet".into(),
        "--block-size".into(),
        block_size.to_string().into(),
        "--policy".into(),
        policy.into(),
        "--timing".into(),
        timing.into(),
    ];
    if let Some(path) = trace {
        args.push("--trace".into());
        args.push(path.into_os_string());
    }
    if let Some(n) = capacity_blocks {
        args.push("--capacity-blocks".into());
        args.push(n.to_string().into());
    }
    if let Some(n) = requests {
        args.push("--requests".into());
        args.push(n.to_string().into());
    }
    if let Some(s) = seed {
        args.push("--seed".into());
        args.push(s.to_string().into());
    }
    let out = py.allow_threads(|| {
        let mut out = Vec::new();
        kvbm_cli::run_command(args, &mut out).map(|()| out)
    });
    let out = out.map_err(|e| PyValueError::new_err(e.to_string()))?;
    let doc: serde_json::Value = serde_json::from_slice(&out)
        .map_err(|e| PyRuntimeError::new_err(format!("replay report is not JSON: {e}")))?;
    if report {
        return crate::json::to_py(py, &doc);
    }
    match doc.get("results") {
        Some(results) => crate::json::to_py(py, results),
        None => Ok(PyList::empty(py).into_any().unbind()),
    }
}
