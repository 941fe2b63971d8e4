//! Recovery after a wrong key, type or value (parse stage, between YAML → [`Suite`]
//! attempts): serde stops at the first such error, so the loader blanks the entry it
//! names — the key and its value, replaced by spaces so that every other byte keeps its
//! offset, line and column — and parses again, until the suite reads or nothing more can
//! be blanked. One `validate` then reports every unknown key and wrong value at once.
//!
//! [`Suite`]: super::model::Suite

use std::ops::Range;

/// A part of the suite that could not be read and was blanked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Blank {
    /// The bytes blanked.
    pub range: Range<usize>,
    /// The text that was there (its names are not reported again as unknown).
    pub text: String,
    /// The lines (1-based, inclusive) of the mapping that held the entry, when it is not
    /// the top level: problems found there later may be consequences of the blank.
    pub owner: Option<(u32, u32)>,
}

impl Blank {
    /// Whether a problem on `line` may be a consequence of this blank.
    pub fn covers_line(&self, line: u32) -> bool {
        self.owner.is_some_and(|(a, b)| (a..=b).contains(&line))
    }
}

/// Replaces the bytes of `b` by spaces (line breaks kept), so offsets do not move.
pub(super) fn apply(text: &mut String, b: &Blank) {
    let blanked: String = text[b.range.clone()]
        .chars()
        .map(|c| match c {
            '\n' | '\r' => c.to_string(),
            c => " ".repeat(c.len_utf8()),
        })
        .collect();
    text.replace_range(b.range.clone(), &blanked);
}

/// The entry to blank for an error at byte `off` of `text`: the `key: value` entry
/// whose key (`key`) or value starts there (in a block or a flow mapping), or the list
/// item it is. `None` when no entry can be found safely (most of the document, an
/// offset at the very end).
pub(super) fn entry_at(text: &str, off: usize, key: bool) -> Option<Blank> {
    if off >= text.trim_end().len() || !text.is_char_boundary(off) {
        return None;
    }
    let range = match flow_open(text, off) {
        Some(open) => flow_entry(text, open, off)?,
        None => block_entry(text, off, key)?,
    };
    if range.is_empty() || range.len() * 10 > text.len() * 9 {
        return None;
    }
    let owner = owner_lines(text, &range);
    Some(Blank {
        text: text[range.clone()].to_string(),
        range,
        owner,
    })
}

/// `text` with the key `from` at `off` renamed to `to` (padded with spaces before the
/// colon, so nothing moves), when `to` is no longer than `from` and the mapping does not
/// already have `to`: loading goes on as if the likely meant key was written, and what
/// follows in that mapping is checked as such.
pub(super) fn rename(text: &str, off: usize, from: &str, to: &str) -> Option<String> {
    if to.len() > from.len() || !text.get(off..)?.starts_with(from) {
        return None;
    }
    let after = text[off + from.len()..].trim_start_matches(' ');
    if !after.starts_with(':') {
        return None;
    }
    // The mapping's own text: its lines, or the top level's unindented lines.
    let range = off..off + from.len();
    let siblings: Vec<&str> = match owner_lines(text, &range) {
        Some((a, b)) => text
            .lines()
            .skip(a as usize - 1)
            .take((b - a + 1) as usize)
            .collect(),
        None => text
            .lines()
            .filter(|l| !l.starts_with([' ', '-']))
            .collect(),
    };
    let has_key = |l: &str| {
        l.match_indices(to).any(|(i, _)| {
            let before = l[..i].trim_end_matches(' ');
            let rest = l[i + to.len()..].trim_start_matches(' ');
            rest.starts_with(':') && (before.is_empty() || before.ends_with(['{', ',', '-']))
        })
    };
    if siblings.iter().any(|l| has_key(l)) {
        return None;
    }
    let mut out = text.to_string();
    let padded = format!("{to}{}", " ".repeat(from.len() - to.len()));
    out.replace_range(range, &padded);
    Some(out)
}

