//! `avsepd`: the command line. Each subcommand lives in its own file under `cli/`.

mod cli;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use avsepd::control::logging::{self, LogFormatArg};
use avsepd::model::runtime::{self, ExecutionProvider};

/// Exit status for configuration errors (sysexits.h EX_CONFIG), so systemd and scripts can tell a
/// bad config from a runtime failure.
pub const EX_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(
    name = "avsepd",
    version,
    about = "Real-time audio-visual speech separation daemon"
)]
struct Cli {
    /// Log format: human on a terminal, JSON lines for journald/collectors [default: the
    /// config's daemon.log_format under `run --config`, else auto].
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormatArg>,
    /// Where the models run: CUDA when ONNX Runtime's library has it (auto), always the CPU, or
    /// CUDA or an error [default: the config's daemon.execution_provider under `run --config`,
    /// else auto].
    #[arg(long, global = true, value_enum)]
    execution_provider: Option<ExecutionProvider>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon on the streams of a config file, or on one URL.
    Run(cli::run::RunArgs),
    /// Process one input (file or RTSP URL) into speaker-<k>.wav, overlay.mp4 and timeline.json.
    Separate(cli::separate::SeparateArgs),
    /// Measure latency (ingest -> RTP send), real-time factor, CPU and memory.
    Bench(cli::bench::BenchArgs),
    /// Serve the bundled demo clip over an in-process RTSP server and run the daemon on it.
    Demo(cli::demo::DemoArgs),
    /// Find faces in an image, or track them through a video (boxes, scores, landmarks, ids).
    Faces(cli::faces::FacesArgs),
    /// Validate a config file: exit 0, or 78 with every error listed.
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `run` reads its config once, before logging starts: the file's daemon.log_format applies
    // when --log-format is not given.
    let run_config = match &cli.command {
        Command::Run(args) => Some(cli::run::effective_config(args)),
        _ => None,
    };
    let configured = run_config
        .as_ref()
        .and_then(|c| c.as_ref().ok())
        .map(|c| LogFormatArg::from(c.daemon.log_format));
    logging::init(cli.log_format.or(configured).unwrap_or_default());
    let provider = run_config
        .as_ref()
        .and_then(|c| c.as_ref().ok())
        .map(|c| c.daemon.execution_provider);
    runtime::set_execution_provider(cli.execution_provider.or(provider).unwrap_or_default());
    let result = match (cli.command, run_config) {
        (Command::Run(args), Some(cfg)) => cfg.and_then(|cfg| cli::run::main(args, cfg)),
        (Command::Run(_), None) => unreachable!("the run config is read above"),
        (Command::Separate(args), _) => cli::separate::main(args),
        (Command::Bench(args), _) => cli::bench::main(args),
        (Command::Demo(args), _) => cli::demo::main(args),
        (Command::Faces(args), _) => cli::faces::main(args),
        (Command::CheckConfig { file }, _) => cli::check_config::main(&file),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if let Some(errors) = e.downcast_ref::<avsepd::config::ConfigErrors>() {
                eprintln!("{errors}");
                return ExitCode::from(EX_CONFIG);
            }
            eprintln!("avsepd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
