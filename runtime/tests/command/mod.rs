//! Starts the `edgenas-runtime` binary under test.

use std::process::Command;

/// Returns a command that runs the binary under test. When `EDGENAS_RUNTIME_RUNNER` is set
/// (such as `qemu-aarch64-static -L /` for an aarch64 build on x86-64, where the kernel cannot
/// execute the binary itself), the binary runs through that runner.
pub fn runtime_command() -> Command {
    let binary = env!("CARGO_BIN_EXE_edgenas-runtime");
    let runner = std::env::var("EDGENAS_RUNTIME_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(words).arg(binary);
            command
        }
        None => Command::new(binary),
    }
}
