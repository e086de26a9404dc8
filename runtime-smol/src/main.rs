//! `runtime-smol [PORT] [HOST] [MAX_THREADS] [OPTIONS]`: the file and upload server on a
//! smol executor run by MAX_THREADS OS threads. See the crate docs of `runtime_smol`.

use std::process::ExitCode;

use host::cli::{Args, Runtime};

fn main() -> ExitCode {
    let args = Args::parse_for(Runtime::Smol);
    host::logging::init();
    let code = runtime_smol::run(&args);
    host::logging::flush(std::time::Duration::from_secs(1));
    code
}
