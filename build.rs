// Migrations are embedded in the binary; cargo does not see new files on its own.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=templates");
    // A position-dependent executable on Linux: an MTA starts `mailgate` once per message, and
    // a PIE's ~90,000 relative relocations, applied by the dynamic loader at every start, cost
    // more than half of that start (docs/benchmarks.md, "Release figures": 536 against 177
    // page faults for `--version`). The code stays position-independent; only the final link
    // places the binary at a fixed address, so the loader has nothing to relocate. The price is
    // that the executable's own image is not randomised (libraries, heap and stack still are).
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    // The unwinder (what `catch_unwind` needs) from GCC's static archive, so that the binary
    // no longer loads libgcc_s.so: its constructor alone runs a dozen CPUID instructions, each
    // a trap to the hypervisor in a virtual machine, and loading it was 0.14 ms of every
    // process start (docs/benchmarks.md, "A process per message"). Listed before the standard
    // library's `-lgcc_s`, the archive defines the `_Unwind_*` functions first, and the linker
    // (`--as-needed`) then leaves libgcc_s out. It is the same code, linked in.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
}
