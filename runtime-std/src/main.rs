//! `runtime-std`: the file and upload server on a fixed pool of threads.
//! See `src/server.rs` for the shape of the server, and the `host` crate for what it
//! shares with runtime-smol.

mod net;
mod park;
mod pool;
mod server;

use std::process::ExitCode;
use std::sync::Arc;

use host::cli::{self, Args, Runtime};
use host::clock::Clock;
use host::logging;
use host::shutdown::Shutdown;

use log::info;

fn main() -> ExitCode {
    let args = Args::parse_for(Runtime::Std);
    logging::init();
    let root = args.open_root().unwrap_or_else(|e| cli::fail(&e));
    // Before anything is sized from it (the cache's descriptors, the connections).
    host::limits::raise_nofile();
    // A certificate that cannot be used is a start-up error, before the port is bound.
    let tls = args.tls().unwrap_or_else(|e| cli::fail(&e));
    // Likewise an upload store that cannot be used.
    let web = args.web_root(root).unwrap_or_else(|e| cli::fail(&e));
    let listener = args.listen().unwrap_or_else(|e| cli::fail(&e));
    // Only once the port is ours: a second copy started by mistake must not touch the
    // running server's uploads.
    web.clean_up();
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| cli::fail(&format!("cannot read the bound address: {e}")));
    let shutdown = Shutdown::install()
        .unwrap_or_else(|e| cli::fail(&format!("cannot install signal handlers: {e}")));
    let config = Arc::new(args.config(addr.port()));
    let workers = args.threads();
    let (https, note) = host::cli::tls_note(tls.as_deref());
    let scheme = if https { "https" } else { "http" };
    info!(
        "runtime-std listening on {scheme}://{addr}, root {}, {workers} workers, queue {}",
        web.root().path().display(),
        args.queue()
    );
    #[allow(unused_mut)]
    let mut server = server::Server::new(web, config, Clock::new(), shutdown, workers);
    #[cfg(feature = "tls")]
    if let Some(tls) = tls {
        tls.reload_on_sighup();
        server.tls = Some(tls);
    }
    let server = Arc::new(server);
    let announce = || cli::announce(addr, https, &note);
    let code = match server::run(listener, server, workers, args.queue(), announce) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("the server stopped: {e}");
            ExitCode::FAILURE
        }
    };
    logging::flush(std::time::Duration::from_secs(1));
    code
}
