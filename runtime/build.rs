//! Links the pocketsphinx C library (with sphinxbase) that the live speech recognizer calls.
//!
//! The link flags come from pkg-config, so the same script works on the build machine and when
//! cross-compiling: for an aarch64 target, set `PKG_CONFIG_ALLOW_CROSS_aarch64_unknown_linux_gnu=1`
//! and point `PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu` at the arm64 `.pc` folders.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Only the `live` feature calls the recognizer.
    if std::env::var_os("CARGO_FEATURE_LIVE").is_none() {
        return;
    }

    // Debian 12 and Raspberry Pi OS ship pocketsphinx 0.8+5prealpha, whose .pc file reports the
    // version "5prealpha", so no version is requested here.
    if let Err(error) = pkg_config::Config::new().probe("pocketsphinx") {
        panic!(
            "pkg-config did not find pocketsphinx, which the live speech recognizer links: \
             {error}\nInstall it with scripts/setup-runtime-deps.sh \
             (or `apt-get install libpocketsphinx-dev`, with `:arm64` for an aarch64 target)."
        );
    }
}
