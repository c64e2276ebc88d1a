//! Label and field selectors, parsed and matched as k8s.io/apimachinery does.
//!
//! This module owns what the two selector kinds share: the [`Operator`] set of
//! k8s.io/apimachinery/pkg/selection, the [`SelectorError`] whose text is what kube-apiserver
//! puts in its 400 responses, and the Go-compatible rendering helpers (`%q` quoting, JSON string
//! lists, Go's unstable `sort.Sort`) that make the messages and `String()` forms byte-identical
//! to upstream. The grammars live in [`labels`] (`labelSelector=`, `LabelSelector` objects)
//! and [`fields`] (`fieldSelector=`).

use std::fmt;

pub mod fields;
pub mod labels;

/// The relation between a key (or field) and its values, upstream's `selection.Operator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `!key`: the key is absent.
    DoesNotExist,
    /// `key=value`.
    Equals,
    /// `key==value`.
    DoubleEquals,
    /// `key in (a,b)`.
    In,
    /// `key!=value`.
    NotEquals,
    /// `key notin (a,b)`.
    NotIn,
    /// `key`: the key is present.
    Exists,
    /// `key>1`.
    GreaterThan,
    /// `key<1`.
    LessThan,
}

impl Operator {
    /// Upstream's string value of the operator (`"!"`, `"="`, `"in"`, `"gt"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::DoesNotExist => "!",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::In => "in",
            Operator::NotEquals => "!=",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a label or field selector was rejected.
///
/// The `Display` text is exactly the error string upstream produces. kube-apiserver decodes the
/// `labelSelector` and `fieldSelector` query parameters (list, watch, deletecollection) through
/// `metav1.Convert_string_To_labels_Selector` / `Convert_string_To_fields_Selector`, which
/// return the parse error unwrapped, and the handler answers
/// `errors.NewBadRequest(err.Error())`: HTTP 400 with a `Status` whose `reason` is
/// `"BadRequest"`, `code` 400, no `details`, and `message` equal to this `Display` text. For
/// example `labelSelector=a in (b` gives the message
/// `unable to parse requirement: found '', expected: ',' or ')'`, which kubectl shows as
/// `Error from server (BadRequest): unable to parse requirement: found '', expected: ',' or ')'`,
/// and `fieldSelector=a=b=c` gives `invalid field selector: unescaped character in value: 61`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector is malformed between requirements, e.g.
    /// `found 'b', expected: ',' or 'end of string'`.
    #[error("{0}")]
    LabelSyntax(String),
    /// A label selector requirement failed to parse or validate; the inner text is the
    /// parser's or the field-error text, e.g. `found '', expected: ',' or ')'` or
    /// `values[0][x]: Invalid value: "a b": a valid label must be ...`.
    #[error("unable to parse requirement: {0}")]
    LabelRequirement(String),
    /// A requirement built directly (from a `LabelSelector` object or a set) is invalid: the
    /// aggregated field errors, e.g.
    /// `values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty`.
    #[error("{0}")]
    InvalidRequirement(String),
    /// A `LabelSelector` match expression has an operator other than `In`, `NotIn`, `Exists`
    /// or `DoesNotExist`.
    #[error("{} is not a valid label selector operator", go_quote(.0))]
    UnknownLabelSelectorOperator(String),
    /// A field selector term has no `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldTerm {
        /// The whole selector as given.
        selector: String,
        /// The offending term.
        term: String,
    },
    /// A field selector value has a backslash not followed by `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    FieldEscape(String),
    /// A field selector value has an unescaped `=` (upstream prints the code point in decimal).
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    FieldUnescaped(char),
}

/// Go's `strconv.Quote` (`%q`): double-quoted, printable characters kept, everything else
/// escaped the Go way (`\t`, `\x01`, `\u00a0`, `\U0001f600`...).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if go_is_print(c) => out.push(c),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c if u32::from(c) < 0x10000 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
/// Rust's debug escaping leaves exactly those categories alone (it escapes `Cc`, `Cf`, `Cs`,
/// `Co`, `Cn` and `Z*` other than the space), so it serves as the category table; the leading
/// `a` stops it from escaping a combining mark as if it began the string. Characters assigned
/// in Unicode versions newer than Go's tables (Unicode 15) print as is here but escaped
/// upstream.
fn go_is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_ascii() {
        return c.is_ascii_graphic();
    }
    let probe: String = ['a', c].iter().collect();
    probe.escape_debug().eq(probe.chars())
}

