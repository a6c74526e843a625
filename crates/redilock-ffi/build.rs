// Gives the shared library its soname, which names the ABI a program was linked against:
// libredilock.so.0.MINOR while the version is 0.x (a minor release may change the ABI, as
// Cargo's rules for 0.x versions say), libredilock.so.MAJOR from 1.0 on. The Makefile's
// SONAME and the CMake version file follow the same rule.
fn main() {
    let version =
        |part: &str| std::env::var(format!("CARGO_PKG_VERSION_{part}")).unwrap_or_default();
    let (major, minor) = (version("MAJOR"), version("MINOR"));
    let soname = match major.as_str() {
        "0" => format!("libredilock.so.0.{minor}"),
        _ => format!("libredilock.so.{major}"),
    };
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    }
}
