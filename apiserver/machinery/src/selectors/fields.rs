//! Field selectors, as k8s.io/apimachinery/pkg/fields parses, matches and prints them: the
//! `fieldSelector=` grammar (`field=value`, `field==value`, `field!=value` terms joined by `,`,
//! with `\,`, `\=` and `\\` escapes in values), `RequiresExactMatch`, and the `Transform` step
//! the apiserver uses to check and rename fields per kind.

use std::collections::BTreeMap;
use std::fmt;

use super::{Operator, SelectorError};

/// One term: a field compared with a value.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Term {
    field: String,
    value: String,
    /// `!=` rather than `=`/`==`.
    negated: bool,
}

impl Term {
    fn matches(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        let actual = get(&self.field).unwrap_or_default();
        (actual == self.value) != self.negated
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operator = if self.negated { "!=" } else { "=" };
        write!(f, "{}{operator}{}", self.field, escape_value(&self.value))
    }
}

/// A field selector: the AND of its terms, kept in upstream's order (terms sorted by their
/// text as written, before unescaping).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    terms: Vec<Term>,
}

impl Selector {
    /// Upstream's `fields.ParseSelector`, the `fieldSelector` query parameter grammar.
    ///
    /// Terms are split on unescaped `,` and empty terms skipped; each is split at the first
    /// `!=`, `==` or `=`; the field is taken as written and the value unescaped (`\\`, `\,`,
    /// `\=`; any other backslash sequence or a bare `=` in the value is an error). A term with
    /// neither field nor value (`=`) restricts nothing and is dropped, as upstream's identity
    /// transform drops it. Whitespace is significant.
    pub fn parse(selector: &str) -> Result<Selector, SelectorError> {
        let mut parts = split_terms(selector);
        parts.sort_unstable();
        let mut terms = Vec::with_capacity(parts.len());
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((field, operator, value)) = split_term(part) else {
                return Err(SelectorError::FieldTerm {
                    selector: selector.to_owned(),
                    term: part.to_owned(),
                });
            };
            terms.push(Term {
                field: field.to_owned(),
                value: unescape_value(value)?,
                negated: operator == "!=",
            });
        }
        terms.retain(|term| !(term.field.is_empty() && term.value.is_empty()));
        Ok(Selector { terms })
    }

    /// The selector matching everything.
    pub fn everything() -> Selector {
        Selector::default()
    }

    /// Upstream's `OneTermEqualSelector`: `field=value`.
    pub fn one_term_equal(field: &str, value: &str) -> Selector {
        Selector {
            terms: vec![Term {
                field: field.to_owned(),
                value: value.to_owned(),
                negated: false,
            }],
        }
    }

    /// Upstream's `SelectorFromSet`: `field=value` for every entry.
    pub fn from_set(fields: &BTreeMap<String, String>) -> Selector {
        Selector {
            terms: fields
                .iter()
                .map(|(field, value)| Term {
                    field: field.clone(),
                    value: value.clone(),
                    negated: false,
                })
                .collect(),
        }
    }

    /// Whether the selector does not restrict anything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether every term holds. `get` returns a field's value; a missing field compares as
    /// the empty string, as upstream's `fields.Set` does.
    pub fn matches(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|term| term.matches(get))
    }

    /// [`Selector::matches`] against a map of field values.
    pub fn matches_set(&self, fields: &BTreeMap<String, String>) -> bool {
        self.matches(&|field: &str| fields.get(field).cloned())
    }

    /// Upstream's `RequiresExactMatch`: the value of the first `=`/`==` term on `field`.
    pub fn requires_exact_match(&self, field: &str) -> Option<String> {
        self.terms
            .iter()
            .find(|term| !term.negated && term.field == field)
            .map(|term| term.value.clone())
    }

    /// The terms as (field, operator, unescaped value), `==` reported as [`Operator::Equals`]
    /// as upstream's `Requirements()` does, so callers can check each field is supported.
    pub fn terms(&self) -> impl Iterator<Item = (&str, Operator, &str)> {
        self.terms.iter().map(|term| {
            let operator = if term.negated {
                Operator::NotEquals
            } else {
                Operator::Equals
            };
            (term.field.as_str(), operator, term.value.as_str())
        })
    }

    /// Upstream's `Transform`, which the apiserver applies with the kind's field label
    /// conversion right after parsing: `convert` maps each (field, value) in order to a new
    /// pair or fails (the first failure is returned; upstream turns it into a 400 BadRequest
    /// with the error text, e.g. `field label not supported: spec.foo` or
    /// `"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"`).
    /// Terms converted to an empty field and an empty value are dropped.
    pub fn transform<E>(
        &self,
        mut convert: impl FnMut(&str, &str) -> Result<(String, String), E>,
    ) -> Result<Selector, E> {
        let mut terms = Vec::with_capacity(self.terms.len());
        for term in &self.terms {
            let (field, value) = convert(&term.field, &term.value)?;
            if field.is_empty() && value.is_empty() {
                continue;
            }
            terms.push(Term {
                field,
                value,
                negated: term.negated,
            });
        }
        Ok(Selector { terms })
    }
}

