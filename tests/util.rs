//! Running the binary and building fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The outcome of one run of `clause`.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Assert success and return stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        &self.stdout
    }

    /// Assert a clean failure (exit 1, an `error:` line, no panic) whose
    /// message contains every needle; return stderr.
    #[track_caller]
    pub fn fails_with(&self, needles: &[&str]) -> &str {
        assert_eq!(self.code, Some(1), "expected exit 1\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        assert!(self.stderr.lines().any(|l| l.starts_with("error: ")), "stderr:\n{}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "stderr:\n{}", self.stderr);
        for needle in needles {
            assert!(self.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", self.stderr);
        }
        &self.stderr
    }
}

/// Run `clause` with `args` in `dir`, with a clean environment for its own
/// variables.
pub fn clause_in(dir: &Path, args: &[&str]) -> Run {
    clause_with_env(dir, args, &[])
}

/// [`clause_in`] with extra environment variables.
pub fn clause_with_env(dir: &Path, args: &[&str], vars: &[(&str, &Path)]) -> Run {
    let mut command = clause_command(dir, args);
    for (name, value) in vars {
        command.env(name, value);
    }
    Run::from(command.output().expect("run clause"))
}

/// The command [`clause_in`] runs, for tests that need to drive the process.
pub fn clause_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clause"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("CLAUSE_DATA_ROOT")
        .env_remove("CLAUSE_LOG")
        .env_remove("CLAUSE_PAUSE_AT")
        .env_remove("HF_HOME")
        .env_remove("HF_HUB_OFFLINE");
    command
}

/// Run `clause` in the project root.
pub fn clause(args: &[&str]) -> Run {
    clause_in(&project_root(), args)
}

pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared source data: `CLAUSE_DATA_ROOT`, or `../shared/data` beside the
/// project. Tests that need it fail, rather than skip, when it is absent.
pub fn data_root() -> PathBuf {
    let root = std::env::var_os("CLAUSE_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("..").join("shared").join("data"));
    assert!(
        root.join("treaties").is_dir() && root.join("claudette-tos-en").is_dir(),
        "source data not found at {}: put the shared data beside the project or set CLAUSE_DATA_ROOT",
        root.display()
    );
    root
}

/// Every treaty file of the source data (`treaties/*.md`), sorted.
pub fn treaty_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_root().join("treaties"))
        .expect("read treaties")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files
}

/// Copy the project's recipe `name` (recipe and annotations, not its build)
/// into a fresh `<tmp>/datasets/<name>`, so tests never touch the working
/// tree's build directories.
pub fn copy_recipe(tmp: &Path, name: &str) -> PathBuf {
    let from = project_root().join("datasets").join(name);
    let to = tmp.join("datasets").join(name);
    copy_dir(&from, &to);
    to
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        if entry.file_name() == "build" {
            continue;
        }
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy");
        }
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn write(path: &Path, contents: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, contents).expect("write");
}

/// Lower-case hex sha256, computed by the data crate's own function would
/// make the test circular; `sha256sum` is on every machine this runs on.
pub fn sha256(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().expect("run sha256sum");
    assert!(output.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&output.stdout).split_whitespace().next().expect("digest").to_string()
}

/// Names in a directory, sorted, for "nothing half-written" checks.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// [`clause_in`] with `input` on stdin, written from another thread so that
/// a large input cannot deadlock against the output.
pub fn clause_with_stdin(dir: &Path, args: &[&str], input: Vec<u8>) -> Run {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = clause_command(dir, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run clause");
    let mut stdin = child.stdin.take().expect("stdin");
    // The command may stop reading early (an error, a refused line); a
    // broken pipe here is its business, not the test's.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("wait for clause");
    writer.join().expect("stdin writer");
    Run::from(output)
}

/// Every path under `dir` (relative, sorted, directories included), for
/// checking that a failed command wrote nothing anywhere in it.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.expect("entry").path();
            out.push(path.strip_prefix(root).expect("under root").display().to_string());
            if path.is_dir() && !path.is_symlink() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
