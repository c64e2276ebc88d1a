//! Link-time layout of the `rudder` binary. Every role shares one binary, so the code a
//! `rudder noded` process runs would lie scattered among the API server's and the
//! controllers', and the kernel maps up to 64 KiB around each page of code it faults in:
//! noded would keep half of the binary's code mapped to run a tenth of it. `link/noded.ld`
//! (written by `hack/noded-order.sh`) gathers the functions noded runs into one section placed
//! before the rest of the code. Names it no longer matches after code changes stay where
//! they were: a stale list costs memory, never correctness. Release builds only (debug builds
//! have other functions, and many more).

fn main() {
    println!("cargo:rerun-if-changed=link/noded.ld");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let release = std::env::var("PROFILE").is_ok_and(|profile| profile == "release");
    let layout = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("link/noded.ld");
    if linux {
        // Relative relocations packed as RELR (glibc 2.36+): the position-independent binary's
        // 87,000 of them take 2 MiB as RELA, and the loader's pass over that table leaves it
        // mapped in every process for good; packed, they fit in a few KiB.
        println!("cargo:rustc-link-arg-bin=rudder=-Wl,-z,pack-relative-relocs");
    }
    if linux && release && layout.exists() {
        println!("cargo:rustc-link-arg-bin=rudder=-Wl,-T,{}", layout.display());
    }
}
