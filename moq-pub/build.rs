//! Builds the SVT-AV1 shim (csrc/svt.c) against the installed SVT-AV1 headers.

fn main() {
    println!("cargo:rerun-if-changed=csrc/svt.c");
    let svt = match pkg_config::Config::new()
        .atleast_version("1.4")
        .probe("SvtAv1Enc")
    {
        Ok(lib) => lib,
        Err(e) => panic!(
            "moq-pub needs SVT-AV1's headers (Debian: libsvtav1-dev libsvtav1enc-dev; ci/setup \
             installs them): {e}"
        ),
    };
    let mut build = cc::Build::new();
    build.file("csrc/svt.c").warnings(true).extra_warnings(true);
    for path in &svt.include_paths {
        build.include(path);
    }
    for (name, value) in &svt.defines {
        build.define(name, value.as_deref());
    }
    build.compile("lantern_svt");
}
