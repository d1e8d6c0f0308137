//! The rule-to-oracle matrix cannot drift from the protocol: every rule id that
//! `docs/protocol.md` defines has exactly one row in `docs/oracles.md`, every row names a rule
//! that exists, no id is defined twice, every file a table of `oracles.md` cites exists (and
//! every `file::test` it cites names a function in that file), and the list of rules without a
//! behavioural oracle is exactly the rows whose simulator and fuzz cells are both empty. Rule
//! ids cited anywhere in `protocol.md`, `oracles.md` or `design.md` must be defined.
//!
//! A rule id matches `[A-Z]+(-[A-Z0-9]+)+` and is defined by a list item or table row that
//! starts with it in backticks (`` - `AUTH-EXP-LEEWAY` ... `` or `` | `AUTH-EXP-LEEWAY` | ``).
//! In `oracles.md` only table rows count, so its closing list can name ids freely.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The cell that means "nothing enforces this here".
const NONE: &str = "—";
/// The heading of the closing list of `oracles.md`.
const UNORACLED_HEADING: &str = "## Rules without a behavioural oracle";
/// Columns of the matrix: rule id, simulator checker, fuzz oracle, probe check, tests.
const MATRIX_COLUMNS: usize = 5;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read_doc(name: &str) -> String {
    let path = repo_root().join("docs").join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Whether `s` is a rule id: `[A-Z]+(-[A-Z0-9]+)+`.
fn is_rule_id(s: &str) -> bool {
    let mut parts = s.split('-');
    let head_ok = parts
        .next()
        .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_uppercase()));
    let mut tail = 0;
    let tail_ok = parts.all(|p| {
        tail += 1;
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    });
    head_ok && tail_ok && tail > 0
}

/// The rule id a list item or table row starts with, if any.
fn leading_id(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let rest = t
        .strip_prefix("- ")
        .or_else(|| t.strip_prefix("* "))
        .or_else(|| t.strip_prefix('|'))?
        .trim_start()
        .strip_prefix('`')?;
    let id = rest.get(..rest.find('`')?)?;
    is_rule_id(id).then_some(id)
}

fn is_table_row(line: &str) -> bool {
    line.trim_start().starts_with('|')
}

/// The cells of a table row, trimmed.
fn cells(line: &str) -> Vec<&str> {
    let t = line.trim();
    let t = t.strip_prefix('|').unwrap_or(t);
    let t = t.strip_suffix('|').unwrap_or(t);
    t.split('|').map(str::trim).collect()
}

/// The text of every `` `code span` `` in `text`.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Ids defined in `protocol.md` (list items and table rows), with their 1-based line numbers.
fn protocol_ids(text: &str) -> Vec<(String, usize)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| leading_id(l).map(|id| (id.to_string(), i + 1)))
        .collect()
}

/// One row of the matrix in `oracles.md`.
struct Row {
    id: String,
    line: usize,
    cells: Vec<String>,
}

/// The matrix rows of `oracles.md`: table rows that start with a rule id.
fn matrix_rows(text: &str) -> Vec<Row> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| is_table_row(l))
        .filter_map(|(i, l)| {
            leading_id(l).map(|id| Row {
                id: id.to_string(),
                line: i + 1,
                cells: cells(l).into_iter().map(str::to_string).collect(),
            })
        })
        .collect()
}

/// Ids listed under the closing "without a behavioural oracle" heading of `oracles.md`.
fn unoracled_list(text: &str) -> BTreeSet<String> {
    text.lines()
        .skip_while(|l| l.trim() != UNORACLED_HEADING)
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| !is_table_row(l))
        .filter_map(leading_id)
        .map(str::to_string)
        .collect()
}

/// Ids that appear more than once, with every line they appear on.
fn duplicates<'a>(ids: impl IntoIterator<Item = (&'a str, usize)>) -> Vec<String> {
    let mut seen: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (id, line) in ids {
        seen.entry(id).or_default().push(line);
    }
    seen.into_iter()
        .filter(|(_, lines)| lines.len() > 1)
        .map(|(id, lines)| format!("{id} (lines {lines:?})"))
        .collect()
}

/// Every problem between the two documents' rule ids, one line each (empty when they agree).
fn id_problems(protocol: &str, oracles: &str) -> Vec<String> {
    let defined = protocol_ids(protocol);
    let rows = matrix_rows(oracles);
    let defined_set: BTreeSet<&str> = defined.iter().map(|(id, _)| id.as_str()).collect();
    let row_set: BTreeSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut problems = Vec::new();
    for id in defined_set.difference(&row_set) {
        problems.push(format!(
            "rule {id} of docs/protocol.md has no row in docs/oracles.md"
        ));
    }
    for r in &rows {
        if !defined_set.contains(r.id.as_str()) {
            problems.push(format!(
                "docs/oracles.md line {} names rule {}, which docs/protocol.md does not define",
                r.line, r.id
            ));
        }
    }
    for d in duplicates(defined.iter().map(|(id, l)| (id.as_str(), *l))) {
        problems.push(format!("docs/protocol.md defines {d} more than once"));
    }
    for d in duplicates(rows.iter().map(|r| (r.id.as_str(), r.line))) {
        problems.push(format!("docs/oracles.md has more than one row for {d}"));
    }
    problems
}

