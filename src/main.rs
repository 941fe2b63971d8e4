//! The `tenantgate` binary: parse the command line, run, map the outcome to an exit code.

use std::process::ExitCode;

// mimalloc instead of the system allocator: a run allocates for every request, answer
// and result, from the runtime's worker threads. Measured on the benchmark's 10,000
// checks (docs/performance.md, sixth pass): CPU -15 %, wall -13 %, peak RSS about the
// same.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tenantgate: cannot start the async runtime: {e}");
            return tenantgate::exit::code(tenantgate::exit::UNDECIDED);
        }
    };
    // A panic is a bug in tenantgate, never evidence about the target: exit 2, not 1.
    // The command runs on a worker thread, not on this one: the check stage's results
    // then pass between tasks of the same threads, instead of waking this thread for
    // each check (measured: about a tenth of a 10,000-check run's CPU).
    let args = std::env::args_os().collect();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async { rt.spawn(tenantgate::cli::main(args)).await })
    }));
    match outcome {
        Ok(Ok(code)) => tenantgate::exit::code(code),
        Ok(Err(_)) | Err(_) => {
            eprintln!("tenantgate: internal error (a bug; please report it): the run is undecided");
            tenantgate::exit::code(tenantgate::exit::UNDECIDED)
        }
    }
}
