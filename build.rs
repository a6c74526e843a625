// Gives the shared library a versioned soname, so installed programs keep working across
// compatible upgrades (libredilock.so.0 -> libredilock.so.0.x.y).
fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libredilock.so.{major}");
    }
}
