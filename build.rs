use std::process::{Command, Stdio};

fn main() {
    napi_build::setup();
    redis_tests();
}

/// Sets `cfg(has_redis)` when the shared-tier tests can run: the Redis server (`REDIS_SERVER`,
/// or `redis-server`) runs on this machine, or `CI` is set, where a missing server must fail
/// them. Without it those tests are `#[ignore]`d with the reason, so `cargo test` shows them
/// as ignored, never as passed. Installing the server later needs a rebuild of this script
/// (`touch build.rs`).
fn redis_tests() {
    println!("cargo::rustc-check-cfg=cfg(has_redis)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=REDIS_SERVER");
    let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
    let runs = Command::new(binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if runs || std::env::var_os("CI").is_some() {
        println!("cargo::rustc-cfg=has_redis");
    }
}