/// A string list as Go's `json.Marshal` renders it (HTML-safe escaping, `null` when empty as
/// for a nil slice), the form field errors use for list-valued bad values.
fn go_json_string_list(values: &[String]) -> String {
    if values.is_empty() {
        return "null".to_owned();
    }
    let items: Vec<String> = values.iter().map(|v| go_json_string(v)).collect();
    format!("[{}]", items.join(","))
}

fn go_json_string(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' => {
                let b = u32::from(c) as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[b >> 4]));
                out.push(char::from(HEX[b & 0xf]));
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Upstream's rendering of an aggregated error list: duplicates dropped, one message as is,
/// several in brackets separated by `, `.
fn aggregate(messages: Vec<String>) -> String {
    let mut unique: Vec<String> = Vec::with_capacity(messages.len());
    for message in messages {
        if !unique.contains(&message) {
            unique.push(message);
        }
    }
    if unique.len() == 1 {
        unique.concat()
    } else {
        format!("[{}]", unique.join(", "))
    }
}

/// Go's `sort.Sort` (pattern-defeating quicksort, insertion sort up to 12 elements). It is
/// not stable, and upstream's `String()` forms depend on where it leaves equal keys, so the
/// algorithm is reproduced step for step.
fn go_sort<T>(data: &mut [T], less: &impl Fn(&T, &T) -> bool) {
    let n = data.len();
    if n <= 1 {
        return;
    }
    let limit = (usize::BITS - n.leading_zeros()) as usize;
    let mut sorter = GoSorter { data, less };
    sorter.pdqsort(0, n, limit);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SortedHint {
    Unknown,
    Increasing,
    Decreasing,
}

struct GoSorter<'a, T, F> {
    data: &'a mut [T],
    less: &'a F,
}

