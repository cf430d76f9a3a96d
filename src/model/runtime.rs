//! The ONNX Runtime environment. avsepd loads the library at run time (ort's `load-dynamic`), from
//! the path in the config, else `ORT_DYLIB_PATH`, else the copy that `make setup` unpacks from the
//! pinned PyPI `onnxruntime` wheel, else next to the installed binary.

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// File name of the library inside the wheel (`onnxruntime/capi/`).
pub const LIBRARY_NAME: &str = "libonnxruntime.so.1.32.0";

/// Where the library is looked for, in order, given the configured path (if any).
pub fn candidates(configured: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = configured {
        return vec![p.to_path_buf()];
    }
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        out.push(PathBuf::from(p));
    }
    out.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".cache/onnxruntime/lib")
            .join(LIBRARY_NAME),
    );
    if let Ok(exe) = std::env::current_exe()
        && let Some(prefix) = exe.parent().and_then(Path::parent)
    {
        out.push(prefix.join("lib/avsepd").join(LIBRARY_NAME));
    }
    out
}

static INIT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
static ENV: OnceLock<ort::environment::Environment> = OnceLock::new();

/// Load ONNX Runtime once per process; the error names every path that was tried.
pub fn init(configured: Option<&Path>) -> Result<PathBuf> {
    let result = INIT.get_or_init(|| {
        let tried = candidates(configured);
        let Some(found) = tried.iter().find(|p| p.is_file()) else {
            let list: Vec<String> = tried.iter().map(|p| format!("`{}`", p.display())).collect();
            return Err(format!(
                "ONNX Runtime library not found (tried {}); run `make setup` or set \
                 daemon.onnxruntime_library",
                list.join(", ")
            ));
        };
        match ort::init_from(found) {
            Ok(builder) => match builder.with_name("avsepd").build() {
                // Kept for the life of the process: ort only holds a weak reference, and every
                // session builder needs the environment (see `environment`).
                Ok(env) => {
                    let _ = ENV.set(env);
                    Ok(found.clone())
                }
                Err(e) => Err(format!("ONNX Runtime environment: {e}")),
            },
            Err(e) => Err(format!(
                "ONNX Runtime library `{}` cannot be loaded: {e}",
                found.display()
            )),
        }
    });
    match result {
        Ok(p) => Ok(p.clone()),
        Err(e) => bail!("{e}"),
    }
}

/// The process-wide environment that sessions are built in: `Session::builder(environment(..)?)`.
pub fn environment(configured: Option<&Path>) -> Result<&'static ort::environment::Environment> {
    init(configured)?;
    ENV.get()
        .ok_or_else(|| anyhow::anyhow!("ONNX Runtime environment was not created"))
}

/// The build string of the loaded library (after [`init`]).
pub fn build_info() -> String {
    ort::info().to_string()
}

/// A CPU session for a model already read into memory, graph optimisations on, `threads` intra-op
/// threads; errors say `{what} `path`: ...`.
pub fn session_from_bytes(
    what: &str,
    path: &Path,
    bytes: &[u8],
    threads: usize,
) -> Result<ort::session::Session> {
    use ort::session::{Session, builder::GraphOptimizationLevel};
    let env = environment(None)?;
    let ctx = |e: ort::Error| anyhow::anyhow!("{what} `{}`: {e}", path.display());
    Session::builder(env)
        .map_err(ctx)?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| ctx(e.into()))?
        .with_intra_threads(threads)
        .map_err(|e| ctx(e.into()))?
        .commit_from_memory(bytes)
        .map_err(ctx)
}