/// Every rule id cited in a code span of `text` (named `doc`) that `protocol` does not define:
/// a cross-reference such as "see `MSG-PROTOCOL-ERROR-BUDGET`" must name a real rule.
fn dangling_citations(doc: &str, text: &str, protocol: &str) -> Vec<String> {
    let defined: BTreeSet<String> = protocol_ids(protocol)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    text.lines()
        .enumerate()
        .flat_map(|(i, line)| code_spans(line).into_iter().map(move |span| (i + 1, span)))
        .filter(|(_, span)| is_rule_id(span) && !defined.contains(*span))
        .map(|(line, span)| {
            format!("{doc} line {line} cites {span}, which docs/protocol.md does not define")
        })
        .collect()
}

/// Every matrix row whose simulator and fuzz cells are both empty, and every row of the
/// wrong width, compared with the closing list.
fn unoracled_problems(oracles: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut without = BTreeSet::new();
    for r in matrix_rows(oracles) {
        if r.cells.len() != MATRIX_COLUMNS {
            problems.push(format!(
                "docs/oracles.md line {}: row {} has {} cells, not {MATRIX_COLUMNS}",
                r.line,
                r.id,
                r.cells.len()
            ));
            continue;
        }
        let empty = |i: usize| r.cells.get(i).is_some_and(|c| c == NONE);
        if empty(1) && empty(2) {
            without.insert(r.id);
        }
    }
    let listed = unoracled_list(oracles);
    for id in without.difference(&listed) {
        problems.push(format!(
            "{id} has no simulator or fuzz oracle but is missing from \"{UNORACLED_HEADING}\""
        ));
    }
    for id in listed.difference(&without) {
        problems.push(format!(
            "{id} is listed under \"{UNORACLED_HEADING}\" but its row names a simulator or fuzz oracle"
        ));
    }
    problems
}

/// A code span that cites a file: `dir/file.ext`, optionally `::function`.
fn cited_file(span: &str) -> Option<(&str, Option<&str>)> {
    let (path, function) = match span.split_once("::") {
        Some((p, f)) => (p, Some(f)),
        None => (span, None),
    };
    let is_file = path.contains('/')
        && !path.starts_with('/')
        && !path.contains(char::is_whitespace)
        && [".rs", ".md", ".toml", ".dict", ".sh"]
            .iter()
            .any(|ext| path.ends_with(ext));
    is_file.then_some((path, function))
}

/// Every file cited in a table cell of `oracles` that does not exist under `root`, and every
/// `file::function` whose file has no `fn function`.
fn citation_problems(oracles: &str, root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut texts: BTreeMap<&str, Option<String>> = BTreeMap::new();
    for (i, line) in oracles.lines().enumerate() {
        if !is_table_row(line) {
            continue;
        }
        for (path, function) in code_spans(line).into_iter().filter_map(cited_file) {
            // A module's unit tests may live in its sibling `<module>/tests.rs`
            // (docs/contributing.md, Tests), so `a/b.rs::f` is found in either file.
            let text = texts.entry(path).or_insert_with(|| {
                let own = fs::read_to_string(root.join(path)).ok()?;
                let sibling = path
                    .strip_suffix(".rs")
                    .and_then(|stem| fs::read_to_string(root.join(format!("{stem}/tests.rs"))).ok())
                    .unwrap_or_default();
                Some(own + &sibling)
            });
            match (text, function) {
                (None, _) => problems.push(format!(
                    "docs/oracles.md line {}: {path} does not exist",
                    i + 1
                )),
                (Some(t), Some(f)) if !t.contains(&format!("fn {f}(")) => problems.push(format!(
                    "docs/oracles.md line {}: {path} has no function {f}",
                    i + 1
                )),
                _ => {}
            }
        }
    }
    problems
}

fn assert_none(problems: &[String], what: &str) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s)\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn protocol_and_oracles_define_the_same_rule_ids_once_each() {
    let (protocol, oracles) = (read_doc("protocol.md"), read_doc("oracles.md"));
    assert!(
        protocol_ids(&protocol).len() > 50,
        "docs/protocol.md defines almost no rule ids: is the id format still `ID` at the start of a list item or table row?"
    );
    assert_none(
        &id_problems(&protocol, &oracles),
        "docs/protocol.md and docs/oracles.md disagree",
    );
}

#[test]
fn rule_ids_cited_in_the_docs_are_all_defined() {
    let protocol = read_doc("protocol.md");
    let mut problems = Vec::new();
    for doc in ["protocol.md", "oracles.md", "design.md"] {
        let text = read_doc(doc);
        problems.extend(dangling_citations(&format!("docs/{doc}"), &text, &protocol));
    }
    assert_none(&problems, "the docs cite rule ids that do not exist");
}

