//! Builds chat-app's browser bundle (the Leptos `hydrate` half, compiled to wasm32) into a site
//! directory the chat-app server serves.
//!
//! Toolchain, first that works:
//! 1. rustup's `wasm32-unknown-unknown` target (installed, or added now with `rustup target add`);
//! 2. Debian's web toolchain (`rustc-web cargo-web rust-web-src lld-16`): `/usr/bin/cargo` with
//!    `-Zbuild-std` (Debian ships no prebuilt wasm32 std) and `wasm-ld-16` as linker.
//!
//! `wasm-bindgen` (the CLI) must be exactly the `wasm-bindgen` version in `Cargo.lock`: found on
//! `PATH`, or in `target/tools/`, or installed there with `cargo install`. The bundle is written
//! as `<output_name>.js` + `<output_name>_bg.wasm` (what the server links unless
//! `LEPTOS_OUTPUT_NAME` was set when the *server* was compiled) and a copy named
//! `<output_name>.wasm` (what it links if it was, as cargo-leptos does).
//!
//! Debian's binaryen 108 `wasm-opt` corrupts the bundle (externref table export; hydration dies),
//! so it is never used; release builds strip the name section instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// The crate whose `hydrate` feature is the browser bundle.
const CRATE: &str = "chat-app";
/// The bundle's file name stem (the crate's library name).
pub const OUTPUT_NAME: &str = "chat_app";
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// Debian packages of the fallback toolchain (and the browser the tests drive).
pub const DEBIAN_PACKAGES: &str = "rustc-web cargo-web rust-web-src lld-16";

/// A built site: serve it with [`Site::env`].
#[derive(Debug, Clone)]
pub struct Site {
    /// The site root (`LEPTOS_SITE_ROOT`).
    pub root: PathBuf,
    /// Directory of the bundle under `root` (`LEPTOS_SITE_PKG_DIR`).
    pub pkg_dir: String,
    /// Bundle file stem (`LEPTOS_OUTPUT_NAME`).
    pub output_name: String,
}

impl Site {
    /// The environment chat-app needs to serve this site (also `CHAT_APP_SITE_ROOT`, which the
    /// browser test reads). Not `LEPTOS_OUTPUT_NAME`: chat-app's default is already
    /// [`OUTPUT_NAME`], and Leptos reads that variable at *compile* time too, so setting it for a
    /// `cargo` command would rebuild Leptos whenever it changes.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let root = self.root.display().to_string();
        vec![
            ("LEPTOS_SITE_ROOT", root.clone()),
            ("LEPTOS_SITE_PKG_DIR", self.pkg_dir.clone()),
            ("CHAT_APP_SITE_ROOT", root),
        ]
    }

    /// The wasm module the page loads.
    pub fn wasm(&self) -> PathBuf {
        self.root.join(&self.pkg_dir).join(format!("{}_bg.wasm", self.output_name))
    }
}

/// Builds the bundle in release (`true`) or debug mode. Serve a release bundle with a release
/// server and a debug one with a debug server: Leptos renders component markers differently.
pub fn build(release: bool) -> anyhow::Result<Site> {
    let root = crate::root();
    let profile = if release { "release" } else { "debug" };
    let site = Site {
        root: root.join("target").join(format!("site-{profile}")),
        pkg_dir: "pkg".to_string(),
        output_name: OUTPUT_NAME.to_string(),
    };
    let version = wasm_bindgen_version(&root)?;
    step(&format!("browser bundle ({profile}): compiling {CRATE} to {WASM_TARGET}"));
    let wasm = compile(&root, release)?;
    let bindgen = wasm_bindgen(&root, &version)?;
    step("browser bundle: generating JavaScript bindings");
    let pkg = site.root.join(&site.pkg_dir);
    std::fs::create_dir_all(&pkg).with_context(|| format!("cannot create {}", pkg.display()))?;
    let mut command = Command::new(&bindgen);
    command.args(["--target", "web", "--no-typescript", "--out-name", OUTPUT_NAME, "--out-dir"]).arg(&pkg);
    if release {
        command.args(["--remove-name-section", "--remove-producers-section"]);
    }
    run(command.arg(&wasm), "wasm-bindgen")?;
    let linked = site.wasm();
    let alias = pkg.join(format!("{OUTPUT_NAME}.wasm"));
    std::fs::copy(&linked, &alias)
        .with_context(|| format!("cannot copy {} to {}", linked.display(), alias.display()))?;
    let size = std::fs::metadata(&linked).map(|m| m.len()).unwrap_or(0);
    step(&format!("browser bundle ready: {} ({} KiB wasm)", pkg.display(), size / 1024));
    Ok(site)
}