impl<T, F: Fn(&T, &T) -> bool> GoSorter<'_, T, F> {
    fn less(&self, i: usize, j: usize) -> bool {
        (self.less)(&self.data[i], &self.data[j])
    }

    fn swap(&mut self, i: usize, j: usize) {
        self.data.swap(i, j);
    }

    fn insertion_sort(&mut self, a: usize, b: usize) {
        for i in a + 1..b {
            let mut j = i;
            while j > a && self.less(j, j - 1) {
                self.swap(j, j - 1);
                j -= 1;
            }
        }
    }

    fn sift_down(&mut self, lo: usize, hi: usize, first: usize) {
        let mut root = lo;
        loop {
            let mut child = 2 * root + 1;
            if child >= hi {
                return;
            }
            if child + 1 < hi && self.less(first + child, first + child + 1) {
                child += 1;
            }
            if !self.less(first + root, first + child) {
                return;
            }
            self.swap(first + root, first + child);
            root = child;
        }
    }

    fn heap_sort(&mut self, a: usize, b: usize) {
        let first = a;
        let hi = b - a;
        for i in (0..=(hi - 1) / 2).rev() {
            self.sift_down(i, hi, first);
        }
        for i in (0..hi).rev() {
            self.swap(first, first + i);
            self.sift_down(0, i, first);
        }
    }

    fn pdqsort(&mut self, mut a: usize, mut b: usize, mut limit: usize) {
        const MAX_INSERTION: usize = 12;
        let mut was_balanced = true;
        let mut was_partitioned = true;
        loop {
            let length = b - a;
            if length <= MAX_INSERTION {
                self.insertion_sort(a, b);
                return;
            }
            if limit == 0 {
                self.heap_sort(a, b);
                return;
            }
            if !was_balanced {
                self.break_patterns(a, b);
                limit -= 1;
            }
            let (mut pivot, mut hint) = self.choose_pivot(a, b);
            if hint == SortedHint::Decreasing {
                self.reverse_range(a, b);
                pivot = (b - 1) - (pivot - a);
                hint = SortedHint::Increasing;
            }
            if was_balanced
                && was_partitioned
                && hint == SortedHint::Increasing
                && self.partial_insertion_sort(a, b)
            {
                return;
            }
            if a > 0 && !self.less(a - 1, pivot) {
                a = self.partition_equal(a, b, pivot);
                continue;
            }
            let (mid, already_partitioned) = self.partition(a, b, pivot);
            was_partitioned = already_partitioned;
            let (left_len, right_len) = (mid - a, b - mid);
            let balance_threshold = length / 8;
            if left_len < right_len {
                was_balanced = left_len >= balance_threshold;
                self.pdqsort(a, mid, limit);
                a = mid + 1;
            } else {
                was_balanced = right_len >= balance_threshold;
                self.pdqsort(mid + 1, b, limit);
                b = mid;
            }
        }
    }

    fn partition(&mut self, a: usize, b: usize, pivot: usize) -> (usize, bool) {
        self.swap(a, pivot);
        let (mut i, mut j) = (a + 1, b - 1);
        while i <= j && self.less(i, a) {
            i += 1;
        }
        while i <= j && !self.less(j, a) {
            j -= 1;
        }
        if i > j {
            self.swap(j, a);
            return (j, true);
        }
        self.swap(i, j);
        i += 1;
        j -= 1;
        loop {
            while i <= j && self.less(i, a) {
                i += 1;
            }
            while i <= j && !self.less(j, a) {
                j -= 1;
            }
            if i > j {
                break;
            }
            self.swap(i, j);
            i += 1;
            j -= 1;
        }
        self.swap(j, a);
        (j, false)
    }

    fn partition_equal(&mut self, a: usize, b: usize, pivot: usize) -> usize {
        self.swap(a, pivot);
        let (mut i, mut j) = (a + 1, b - 1);
        loop {
            while i <= j && !self.less(a, i) {
                i += 1;
            }
            while i <= j && self.less(a, j) {
                j -= 1;
            }
            if i > j {
                break;
            }
            self.swap(i, j);
            i += 1;
            j -= 1;
        }
        i
    }

    fn partial_insertion_sort(&mut self, a: usize, b: usize) -> bool {
        const MAX_STEPS: usize = 5;
        const SHORTEST_SHIFTING: usize = 50;
        let mut i = a + 1;
        for _ in 0..MAX_STEPS {
            while i < b && !self.less(i, i - 1) {
                i += 1;
            }
            if i == b {
                return true;
            }
            if b - a < SHORTEST_SHIFTING {
                return false;
            }
            self.swap(i, i - 1);
            if i - a >= 2 {
                let mut j = i - 1;
                while j >= 1 {
                    if !self.less(j, j - 1) {
                        break;
                    }
                    self.swap(j, j - 1);
                    j -= 1;
                }
            }
            if b - i >= 2 {
                for j in i + 1..b {
                    if !self.less(j, j - 1) {
                        break;
                    }
                    self.swap(j, j - 1);
                }
            }
        }
        false
    }

    fn break_patterns(&mut self, a: usize, b: usize) {
        let length = b - a;
        if length >= 8 {
            let mut random = length as u64;
            let modulus = 1u64 << (u64::BITS - (length as u64).leading_zeros());
            let start = a + (length / 4) * 2 - 1;
            for idx in start..=start + 2 {
                random ^= random << 13;
                random ^= random >> 7;
                random ^= random << 17;
                let mut other = (random & (modulus - 1)) as usize;
                if other >= length {
                    other -= length;
                }
                self.swap(idx, a + other);
            }
        }
    }

    fn choose_pivot(&mut self, a: usize, b: usize) -> (usize, SortedHint) {
        const SHORTEST_NINTHER: usize = 50;
        const MAX_SWAPS: usize = 4 * 3;
        let l = b - a;
        let mut swaps = 0;
        let mut i = a + l / 4;
        let mut j = a + l / 4 * 2;
        let mut k = a + l / 4 * 3;
        if l >= 8 {
            if l >= SHORTEST_NINTHER {
                i = self.median(i - 1, i, i + 1, &mut swaps);
                j = self.median(j - 1, j, j + 1, &mut swaps);
                k = self.median(k - 1, k, k + 1, &mut swaps);
            }
            j = self.median(i, j, k, &mut swaps);
        }
        match swaps {
            0 => (j, SortedHint::Increasing),
            MAX_SWAPS => (j, SortedHint::Decreasing),
            _ => (j, SortedHint::Unknown),
        }
    }

    fn order2(&self, a: usize, b: usize, swaps: &mut usize) -> (usize, usize) {
        if self.less(b, a) {
            *swaps += 1;
            (b, a)
        } else {
            (a, b)
        }
    }

    fn median(&self, a: usize, b: usize, c: usize, swaps: &mut usize) -> usize {
        let (a, b) = self.order2(a, b, swaps);
        let (b, _) = self.order2(b, c, swaps);
        let (_, b) = self.order2(a, b, swaps);
        b
    }

    fn reverse_range(&mut self, a: usize, b: usize) {
        self.data[a..b].reverse();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        let check = |input: &str, expected: &str| assert_eq!(go_quote(input), expected, "{input:?}");
        check("", r#""""#);
        check("a b", r#""a b""#);
        check("say \"hi\"\\", r#""say \"hi\"\\""#);
        check("\t\n\r\u{7}\u{8}\u{b}\u{c}", r#""\t\n\r\a\b\v\f""#);
        check("\u{0}\u{1}\u{7f}", r#""\x00\x01\x7f""#);
        check("äöü 日本 é", "\"äöü 日本 é\"");
        check("\u{301}", "\"\u{301}\"");
        check("\u{a0}\u{200b}\u{feff}\u{2028}", r#""\u00a0\u200b\ufeff\u2028""#);
        check("\u{e000}", r#""\ue000""#);
        check("\u{f0000}", r#""\U000f0000""#);
        check("😀", "\"😀\"");
        check("\u{378}\u{ad}\u{3000}", r#""\u0378\u00ad\u3000""#);
    }

    #[test]
    fn renders_json_lists_like_go() {
        let list = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(go_json_string_list(&[]), "null");
        assert_eq!(go_json_string_list(&list(&["a", "b"])), r#"["a","b"]"#);
        assert_eq!(
            go_json_string_list(&list(&["<&>", "q\"\\", "\u{1}\u{8}\n", "\u{2029}é"])),
            r#"["\u003c\u0026\u003e","q\"\\","\u0001\b\n","\u2029é"]"#
        );
    }

    #[test]
    fn aggregates_like_upstream() {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(aggregate(strings(&["a"])), "a");
        assert_eq!(aggregate(strings(&["a", "a"])), "a");
        assert_eq!(aggregate(strings(&["a", "b", "a"])), "[a, b]");
    }

    /// Sorting pairs by their first element only and checking where equal keys end up, against
    /// the orders Go's `sort.Sort` produces with the same less function.
    #[test]
    fn sorts_like_go() {
        fn run(keys: &[u32]) -> Vec<usize> {
            let mut items: Vec<(u32, usize)> = keys.iter().copied().zip(0..).collect();
            go_sort(&mut items, &|a: &(u32, usize), b: &(u32, usize)| a.0 < b.0);
            items.iter().map(|item| item.1).collect()
        }
        fn render(order: &[usize]) -> String {
            order
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        }
        // Up to 12 elements Go uses insertion sort, which is stable.
        assert_eq!(run(&[3, 1, 2, 1, 3]), vec![1, 3, 2, 0, 4]);
        assert_eq!(run(&[]), Vec::<usize>::new());
        assert_eq!(
            run(&[5, 1, 5, 1, 5, 1, 5, 1, 5, 1, 5, 1, 5, 1, 5, 1]),
            vec![9, 1, 15, 3, 13, 5, 11, 7, 8, 0, 10, 6, 12, 4, 14, 2]
        );
        assert_eq!(
            run(&[2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1]),
            vec![13, 6, 2, 3, 4, 5, 0, 7, 8, 9, 10, 11, 12, 1]
        );
        // Pseudo-random keys with many duplicates, through every branch of the algorithm.
        let golden: &[(usize, &str)] = &[
            (13, "11 5 2 7 6 3 1 4 8 12 0 10 9"),
            (
                50,
                "21 43 2 4 0 34 33 27 40 5 36 29 35 41 11 13 45 44 7 12 42 30 39 23 1 8 46 14 31 17 49 15 20 3 22 32 19 37 38 25 47 6 18 10 24 16 26 9 48 28",
            ),
            (
                51,
                "36 40 25 49 26 27 8 44 1 41 45 38 19 35 46 47 50 23 9 12 33 37 39 28 30 24 14 11 17 43 0 6 4 31 32 2 13 42 22 29 10 20 48 5 34 7 16 21 18 3 15",
            ),
            (
                200,
                "133 80 196 107 118 120 123 90 129 130 187 11 138 142 14 146 62 60 180 19 59 160 179 23 157 47 26 164 175 165 38 171 33 87 151 195 36 194 30 121 98 97 93 190 127 128 158 32 8 85 156 155 136 140 64 63 56 150 84 21 1 113 182 117 20 191 66 167 52 173 100 6 148 92 161 31 24 49 78 9 13 42 108 186 145 139 76 25 159 68 74 126 141 12 94 125 181 178 174 122 71 0 67 147 169 55 61 153 101 77 199 4 193 106 192 115 22 105 172 170 168 102 43 45 124 53 91 58 69 144 83 131 132 82 143 72 75 152 37 110 81 73 135 198 86 2 88 3 89 111 114 7 109 189 154 51 15 48 185 96 184 99 162 183 41 16 17 39 177 104 35 46 54 34 29 28 176 103 27 116 18 166 40 163 44 79 10 119 188 95 50 5 57 112 149 65 70 197 134 137",
            ),
        ];
        let mut state = 42u64;
        for (len, expected) in golden {
            let keys: Vec<u32> = (0..*len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state % 7) as u32
                })
                .collect();
            assert_eq!(render(&run(&keys)), *expected, "{len}");
        }
        let descending: Vec<u32> = (0..100).rev().collect();
        assert_eq!(run(&descending), (0..100).rev().collect::<Vec<_>>());
    }
}
