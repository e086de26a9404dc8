//! `runtime-std`: the file and upload server on a fixed pool of threads.
//! See the library's documentation (`src/lib.rs`) for the shape of the server.

mod pool;
mod server;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use log::{info, warn};
use runtime_std::cli::{self, Args};
use runtime_std::clock::Clock;
use runtime_std::logging;
use runtime_std::shutdown::Shutdown;

fn main() -> ExitCode {
    let args = Args::parse();
    logging::init();
    let root = args.open_root().unwrap_or_else(|e| cli::fail(&e));
    match root.clean_temporaries() {
        Ok(0) => {}
        Ok(n) => warn!("removed {n} unfinished upload(s) left in uploads/ by an earlier run"),
        Err(e) => warn!("could not clean uploads/: {e}"),
    }
    let listener = args.listen().unwrap_or_else(|e| cli::fail(&e));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| cli::fail(&format!("cannot read the bound address: {e}")));
    let shutdown = Shutdown::install()
        .unwrap_or_else(|e| cli::fail(&format!("cannot install signal handlers: {e}")));
    let config = Arc::new(args.config(addr.port()));
    let workers = args.threads();
    info!(
        "runtime-std listening on http://{addr}, root {}, {workers} workers, queue {}",
        root.path().display(),
        args.queue
    );
    let server = Arc::new(server::Server::new(
        root,
        config,
        Clock::new(),
        shutdown,
        workers,
    ));
    cli::announce(addr);
    match server::run(listener, server, workers, args.queue as usize) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("the server stopped: {e}");
            ExitCode::FAILURE
        }
    }
}
