//! `$(VAR)` expansion as the kubelet applies it to env values, command, args and
//! `subPathExpr` (upstream's `third_party/forked/golang/expansion`): `$$` is an escaped `$`,
//! a reference with no mapping is left as written, an unterminated `$(` is kept literally.
//!
//! Pure string code; it knows nothing of where values come from.

use std::collections::HashMap;

/// Expands `$(NAME)` references in `input`; `mapping` returns the value of a name or `None`
/// when it has none, in which case the reference stays as written (`$(NAME)`).
pub fn expand(input: &str, mut mapping: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let bytes = input.as_bytes();
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance = match rest.chars().next() {
                Some('$') => {
                    // Escaped operator.
                    out.push('$');
                    1
                }
                Some('(') => match rest[1..].find(')') {
                    Some(close) => {
                        let name = &rest[1..1 + close];
                        match mapping(name) {
                            Some(value) => out.push_str(&value),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        close + 2
                    }
                    None => {
                        // Incomplete reference: keep `$(` and scan on after it.
                        out.push_str("$(");
                        1
                    }
                },
                Some(other) => {
                    // An operator that begins no expression: keep it and the next character.
                    out.push('$');
                    out.push(other);
                    other.len_utf8()
                }
                None => 0,
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    if checkpoint < input.len() {
        out.push_str(&input[checkpoint..]);
    }
    out
}

/// Upstream's `MappingFuncFor`: looks a name up in each map in turn.
pub fn expand_with(input: &str, contexts: &[&HashMap<String, String>]) -> String {
    expand(input, |name| {
        contexts.iter().find_map(|vars| vars.get(name).cloned())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn vars() -> HashMap<String, String> {
        [
            ("VAR_A", "A"),
            ("VAR_B", "B"),
            ("VAR_C", "C"),
            ("VAR_REF", "$(VAR_A)"),
            ("VAR_EMPTY", ""),
            ("BLU", "$$"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    // Cases from upstream's expand_test.go.
    #[test]
    fn upstream_cases() {
        let vars = vars();
        let cases = [
            ("$(VAR_A)", "A"),
            ("___$(VAR_B)___", "___B___"),
            ("$(VAR_A)-$(VAR_A)", "A-A"),
            ("f000-$$VAR_A", "f000-$VAR_A"),
            ("foo\\$(VAR_C)bar", "foo\\Cbar"),
            ("foo\\\\$(VAR_C)bar", "foo\\\\Cbar"),
            ("$(VAR_A)$(VAR_B)$(VAR_C)", "ABC"),
            ("$(VAR_REF)", "$(VAR_A)"),
            ("foo$(VAR_EMPTY)bar", "foobar"),
            ("$(VAR_DNE)", "$(VAR_DNE)"),
            ("$$(VAR_A)", "$(VAR_A)"),
            ("$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),
            ("$$$$$$$(VAR_A)", "$$$A"),
            ("$$$$$$$$(VAR_A)", "$$$$(VAR_A)"),
            ("foo$$(VAR_A)bar", "foo$(VAR_A)bar"),
            ("$$$(VAR_A)", "$A"),
            ("$(VAR_A", "$(VAR_A"),
            ("$(BLU)", "$$"),
            ("$$$$(VAR_A)", "$$(VAR_A)"),
            ("$(", "$("),
            ("$", "$"),
            ("f00$", "f00$"),
            ("$VAR_A", "$VAR_A"),
            ("$%", "$%"),
            ("$é(VAR_A)", "$é(VAR_A)"),
            ("$()", "$()"),
            ("$(VAR_A)$(", "A$("),
            ("$(VAR_A)$(VAR_B", "A$(VAR_B"),
            ("", ""),
            ("$(VAR_A)$$$", "A$$"),
        ];
        for (input, want) in cases {
            assert_eq!(expand_with(input, &[&vars]), want, "input {input:?}");
        }
    }

    #[test]
    fn first_context_wins() {
        let first: HashMap<String, String> = [("X".to_owned(), "1".to_owned())].into();
        let second: HashMap<String, String> =
            [("X".to_owned(), "2".to_owned()), ("Y".to_owned(), "3".to_owned())].into();
        assert_eq!(expand_with("$(X)$(Y)", &[&first, &second]), "13");
    }
}
