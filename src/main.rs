//! The `tenantgate` binary: parse the command line, run, map the outcome to an exit code.

use std::process::ExitCode;

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
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(tenantgate::cli::main(std::env::args_os().collect()))
    }));
    match outcome {
        Ok(code) => tenantgate::exit::code(code),
        Err(_) => {
            eprintln!("tenantgate: internal error (a bug; please report it): the run is undecided");
            tenantgate::exit::code(tenantgate::exit::UNDECIDED)
        }
    }
}
