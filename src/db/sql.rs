//! SQL text helpers shared by the rules and the probe (database layer → **SQL
//! names**): quoting identifiers and splitting `schema.table` names. A leaf module.

/// `name` as a SQL identifier, quoted when it is not a plain lower-case name.
pub(crate) fn quote_ident(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// `schema.name`, each part quoted when needed.
pub(crate) fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// `schema.table` → (Some(schema), table); `table` → (None, table). Quotes removed.
pub(crate) fn split_name(s: &str) -> (Option<String>, String) {
    let unq = |x: &str| x.trim().trim_matches('"').to_string();
    match s.split_once('.') {
        Some((a, b)) => (Some(unq(a)), unq(b)),
        None => (None, unq(s)),
    }
}

/// Whether `word` occurs in `hay` as a whole identifier.
pub(crate) fn contains_word(hay: &str, word: &str) -> bool {
    hay.match_indices(word).any(|(at, _)| {
        let before = hay[..at].chars().next_back();
        let after = hay[at + word.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote_ident("brands"), "brands");
        assert_eq!(quote_ident("Brands"), "\"Brands\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(qualified("public", "my table"), "public.\"my table\"");
    }

    #[test]
    fn names_split_and_words_match_whole() {
        assert_eq!(split_name("\"a\".b"), (Some("a".into()), "b".into()));
        assert_eq!(split_name("t"), (None, "t".into()));
        assert!(contains_word("lower(org_id)", "org_id"));
        assert!(!contains_word("xorg_id", "org_id"));
    }
}
