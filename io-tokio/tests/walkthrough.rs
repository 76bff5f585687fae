//! The walk-through of `docs/frameworks.md` ("A walk through on one machine"), run as written on
//! copies of the files in `docs/examples`: the documentation and the example files cannot drift
//! from what the `m2msec` binary does.
//!
//! The only change is the ports: 7001-7003, 7080 and 7443 become free ones, in the files and in
//! the commands. Servers (`... &`) are started until they print their `listening:` lines; every
//! other command must exit 0, and a comment of the form `# word: piece ... piece` (on the
//! command's line or the lines under it) names pieces that one line of its output must contain,
//! in that order (a trailing `(...)` remark is not part of it).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{collect, finish, free_port, lines, text, TempDir, BIN, LIMIT};

/// The ports the documentation and the example files use.
const DOC_PORTS: [u16; 5] = [7001, 7002, 7003, 7080, 7443];

/// One command of the walk-through.
struct Step {
    /// The words after `m2msec`.
    args: Vec<String>,
    /// Started with `&`: a server.
    server: bool,
    /// Expected output lines, each as its pieces.
    expect: Vec<Vec<String>>,
    /// The line as documented, for messages.
    doc: String,
}

/// The first `sh` block after the walk-through heading.
fn walkthrough_block(doc: &str) -> Vec<String> {
    let start = doc
        .find("## A walk through on one machine")
        .expect("docs/frameworks.md: the walk-through heading");
    let rest = &doc[start..];
    let open = rest.find("```sh\n").expect("the walk-through's sh block") + 6;
    let close = rest[open..].find("```").expect("the end of the sh block");
    rest[open..open + close]
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The pieces of an expected output line: `word: a ... b (remark)` -> ["word: a", "b"].
fn expectation(comment: &str) -> Option<Vec<String>> {
    let c = comment.trim();
    let c = match c.rfind(" (") {
        Some(i) if c.ends_with(')') => c[..i].trim_end(),
        _ => c,
    };
    let (word, _) = c.split_once(": ")?;
    if word.is_empty()
        || !word
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
    {
        return None;
    }
    let pieces: Vec<String> = c
        .split("...")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    Some(pieces)
}

fn steps(block: &[String]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for line in block {
        let (code, comment) = match line.find('#') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line.as_str(), None),
        };
        let code = code.trim();
        if code.is_empty() {
            // A comment under a command belongs to it; a heading comment starts a new part.
            if line.starts_with(' ') {
                if let (Some(step), Some(e)) = (steps.last_mut(), comment.and_then(expectation)) {
                    step.expect.push(e);
                }
            }
            continue;
        }
        if code == "cd docs/examples" {
            continue;
        }
        let (code, server) = match code.strip_suffix('&') {
            Some(c) => (c.trim_end(), true),
            None => (code, false),
        };
        let args = code
            .strip_prefix("m2msec ")
            .unwrap_or_else(|| panic!("walk-through line is not an m2msec command: {line:?}"));
        let expect = if server {
            Vec::new()
        } else {
            comment.and_then(expectation).into_iter().collect()
        };
        steps.push(Step {
            args: args.split_whitespace().map(str::to_owned).collect(),
            server,
            expect,
            doc: line.trim().to_owned(),
        });
    }
    steps
}

/// Replaces every `:<doc port>` by `:<free port>` (addresses and URIs alike).
fn with_ports(s: &str, ports: &BTreeMap<u16, u16>) -> String {
    let mut out = s.to_owned();
    for (doc, free) in ports {
        out = out.replace(&format!(":{doc}"), &format!(":{free}"));
    }
    out
}

