//! The ONNX Runtime environment. avsepd loads the library at run time (ort's `load-dynamic`), from
//! the path in the config, else `ORT_DYLIB_PATH`, else the copy that `make setup` unpacks from the
//! pinned PyPI `onnxruntime` wheel, else next to the installed binary.
//!
//! Sessions run on CUDA where the loaded library has ONNX Runtime's CUDA execution provider (the
//! PyPI `onnxruntime-gpu` build's library, with CUDA and cuDNN on the machine), else on the CPU:
//! `daemon.execution_provider` / `--execution-provider` = `auto` (CUDA when present, else the
//! CPU with one warning), `cpu`, or `cuda` (an error when CUDA cannot be used).

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

/// Where sessions run.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionProvider {
    /// CUDA when the loaded library has its provider and it starts, else the CPU (one warning).
    #[default]
    Auto,
    /// Always the CPU.
    Cpu,
    /// CUDA or an error.
    Cuda,
}

impl ExecutionProvider {
    /// Spellings accepted in the config file, in declaration order.
    pub const NAMES: &'static [&'static str] = &["auto", "cpu", "cuda"];
}

/// The process's choice; the first [`set_execution_provider`] (before any session) wins.
static PROVIDER: OnceLock<ExecutionProvider> = OnceLock::new();
/// Where sessions actually run, decided with the first session.
static ACTIVE: OnceLock<&'static str> = OnceLock::new();

/// Choose where this process's sessions run. Call it before the first session is built; later
/// calls change nothing (a running daemon keeps its provider until a restart) and say so.
pub fn set_execution_provider(choice: ExecutionProvider) -> bool {
    let set = PROVIDER.set(choice).is_ok();
    if !set && PROVIDER.get() != Some(&choice) {
        tracing::warn!(
            "daemon.execution_provider changed: sessions keep running where they started until a restart"
        );
    }
    set
}

/// Where sessions run: "cuda" or "cpu" once the first session is built, else "none yet".
pub fn active_provider() -> &'static str {
    ACTIVE.get().copied().unwrap_or("none yet")
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

/// A session for a model already read into memory, graph optimisations on, `threads` intra-op
/// threads, on the execution provider chosen for the process ([`set_execution_provider`]);
/// errors say `{what} `path`: ...`.
pub fn session_from_bytes(
    what: &str,
    path: &Path,
    bytes: &[u8],
    threads: usize,
) -> Result<ort::session::Session> {
    let env = environment(None)?;
    let ctx = |e: ort::Error| anyhow::anyhow!("{what} `{}`: {e}", path.display());
    let choice = *PROVIDER.get_or_init(ExecutionProvider::default);
    // `auto` tries CUDA until it fails once: the next sessions go straight to the CPU.
    static CUDA_FAILED: OnceLock<()> = OnceLock::new();
    let try_cuda = match choice {
        ExecutionProvider::Cpu => false,
        ExecutionProvider::Auto => CUDA_FAILED.get().is_none(),
        ExecutionProvider::Cuda => true,
    };
    if try_cuda && cuda_in_library(choice)? {
        match build_session(env, bytes, threads, true) {
            Ok(session) => {
                let _ = ACTIVE.set("cuda");
                tracing::info!(model = %path.display(), "{what} on CUDA");
                return Ok(session);
            }
            Err(e) if choice == ExecutionProvider::Cuda => {
                return Err(ctx(e).context("execution_provider = \"cuda\": CUDA did not start"));
            }
            Err(e) => {
                // The library has the provider, the machine cannot run it (no GPU, no driver,
                // no cuDNN): once, then the CPU.
                if CUDA_FAILED.set(()).is_ok() {
                    tracing::warn!(model = %path.display(), "CUDA execution provider did not start ({e}); models run on the CPU");
                }
            }
        }
    }
    let session = build_session(env, bytes, threads, false).map_err(ctx)?;
    let _ = ACTIVE.set("cpu");
    Ok(session)
}

fn build_session(
    env: &ort::environment::Environment,
    bytes: &[u8],
    threads: usize,
    cuda: bool,
) -> std::result::Result<ort::session::Session, ort::Error> {
    use ort::session::{Session, builder::GraphOptimizationLevel};
    let plain = |e: ort::Error<ort::session::builder::SessionBuilder>| -> ort::Error { e.into() };
    let mut builder = Session::builder(env)?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(plain)?
        .with_intra_threads(threads)
        .map_err(plain)?;
    if cuda {
        builder = builder
            .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
            .map_err(plain)?;
    }
    builder.commit_from_memory(bytes)
}

/// Whether the loaded library has the CUDA execution provider. `auto` without it: one warning
/// for the process; `cuda` without it: an error naming the library.
fn cuda_in_library(choice: ExecutionProvider) -> Result<bool> {
    use ort::ep::ExecutionProvider as _;
    let present = ort::ep::CUDA::is_available().unwrap_or(false);
    if present {
        return Ok(true);
    }
    let library = INIT
        .get()
        .and_then(|r| r.as_ref().ok())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if choice == ExecutionProvider::Cuda {
        bail!(
            "execution_provider = \"cuda\", but the ONNX Runtime library `{library}` has no CUDA execution provider (the onnxruntime-gpu build's library has it; see README \"GPU\")"
        );
    }
    static WARNED: OnceLock<()> = OnceLock::new();
    if WARNED.set(()).is_ok() {
        tracing::warn!(
            library = %library,
            "ONNX Runtime library has no CUDA execution provider: models run on the CPU (onnxruntime-gpu's library runs them on CUDA; `execution_provider = \"cpu\"` silences this)"
        );
    }
    Ok(false)
}