impl fmt::Display for Selector {
    /// Upstream's `String()`: `field=value` / `field!=value` terms joined by `,`, values
    /// escaped again; `==` prints as `=`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, term) in self.terms.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{term}")?;
        }
        Ok(())
    }
}

/// Upstream's `EscapeValue`: `\` → `\\`, `,` → `\,`, `=` → `\=`.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Upstream's `UnescapeValue`, the inverse of [`escape_value`]; a bare `,` or `=` or an
/// unknown escape is an error.
pub fn unescape_value(value: &str) -> Result<String, SelectorError> {
    if !value.contains(['\\', ',', '=']) {
        return Ok(value.to_owned());
    }
    let mut out = String::with_capacity(value.len());
    let mut in_slash = false;
    for c in value.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::FieldEscape(format!("\\{c}")));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(SelectorError::FieldUnescaped(c)),
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::FieldEscape("\\".to_owned()));
    }
    Ok(out)
}

/// Splits on commas not preceded by an escaping backslash; the empty string has no terms.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (index, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..index]);
            start = index + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits a term at the first operator, trying `!=`, then `==`, then `=` at each position.
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (index, _) in term.char_indices() {
        let remaining = &term[index..];
        for operator in ["!=", "==", "="] {
            if let Some(value) = remaining.strip_prefix(operator) {
                return Some((&term[..index], operator, value));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    type ParseCase = (&'static str, Result<(&'static str, bool), &'static str>);
    type MatchCase = (&'static str, &'static [(&'static str, &'static str)], bool);
    type SplitCase = (&'static str, Option<(&'static str, &'static str, &'static str)>);

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Parse results (string form and emptiness) and error messages recorded from upstream's
    /// `fields.ParseSelector`, including the cases of upstream's selector_test.go.
    #[test]
    fn parses_like_upstream() {
        fn check(input: &str, expected: Result<(&str, bool), &str>) {
            let actual = Selector::parse(input)
                .map(|selector| (selector.to_string(), selector.is_empty()))
                .map_err(|error| error.to_string());
            let expected = expected
                .map(|(text, empty)| (text.to_owned(), empty))
                .map_err(str::to_owned);
            assert_eq!(actual, expected, "parsing {input:?}");
            if let Ok((rendered, _)) = &actual {
                let reparsed = Selector::parse(rendered).unwrap();
                assert_eq!(&reparsed.to_string(), rendered, "re-parsing {rendered:?}");
            }
        }
        // One row per case, as recorded from upstream.
        #[rustfmt::skip]
        let cases: &[ParseCase] = &[
            ("x=a,y=b,z=c", Ok(("x=a,y=b,z=c", false))),
            ("", Ok(("", true))),
            ("x!=a,y=b", Ok(("x!=a,y=b", false))),
            ("x=a||y\\=b", Ok(("x=a||y\\=b", false))),
            ("x=a\\=\\=b", Ok(("x=a\\=\\=b", false))),
            ("x=a||y=b", Err("invalid field selector: unescaped character in value: 61")),
            ("x==a==b", Err("invalid field selector: unescaped character in value: 61")),
            ("x=a,b", Err("invalid selector: 'x=a,b'; can't understand 'b'")),
            ("x in (a)", Err("invalid selector: 'x in (a)'; can't understand 'x in (a)'")),
            ("x in (a,b,c)", Err("invalid selector: 'x in (a,b,c)'; can't understand 'b'")),
            ("x", Err("invalid selector: 'x'; can't understand 'x'")),
            ("x=a,a=x", Ok(("a=x,x=a", false))),
            ("a=x,x=a", Ok(("a=x,x=a", false))),
            ("notin=in", Ok(("notin=in", false))),
            ("a==b", Ok(("a=b", false))),
            ("a!=b", Ok(("a!=b", false))),
            ("a=", Ok(("a=", false))),
            ("a!=", Ok(("a!=", false))),
            ("a==", Ok(("a=", false))),
            ("=", Ok(("", true))),
            ("==", Ok(("", true))),
            ("!=", Ok(("", true))),
            ("=b", Ok(("=b", false))),
            ("!=b", Ok(("!=b", false))),
            ("a=b,=", Ok(("a=b", false))),
            ("=,a=b", Ok(("a=b", false))),
            (",", Ok(("", true))),
            (",,", Ok(("", true))),
            ("a=b,", Ok(("a=b", false))),
            (",a=b", Ok(("a=b", false))),
            ("a=b,,c=d", Ok(("a=b,c=d", false))),
            ("a=b=c", Err("invalid field selector: unescaped character in value: 61")),
            ("a=b\\", Err("invalid field selector: invalid escape sequence: \\")),
            ("a=b\\x", Err("invalid field selector: invalid escape sequence: \\x")),
            ("a=\\a\\b\\", Err("invalid field selector: invalid escape sequence: \\a")),
            ("k=\\,,k2=v2", Ok(("k2=v2,k=\\,", false))),
            ("k=\\\\,k2=v2", Ok(("k2=v2,k=\\\\", false))),
            ("k=\\\\\\,,k2=v2", Ok(("k2=v2,k=\\\\\\,", false))),
            ("k=\\", Err("invalid field selector: invalid escape sequence: \\")),
            ("a\\=b=c", Err("invalid field selector: unescaped character in value: 61")),
            ("a\\,b=c", Ok(("a\\,b=c", false))),
            ("a!==b", Err("invalid field selector: unescaped character in value: 61")),
            ("a=!=b", Err("invalid field selector: unescaped character in value: 61")),
            ("a=!b", Ok(("a=!b", false))),
            ("a!b=c", Ok(("a!b=c", false))),
            (" a = b ", Ok((" a = b ", false))),
            ("a= b", Ok(("a= b", false))),
            ("metadata.name=foo", Ok(("metadata.name=foo", false))),
            ("metadata.name==foo,metadata.namespace!=bar", Ok(("metadata.name=foo,metadata.namespace!=bar", false))),
            ("spec.nodeName=", Ok(("spec.nodeName=", false))),
            ("status.phase!=Running,status.phase!=Succeeded", Ok(("status.phase!=Running,status.phase!=Succeeded", false))),
            ("함=수,목=록", Ok(("목=록,함=수", false))),
            ("a=수\\=", Ok(("a=수\\=", false))),
            ("a=\\함", Err("invalid field selector: invalid escape sequence: \\함")),
            ("b=2,a=1,c=3", Ok(("a=1,b=2,c=3", false))),
            ("c!=3,a=1,b==2", Ok(("a=1,b=2,c!=3", false))),
            ("z,a=b=c", Err("invalid field selector: unescaped character in value: 61")),
            ("a=b=c,z", Err("invalid field selector: unescaped character in value: 61")),
            ("a=\\", Err("invalid field selector: invalid escape sequence: \\")),
            ("x=\\n", Err("invalid field selector: invalid escape sequence: \\n")),
            ("a=b,a=c", Ok(("a=b,a=c", false))),
            ("a=\\,\\=\\\\", Ok(("a=\\,\\=\\\\", false))),
            ("a=b,c", Err("invalid selector: 'a=b,c'; can't understand 'c'")),
            ("a", Err("invalid selector: 'a'; can't understand 'a'")),
            ("\\=a", Ok(("\\=a", false))),
            ("a=b\\,c=d", Err("invalid field selector: unescaped character in value: 61")),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }

    /// Match results recorded from upstream (`ParseSelector(selector).Matches(Set(fields))`).
    #[test]
    fn matches_like_upstream() {
        // One row per case, as recorded from upstream.
        #[rustfmt::skip]
        let cases: &[MatchCase] = &[
            ("", &[("x", "y")], true),
            ("x=y", &[("x", "y")], true),
            ("x=y,z=w", &[("x", "y"), ("z", "w")], true),
            ("x!=y,z!=w", &[("x", "z"), ("z", "a")], true),
            ("notin=in", &[("notin", "in")], true),
            ("x=y", &[("x", "z")], false),
            ("x=y,z=w", &[("x", "w"), ("z", "w")], false),
            ("x!=y,z!=w", &[("x", "z"), ("z", "w")], false),
            ("foo=bar", &[("foo", "bar"), ("baz", "blah"), ("complex", "=value\\,\\")], true),
            ("foo=bar,baz=blah,complex=\\=value\\\\\\,\\\\", &[("foo", "bar"), ("baz", "blah"), ("complex", "=value\\,\\")], true),
            ("foo=blah", &[("foo", "bar"), ("baz", "blah")], false),
            ("foo=bar,foobar=bar,baz=blah", &[("foo", "bar"), ("baz", "blah")], false),
            ("x=", &[], true),
            ("x!=", &[], false),
            ("x!=", &[("x", "a")], true),
            ("x!=a", &[], true),
            ("x==a", &[("x", "a")], true),
            ("=", &[], true),
            ("=a", &[("", "a")], true),
            ("=a", &[], false),
        ];
        for (selector, set, expected) in cases {
            let parsed = Selector::parse(selector).unwrap();
            let set = fields(set);
            assert_eq!(parsed.matches_set(&set), *expected, "{selector:?} on {set:?}");
            let get = |field: &str| set.get(field).cloned();
            assert_eq!(parsed.matches(&get), *expected, "{selector:?} on {set:?}");
        }
    }

    #[test]
    fn exposes_terms() {
        let selector = Selector::parse(r"spec.nodeName==n1,metadata.name!=a\,b,status.phase=").unwrap();
        let terms: Vec<(&str, Operator, &str)> = selector.terms().collect();
        assert_eq!(
            terms,
            vec![
                ("metadata.name", Operator::NotEquals, "a,b"),
                ("spec.nodeName", Operator::Equals, "n1"),
                ("status.phase", Operator::Equals, ""),
            ]
        );
        assert_eq!(Selector::everything().terms().count(), 0);
        assert!(Selector::everything().is_empty());
        assert!(Selector::everything().matches(&|_: &str| None));
    }

    /// Upstream's TestRequiresExactMatch, on parsed and built selectors.
    #[test]
    fn requires_exact_match_like_upstream() {
        let check = |selector: &Selector, field: &str, expected: Option<&str>| {
            assert_eq!(
                selector.requires_exact_match(field).as_deref(),
                expected,
                "{selector} {field:?}"
            );
        };
        let parse = |text: &str| Selector::parse(text).unwrap();
        check(&Selector::from_set(&fields(&[])), "test", None);
        check(&parse("a=b"), "test", None);
        check(&parse("test=b"), "test", Some("b"));
        check(&parse("test=="), "test", Some(""));
        check(&parse("test!=b"), "test", None);
        check(&parse("test!="), "test", None);
        check(&Selector::everything(), "test", None);
        check(&parse("a=,test=b"), "test", Some("b"));
        check(&parse("test!=a,test=b"), "test", Some("b"));
        check(
            &Selector::one_term_equal("metadata.name", "x"),
            "metadata.name",
            Some("x"),
        );
    }

    /// Upstream's TestTransform.
    #[test]
    fn transforms_like_upstream() {
        type Convert = fn(&str, &str) -> Result<(String, String), String>;
        let identity: Convert = |field, value| Ok((field.to_owned(), value.to_owned()));
        let rename_a: Convert = |field, value| {
            if field == "a" {
                Ok(("e".to_owned(), "f".to_owned()))
            } else {
                Ok((field.to_owned(), value.to_owned()))
            }
        };
        let drop_all: Convert = |_, _| Ok((String::new(), String::new()));
        let drop_c: Convert = |field, value| {
            if field == "c" {
                Ok((String::new(), String::new()))
            } else {
                Ok((field.to_owned(), value.to_owned()))
            }
        };
        let cases: &[(&str, Convert, &str, bool)] = &[
            ("", identity, "", true),
            ("a=b,c=d", identity, "a=b,c=d", false),
            ("a=b,c=d", rename_a, "e=f,c=d", false),
            ("a=b", drop_all, "", true),
            ("a=b,c=d,e=f", drop_c, "a=b,e=f", false),
        ];
        for (text, convert, expected, empty) in cases {
            let transformed = Selector::parse(text).unwrap().transform(convert).unwrap();
            assert_eq!(transformed.to_string(), *expected, "{text:?}");
            assert_eq!(transformed.is_empty(), *empty, "{text:?}");
        }

        let known = |field: &str, value: &str| match field {
            "metadata.name" | "metadata.namespace" => Ok((field.to_owned(), value.to_owned())),
            _ => Err(format!("field label not supported: {field}")),
        };
        let error = Selector::parse("spec.b=1,metadata.name=x,spec.a=2")
            .unwrap()
            .transform(known)
            .unwrap_err();
        assert_eq!(error, "field label not supported: spec.a");
    }

    #[test]
    fn escapes_like_upstream() {
        let cases = [
            ("", ""),
            ("a", "a"),
            ("=", r"\="),
            (",", r"\,"),
            (r"\", r"\\"),
            (r"\=\,\", r"\\\=\\\,\\"),
        ];
        for (raw, escaped) in cases {
            assert_eq!(escape_value(raw), escaped);
            assert_eq!(unescape_value(escaped).unwrap(), raw);
        }
        for invalid in [r"\", r"\\\", r"\a"] {
            assert!(matches!(
                unescape_value(invalid),
                Err(SelectorError::FieldEscape(_))
            ));
        }
        assert_eq!(
            unescape_value("a,b").unwrap_err().to_string(),
            "invalid field selector: unescaped character in value: 44"
        );
    }

    /// Upstream's TestSplitTerms and TestSplitTerm.
    #[test]
    fn splits_like_upstream() {
        let cases: &[(&str, &[&str])] = &[
            ("a", &["a"]),
            ("a=avalue", &["a=avalue"]),
            ("a=avalue,b=bvalue", &["a=avalue", "b=bvalue"]),
            (
                "a=avalue,b==bvalue,c!=cvalue",
                &["a=avalue", "b==bvalue", "c!=cvalue"],
            ),
            ("", &[]),
            ("a=a,", &["a=a", ""]),
            (",a=a", &["", "a=a"]),
            (r"k=\,,k2=v2", &[r"k=\,", "k2=v2"]),
            (r"k=\\,k2=v2", &[r"k=\\", "k2=v2"]),
            (r"k=\\\,,k2=v2", &[r"k=\\\,", "k2=v2"]),
            (r"k=\a\b\", &[r"k=\a\b\"]),
            (r"k=\", &[r"k=\"]),
            ("함=수,목=록", &["함=수", "목=록"]),
        ];
        for (selector, expected) in cases {
            assert_eq!(split_terms(selector), *expected, "{selector:?}");
        }
        let cases: &[SplitCase] = &[
            ("a=value", Some(("a", "=", "value"))),
            ("b==value", Some(("b", "==", "value"))),
            ("c!=value", Some(("c", "!=", "value"))),
            ("", None),
            ("a", None),
            (r"k=\,", Some(("k", "=", r"\,"))),
            (r"k=\=", Some(("k", "=", r"\="))),
            (r"k=\\\a\b\=\,\", Some(("k", "=", r"\\\a\b\=\,\"))),
            ("함=수", Some(("함", "=", "수"))),
        ];
        for (term, expected) in cases {
            assert_eq!(split_term(term), *expected, "{term:?}");
        }
    }
}