/// A server of the walk-through; SIGKILLed when dropped.
struct Running {
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    doc: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server in `dir` and waits for its two `listening:` lines (TLS and DTLS, or the BSF's
/// Ub and Zn).
fn start(dir: &Path, step: &Step) -> Running {
    let mut child = Command::new(BIN)
        .args(&step.args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn m2msec");
    let stderr = collect(child.stderr.take().unwrap());
    let out = lines(child.stdout.take().unwrap());
    let mut running = Running {
        child,
        stderr,
        doc: step.doc.clone(),
    };
    let end = Instant::now() + LIMIT;
    let mut listening = 0;
    while listening < 2 {
        match out.recv_timeout(Duration::from_millis(100)) {
            Ok(line) if line.starts_with("listening: ") => listening += 1,
            Ok(line) => panic!("{}: unexpected line before listening: {line:?}", step.doc),
            Err(_) => {
                if let Some(status) = running.child.try_wait().unwrap() {
                    std::thread::sleep(Duration::from_millis(50));
                    panic!(
                        "{}: exited with {status}: {}",
                        step.doc,
                        text(&running.stderr)
                    );
                }
                assert!(
                    Instant::now() < end,
                    "{}: did not listen: {}",
                    step.doc,
                    text(&running.stderr)
                );
            }
        }
    }
    // Later stdout lines (registrar events) are not read: the pipe's reader thread drains them.
    std::thread::spawn(move || for _ in out {});
    running
}

/// Runs a client command in `dir` to its exit and checks its output against the comments.
fn run(dir: &Path, step: &Step, servers: &[Running]) {
    let child = Command::new(BIN)
        .args(&step.args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn m2msec");
    let r = finish(child, &step.doc);
    let servers_said = || {
        servers
            .iter()
            .map(|s| format!("--- {}\n{}", s.doc, text(&s.stderr)))
            .collect::<String>()
    };
    assert_eq!(
        r.code,
        Some(0),
        "{}\nstdout:\n{}\nstderr:\n{}\nservers:\n{}",
        step.doc,
        r.stdout,
        r.stderr,
        servers_said()
    );
    for pieces in &step.expect {
        let found = r.stdout.lines().any(|line| {
            let mut at = 0;
            pieces.iter().all(|p| match line[at..].find(p.as_str()) {
                Some(i) => {
                    at += i + p.len();
                    true
                }
                None => false,
            })
        });
        assert!(
            found,
            "{}: no output line with {pieces:?}\nstdout:\n{}",
            step.doc, r.stdout
        );
    }
}

#[test]
fn the_documented_walkthrough_runs_on_the_example_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc = std::fs::read_to_string(root.join("docs/frameworks.md")).unwrap();
    let steps = steps(&walkthrough_block(&doc));

    // The block is what it claims: the three PSK servers and the BSF, and the commands of every
    // PSK and GBA framework, each expecting its output line.
    let servers: Vec<&str> = steps
        .iter()
        .filter(|s| s.server)
        .map(|s| s.args[0].as_str())
        .collect();
    assert_eq!(servers, ["mef", "maf", "registrar", "bsf"]);
    let clients = steps.iter().filter(|s| !s.server).count();
    assert!(clients >= 9, "{clients} client commands");
    assert!(steps
        .iter()
        .any(|s| s.expect.iter().any(|e| e[0].starts_with("gba:"))));

    let dir = TempDir::new("walkthrough");
    let mut ports = BTreeMap::new();
    for p in DOC_PORTS {
        let mut free = free_port();
        while ports.values().any(|&f| f == free) {
            free = free_port();
        }
        ports.insert(p, free);
    }
    let examples = root.join("docs/examples");
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(
                dir.path(path.file_name().unwrap().to_str().unwrap()),
                with_ports(&text, &ports),
            )
            .unwrap();
        }
    }

    let mut running = Vec::new();
    for step in &steps {
        let step = Step {
            args: step.args.iter().map(|a| with_ports(a, &ports)).collect(),
            server: step.server,
            expect: step.expect.clone(),
            doc: step.doc.clone(),
        };
        if step.server {
            running.push(start(&dir.0, &step));
        } else {
            run(&dir.0, &step, &running);
        }
    }
}

#[test]
fn expectations_are_read_from_comments() {
    assert_eq!(
        expectation(" enrolled: ke-id=...@mef.example.com ..."),
        Some(vec![
            "enrolled: ke-id=".to_owned(),
            "@mef.example.com".to_owned()
        ])
    );
    assert_eq!(
        expectation(" km-id: km-...@maf.example.com (first contact)"),
        Some(vec!["km-id: km-".to_owned(), "@maf.example.com".to_owned()])
    );
    assert_eq!(
        expectation(" fetches Km from the MEF at first contact"),
        None
    );
    assert_eq!(
        expectation(" GBA: the BSF, then"),
        Some(vec!["GBA: the BSF, then".to_owned()])
    );
}
