//! `runtime-std [PORT] [HOST] [MAX_THREADS] [OPTIONS]`: the file and upload server on a
//! fixed pool of threads. See the crate docs of `runtime_std`.

use std::process::ExitCode;

use host::cli::Runtime;
use host::session::Schedule;

fn main() -> ExitCode {
    let started = host::start::start(Runtime::Std, Schedule::Threads);
    let (workers, queue) = (started.args.threads(), started.args.queue());
    let code = match runtime_std::run(started, workers, queue) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("the server stopped: {e}");
            ExitCode::FAILURE
        }
    };
    host::logging::flush(std::time::Duration::from_secs(1));
    code
}