/// Where the innermost flow collection (`{` or `[`) open at `off` starts, if any.
fn flow_open(text: &str, off: usize) -> Option<usize> {
    let mut stack: Vec<usize> = Vec::new();
    let mut quote: Option<u8> = None;
    let b = text.as_bytes();
    let mut i = 0;
    while i < off {
        let c = b[i];
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                b'"' | b'\'' if i == 0 || b" [{,:".contains(&b[i - 1]) => quote = Some(c),
                b'#' if i == 0 || b[i - 1] == b' ' || b[i - 1] == b'\n' => {
                    while i < off && b[i] != b'\n' {
                        i += 1;
                    }
                    continue;
                }
                b'{' | b'[' => stack.push(i),
                b'}' | b']' => {
                    stack.pop();
                }
                _ => {}
            },
        }
        i += 1;
    }
    stack.pop()
}

/// The entry of the flow collection opened at `open` that holds `off`: from the comma
/// before it (or just after the bracket) to the comma after it (or the closing bracket).
fn flow_entry(text: &str, open: usize, off: usize) -> Option<Range<usize>> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut start = open + 1;
    let mut sep_before = false;
    let mut i = open + 1;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' | b'\'' if b" [{,:".contains(&b[i - 1]) => quote = Some(c),
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth > 0 => depth -= 1,
            b'}' | b']' => {
                // The last entry: take the comma before it along, if there is one.
                return (i > off).then(|| if sep_before { start - 1..i } else { start..i });
            }
            b',' if depth == 0 => {
                if i >= off {
                    return Some(if sep_before {
                        start - 1..i
                    } else {
                        start..i + 1
                    });
                }
                start = i + 1;
                sep_before = true;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The indentation of a line and the column where its content starts after any `- `
/// item markers.
fn indents(line: &str) -> (usize, usize) {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let mut content = indent;
    let mut rest = &line[indent..];
    while let Some(r) = rest
        .strip_prefix("- ")
        .or_else(|| (rest == "-").then_some(""))
    {
        let spaces = r.len() - r.trim_start_matches(' ').len();
        content += rest.len() - r.len() + spaces;
        rest = &r[spaces..];
    }
    (indent, content)
}

/// Byte offsets where each line starts.
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .filter(|&i| i <= text.len())
        .collect()
}

fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// The block entry for `off`: the `key:` that starts there (`key`), or the entry whose
/// value starts there — the `key:` before it on its line, the list item it is, or the
/// key on an earlier line whose value block it is; with every following line indented
/// deeper.
fn block_entry(text: &str, off: usize, key: bool) -> Option<Range<usize>> {
    let starts = line_starts(text);
    let li = starts.partition_point(|&s| s <= off) - 1;
    let line_of = |i: usize| -> &str {
        let end = starts.get(i + 1).map(|e| e - 1).unwrap_or(text.len());
        text[starts[i]..end].trim_end_matches('\r')
    };
    let line = line_of(li);
    let col = off - starts[li];
    let (indent, content) = indents(line);
    let dash = line[indent..content.min(line.len())]
        .rfind('-')
        .map(|d| indent + d);
    // Where the entry starts (byte offset) and the column its continuation must exceed.
    let (start, deeper_than) = if key || col > content {
        // The key itself, or a value after `key:` on the key's line.
        let at = if key { col } else { content };
        (starts[li] + at, at)
    } else if let Some(d) = dash {
        // A list item: from its dash.
        (starts[li] + d, d)
    } else {
        // A value alone on its line: the entry is the key above, less indented.
        let mut k = li;
        loop {
            k = k.checked_sub(1)?;
            let l = line_of(k);
            if is_content(l) && indents(l).1 < content {
                break;
            }
        }
        let (_, kc) = indents(line_of(k));
        (starts[k] + kc, kc)
    };
    let mut end_line = starts.partition_point(|&s| s <= start) - 1;
    for j in end_line + 1..starts.len() {
        let l = line_of(j);
        if !is_content(l) {
            continue;
        }
        if indents(l).0 > deeper_than {
            end_line = j;
        } else {
            break;
        }
    }
    let end = starts
        .get(end_line + 1)
        .map(|e| e - 1)
        .unwrap_or(text.len());
    Some(start..end)
}

