//! `runtime-smol [PORT] [HOST] [MAX_THREADS] [OPTIONS]`: the file and upload server on a
//! smol executor run by MAX_THREADS OS threads. See the crate docs of `runtime_smol`.

fn main() -> std::process::ExitCode {
    let code = runtime_smol::run();
    host::logging::flush(std::time::Duration::from_secs(1));
    code
}