fn step(message: &str) {
    eprintln!("==> {message}");
}

/// The `wasm-bindgen` version `Cargo.lock` pins.
fn wasm_bindgen_version(root: &Path) -> anyhow::Result<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("cannot read Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\""
            && let Some(version) = lines.next().and_then(|l| l.trim().strip_prefix("version = \""))
        {
            return Ok(version.trim_end_matches('"').to_string());
        }
    }
    bail!("Cargo.lock has no wasm-bindgen package: is {CRATE} in the workspace?")
}

/// How to compile for wasm32 on this machine.
enum Toolchain {
    Rustup,
    Debian { linker: String },
}

fn quiet(command: &mut Command) -> bool {
    command.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn output(command: &mut Command) -> Option<String> {
    let out = command.stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Forces a toolchain: `rustup` or `debian` (e.g. in CI, where `rustup target add` cannot
/// download). Unset: rustup if it has or can add the target, else Debian's.
pub const TOOLCHAIN_VAR: &str = "CHAT_APP_WASM_TOOLCHAIN";

fn toolchain() -> anyhow::Result<Toolchain> {
    match std::env::var(TOOLCHAIN_VAR).ok().as_deref() {
        None | Some("") => {}
        Some("debian") => return debian().context(format!("{TOOLCHAIN_VAR}=debian")),
        Some("rustup") => return Ok(Toolchain::Rustup),
        Some(other) => bail!("{TOOLCHAIN_VAR}={other:?}: expected rustup or debian"),
    }
    let has_target = || {
        output(Command::new("rustc").args(["--print", "sysroot"]))
            .is_some_and(|sysroot| Path::new(&sysroot).join("lib/rustlib").join(WASM_TARGET).is_dir())
    };
    if has_target() {
        return Ok(Toolchain::Rustup);
    }
    if quiet(Command::new("rustup").args(["--version"])) {
        step(&format!("adding the {WASM_TARGET} target with rustup"));
        if quiet(Command::new("rustup").args(["target", "add", WASM_TARGET])) && has_target() {
            return Ok(Toolchain::Rustup);
        }
        step("rustup could not add the target; trying Debian's web toolchain");
    }
    debian()
}

/// Debian's web toolchain, if installed.
fn debian() -> anyhow::Result<Toolchain> {
    let debian_sysroot = output(Command::new("/usr/bin/rustc").args(["--print", "sysroot"]));
    let has_src = debian_sysroot.is_some_and(|s| Path::new(&s).join("lib/rustlib/src/rust/library").is_dir());
    let linker = ["wasm-ld-16", "wasm-ld"].into_iter().find(|l| quiet(Command::new(l).arg("--version")));
    match (Path::new("/usr/bin/cargo").is_file() && has_src, linker) {
        (true, Some(linker)) => Ok(Toolchain::Debian { linker: linker.to_string() }),
        _ => bail!(
            "no Rust toolchain can build for {WASM_TARGET} here.\n  \
             With rustup: `rustup target add {WASM_TARGET}`.\n  \
             Without (Debian/Ubuntu): `sudo apt-get install {DEBIAN_PACKAGES}`.\n  \
             See DEVELOPERS.md."
        ),
    }
}

/// Compiles the `hydrate` library to wasm32; returns the `.wasm` file.
fn compile(root: &Path, release: bool) -> anyhow::Result<PathBuf> {
    let toolchain = toolchain()?;
    // Each toolchain gets its own target dir: two rustc versions would rebuild each other's output.
    let (mut command, target_dir) = match &toolchain {
        Toolchain::Rustup => {
            let mut c = Command::new("cargo");
            c.arg("build");
            (c, root.join("target/front"))
        }
        Toolchain::Debian { linker } => {
            let mut c = Command::new("/usr/bin/cargo");
            c.arg("build")
                .arg("-Zbuild-std=std,panic_abort")
                .env("RUSTC", "/usr/bin/rustc")
                .env("RUSTC_BOOTSTRAP", "1")
                .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", linker)
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("RUSTC_WRAPPER");
            (c, root.join("target/front-debian"))
        }
    };
    command
        .current_dir(root)
        .args(["--target", WASM_TARGET, "-p", CRATE, "--lib", "--no-default-features", "--features", "hydrate"])
        .arg("--target-dir")
        .arg(&target_dir)
        // The server decides the bundle's name at its own compile time; see the module docs.
        .env_remove("LEPTOS_OUTPUT_NAME")
        .env_remove("CARGO_TARGET_DIR");
    if release {
        // Size over speed for what every visitor downloads. Only this build (its own target
        // directory) sees these; the workspace's release profile stays as it is.
        command
            .arg("--release")
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "z")
            .env("CARGO_PROFILE_RELEASE_LTO", "true")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
            .env("CARGO_PROFILE_RELEASE_PANIC", "abort");
    }
    run(&mut command, "the wasm32 build")?;
    let profile = if release { "release" } else { "debug" };
    let wasm = target_dir.join(WASM_TARGET).join(profile).join(format!("{OUTPUT_NAME}.wasm"));
    if !wasm.is_file() {
        bail!("the wasm32 build succeeded but {} is missing", wasm.display());
    }
    Ok(wasm)
}

/// A `wasm-bindgen` CLI of exactly `version`: on PATH, in `target/tools`, or installed there.
fn wasm_bindgen(root: &Path, version: &str) -> anyhow::Result<PathBuf> {
    let matches = |program: &Path| {
        output(Command::new(program).arg("--version")).is_some_and(|v| v.split_whitespace().nth(1) == Some(version))
    };
    let on_path = PathBuf::from("wasm-bindgen");
    if matches(&on_path) {
        return Ok(on_path);
    }
    let tools = root.join("target/tools").join(format!("wasm-bindgen-{version}"));
    let installed = tools.join("bin/wasm-bindgen");
    if matches(&installed) {
        return Ok(installed);
    }
    step(&format!("installing wasm-bindgen-cli {version} into {} (a few minutes, once)", tools.display()));
    let mut install = Command::new("cargo");
    install
        .args(["install", "wasm-bindgen-cli", "--version", &format!("={version}"), "--locked", "--root"])
        .arg(&tools)
        .env_remove("CARGO_TARGET_DIR");
    if run(&mut install, "cargo install wasm-bindgen-cli").is_err() {
        // Its lockfile can name a webpki-roots release the registry no longer offers: rebuild
        // from the downloaded source with that one dependency updated.
        step("retrying with webpki-roots updated in wasm-bindgen-cli's lockfile");
        install_from_source(root, version, &tools)?;
    }
    if matches(&installed) {
        return Ok(installed);
    }
    bail!(
        "wasm-bindgen-cli {version} could not be installed. Install it yourself with \
         `cargo install wasm-bindgen-cli --version ={version}` (it must match Cargo.lock) and retry."
    )
}

fn install_from_source(root: &Path, version: &str, tools: &Path) -> anyhow::Result<()> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let name = format!("wasm-bindgen-cli-{version}");
    let source = std::fs::read_dir(cargo_home.join("registry/src"))
        .context("cargo's registry has no sources")?
        .filter_map(Result::ok)
        .map(|index| index.path().join(&name))
        .find(|p| p.join("Cargo.toml").is_file())
        .with_context(|| format!("{name} was not downloaded into cargo's registry"))?;
    // Per process: two builds at once (say `xtask up` and `xtask test`) must not share it.
    let work = root.join("target/tools/src").join(format!("{name}-{}", std::process::id()));
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("cannot clean {}", work.display()))?;
    }
    copy_dir(&source, &work)?;
    // Its own workspace: it sits under ours (target/), where cargo would otherwise claim it.
    let manifest = work.join("Cargo.toml");
    let mut text = std::fs::read_to_string(&manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    text.push_str("\n[workspace]\n");
    std::fs::write(&manifest, text).with_context(|| format!("cannot write {}", manifest.display()))?;
    run(
        Command::new("cargo").current_dir(&work).args(["update", "-p", "webpki-roots"]),
        "cargo update -p webpki-roots",
    )?;
    let mut install = Command::new("cargo");
    install
        .current_dir(&work)
        .args(["install", "--path", ".", "--locked", "--root"])
        .arg(tools)
        .env_remove("CARGO_TARGET_DIR");
    run(&mut install, "cargo install --path wasm-bindgen-cli")?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| format!("cannot copy to {}", target.display()))?;
        }
    }
    Ok(())
}

fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("cannot start {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}