/// The lines of the mapping (or list item) holding the blanked range, when it is not the
/// document's top level.
fn owner_lines(text: &str, range: &Range<usize>) -> Option<(u32, u32)> {
    let starts = line_starts(text);
    let first = starts.partition_point(|&s| s <= range.start) - 1;
    let last = starts.partition_point(|&s| s < range.end.max(range.start + 1)) - 1;
    let line_of = |i: usize| -> &str {
        let end = starts.get(i + 1).map(|e| e - 1).unwrap_or(text.len());
        &text[starts[i]..end]
    };
    let col = range.start - starts[first];
    if col == 0 {
        return None;
    }
    let mut top = first;
    while top > 0 {
        let l = line_of(top);
        let (indent, content) = indents(l);
        if top != first && is_content(l) && content < col {
            top += 1;
            break;
        }
        if is_content(l) && content == col && indent < content && l[indent..].starts_with('-') {
            break;
        }
        top -= 1;
    }
    let mut bottom = last;
    for j in last + 1..starts.len() {
        let l = line_of(j);
        if !is_content(l) {
            continue;
        }
        let (indent, content) = indents(l);
        if content < col || indent < col && l[indent..].starts_with('-') {
            break;
        }
        bottom = j;
    }
    Some((top as u32 + 1, bottom as u32 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank(text: &str, at: &str) -> String {
        let off = text.find(at).unwrap();
        let key = at.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let b = entry_at(text, off, key).unwrap_or_else(|| panic!("no entry at {at:?}"));
        let mut t = text.to_string();
        apply(&mut t, &b);
        assert_eq!(t.len(), text.len());
        t
    }

    #[test]
    fn blanks_block_entries_with_their_values() {
        let t = "a: 1\nchecks:\n  - name: x\n    reed:\n      deep: 1\n    more: 2\n  - name: z\n";
        let out = blank(t, "reed");
        assert_eq!(
            out,
            "a: 1\nchecks:\n  - name: x\n         \n             \n    more: 2\n  - name: z\n"
        );
        // A wrong value on the key's line: the entry from its key.
        let out = blank("version: one\nname: x\ncheck: 1\n", "one\n");
        assert_eq!(out, "            \nname: x\ncheck: 1\n");
        // A value block under its key: the key's entry.
        let out = blank("name: n\nchecks:\n  x: 1\nversion: 1\n", "x: 1");
        assert_eq!(out, "name: n\n       \n      \nversion: 1\n");
        // A list item of the wrong type: the item, from its dash.
        let out = blank("name: n\nchecks:\n  - \"x\"\n  - name: y\n", "\"x\"");
        assert_eq!(out, "name: n\nchecks:\n       \n  - name: y\n");
    }

    #[test]
    fn blanks_flow_entries_and_keeps_the_rest_valid() {
        assert_eq!(
            blank("r: { a: 1, reed: x, b: 2 }\n", "reed"),
            "r: { a: 1         , b: 2 }\n"
        );
        assert_eq!(
            blank("r: { a: 1, reed: x }\n", "reed"),
            "r: { a: 1          }\n"
        );
        assert_eq!(blank("r: { reed: x }\n", "reed"), "r: {         }\n");
    }

    #[test]
    fn renames_a_typo_to_the_key_meant_when_it_fits() {
        let t = "checks:\n  - name: x\n    reed: /y\n";
        let off = t.find("reed").unwrap();
        assert_eq!(
            rename(t, off, "reed", "read").unwrap(),
            "checks:\n  - name: x\n    read: /y\n"
        );
        let t = "r: { method: POST, urll: /x }\n";
        let off = t.find("urll").unwrap();
        assert_eq!(
            rename(t, off, "urll", "url").unwrap(),
            "r: { method: POST, url : /x }\n"
        );
        // Longer than the typo, or already there: not renamed.
        assert_eq!(rename("nme: x\n", 0, "nme", "name"), None);
        let t = "targett: {}\ntarget: {}\n";
        assert_eq!(rename(t, 0, "targett", "target"), None);
    }

    #[test]
    fn owner_is_the_mapping_holding_the_entry() {
        let t = "checks:\n  - name: x\n    reed: /y\n    as: b\n  - name: z\n";
        let b = entry_at(t, t.find("reed").unwrap(), true).unwrap();
        assert_eq!(b.owner, Some((2, 4)));
        let t = "version: 1\nname: n\nchecks: []\n";
        let b = entry_at(t, t.find("name").unwrap(), true).unwrap();
        assert_eq!(b.owner, None);
    }
}
