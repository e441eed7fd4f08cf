//! The README's dependency lines work as pasted: a new crate, outside this workspace,
//! made of exactly the `toml` blocks the README gives between its `downstream` markers
//! (the checkout's path put where the README says `../evio`), builds a handler with
//! `use evio::…` and runs a simulator test through `evio::sim`.
//!
//! It runs cargo itself (offline, with this workspace's lockfile, in its own target
//! directory), as the `no_std` link proof does.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The README's placeholder for where the user's checkout is.
const CHECKOUT: &str = "\"../evio\"";

/// The `toml` blocks between `<!-- downstream -->` and `<!-- /downstream -->`.
fn readme_dependency_lines(readme: &str) -> String {
    let start = readme
        .find("<!-- downstream -->")
        .expect("the README marks its dependency lines with <!-- downstream -->");
    let end = readme[start..]
        .find("<!-- /downstream -->")
        .map(|e| start + e)
        .expect("<!-- /downstream --> after <!-- downstream -->");
    let mut lines = String::new();
    let mut rest = &readme[start..end];
    while let Some(open) = rest.find("```toml\n") {
        let body = &rest[open + "```toml\n".len()..];
        let close = body.find("```").expect("a closed toml block");
        lines.push_str(&body[..close]);
        lines.push('\n');
        rest = &body[close + 3..];
    }
    assert!(!lines.is_empty(), "no toml block between the markers");
    lines
}

const HANDLER: &str = r#"
//! A user's handler, against the facade's types.
use evio::{Action, Conn, Events};

/// Echoes what it can; the rest waits.
pub struct Echo;

impl Events for Echo {
    type Context = ();
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let n = conn.write_some(input);
        conn.consume(n);
        Action::None
    }
}

/// Serves it (compiled, not run here).
pub fn run() -> Result<(), evio::Error> {
    evio::serve(Echo, &["tcp://127.0.0.1:0"])
}
"#;

const SIM_TEST: &str = r#"
use evio::sim::{Constraints, EchoModel, Rng, Swarm};

#[test]
fn the_handler_passes_a_swarm() {
    let report = Swarm::new(|| (downstream::Echo, EchoModel))
        .seeds(0..50)
        .steps(500)
        .constraints(Constraints { min_output_capacity: 16, ..Constraints::none() })
        .workload(|_client: u16, _rng: &mut Rng| b"ping\n".to_vec())
        .run();
    assert!(report.failures.is_empty(), "{report}");
    assert!(report.connections > 0, "{report}");
}
"#;

#[test]
fn the_readme_dependency_lines_build_a_crate_that_uses_evio_sim() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(workspace.join("README.md")).unwrap();
    let lines = readme_dependency_lines(&readme);
    assert!(
        lines.contains(CHECKOUT),
        "the README's lines name {CHECKOUT}"
    );
    let lines = lines.replace(CHECKOUT, &format!("{:?}", workspace.display().to_string()));

    let target = workspace.join("target").join("downstream");
    let krate: PathBuf = target.join("crate");
    let _ = std::fs::remove_dir_all(&krate);
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::create_dir_all(krate.join("tests")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"downstream\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
             publish = false\n\n\
             # Not a member of the evio workspace it sits under.\n[workspace]\n\n{lines}"
        ),
    )
    .unwrap();
    std::fs::write(krate.join("src").join("lib.rs"), HANDLER).unwrap();
    std::fs::write(krate.join("tests").join("sim.rs"), SIM_TEST).unwrap();
    // The versions this workspace builds with, so the build needs no network.
    std::fs::copy(workspace.join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();

    let output = Command::new(env!("CARGO"))
        .current_dir(&krate)
        .args(["test", "--offline", "--quiet"])
        .env("CARGO_TARGET_DIR", target.join("target"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .expect("run cargo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the README's dependency lines do not build:\n{lines}\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the simulator test did not run:\n{stdout}\n{stderr}"
    );
}
