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
}