#[test]
fn oracle_tables_cited_files_and_tests_all_exist() {
    assert_none(
        &citation_problems(&read_doc("oracles.md"), &repo_root()),
        "docs/oracles.md cites what is not there",
    );
}

#[test]
fn rules_without_behavioural_oracle_listed_exactly() {
    assert_none(
        &unoracled_problems(&read_doc("oracles.md")),
        "the list of rules without a behavioural oracle is wrong",
    );
}

// The checks above must be able to fail: each is run here on small documents with a known fault.

const PROTOCOL: &str = "\
# P
- `AUTH-ONE` first rule.
* `AUTH-TWO` second rule.
| `WS-THREE` | a rule in a table |
- `not-an-id` a plain item, and `RESUME_GAP` is a code, not a rule.
";

const ORACLES: &str = "\
| rule id | sim | fuzz | probe | tests |
|---|---|---|---|---|
| `AUTH-ONE` | `x` | — | — | — |
| `AUTH-TWO` | — | `y` | — | — |
| `WS-THREE` | — | — | `p` | — |

## Rules without a behavioural oracle

- `WS-THREE`: probe only.
";

#[test]
fn rule_id_format_accepts_ids_and_refuses_codes() {
    for id in ["AUTH-EXP-LEEWAY", "WS-CAP-RELEASE", "MSG-UTF8", "A-1"] {
        assert!(is_rule_id(id), "{id}");
    }
    for not in [
        "AUTH",
        "RESUME_GAP",
        "auth-exp",
        "AUTH-",
        "-AUTH",
        "AUTH--X",
        "UTF 8",
    ] {
        assert!(!is_rule_id(not), "{not}");
    }
}

#[test]
fn matching_documents_report_no_problem() {
    assert_eq!(id_problems(PROTOCOL, ORACLES), Vec::<String>::new());
    assert_eq!(unoracled_problems(ORACLES), Vec::<String>::new());
}

#[test]
fn missing_row_is_reported_by_rule_id() {
    let oracles = ORACLES.replace("| `AUTH-TWO` | — | `y` | — | — |\n", "");
    assert_eq!(
        id_problems(PROTOCOL, &oracles),
        vec!["rule AUTH-TWO of docs/protocol.md has no row in docs/oracles.md".to_string()]
    );
}

#[test]
fn row_for_unknown_rule_is_reported_with_its_line() {
    let protocol = PROTOCOL.replace("* `AUTH-TWO` second rule.\n", "");
    assert_eq!(
        id_problems(&protocol, ORACLES),
        vec![
            "docs/oracles.md line 4 names rule AUTH-TWO, which docs/protocol.md does not define"
                .to_string()
        ]
    );
}

#[test]
fn duplicate_ids_are_reported_in_either_document() {
    let protocol = format!("{PROTOCOL}- `AUTH-ONE` again.\n");
    let oracles = format!("{ORACLES}| `WS-THREE` | — | — | — | — |\n");
    let problems = id_problems(&protocol, &oracles);
    assert_eq!(
        problems,
        vec![
            "docs/protocol.md defines AUTH-ONE (lines [2, 6]) more than once".to_string(),
            "docs/oracles.md has more than one row for WS-THREE (lines [5, 10])".to_string(),
        ]
    );
}

#[test]
fn unoracled_list_out_of_step_with_rows_is_reported() {
    let oracles = ORACLES.replace("| `AUTH-TWO` | — | `y` |", "| `AUTH-TWO` | — | — |");
    assert_eq!(
        unoracled_problems(&oracles),
        vec![format!(
            "AUTH-TWO has no simulator or fuzz oracle but is missing from \"{UNORACLED_HEADING}\""
        )]
    );
    let oracles = ORACLES.replace("| `WS-THREE` | — | — |", "| `WS-THREE` | `z` | — |");
    assert_eq!(
        unoracled_problems(&oracles),
        vec![format!(
            "WS-THREE is listed under \"{UNORACLED_HEADING}\" but its row names a simulator or fuzz oracle"
        )]
    );
}

#[test]
fn citation_of_undefined_rule_is_reported() {
    let text = "Known difference (`AUTH-ONE`, `AUTH-TOW`); `RESUME_GAP` is a code.\n";
    assert_eq!(
        dangling_citations("docs/x.md", text, PROTOCOL),
        vec!["docs/x.md line 1 cites AUTH-TOW, which docs/protocol.md does not define".to_string()]
    );
}

#[test]
fn cited_missing_file_or_test_is_reported() {
    let table = "\
| `A-B` | `core/tests/oracle_matrix.rs::missing_row_is_reported_by_rule_id` | `core/tests/no_such_file.rs` | `/ws` | `core/tests/oracle_matrix.rs::no_such_test` |
";
    assert_eq!(
        citation_problems(table, &repo_root()),
        vec![
            "docs/oracles.md line 1: core/tests/no_such_file.rs does not exist".to_string(),
            "docs/oracles.md line 1: core/tests/oracle_matrix.rs has no function no_such_test"
                .to_string(),
        ]
    );
}
